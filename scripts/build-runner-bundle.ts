/**
 * Builds the runner bundle: the runner as one self-contained directory that runs in any Linux
 * image with a /bin/sh — glibc, musl or busybox-only — without Node in the image. One bundle per
 * CPU architecture (linux/amd64, linux/arm64), both buildable on either machine:
 *
 *   loom-runner            POSIX sh launcher (busybox-safe)
 *   runner.mjs             the runner, bundled by esbuild (Node builtins only)
 *   bin/node               Node 24, stripped: the `node` npm package's binary for the machine's
 *                          own architecture, else `node-linux-<arch>` of the same version from
 *                          $LOOM_CACHE (hack/runner-cross.sh fetches it with npm pack)
 *   lib/<loader>           glibc's dynamic loader + every shared library Node needs (its ELF
 *                          DT_NEEDED entries, transitively): the machine's own for its
 *                          architecture, else Debian's arm64/amd64 packages unpacked in
 *                          $LOOM_CACHE/debian-<arch>/root (hack/runner-cross.sh)
 *   ARCH                   the architecture, for people and tests
 *
 * The launcher runs Node through the bundled dynamic loader with --library-path, so nothing is
 * taken from the image's /lib. An init container copies the directory into a shared volume.
 * Before that it checks that it can run the loader at all: on a node of another architecture it
 * says so ("loom-runner: cannot start: ...") instead of failing as a user's step would (126).
 * Reused when up to date (the stamp covers Node, the libraries, runner.mjs and the launcher).
 *
 * Output: dist/runner-bundle-<arch>/; dist/runner-bundle links to the machine's own one.
 * Usage: node scripts/build-runner-bundle.ts [--arch amd64|arm64|all] [outDir]
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { build } from "esbuild";
import { RUNNER_CANNOT_START, RUNNER_CANNOT_START_EXIT } from "../src/controller/build/runner-image.ts";
import { elfInfo } from "./elf.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export const ARCHES = ["amd64", "arm64"] as const;
export type BundleArch = (typeof ARCHES)[number];

/** What differs per architecture (Kubernetes' names, as in the kubernetes.io/arch label). */
export const ARCH_INFO = {
  amd64: {
    npm: "x64",
    loader: "ld-linux-x86-64.so.2",
    triplet: "x86_64-linux-gnu",
    machine: 62,
    uname: "x86_64",
  },
  arm64: {
    npm: "arm64",
    loader: "ld-linux-aarch64.so.1",
    triplet: "aarch64-linux-gnu",
    machine: 183,
    uname: "aarch64",
  },
} as const satisfies Record<
  BundleArch,
  { npm: string; loader: string; triplet: string; machine: number; uname: string }
>;

/** The architecture of the machine this runs on, in Kubernetes' words. */
export function hostArch(): BundleArch {
  if (process.arch === "x64") return "amd64";
  if (process.arch === "arm64") return "arm64";
  throw new Error(`runner bundles are built on amd64 or arm64 machines, not ${process.arch}`);
}

export function bundleDir(arch: BundleArch): string {
  return join(root, "dist", `runner-bundle-${arch}`);
}
/** The machine's own bundle (a link to bundleDir(hostArch())): the local engine runs it. */
export const DEFAULT_BUNDLE_DIR = join(root, "dist", "runner-bundle");

const cacheDir = () => process.env.LOOM_CACHE || join(homedir(), ".cache", "loom");

function launcher(arch: BundleArch): string {
  const { loader, uname } = ARCH_INFO[arch];
  return `#!/bin/sh
# loom-runner: runs the bundled Node through the bundled dynamic loader and libraries, so the
# image needs only /bin/sh. Works from wherever this directory is copied to. Bundle: linux/${arch}.
self=$0
case "$self" in */*) ;; *) self=$(command -v "$self") || self=./loom-runner ;; esac
# Follow symlinks (the launcher may be linked onto PATH); without readlink, take $0 as it is.
n=0
while [ -L "$self" ] && [ "$n" -lt 40 ]; do
  n=$((n + 1))
  link=$(readlink "$self") || break
  case "$link" in /*) self=$link ;; *) self=\${self%/*}/$link ;; esac
done
dir=\${self%/*}
# A bundle of another architecture (or a noexec volume) cannot run: say so in words the
# controller recognises, so the run fails as the runner's fault, not as a user's step (126).
machine=$(uname -m 2>/dev/null) || machine=
case "$machine" in
  "" | ${uname}${arch === "arm64" ? " | arm64" : ""}) ;;
  *)
    echo "${RUNNER_CANNOT_START} this runner bundle is for linux/${arch}, the machine is $machine" >&2
    exit ${RUNNER_CANNOT_START_EXIT}
    ;;
esac
if ! "$dir/lib/${loader}" --version >/dev/null 2>&1; then
  echo "${RUNNER_CANNOT_START} $dir/lib/${loader} does not run here (linux/${arch} bundle, machine \${machine:-unknown})" >&2
  exit ${RUNNER_CANNOT_START_EXIT}
fi
# An image's NODE_OPTIONS is meant for its own Node, not ours: park it; steps get it back.
if [ -n "\${NODE_OPTIONS+x}" ]; then
  LOOM_IMAGE_NODE_OPTIONS=$NODE_OPTIONS
  export LOOM_IMAGE_NODE_OPTIONS
  unset NODE_OPTIONS
fi
exec "$dir/lib/${loader}" --inhibit-cache --library-path "$dir/lib" "$dir/bin/node" "$dir/runner.mjs" "$@"
`;
}

