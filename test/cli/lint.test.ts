/**
 * `loom lint` as a user runs it: the real CLI on the `.tangled/workflows` of a real git
 * repository; only stdout, stderr and the exit code are looked at.
 */
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { lines, type Sandbox, sandbox, shown } from "./support.ts";

const VALID = {
  "build.yml": `when:
  - event: [push, pull_request]
    branch: [main]
engine: nixery
dependencies:
  nixpkgs: [go]
steps:
  - name: build
    command: go build ./...
`,
  "test.yml": `engine: kubernetes
image: golang:1.24
steps:
  - name: test
    command: go test ./...
    environment:
      CGO_ENABLED: 0
`,
};

const BROKEN = {
  // The flow sequence opened on line 2 is never closed: the parser stops at line 3, column 5.
  "bad.yml": "when:\n  - event: [push\n    branch: main\nengine: nixery\n",
  "dup.yml": "engine: nixery\nsteps:\n  - command: make\nengine: kubernetes\n",
  "unknown.yml": "engine: nixery\nneeds: [build]\nsteps:\n  - name: a\n    command: make\n    colour: red\n",
};

let valid: Sandbox;
let broken: Sandbox;

before(async () => {
  valid = await sandbox();
  await valid.commit(
    Object.fromEntries(Object.entries(VALID).map(([f, t]) => [`.tangled/workflows/${f}`, t])),
  );
  // lint reads the working tree: nothing needs committing.
  broken = await sandbox();
  await mkdir(join(broken.repo, ".tangled/workflows"), { recursive: true });
  for (const [f, t] of Object.entries(BROKEN)) await writeFile(join(broken.repo, ".tangled/workflows", f), t);
});
after(async () => {
  await valid.remove();
  await broken.remove();
});

describe("loom lint", { concurrency: true }, () => {
  it("a valid folder: nothing to report, exit 0", async () => {
    const r = await valid.loom(["lint"]);
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, "2 file(s), 0 error(s), 0 warning(s)\n");
  });

  it("reports every problem as file:line:col, exit 1 on errors", async () => {
    const r = await broken.loom(["lint"]);
    assert.equal(r.code, 1, shown(r));
    assert.deepEqual(lines(r.stdout), [
      "error: .tangled/workflows/bad.yml:3:5: parse error: Flow sequence in block collection must be sufficiently indented and end with a ]",
      'error: .tangled/workflows/dup.yml:4:1: parse error: the document: mapping key "engine" already defined at line 1',
      'warning: .tangled/workflows/unknown.yml:2:1: unknown key: unknown key "needs" is ignored',
      'warning: .tangled/workflows/unknown.yml:6:5: unknown key: unknown key "colour" in steps[0] is ignored',
    ]);
    assert.equal(r.stderr, "3 file(s), 2 error(s), 2 warning(s)\n");
  });

  it("DIR from elsewhere: paths relative to where the user is; --json gives the same findings", async () => {
    const r = await broken.loom(["lint", "--json", "repo"], { cwd: broken.root });
    assert.equal(r.code, 1, shown(r));
    assert.equal(r.stderr, "");
    const found = JSON.parse(r.stdout) as Record<string, unknown>[];
    assert.deepEqual(
      found.map((d) => [d.severity, `${d.file}:${d.line}:${d.column}`, d.kind]),
      [
        ["error", "repo/.tangled/workflows/bad.yml:3:5", "parse error"],
        ["error", "repo/.tangled/workflows/dup.yml:4:1", "parse error"],
        ["warning", "repo/.tangled/workflows/unknown.yml:2:1", "unknown key"],
        ["warning", "repo/.tangled/workflows/unknown.yml:6:5", "unknown key"],
      ],
    );
  });

  it("a repository without workflows: says so, exit 0", async () => {
    const r = await valid.loom(["lint", "home"], { cwd: valid.root });
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, "no workflow files in home/.tangled/workflows\n");
  });

  it("a DIR that does not exist is an error, not a folder without problems", async () => {
    const r = await valid.loom(["lint", "no-such-dir"]);
    assert.equal(r.code, 1, shown(r));
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, "loom: no-such-dir: no such directory\n");
  });

  it("a bad flag: exit 2 with the usage", async () => {
    const r = await valid.loom(["lint", "--fix"]);
    assert.equal(r.code, 2, shown(r));
    assert.equal(r.stdout, "");
    assert.ok(r.stderr.startsWith("loom: Unknown option '--fix'."), r.stderr);
    assert.ok(r.stderr.includes("\n\nusage: loom <command> [options]\n"), r.stderr);
  });
});
