import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Gen2TriggerMetadata, PullAction } from "../protocol/trigger-metadata.ts";
import { compileDirectory, compileGen2, compileWorkflows, formatDiagnostic } from "./compile.ts";
import { manualTrigger, prTrigger, pushTrigger } from "./testkit.ts";
import type { PipelineRecord } from "./types.ts";

const testdata = new URL("./testdata/", import.meta.url);
const push = pushTrigger("refs/heads/main");
const mainOnly = "when:\n  - event: push\n    branch: main\nengine: nixery\n";

describe("compile diagnostics (spec §2.2)", () => {
  it("a parse error drops the workflow: error with file, line, column", () => {
    const r = compileWorkflows([{ name: "bad.yml", content: "engine: [\n" }], push);
    assert.equal(r.record, undefined);
    assert.equal(r.diagnostics.length, 1);
    const d = r.diagnostics[0]!;
    assert.deepEqual([d.severity, d.kind, d.file], ["error", "parse error", "bad.yml"]);
    assert.ok(d.line >= 1 && d.column >= 1);
  });

  it("a trigger mismatch is a `workflow skipped` warning: `did not match trigger <kind>`", () => {
    const r = compileWorkflows([{ name: "a.yml", content: mainOnly }], pushTrigger("refs/heads/dev"));
    assert.equal(r.record, undefined);
    assert.deepEqual(r.diagnostics, [
      {
        severity: "warning",
        kind: "workflow skipped",
        message: "did not match trigger push",
        file: "a.yml",
        line: 1,
        column: 1,
      },
    ]);
    const pr = compileWorkflows([{ name: "a.yml", content: mainOnly }], prTrigger("main"));
    assert.equal(pr.diagnostics[0]?.message, "did not match trigger pull_request");
  });

  it("an empty engine is a `missing engine` error and drops the workflow", () => {
    for (const content of ["steps: []\n", 'engine: ""\n', "engine: ~\n", ""]) {
      const r = compileWorkflows([{ name: "e.yml", content }], push);
      assert.equal(r.record, undefined, content);
      assert.deepEqual(
        r.diagnostics.map((d) => [d.severity, d.kind, d.message]),
        [["error", "missing engine", "missing engine"]],
      );
    }
  });

  it("clone.skip with submodules or depth > 0 warns `invalid configuration` but compiles", () => {
    const cases: [string, number][] = [
      ["clone: {skip: true, submodules: true}", 1],
      ["clone: {skip: true, depth: 2}", 1],
      ["clone: {skip: true, depth: 3, submodules: true}", 2],
      ["clone: {skip: true, depth: 0, submodules: false}", 0],
      ["clone: {skip: false, depth: 3, submodules: true}", 0],
    ];
    for (const [clone, warnings] of cases) {
      const r = compileWorkflows([{ name: "c.yml", content: `engine: nixery\n${clone}\n` }], push);
      assert.equal(r.record?.workflows.length, 1, clone);
      const found = r.diagnostics.filter((d) => d.kind === "invalid configuration");
      assert.equal(found.length, warnings, clone);
      for (const d of found) assert.equal(d.severity, "warning");
    }
  });

  it("no surviving workflow means no record (no pipeline event)", () => {
    const r = compileWorkflows(
      [
        { name: "a.yml", content: mainOnly },
        { name: "b.yml", content: "steps: []\n" },
      ],
      pushTrigger("refs/heads/other"),
    );
    assert.equal(r.record, undefined);
    assert.equal(r.diagnostics.length, 2);
    assert.equal(compileWorkflows([], push).record, undefined);
  });

  it("errors in engine-only keys do not stop the knot (the engine reports them at run time)", () => {
    const r = compileWorkflows([{ name: "s.yml", content: "engine: nixery\nsteps: {a: b}\n" }], push);
    assert.equal(r.record?.workflows.length, 1);
    assert.deepEqual(r.diagnostics, []);
  });

  it("unknown keys and a workflow without steps are warnings: the knot still emits the workflow", () => {
    const r = compileWorkflows([{ name: "u.yml", content: "engine: nixery\nstep:\n  - command: x\n" }], push);
    assert.equal(r.record?.workflows.length, 1);
    assert.deepEqual(
      r.diagnostics.map((d) => [d.severity, d.kind, d.line, d.column, d.message, d.suggestion]),
      [
        ["warning", "unknown key", 2, 1, 'unknown key "step" is ignored; did you mean "steps"?', "steps"],
        ["warning", "no steps", 1, 1, "this workflow runs nothing", undefined],
      ],
    );
  });

  it("a workflow without engine: dropped as the knot does, kubernetes where Loom compiles itself", () => {
    const files = [
      {
        name: "go.yml",
        content: "image: golang:1.24\narchitecture: amd64\nsteps:\n  - command: go version\n",
      },
    ];
    const knot = compileWorkflows(files, push);
    assert.equal(knot.record, undefined);
    assert.deepEqual(
      knot.diagnostics.map((d) => d.kind),
      ["missing engine"],
    );
    for (const opts of [{ gen2: true }, { defaultEngine: "kubernetes" }]) {
      const loom = compileWorkflows(files, push, opts);
      assert.deepEqual(loom.diagnostics, []);
      assert.deepEqual(
        loom.record?.workflows.map((w) => [w.name, w.engine]),
        [["go.yml", "kubernetes"]],
      );
    }
  });

  it("formats diagnostics as one line", () => {
    const r = compileWorkflows([{ name: "e.yml", content: "steps: []\n" }], push);
    assert.equal(formatDiagnostic(r.diagnostics[0]!), "error: e.yml:1:1: missing engine");
    const s = compileWorkflows([{ name: "a.yml", content: mainOnly }], manualTrigger()).record;
    assert.ok(s);
  });
});

