import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type ParsedWorkflow, parseWorkflow } from "./parse.ts";
import type { Workflow } from "./types.ts";

function ok(text: string): Workflow {
  const parsed = parseWorkflow("w.yml", text);
  assert.deepEqual([...parsed.errors, ...parsed.engineErrors], [], "unexpected errors");
  assert.ok(parsed.workflow);
  return parsed.workflow;
}

function only(parsed: ParsedWorkflow, which: "errors" | "engineErrors") {
  const list = parsed[which];
  assert.equal(list.length, 1, JSON.stringify(parsed));
  return list[0]!;
}

describe("scalars read as their source text into string fields (spec §2)", () => {
  const table: [string, string][] = [
    ["1", "1"],
    ["1.0", "1.0"],
    ["0x1F", "0x1F"],
    ["0777", "0777"],
    ["1_000", "1_000"],
    ["true", "true"],
    ["yes", "yes"],
    ["~", ""],
    ["null", ""],
    ["", ""],
    ['"1"', "1"],
    ["'~'", "~"],
    ['"a\\tb"', "a\tb"],
    ["!!str 5", "5"],
    ["|\n    line1\n    line2", "line1\nline2\n"],
    [">-\n    folded\n    text", "folded text"],
  ];
  for (const [yaml, expected] of table) {
    it(`environment value ${JSON.stringify(yaml)} → ${JSON.stringify(expected)}`, () => {
      const wf = ok(`environment:\n  X: ${yaml}\n`);
      assert.deepEqual(wf.environment, [{ name: "X", value: expected }]);
    });
  }
  it('upstream\'s build.yml `CGO_ENABLED: 1` reads as "1"', () => {
    assert.deepEqual(ok("environment:\n  CGO_ENABLED: 1\n").environment, [
      { name: "CGO_ENABLED", value: "1" },
    ]);
  });
  it("engine, image, architecture and step fields are strings the same way", () => {
    const wf = ok("engine: 123\nimage: 1.5\narchitecture: ~\nsteps:\n  - name: 7\n    command: true\n");
    assert.equal(wf.engine, "123");
    assert.equal(wf.image, "1.5");
    assert.equal(wf.architecture, "");
    assert.deepEqual([wf.steps[0]?.name, wf.steps[0]?.command], ["7", "true"]);
  });
  it("a mapping is not a string: error with position", () => {
    const d = only(parseWorkflow("w.yml", "engine:\n  a: b\n"), "errors");
    assert.equal(d.kind, "parse error");
    assert.match(d.message, /engine: expected a string, found a mapping/);
    assert.deepEqual([d.file, d.line, d.column], ["w.yml", 2, 3]);
  });
});

describe("string-or-list fields (spec §2.1)", () => {
  const table: [string, string[]][] = [
    ["push", ["push"]],
    ['"push"', ["push"]],
    ["[push, pull_request]", ["push", "pull_request"]],
    ["\n      - push\n      - manual", ["push", "manual"]],
    ["~", []],
    ["[]", []],
    ["1", ["1"]],
    ["[1, true]", ["1", "true"]],
  ];
  for (const [yaml, expected] of table) {
    it(`event: ${JSON.stringify(yaml)} → ${JSON.stringify(expected)}`, () => {
      assert.deepEqual(ok(`when:\n  - event: ${yaml}\n`).when[0]?.event, expected);
    });
  }
  it("a sequence holding a non-string is an error", () => {
    const d = only(parseWorkflow("w.yml", "when:\n  - branch: [main, [x]]\n"), "errors");
    assert.match(d.message, /when\[0\]\.branch\[1\]: expected a string, found a sequence/);
    assert.deepEqual([d.line, d.column], [2, 20]);
  });
  it("a mapping is an error", () => {
    const d = only(parseWorkflow("w.yml", "when:\n  - tag: {a: b}\n"), "errors");
    assert.match(d.message, /when\[0\]\.tag: expected a string or a list of strings, found a mapping/);
  });
  it("absent branch and tag are empty lists; Gen2 types/paths undefined unless written", () => {
    const c = ok("when:\n  - event: push\n").when[0]!;
    assert.deepEqual([c.branch, c.tag, c.types, c.paths], [[], [], undefined, undefined]);
    const g = ok("when:\n  - event: pull_request\n    types: [opened]\n    paths: ['src/**']\n").when[0]!;
    assert.deepEqual([g.types, g.paths], [["opened"], ["src/**"]]);
  });
  it("`when` must be a list: a mapping is an error", () => {
    const d = only(parseWorkflow("w.yml", "when:\n  event: push\n"), "errors");
    assert.match(d.message, /when: expected a list of constraints, found a mapping/);
  });
  it("`when: ~` and absent `when` both give no constraints", () => {
    assert.deepEqual(ok("when: ~\n").when, []);
    assert.deepEqual(ok("engine: nixery\n").when, []);
  });
});

