/**
 * Builds dist/runner-bundle/: the runner as one self-contained directory that runs in any
 * x86-64 Linux image with a /bin/sh — glibc, musl or busybox-only — without Node in the image.
 *
 *   loom-runner            POSIX sh launcher (busybox-safe)
 *   runner.mjs             the runner, bundled by esbuild (Node builtins only)
 *   bin/node               Node 24 (from the `node` npm package), stripped
 *   lib/ld-linux-x86-64.so.2 + every shared library `ldd` reports for it
 *
 * The launcher runs Node through the bundled dynamic loader with --library-path, so nothing is
 * taken from the image's /lib. An init container copies the directory into a shared volume.
 * x86-64 only for now. Reused when up to date (the Node binary and runner.mjs unchanged).
 *
 * Usage: node scripts/build-runner-bundle.ts [outDir]
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const DEFAULT_BUNDLE_DIR = join(root, "dist", "runner-bundle");
const LOADER = "ld-linux-x86-64.so.2";

const LAUNCHER = `#!/bin/sh
# loom-runner: runs the bundled Node through the bundled dynamic loader and libraries, so the
# image needs only /bin/sh. Works from wherever this directory is copied to.
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
# An image's NODE_OPTIONS is meant for its own Node, not ours: park it; steps get it back.
if [ -n "\${NODE_OPTIONS+x}" ]; then
  LOOM_IMAGE_NODE_OPTIONS=$NODE_OPTIONS
  export LOOM_IMAGE_NODE_OPTIONS
  unset NODE_OPTIONS
fi
exec "$dir/lib/${LOADER}" --inhibit-cache --library-path "$dir/lib" "$dir/bin/node" "$dir/runner.mjs" "$@"
`;

/** The Node 24 ELF binary shipped by the `node` npm package (node_modules/.bin/node is a shim). */
function nodeBinary(): string {
  const require = createRequire(join(root, "package.json"));
  const bin = join(dirname(require.resolve("node/package.json")), "bin", "node");
  const head = readFileSync(bin).subarray(0, 4);
  if (!head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) throw new Error(`${bin} is not an ELF binary`);
  return bin;
}

/** Shared libraries of an ELF file, from `ldd`: [soname, path] plus the loader. */
function sharedLibraries(elf: string): { libs: [string, string][]; loader: string } {
  const out = execFileSync("ldd", [elf], { encoding: "utf8" });
  const libs: [string, string][] = [];
  let loader: string | undefined;
  for (const line of out.split("\n")) {
    const arrow = /^\s*(\S+) => (\/\S+) \(0x[0-9a-f]+\)$/.exec(line);
    if (arrow) {
      libs.push([arrow[1]!, arrow[2]!]);
      continue;
    }
    const bare = /^\s*(\/\S+) \(0x[0-9a-f]+\)$/.exec(line);
    if (bare && basename(bare[1]!) === LOADER) loader = bare[1]!;
  }
  if (loader === undefined) throw new Error(`ldd ${elf}: no ${LOADER} (only x86-64 glibc Node is supported)`);
  return { libs, loader };
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

function copyNode(src: string, dest: string): void {
  try {
    execFileSync("strip", ["--strip-all", "-o", dest, src], { stdio: "ignore" });
  } catch {
    copyFileSync(src, dest); // no binutils: a larger but working bundle
  }
  chmodSync(dest, 0o755);
}

export interface BundleInfo {
  dir: string;
  launcher: string;
  rebuilt: boolean;
  bytes: { node: number; libs: number; runner: number };
}

/** Build (or reuse) the bundle in `outDir`. */
export async function buildRunnerBundle(outDir: string = DEFAULT_BUNDLE_DIR): Promise<BundleInfo> {
  const node = nodeBinary();
  const st = statSync(node);
  const runnerJs = await bundleRunner();
  const stamp = JSON.stringify({
    node,
    size: st.size,
    mtimeMs: st.mtimeMs,
    runner: createHash("sha256").update(runnerJs).digest("hex"),
    launcher: createHash("sha256").update(LAUNCHER).digest("hex"),
  });
  const stampFile = join(outDir, ".stamp.json");
  const upToDate = existsSync(stampFile) && readFileSync(stampFile, "utf8") === stamp;
  if (!upToDate) {
    // Build beside the target and swap it in, so a reader never sees a half-written bundle.
    const tmp = `${outDir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(join(tmp, "bin"), { recursive: true });
    mkdirSync(join(tmp, "lib"), { recursive: true });
    copyNode(node, join(tmp, "bin", "node"));
    const { libs, loader } = sharedLibraries(node);
    copyFileSync(loader, join(tmp, "lib", LOADER));
    chmodSync(join(tmp, "lib", LOADER), 0o755);
    for (const [soname, path] of libs) copyFileSync(path, join(tmp, "lib", soname));
    writeFileSync(join(tmp, "runner.mjs"), runnerJs);
    writeFileSync(join(tmp, "loom-runner"), LAUNCHER, { mode: 0o755 });
    writeFileSync(join(tmp, ".stamp.json"), stamp);
    rmSync(outDir, { recursive: true, force: true });
    mkdirSync(dirname(outDir), { recursive: true });
    renameSync(tmp, outDir);
  }
  const size = (p: string) => statSync(join(outDir, p)).size;
  const libNames = [LOADER, ...sharedLibraries(node).libs.map(([s]) => s)];
  return {
    dir: outDir,
    launcher: join(outDir, "loom-runner"),
    rebuilt: !upToDate,
    bytes: {
      node: size("bin/node"),
      libs: libNames.reduce((n, l) => n + size(join("lib", l)), 0),
      runner: size("runner.mjs"),
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const info = await buildRunnerBundle(process.argv[2] ? resolve(process.argv[2]) : DEFAULT_BUNDLE_DIR);
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  console.log(
    `runner bundle ${info.rebuilt ? "built" : "up to date"}: ${info.dir} ` +
      `(node ${mb(info.bytes.node)}, libs ${mb(info.bytes.libs)}, runner.mjs ${mb(info.bytes.runner)})`,
  );
}