/** The pinned version of the `node` devDependency (package-lock.json). */
function nodeVersion(): string {
  const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as {
    packages: Record<string, { version?: string }>;
  };
  const version = lock.packages["node_modules/node"]?.version;
  if (!version) throw new Error("package-lock.json pins no `node` package");
  return version;
}

/** Where Node and the system libraries of `arch` come from on this machine. */
function sources(arch: BundleArch): { node: string; sysroot: string } {
  if (arch === hostArch()) {
    // node_modules/.bin/node is a shim; the `node` package's bin/node is the ELF binary.
    return { node: join(root, "node_modules", "node", "bin", "node"), sysroot: "/" };
  }
  const cache = cacheDir();
  const version = nodeVersion();
  const node = join(cache, `node-linux-${ARCH_INFO[arch].npm}-${version}`, "bin", "node");
  const sysroot = join(cache, `debian-${arch}`, "root");
  if (
    !existsSync(node) ||
    !existsSync(join(sysroot, "lib", ARCH_INFO[arch].triplet, ARCH_INFO[arch].loader))
  ) {
    throw new Error(
      `the linux/${arch} bundle needs node-linux-${ARCH_INFO[arch].npm}@${version} and Debian's ${arch} ` +
        `libraries in ${cache}: run \`bash hack/runner-cross.sh ${arch}\` (make runner-bundles does)`,
    );
  }
  return { node, sysroot };
}

/** Node's shared libraries, transitively, found in the sysroot's multiarch folders: soname → path. */
function sharedLibraries(node: string, arch: BundleArch, sysroot: string): Map<string, string> {
  const { triplet, machine, loader } = ARCH_INFO[arch];
  const dirs = [`lib/${triplet}`, `usr/lib/${triplet}`, "lib", "usr/lib"].map((d) => join(sysroot, d));
  const found = new Map<string, string>();
  const check = (file: string) => {
    const info = elfInfo(readFileSync(file));
    if (info.machine !== machine)
      throw new Error(`${file} is not a linux/${arch} ELF file (e_machine ${info.machine})`);
    return info;
  };
  const queue = [...check(node).needed];
  while (queue.length > 0) {
    const soname = queue.shift()!;
    if (found.has(soname) || soname === loader) continue;
    const path = dirs.map((d) => join(d, soname)).find((p) => existsSync(p));
    if (!path) throw new Error(`${soname} (needed by Node) is in none of ${dirs.join(", ")}`);
    found.set(soname, path);
    queue.push(...check(path).needed);
  }
  // Debian keeps the loader in the multiarch folder too (/lib64 and /lib hold links to it).
  const loaderPath = dirs.map((d) => join(d, loader)).find((p) => existsSync(p));
  if (!loaderPath) throw new Error(`${loader} is in none of ${dirs.join(", ")}`);
  check(loaderPath);
  found.set(loader, loaderPath);
  return found;
}

