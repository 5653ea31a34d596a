/**
 * `loom run` runs steps on this host, not in the workflow's image: what that changes is said
 * before each workflow runs (image, architecture, nixery and microvm dependencies missing from
 * PATH, microvm services and virtualisation — the latter in containers too), and
 * the steps' PATH is the user's without Loom's own `node_modules/.bin` or Node.
 */
import { accessSync, constants, realpathSync, statSync } from "node:fs";
import { join, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { Architecture, RunPlan, Workflow } from "../workflow/index.ts";
import { devShellPackages } from "../workflow/microvm.ts";

/** Loom's install folder (the package root): `src/cli/` or `dist/cli/` sit two levels below. */
export const LOOM_ROOT = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");

function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

function inside(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith(sep) ? dir : `${dir}${sep}`);
}

/**
 * The user's PATH without what Loom's launch put there: every entry inside Loom's own folder
 * (its `node_modules/.bin`, the npm `node` package's bin), npm's script helpers, and any folder
 * whose `node` is the Node running Loom when that Node comes from an npm package. A Node the
 * user installed (say /usr/bin/node) stays: it is theirs.
 */
export function stepPath(
  path: string,
  loom: { root: string; execPath: string } = { root: LOOM_ROOT, execPath: process.execPath },
): string {
  const root = real(loom.root);
  const node = real(loom.execPath);
  const npmNode = node.includes(`${sep}node_modules${sep}`);
  const kept = path.split(":").filter((entry) => {
    if (entry === "") return false;
    const dir = real(entry);
    if (inside(dir, root) || inside(entry, loom.root)) return false;
    if (/[/\\]@npmcli[/\\]run-script[/\\]/.test(entry)) return false;
    if (npmNode && real(join(entry, "node")) === node) return false;
    return true;
  });
  return kept.join(":");
}

/** This machine's architecture in the workflow's words, or undefined for one Loom has no name for. */
export function hostArchitecture(arch: string = process.arch): Architecture | undefined {
  if (arch === "x64") return "amd64";
  if (arch === "arm64") return "arm64";
  return undefined;
}

/** The command a nixpkgs package is known by, where it differs from the package's name. */
const COMMANDS: Record<string, string> = {
  coreutils: "ls",
  findutils: "find",
  gnumake: "make",
  gnused: "sed",
  gnugrep: "grep",
  gnutar: "tar",
  gawk: "awk",
  ripgrep: "rg",
  openjdk: "java",
  jdk: "java",
  nodejs: "node",
  python3: "python3",
  python: "python",
  rustup: "rustup",
  golangci_lint: "golangci-lint",
  "golangci-lint": "golangci-lint",
};

/** `nodejs_22` → node, `python312` → python3, `go_1_23` → go, `pkgs.foo` → foo. */
export function commandOf(pkg: string): string {
  const name = pkg.split(".").at(-1) ?? pkg;
  if (COMMANDS[name] !== undefined) return COMMANDS[name];
  const base = name.replace(/(_\d+)+$/, "");
  if (COMMANDS[base] !== undefined) return COMMANDS[base];
  if (/^python3\d+$/.test(name)) return "python3";
  return base;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export function onPath(command: string, path: string): boolean {
  return path.split(":").some((dir) => dir.startsWith("/") && isExecutable(join(dir, command)));
}

/**
 * What running `plan` on this host leaves out, as one sentence; undefined when nothing is.
 * `path` is the PATH the runner gets (a nixery step's own PATH, when it sets one, wins).
 */
export function hostCaveats(
  plan: RunPlan,
  workflow: Pick<Workflow, "dependencies"> & Partial<Pick<Workflow, "microvm">>,
  path: string,
  host: Architecture | undefined = hostArchitecture(),
): string | undefined {
  const parts: string[] = [];
  if (plan.engine === "kubernetes") parts.push(`image ${plan.image} is not used`);
  if (plan.architecture !== host) {
    parts.push(`architecture ${plan.architecture} is not this host's (${host ?? process.arch})`);
  }
  if (plan.engine === "nixery" && workflow.dependencies.form === "map") {
    const user = plan.steps.find((s) => s.kind === "user");
    const stepPathEntry = user?.env.findLast((e) => e.name === "PATH");
    const seen = stepPathEntry !== undefined && "value" in stepPathEntry ? stepPathEntry.value : path;
    const missing = workflow.dependencies.registries
      .flatMap((r) => r.packages)
      .filter((pkg) => !onPath(commandOf(pkg), seen));
    if (missing.length > 0) parts.push(`dependencies not on PATH: ${missing.join(", ")}`);
  }
  if (plan.engine === "microvm") {
    parts.push(`image ${plan.microvm?.image ?? plan.image} is not used`);
    const packages = devShellPackages(
      workflow.dependencies.form === "list" ? workflow.dependencies.packages : [],
      workflow.microvm?.virtualisation ?? [],
    );
    if (packages.length > 0 && !onPath("nix", path)) {
      const missing = packages.filter((dep) => !onPath(commandOf(dep.slice(dep.indexOf("#") + 1)), path));
      if (missing.length > 0)
        parts.push(`dependencies not on PATH (and no nix for the dev shell): ${missing.join(", ")}`);
    }
    parts.push(...microvmCaveats(plan));
  }
  if (parts.length === 0) return undefined;
  return `${plan.workflowName} runs on this host, not in a container: ${parts.join("; ")}`;
}

/** What `loom run` leaves out of a microvm workflow wherever it runs it: services, virtualisation. */
export function microvmCaveats(plan: Pick<RunPlan, "microvm">): string[] {
  const parts: string[] = [];
  const { services = [], virtualisation = [] } = plan.microvm ?? {};
  if (services.length > 0) parts.push(`services not started: ${services.join(", ")}`);
  if (virtualisation.length > 0) parts.push(`virtualisation not provided: ${virtualisation.join(", ")}`);
  return parts;
}

/** What running a microvm `plan` in `cli`'s containers leaves out, as one sentence; undefined when nothing is. */
export function containerCaveats(
  plan: Pick<RunPlan, "microvm" | "workflowName">,
  cli: string,
): string | undefined {
  const parts = microvmCaveats(plan);
  return parts.length === 0 ? undefined : `${plan.workflowName} runs in ${cli}: ${parts.join("; ")}`;
}
