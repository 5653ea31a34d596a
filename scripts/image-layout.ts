/**
 * The files of Loom's two images, laid out in a folder. The Dockerfile runs this script and
 * copies the folder into the image, and the image tests (test/image/) run the same script and
 * start Loom from the folder: no container engine is needed to know what an image holds.
 *
 *   server <out>         <out>/app: package.json, production node_modules, dist/ without any
 *                        runner bundle (the server never runs one: workflow pods get it from the
 *                        runner image). The image runs `node --optimize-for-size /app/dist/cli/main.js`.
 *   runner <arch> <out>  <out>/loom-runner: the linux/<arch> runner bundle. The runner image is
 *                        busybox (install-runner needs sh and cp) plus this folder.
 *
 * `server` needs `npm run build` (or `tsc -p tsconfig.build.json`) first; it installs the
 * production dependencies from package-lock.json with `npm ci --omit=dev` (from npm's cache when
 * warm). `runner` builds the bundle (scripts/build-runner-bundle.ts) straight into the folder.
 *
 * Usage: node scripts/image-layout.ts server <out> | runner <amd64|arm64> <out>
 */
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ARCHES, type BundleArch, buildRunnerBundle } from "./build-runner-bundle.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Where each image's files go, as the Dockerfile copies them (image path → path under <out>). */
export const IMAGE_PATHS = { server: "/app", runnerBundle: "/loom-runner" } as const;

/** Top-level entries of dist/ that are runner bundles: never part of the server image. */
export const isRunnerBundle = (name: string) => /^runner-bundle(-|$)/.test(name);

export function layOutServer(out: string): string {
  const app = join(out, IMAGE_PATHS.server);
  const dist = join(root, "dist");
  if (!existsSync(join(dist, "cli", "main.js")))
    throw new Error("no dist/cli/main.js: run `npm run build` first");
  rmSync(app, { recursive: true, force: true });
  mkdirSync(app, { recursive: true });
  for (const file of ["package.json", "package-lock.json"]) cpSync(join(root, file), join(app, file));
  // Production dependencies only; no lifecycle scripts (none of them has a native part).
  execFileSync(
    "npm",
    ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"],
    {
      cwd: app,
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  cpSync(dist, join(app, "dist"), {
    recursive: true,
    filter: (src) => {
      const rel = relative(dist, src);
      return !isRunnerBundle(rel.split("/")[0] ?? "");
    },
  });
  return app;
}

export async function layOutRunner(arch: BundleArch, out: string): Promise<string> {
  const dir = join(out, IMAGE_PATHS.runnerBundle);
  await buildRunnerBundle({ arch, outDir: dir });
  return dir;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const [what, ...rest] = process.argv.slice(2);
  const usage = "usage: node scripts/image-layout.ts server <out> | runner <amd64|arm64> <out>";
  if (what === "server" && rest.length === 1) {
    console.log(`server image files: ${layOutServer(resolve(rest[0]!))}`);
  } else if (what === "runner" && rest.length === 2 && (ARCHES as readonly string[]).includes(rest[0]!)) {
    console.log(`runner image files: ${await layOutRunner(rest[0] as BundleArch, resolve(rest[1]!))}`);
  } else {
    console.error(usage);
    process.exit(2);
  }
}