describe("the pipeline record (spec §1.4, §1.5)", () => {
  it("workflows are in file-name order, named by file name, with the raw text", () => {
    const files = [
      { name: "b.yml", content: "engine: nixery\n" },
      { name: "a.yaml", content: "engine: kubernetes\nimage: alpine\n" },
      { name: "Z", content: "engine: nixery\n" },
    ];
    const r = compileWorkflows(files, push);
    assert.deepEqual(
      r.record?.workflows.map((w) => [w.name, w.engine, w.raw]),
      [
        ["Z", "nixery", "engine: nixery\n"],
        ["a.yaml", "kubernetes", "engine: kubernetes\nimage: alpine\n"],
        ["b.yml", "nixery", "engine: nixery\n"],
      ],
    );
  });

  it("clone is always present with Gen1 defaults; depth is the YAML value or 0", () => {
    const r = compileWorkflows(
      [
        { name: "a.yml", content: "engine: nixery\n" },
        { name: "b.yml", content: "engine: nixery\nclone:\n  depth: 5\n  submodules: yes\n" },
      ],
      push,
    );
    assert.deepEqual(
      r.record?.workflows.map((w) => w.clone),
      [
        { depth: 0, skip: false, submodules: false },
        { depth: 5, skip: false, submodules: true },
      ],
    );
  });

  for (const kind of ["push", "pull_request"]) {
    it(`the ${kind} envelope example: compiling its raw YAML reproduces the record byte for byte`, async () => {
      const envelope = JSON.parse(
        await readFile(new URL(`knot-stream/pipeline-${kind}.envelope.json`, testdata), "utf8"),
      );
      const expected = envelope.event as PipelineRecord;
      const files = expected.workflows.map((w) => ({ name: w.name, content: w.raw }));
      const r = compileWorkflows(files, expected.triggerMetadata);
      assert.deepEqual(r.diagnostics, []);
      // JSON text equality also checks the wire's key order.
      assert.equal(JSON.stringify(r.record), JSON.stringify(expected));
    });
  }

  it("the wire example is the push envelope on one line", async () => {
    const wire = (await readFile(new URL("knot-stream/pipeline-push.wire.txt", testdata), "utf8")).trim();
    const envelope = JSON.parse(wire);
    const r = compileWorkflows(
      envelope.event.workflows.map((w: { name: string; raw: string }) => ({ name: w.name, content: w.raw })),
      { ...envelope.event.triggerMetadata, repo: { ...envelope.event.triggerMetadata.repo } },
    );
    assert.equal(JSON.stringify(r.record), JSON.stringify(envelope.event));
  });
});