async function bundleRunner(): Promise<string> {
  const result = await build({
    entryPoints: [join(root, "src", "runner", "main.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node24",
    minifySyntax: true,
    legalComments: "none",
    write: false,
    metafile: true,
    logLevel: "warning",
  });
  const external = Object.values(result.metafile.outputs)
    .flatMap((o) => o.imports)
    .filter((i) => i.external && !i.path.startsWith("node:"));
  if (external.length > 0) throw new Error(`bundle imports non-builtins: ${external.map((i) => i.path)}`);
  return result.outputFiles[0]!.text;
}

/** Node without its symbols (~20 MB less): the architecture's own strip, then the generic one. */
function copyNode(src: string, dest: string, arch: BundleArch): void {
  for (const strip of [`${ARCH_INFO[arch].triplet}-strip`, "strip"]) {
    try {
      execFileSync(strip, ["--strip-all", "-o", dest, src], { stdio: "ignore" });
      chmodSync(dest, 0o755);
      return;
    } catch {
      // not installed, or it cannot read this architecture
    }
  }
  // A larger but working bundle. hack/install-system-deps.sh installs binutils-<triplet>.
  console.warn(`runner bundle linux/${arch}: no strip for ${ARCH_INFO[arch].triplet}; Node left unstripped`);
  copyFileSync(src, dest);
  chmodSync(dest, 0o755);
}

export interface BundleInfo {
  arch: BundleArch;
  dir: string;
  launcher: string;
  rebuilt: boolean;
  bytes: { node: number; libs: number; runner: number; total: number };
}

export interface BuildOptions {
  arch?: BundleArch;
  /** Default: bundleDir(arch). */
  outDir?: string;
}

/** Build (or reuse) the bundle of `arch` (default: this machine's) in `outDir`. */
export async function buildRunnerBundle(options: BuildOptions = {}): Promise<BundleInfo> {
  const arch = options.arch ?? hostArch();
  const outDir = options.outDir ?? bundleDir(arch);
  const { node, sysroot } = sources(arch);
  const libs = sharedLibraries(node, arch, sysroot);
  const runnerJs = await bundleRunner();
  const script = launcher(arch);
  const fingerprint = (p: string) => {
    const st = statSync(p);
    return [p, st.size, st.mtimeMs];
  };
  const stamp = JSON.stringify({
    format: 2, // bump when the layout or the way it is made changes
    arch,
    node: fingerprint(node),
    libs: [...libs].map(([soname, path]) => [soname, ...fingerprint(path)]),
    runner: createHash("sha256").update(runnerJs).digest("hex"),
    launcher: createHash("sha256").update(script).digest("hex"),
  });
  const stampFile = join(outDir, ".stamp.json");
  const upToDate = existsSync(stampFile) && readFileSync(stampFile, "utf8") === stamp;
  if (!upToDate) {
    // Build beside the target and swap it in, so a reader never sees a half-written bundle.
    const tmp = `${outDir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(join(tmp, "bin"), { recursive: true });
    mkdirSync(join(tmp, "lib"), { recursive: true });
    copyNode(node, join(tmp, "bin", "node"), arch);
    for (const [soname, path] of libs) {
      copyFileSync(path, join(tmp, "lib", soname));
      chmodSync(join(tmp, "lib", soname), 0o755);
    }
    writeFileSync(join(tmp, "runner.mjs"), runnerJs);
    writeFileSync(join(tmp, "loom-runner"), script, { mode: 0o755 });
    writeFileSync(join(tmp, "ARCH"), `${arch}\n`);
    writeFileSync(join(tmp, ".stamp.json"), stamp);
    rmSync(outDir, { recursive: true, force: true });
    mkdirSync(dirname(outDir), { recursive: true });
    renameSync(tmp, outDir);
  }
  const size = (p: string) => statSync(join(outDir, p)).size;
  const bytes = {
    node: size("bin/node"),
    libs: [...libs.keys()].reduce((n, l) => n + size(join("lib", l)), 0),
    runner: size("runner.mjs"),
    total: 0,
  };
  bytes.total = bytes.node + bytes.libs + bytes.runner + size("loom-runner") + size("ARCH");
  return { arch, dir: outDir, launcher: join(outDir, "loom-runner"), rebuilt: !upToDate, bytes };
}

/** Points dist/runner-bundle at this machine's bundle (it was a folder before bundles per arch). */
export function linkDefaultBundle(): void {
  const target = `runner-bundle-${hostArch()}`;
  let current: string | undefined;
  try {
    current = lstatSync(DEFAULT_BUNDLE_DIR).isSymbolicLink() ? readlinkSync(DEFAULT_BUNDLE_DIR) : "";
  } catch {
    current = undefined;
  }
  if (current === target) return;
  rmSync(DEFAULT_BUNDLE_DIR, { recursive: true, force: true });
  symlinkSync(target, DEFAULT_BUNDLE_DIR);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values, positionals } = parseArgs({
    options: { arch: { type: "string", default: hostArch() } },
    allowPositionals: true,
  });
  const wanted = values.arch === "all" ? [...ARCHES] : [values.arch];
  for (const arch of wanted) {
    if (!(ARCHES as readonly string[]).includes(arch)) {
      console.error(`--arch: expected one of ${ARCHES.join(", ")} or all, got ${arch}`);
      process.exit(2);
    }
  }
  if (positionals.length > 0 && wanted.length > 1) {
    console.error("an output folder names one bundle: give --arch amd64 or --arch arm64 with it");
    process.exit(2);
  }
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  for (const arch of wanted as BundleArch[]) {
    const t0 = performance.now();
    const info = await buildRunnerBundle({
      arch,
      ...(positionals[0] !== undefined && { outDir: resolve(positionals[0]) }),
    });
    console.log(
      `runner bundle linux/${arch} ${info.rebuilt ? "built" : "up to date"}: ${info.dir} ` +
        `(${mb(info.bytes.total)}: node ${mb(info.bytes.node)}, libs ${mb(info.bytes.libs)}, ` +
        `runner.mjs ${mb(info.bytes.runner)}; ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
  }
  if (positionals.length === 0 && wanted.includes(hostArch())) linkDefaultBundle();
}