describe("clone (spec §2.1: skip bool, depth int, submodules bool)", () => {
  it("absent keys stay absent (defaults are applied by compile)", () => {
    assert.deepEqual(ok("engine: x\n").clone, {});
  });
  const bools: [string, boolean][] = [
    ["true", true],
    ["false", false],
    ["True", true],
    ["FALSE", false],
    ["yes", true],
    ["off", false],
    ["on", true],
    ["~", false],
  ];
  for (const [yaml, expected] of bools) {
    it(`clone.skip: ${yaml} → ${expected}`, () =>
      assert.equal(ok(`clone:\n  skip: ${yaml}\n`).clone.skip, expected));
  }
  for (const bad of ['"true"', "maybe", "1", "[true]"]) {
    it(`clone.submodules: ${bad} is an error`, () => {
      const d = only(parseWorkflow("w.yml", `clone:\n  submodules: ${bad}\n`), "errors");
      assert.match(d.message, /clone\.submodules: expected true or false/);
      assert.deepEqual([d.line, d.column], [2, 15]);
    });
  }
  const ints: [string, number][] = [
    ["0", 0],
    ["3", 3],
    ["0x10", 16],
    ["0o10", 8],
    ["~", 0],
    ["-1", -1],
  ];
  for (const [yaml, expected] of ints) {
    it(`clone.depth: ${yaml} → ${expected}`, () =>
      assert.equal(ok(`clone:\n  depth: ${yaml}\n`).clone.depth, expected));
  }
  for (const bad of ['"1"', "1.5", "deep", "99999999999999999999", "{}"]) {
    it(`clone.depth: ${bad} is an error`, () => {
      const d = only(parseWorkflow("w.yml", `clone:\n  depth: ${bad}\n`), "errors");
      assert.match(d.message, /clone\.depth: expected an integer/);
    });
  }
  it("Gen2 clone.tags is recognised and stored", () => {
    const parsed = parseWorkflow("w.yml", "clone:\n  tags: false\n");
    assert.equal(parsed.workflow?.clone.tags, false);
    assert.deepEqual(parsed.warnings, []);
  });
});

describe("duplicate keys are errors (yaml.v3)", () => {
  const cases: [string, string, number, number][] = [
    ["top level", "engine: a\nsteps: []\nengine: b\n", 3, 1],
    ["environment", "environment:\n  A: 1\n  A: 2\n", 3, 3],
    ["step", "steps:\n  - name: a\n    name: b\n", 3, 5],
    ["constraint", "when:\n  - event: push\n    event: manual\n", 3, 5],
    ["unknown top-level key", "foo: 1\nfoo: 2\nengine: x\n", 2, 1],
  ];
  for (const [name, text, line, column] of cases) {
    it(name, () => {
      const parsed = parseWorkflow("w.yml", text);
      const d = [...parsed.errors, ...parsed.engineErrors][0];
      assert.ok(d, "expected an error");
      assert.match(d.message, /already defined at line/);
      assert.deepEqual([d.line, d.column], [line, column]);
    });
  }
});

describe("unknown keys: left out of the model, reported as warnings with location", () => {
  it("top level, constraint, clone and step keys", () => {
    const parsed = parseWorkflow(
      "w.yml",
      "engine: x\ntimeout: 5\nwhen:\n  - event: push\n    if: x\nclone:\n  shallow: true\nsteps:\n  - name: a\n    run: b\n",
    );
    assert.deepEqual(parsed.errors, []);
    const found = parsed.warnings.map((w) => [w.kind, w.line, w.column, w.message]);
    assert.deepEqual(found, [
      ["unknown key", 2, 1, 'unknown key "timeout" is ignored'],
      ["unknown key", 5, 5, 'unknown key "if" in when[0] is ignored'],
      ["unknown key", 7, 3, 'unknown key "shallow" in clone is ignored'],
      ["unknown key", 10, 5, 'unknown key "run" in steps[0] is ignored'],
    ]);
    assert.equal("timeout" in parsed.workflow!, false);
  });
  it("Loom and Gen1 keys are known", () => {
    const text =
      "when: []\nengine: kubernetes\nimage: golang\narchitecture: arm64\nclone: {}\ndependencies: {}\nenvironment: {}\nsteps: []\n";
    assert.deepEqual(parseWorkflow("w.yml", text).warnings, []);
  });
  it("microvm keys are named as such under other engines, and read under microvm", () => {
    const [w] = parseWorkflow("w.yml", "engine: nixery\nservices: {}\n").warnings;
    assert.deepEqual(
      [w!.kind, w!.line, w!.column, w!.message],
      ["ignored key", 2, 1, 'key "services" belongs to the microvm engine; engine nixery ignores it'],
    );
    // The key may come before `engine`.
    assert.deepEqual(parseWorkflow("w.yml", "services: {redis: true}\nengine: microvm\n").warnings, []);
  });
});