describe("compileDirectory: `.tangled/workflows/*` (spec §1.4)", () => {
  let repo = "";
  before(async () => {
    repo = await mkdtemp(join(tmpdir(), "loom-wf-"));
    const dir = join(repo, ".tangled", "workflows");
    await mkdir(join(dir, "nested"), { recursive: true });
    await writeFile(join(dir, "build.yml"), "engine: nixery\n");
    await writeFile(join(dir, "README.md"), "not: [yaml\n");
    await writeFile(join(dir, "nested", "inner.yml"), "engine: nixery\n");
    await writeFile(join(repo, "secret.txt"), "engine: leaked\n");
    await symlink(join(repo, "secret.txt"), join(dir, "link.yml"));
    await writeFile(join(dir, "huge.yml"), Buffer.alloc(600 * 1024, 0x61));
  });
  after(async () => {
    await rm(repo, { recursive: true, force: true });
  });

  it("parses every regular file directly in the folder, whatever its extension", async () => {
    const r = await compileDirectory(repo, push);
    assert.deepEqual(
      r.record?.workflows.map((w) => w.name),
      ["build.yml"],
    );
    const byFile = r.diagnostics.map((d) => [d.file, d.kind]);
    assert.deepEqual(byFile, [
      ["README.md", "parse error"],
      ["build.yml", "no steps"],
      ["huge.yml", "parse error"],
    ]);
  });

  it("a repo without the folder compiles to nothing, without error", async () => {
    const empty = await mkdtemp(join(tmpdir(), "loom-wf-empty-"));
    const r = await compileDirectory(empty, push);
    assert.deepEqual(r, { record: undefined, diagnostics: [] });
    await rm(empty, { recursive: true });
  });
});

describe("Gen2 compile option", () => {
  it("records clone.tags and defaults submodules and tags to true", () => {
    const files = [
      { name: "a.yml", content: "engine: nixery\n" },
      { name: "b.yml", content: "engine: nixery\nclone:\n  submodules: false\n  tags: false\n" },
    ];
    const r = compileWorkflows(files, push, { gen2: true });
    assert.deepEqual(
      r.record?.workflows.map((w) => w.clone),
      [
        { depth: 0, skip: false, submodules: true, tags: true },
        { depth: 0, skip: false, submodules: false, tags: false },
      ],
    );
  });
  it("passes changed files to matching", () => {
    const content = "when:\n  - event: push\n    branch: main\n    paths: ['docs/**']\nengine: nixery\n";
    assert.equal(
      compileWorkflows([{ name: "d.yml", content }], push, { gen2: true, changedFiles: ["src/x"] }).record,
      undefined,
    );
    assert.ok(
      compileWorkflows([{ name: "d.yml", content }], push, { gen2: true, changedFiles: ["docs/x.md"] })
        .record,
    );
  });
});

// ---- compileGen2 ----

const SHA = "2".repeat(40);
const repo = {
  knot: "knot.example.com",
  did: "did:plc:owner",
  repo: "3kabc",
  repoDid: "did:plc:repo",
  defaultBranch: "main",
};
const gen2Push = (ref = "refs/heads/main"): Gen2TriggerMetadata => ({
  kind: "push",
  repo,
  push: { ref, oldSha: "1".repeat(40), newSha: SHA },
});
const pr = (action?: PullAction): Gen2TriggerMetadata => ({
  kind: "pull_request",
  repo,
  pullRequest: { sourceBranch: "feat", targetBranch: "main", sourceSha: SHA, ...(action && { action }) },
});

