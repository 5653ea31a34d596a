/**
 * What the nixery engine adds (spec §2.3): the image name built from `dependencies.nixpkgs`, a
 * Nix configuration step and the install step for packages from other registries.
 */
import type { EnvVar, Registry } from "./types.ts";

export const DEFAULT_NIXERY_HOST = "nixery.tangled.sh";

export type Architecture = "amd64" | "arm64";

/** `<host>/[arm64/]<nixpkgs packages…>/bash/git/coreutils/nix`. */
export function nixeryImage(host: string, registries: readonly Registry[], arch: Architecture): string {
  const nixpkgs = registries.filter((r) => r.registry === "nixpkgs").flatMap((r) => r.packages);
  const parts = [host, ...(arch === "arm64" ? ["arm64"] : []), ...nixpkgs, "bash", "git", "coreutils", "nix"];
  return parts.join("/");
}

/**
 * Upstream's step 0 appends to `/etc/nix/nix.conf`, which needs root. Loom's pods run as UID
 * 1000, so the same two settings go to the user's nix.conf (`$HOME/.config/nix/nix.conf`, read
 * by Nix for every user). Keeping the step keeps upstream's step numbering, which the appview
 * shows.
 */
export const CONFIGURE_NIX_STEP = {
  name: "Configure Nix",
  command: [
    'mkdir -p "$HOME/.config/nix"',
    `printf '%s\\n' 'extra-experimental-features = nix-command flakes' 'build-users-group = ' >> "$HOME/.config/nix/nix.conf"`,
  ].join("\n"),
};

export interface InstallStep {
  name: string;
  command: string;
  environment: EnvVar[];
}

/**
 * `nix … profile add '<registry>#<pkg>' …` for every registry other than nixpkgs, in file order
 * (upstream iterates a Go map, so its order is random). Undefined when there are none.
 */
export function installStep(registries: readonly Registry[]): InstallStep | undefined {
  const refs = registries
    .filter((r) => r.registry !== "nixpkgs")
    .flatMap((r) => r.packages.map((p) => `${r.registry}#${p}`));
  if (refs.length === 0) return undefined;
  const quoted = refs.map((ref) => `'${ref.replaceAll("'", `'\\''`)}'`);
  return {
    name: "Install custom dependencies",
    command: `nix --extra-experimental-features nix-command --extra-experimental-features flakes profile add ${quoted.join(" ")}`,
    environment: [
      { name: "NIX_NO_COLOR", value: "1" },
      { name: "NIX_SHOW_DOWNLOAD_PROGRESS", value: "0" },
    ],
  };
}
