/**
 * `engine: microvm` workflows under `loom run --engine docker|podman`: as the Kubernetes pod does,
 * the image's /nix is copied into a folder the workflow's user owns (a first container, the
 * same image, as that user) and mounted at /nix in the runner's container, so single-user Nix
 * can realise the dependencies in the dev-shell step. Services and virtualisation are not
 * started here: `loom run` says so before the workflow runs (src/cli/host.ts).
 *
 * Unverified here, as container.ts: no container engine runs on the machine that wrote this, so
 * only the command lines are checked.
 */
import { execFile } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Architecture } from "../../workflow/index.ts";
import { type ContainerCli, containerName } from "./container.ts";

const exec = promisify(execFile);

/** The run's copy of the image's /nix: beside the run directories, named after the container. */
export function nixStoreDir(runsDir: string, wid: string): string {
  return join(runsDir, `${containerName(wid)}.nix`);
}

export interface NixCopyOptions {
  cli: ContainerCli;
  image: string;
  architecture: Architecture;
  nixDir: string;
  uid: number;
  gid: number;
  cliEnv: Readonly<Record<string, string>>;
}

/** `env K=V… docker run …` copying the image's /nix into `nixDir` as the workflow's user (`cp -a`). */
export function nixCopyCommand(o: NixCopyOptions): string[] {
  const user = o.cli === "podman" ? ["--userns=keep-id"] : ["--user", `${o.uid}:${o.gid}`];
  return [
    "env",
    ...Object.entries(o.cliEnv).map(([k, v]) => `${k}=${v}`),
    o.cli,
    "run",
    "--rm",
    "--platform",
    `linux/${o.architecture}`,
    ...user,
    "--volume",
    `${o.nixDir}:/loom/nix`,
    "--entrypoint",
    "sh",
    o.image,
    "-c",
    "cp -a /nix/. /loom/nix/",
  ];
}

/** The runner container's extra arguments: the copied store at /nix. */
export function microvmRunnerArgs(nixDir: string): string[] {
  return ["--volume", `${nixDir}:/nix`];
}

/** Makes `nixDir` and fills it from the image (a throw fails the run's set-up, naming why). */
export async function copyImageNix(o: NixCopyOptions): Promise<void> {
  await mkdir(o.nixDir, { recursive: true });
  const [cmd, ...args] = nixCopyCommand(o);
  await exec(cmd!, args).catch((err: { stderr?: string; message: string }) => {
    throw new Error(`copying ${o.image}'s /nix failed: ${String(err.stderr ?? "").trim() || err.message}`);
  });
}

/** Removes the run's /nix copy (store folders are read-only: made writable first). */
export async function removeNixDir(nixDir: string): Promise<void> {
  await exec("sh", ["-c", 'chmod -R u+w "$1" 2>/dev/null; rm -rf "$1"', "sh", nixDir]).catch(() => {});
}