const file = (name: string, body: string) => ({
  name,
  content: `engine: nixery\n${body}steps:\n  - name: t\n    command: "true"\n`,
});
const names = (r: ReturnType<typeof compileGen2>) => r.record?.workflows.map((w) => w.name) ?? [];

describe("compileGen2", () => {
  it("PR types default to opened, reopened, synchronize; a missing action is opened", () => {
    const files = [
      file("default.yml", "when:\n  - event: pull_request\n    branch: main\n"),
      file("closed.yml", "when:\n  - event: pull_request\n    branch: main\n    types: [closed, merged]\n"),
    ];
    assert.deepEqual(names(compileGen2(files, pr())), ["default.yml"]);
    assert.deepEqual(names(compileGen2(files, pr("synchronize"))), ["default.yml"]);
    assert.deepEqual(names(compileGen2(files, pr("reopened"))), ["default.yml"]);
    assert.deepEqual(names(compileGen2(files, pr("merged"))), ["closed.yml"]);
    const none = compileGen2([files[0] as (typeof files)[0]], pr("closed"));
    assert.equal(none.record, undefined, "no matching workflow → no pipeline");
    assert.equal(none.diagnostics[0]?.kind, "workflow skipped");
  });

  it("paths glob against the push's changed files; unknown changed files do not filter", () => {
    const files = [
      file("docs.yml", "when:\n  - event: push\n    branch: main\n    paths: ['docs/**']\n"),
      file("src.yml", "when:\n  - event: push\n    branch: main\n    paths: ['src/**/*.ts']\n"),
      file("all.yml", "when:\n  - event: push\n    branch: main\n"),
    ];
    assert.deepEqual(names(compileGen2(files, gen2Push(), { changedFiles: ["src/a/b.ts"] })), [
      "all.yml",
      "src.yml",
    ]);
    assert.deepEqual(names(compileGen2(files, gen2Push(), { changedFiles: ["docs/x.md", "README"] })), [
      "all.yml",
      "docs.yml",
    ]);
    assert.deepEqual(names(compileGen2(files, gen2Push(), { changedFiles: [] })), ["all.yml"]);
    assert.deepEqual(names(compileGen2(files, gen2Push())), ["all.yml", "docs.yml", "src.yml"]);
  });

  it("Gen2 clone defaults: tags and submodules true when omitted; explicit values kept", () => {
    const r = compileGen2(
      [file("a.yml", ""), file("b.yml", "clone:\n  tags: false\n  submodules: false\n  depth: 5\n")],
      gen2Push(),
    );
    assert.deepEqual(
      r.record?.workflows.map((w) => [w.name, w.clone]),
      [
        ["a.yml", { depth: 0, skip: false, submodules: true, tags: true }],
        ["b.yml", { depth: 5, skip: false, submodules: false, tags: false }],
      ],
    );
  });

  it("keeps the Gen2 trigger metadata (repoDid, no action) in the record", () => {
    const trigger = pr();
    const r = compileGen2([file("a.yml", "")], trigger);
    assert.equal(r.record?.$type, "");
    assert.deepEqual(r.record?.triggerMetadata, trigger);
    assert.equal(r.record?.workflows[0]?.raw.startsWith("engine: nixery\n"), true);
  });

  it("manual triggers run every workflow; parse errors drop files; no engine means kubernetes (issue 14)", () => {
    const manual: Gen2TriggerMetadata = { kind: "manual", repo, manual: { sha: SHA } };
    const r = compileGen2(
      [
        file("a.yml", "when:\n  - event: push\n    branch: nope\n"),
        { name: "broken.yml", content: "engine: [unclosed" },
        { name: "noengine.yml", content: "steps: []\n" },
      ],
      manual,
    );
    assert.deepEqual(names(r), ["a.yml", "noengine.yml"]);
    assert.equal(r.record?.workflows[1]?.engine, "kubernetes");
    assert.deepEqual(
      r.diagnostics.map((d) => [d.file, d.severity, d.kind]),
      [
        ["broken.yml", "error", "parse error"],
        ["noengine.yml", "warning", "no steps"],
      ],
    );
  });
});
