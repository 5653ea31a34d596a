/**
 * `loom` started by a Node older than 24 says so in one sentence and exits 1, instead of failing
 * every workflow later. The entry file is compiled as `npm run build` compiles it and started
 * with an older Node of this machine (the system's Node 20 here); without one the test skips.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import ts from "typescript";
import { LOOM_MAIN } from "./support.ts";

/** The first `node` on PATH or in the usual places whose major version is below 24. */
function olderNode(): { path: string; version: string } | undefined {
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/local/bin", "/usr/bin", "/bin"];
  for (const dir of dirs) {
    const path = join(dir, "node");
    if (!dir.startsWith("/") || !existsSync(path)) continue;
    try {
      const version = execFileSync(path, ["--version"], { encoding: "utf8" }).trim();
      if (Number(version.replace(/^v/, "").split(".")[0]) < 24) return { path, version };
    } catch {
      // Not runnable: try the next one.
    }
  }
  return undefined;
}

const old = olderNode();

test("an older Node is refused at start with one sentence", {
  skip: old === undefined && "no Node older than 24 on this machine",
}, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "loom-old-node-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const config = JSON.parse(await readFile(new URL("../../tsconfig.json", import.meta.url), "utf8")) as {
    compilerOptions: Record<string, unknown>;
  };
  const { options } = ts.convertCompilerOptionsFromJson({ ...config.compilerOptions, noEmit: false }, ".");
  const source = await readFile(LOOM_MAIN, "utf8");
  // As in dist/: an ES module (package.json says "type": "module"), `./x.ts` imports as `./x.js`.
  const js = ts.transpileModule(source, {
    compilerOptions: { ...options, module: ts.ModuleKind.ESNext },
    fileName: "main.ts",
  }).outputText;
  await writeFile(join(dir, "package.json"), '{"type":"module"}\n');
  await writeFile(join(dir, "main.js"), js);
  const r = spawnSync(old!.path, [join(dir, "main.js"), "run"], { encoding: "utf8" });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stdout, "");
  assert.equal(
    r.stderr,
    `loom: Loom needs Node.js 24 or newer, but ${old!.path} is Node.js ${old!.version}; run it with Node 24 (\`make build\` installs one in node_modules/.bin, used by \`npx loom\`).\n`,
  );
});