describe("engine-only keys are separated from the knot's keys (spec §2: two parses)", () => {
  it("a bad `steps` keeps the workflow for the knot but records an engine error", () => {
    const parsed = parseWorkflow("w.yml", "engine: nixery\nsteps:\n  run: x\n");
    assert.deepEqual(parsed.errors, []);
    assert.ok(parsed.workflow);
    assert.match(only(parsed, "engineErrors").message, /steps: expected a list of steps, found a mapping/);
  });
  it("a bad `clone` drops the workflow", () => {
    const parsed = parseWorkflow("w.yml", "engine: nixery\nclone: [1]\n");
    assert.equal(parsed.workflow, undefined);
    assert.match(only(parsed, "errors").message, /clone: expected a mapping, found a sequence/);
  });
});

describe("dependencies", () => {
  it("a map keeps registry order and packages", () => {
    const wf = ok("dependencies:\n  nixpkgs: [go, gcc]\n  github:a/b: [c]\n  empty: ~\n");
    assert.deepEqual(wf.dependencies, {
      form: "map",
      registries: [
        { registry: "nixpkgs", packages: ["go", "gcc"] },
        { registry: "github:a/b", packages: ["c"] },
        { registry: "empty", packages: [] },
      ],
    });
  });
  it("a flat list is kept as such (microvm form)", () => {
    assert.deepEqual(ok("dependencies: [go, gcc]\n").dependencies, { form: "list", packages: ["go", "gcc"] });
  });
  it("a registry whose value is a scalar is an engine error", () => {
    const d = only(parseWorkflow("w.yml", "dependencies:\n  nixpkgs: go\n"), "engineErrors");
    assert.match(d.message, /dependencies\.nixpkgs: expected a list of packages/);
  });
});

describe("YAML features", () => {
  it("anchors, aliases and `<<` merges (explicit keys win)", () => {
    const wf = ok(
      "x-env: &base\n  A: 1\n  B: 2\nenvironment:\n  <<: *base\n  B: 3\nsteps:\n  - name: s\n    environment: *base\n",
    );
    assert.deepEqual(wf.environment, [
      { name: "B", value: "3" },
      { name: "A", value: "1" },
    ]);
    assert.deepEqual(wf.steps[0]?.environment, [
      { name: "A", value: "1" },
      { name: "B", value: "2" },
    ]);
  });
  it("an empty file is an empty workflow (then compile reports missing engine)", () => {
    const wf = ok("");
    assert.equal(wf.engine, "");
    assert.deepEqual(ok("# only a comment\n").steps, []);
  });
  it("a top-level sequence or scalar is an error at 1:1", () => {
    for (const text of ["- a\n", "hello\n"]) {
      const d = only(parseWorkflow("w.yml", text), "errors");
      assert.match(d.message, /the document: expected a mapping/);
      assert.deepEqual([d.line, d.column], [1, 1]);
    }
  });
  it("only the first document is read; the rest is reported", () => {
    const parsed = parseWorkflow("w.yml", "engine: a\n---\nengine: b\n");
    assert.equal(parsed.workflow?.engine, "a");
    assert.match(parsed.warnings[0]!.message, /only the first YAML document is read; 1 more ignored/);
  });
  it("non-string keys are errors with location", () => {
    const d = only(parseWorkflow("w.yml", "environment:\n  ? [a, b]\n  : c\n"), "engineErrors");
    assert.match(d.message, /mapping keys must be strings/);
    assert.deepEqual([d.line, d.column], [2, 5]);
  });
  it("variable names that cannot enter an environment are errors", () => {
    for (const text of [
      'environment:\n  "A=B": 1\n',
      'environment:\n  "": 1\n',
      "steps:\n  - environment:\n      ~: 1\n",
    ]) {
      const d = only(parseWorkflow("w.yml", text), "engineErrors");
      assert.match(d.message, /is not a valid variable name/, text);
    }
  });
  it("scalar keys read as source text", () => {
    assert.deepEqual(ok("environment:\n  1: a\n  true: b\n").environment, [
      { name: "1", value: "a" },
      { name: "true", value: "b" },
    ]);
  });
  it("syntax errors carry line and column", () => {
    const d = only(parseWorkflow("w.yml", "engine: nixery\nsteps:\n  - name: a\n   command: b\n"), "errors");
    assert.equal(d.kind, "parse error");
    assert.deepEqual([d.file, d.line], ["w.yml", 4]);
    const u = only(parseWorkflow("w.yml", 'steps:\n  - name: "unterminated\n'), "errors");
    assert.ok(u.line >= 2, `line ${u.line}`);
  });
});
