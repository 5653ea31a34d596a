/**
 * `make bench`: runs every benchmark once, in sequence, and prints their figures. Each
 * `bench/*.bench.ts` exports `main(): Promise<void>` that prints its own lines; targets are
 * printed beside the figures, never asserted (timing depends on the machine).
 * `node bench/run.ts intake-load` runs one of them (here: the knot flood and /healthz during it;
 * `LOOM_BENCH_FLOOD=<n>` sets the flood size, default 20,000).
 */
import { readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = (await readdir(here)).filter((f) => f.endsWith(".bench.ts")).sort();
for (const file of files) {
  const name = file.replace(/\.bench\.ts$/, "");
  if (only.length > 0 && !only.includes(name)) continue;
  const mod = (await import(pathToFileURL(join(here, file)).href)) as { main?: () => Promise<void> };
  if (typeof mod.main !== "function") throw new Error(`${file} does not export main()`);
  console.log(`== ${name}`);
  await mod.main();
}
