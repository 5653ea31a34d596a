/**
 * Writes the SpindleSet CRD, generated from the zod schemas in src/api/v1alpha1, to
 * config/crd/loom.tangled.sh_spindlesets.yaml.
 *
 *   node scripts/generate-crd.ts           # (re)write the file
 *   node scripts/generate-crd.ts --check   # exit 1 when the committed file is stale (CI)
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { renderCrdYaml } from "../src/api/v1alpha1/render.ts";

const target = fileURLToPath(new URL("../config/crd/loom.tangled.sh_spindlesets.yaml", import.meta.url));
const wanted = renderCrdYaml();

if (process.argv.includes("--check")) {
  let current = "";
  try {
    current = readFileSync(target, "utf8");
  } catch {
    // a missing file is just another kind of stale
  }
  if (current !== wanted) {
    console.error(`${target} is out of date: run \`node scripts/generate-crd.ts\` and commit the result`);
    process.exit(1);
  }
  console.log(`${target} is up to date`);
} else {
  writeFileSync(target, wanted);
  console.log(`wrote ${target}`);
}
