import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { lintWorkflow } from "./lint.ts";

/** Every finding but "no steps" (most snippets here have none; that warning has its own test). */
const found = (text: string) =>
  lintWorkflow("w.yml", text)
    .filter((d) => d.kind !== "no steps")
    .map((d) => [d.severity, d.kind, d.line, d.column, d.message]);

describe("lint", () => {
  it("a clean kubernetes workflow has no findings", () => {
    const text =
      "when:\n  - event: push\n    branch: main\nengine: kubernetes\nimage: golang\nsteps:\n  - command: go test\n";
    assert.deepEqual(found(text), []);
  });

  it("reports unknown keys, which compile ignores, with location", () => {
    assert.deepEqual(found("engine: kubernetes\nimage: a\nneeds: [x]\n"), [
      ["warning", "unknown key", 3, 1, 'unknown key "needs" is ignored'],
    ]);
  });

  it("a typo that leaves the key it meant unset is an error with a suggestion; others warn", () => {
    assert.deepEqual(found("engine: nixery\nstep:\n  - command: x\nsteps:\n  - comand: y\n    nmae: z\n"), [
      ["warning", "unknown key", 2, 1, 'unknown key "step" is ignored; did you mean "steps"?'],
      ["error", "unknown key", 5, 5, 'unknown key "comand" in steps[0] is ignored; did you mean "command"?'],
      ["error", "unknown key", 6, 5, 'unknown key "nmae" in steps[0] is ignored; did you mean "name"?'],
    ]);
    assert.deepEqual(found("engine: nixery\nClone:\n  dpeth: 1\nsteps:\n  - command: x\n"), [
      ["error", "unknown key", 2, 1, 'unknown key "Clone" is ignored; did you mean "clone"?'],
    ]);
  });

  it("a workflow without steps is a warning", () => {
    const all = lintWorkflow("w.yml", "engine: nixery\nstep:\n  - command: x\n");
    assert.deepEqual(
      all.map((d) => [d.severity, d.kind, d.line, d.column, d.message]),
      [
        ["warning", "no steps", 1, 1, "this workflow runs nothing"],
        ["error", "unknown key", 2, 1, 'unknown key "step" is ignored; did you mean "steps"?'],
      ],
    );
    const empty = lintWorkflow("w.yml", "engine: nixery\nsteps: []\n");
    assert.deepEqual(
      empty.map((d) => [d.kind, d.line, d.column]),
      [["no steps", 2, 1]],
    );
  });

  it("reports missing engine and engines Loom does not run", () => {
    // Gen1 knots drop it; Loom runs it as engine: kubernetes, which needs an image.
    const dropped =
      "a Gen1 knot drops this workflow before any spindle sees it; Loom's Gen2 intake and `loom run` run it as engine: kubernetes";
    assert.deepEqual(found("steps: []\n"), [
      ["warning", "missing engine", 1, 1, dropped],
      [
        "error",
        "invalid value",
        1,
        1,
        'without "engine" this runs as engine: kubernetes, which requires "image"',
      ],
    ]);
    assert.deepEqual(found("image: golang:1.24\narchitecture: amd64\nsteps:\n  - command: go test\n"), [
      ["warning", "missing engine", 1, 1, dropped],
    ]);
    assert.deepEqual(found("engine: docker\n"), [
      ["error", "unknown engine", 1, 1, 'unknown engine "docker" (Loom runs kubernetes, nixery, microvm)'],
    ]);
  });

  it("checks Loom's kubernetes keys", () => {
    assert.deepEqual(found("engine: kubernetes\n"), [
      ["error", "invalid value", 1, 1, 'engine "kubernetes" requires "image"'],
    ]);
    assert.deepEqual(found("engine: kubernetes\nimage: a\narchitecture: riscv64\n"), [
      ["error", "invalid value", 3, 1, 'architecture must be amd64 or arm64, not "riscv64"'],
    ]);
  });

  it("checks nixery's dependency form and ignored image", () => {
    assert.deepEqual(found("engine: nixery\ndependencies: [go]\nimage: x\n"), [
      ["error", "invalid value", 2, 1, "engine nixery needs dependencies as a map of registry to packages"],
      [
        "warning",
        "unknown key",
        3,
        1,
        'engine nixery ignores "image"; its image comes from dependencies.nixpkgs',
      ],
    ]);
  });

  it("reports engine-key errors the knot would let through", () => {
    assert.deepEqual(found("engine: nixery\nenvironment: [A]\n"), [
      ["error", "parse error", 2, 14, "environment: expected a mapping, found a sequence"],
    ]);
  });

  it("reports clone settings that do nothing", () => {
    const f = found("engine: nixery\nclone:\n  skip: true\n  depth: 3\n");
    assert.deepEqual(f, [
      ["warning", "invalid configuration", 3, 3, "clone.depth has no effect when clone.skip is true"],
    ]);
  });

  it("reports constraints that can never match (spec §2.4 read backwards)", () => {
    const text =
      "engine: nixery\nwhen:\n  - branch: main\n  - event: push\n  - event: [pull_request, merge]\n    branch: '[x'\n";
    assert.deepEqual(found(text), [
      ["warning", "never matches", 3, 5, "when[0] has no event, so it never matches"],
      [
        "warning",
        "never matches",
        4,
        5,
        "when[1] has no branch or tag, so pushes and pull requests never match",
      ],
      ["warning", "never matches", 5, 5, 'when[2]: event "merge" is never sent (push, pull_request, manual)'],
      ["warning", "never matches", 5, 5, 'when[2]: malformed glob "[x" never matches'],
    ]);
  });

  it("checks Gen2 pull request types and path globs", () => {
    const text =
      "engine: nixery\nwhen:\n  - event: pull_request\n    branch: main\n    types: [opened, edited]\n    paths: ['{src']\n";
    assert.deepEqual(found(text), [
      ["warning", "never matches", 3, 5, 'when[0]: pull request type "edited" is never sent'],
      ["warning", "never matches", 3, 5, 'when[0]: malformed glob "{src" never matches'],
    ]);
  });

  it("a manual-only constraint needs no branch", () => {
    assert.deepEqual(found("engine: nixery\nwhen:\n  - event: manual\n"), []);
  });
});
