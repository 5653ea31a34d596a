import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseRunnerSpec, SpecError } from "./spec.ts";

const good = {
  version: 1,
  workspace: "/tangled/workspace",
  timeoutSeconds: 300,
  heartbeatSeconds: 10,
  steps: [
    {
      id: 0,
      name: "build",
      command: "make",
      kind: "user",
      env: [
        { name: "A", value: "1" },
        { name: "T", secret: "TOKEN" },
      ],
    },
  ],
};

describe("parseRunnerSpec", () => {
  it("accepts a valid spec", () => {
    assert.deepEqual(parseRunnerSpec(JSON.stringify(good)), good);
  });

  const bad: [string, unknown][] = [
    ["not JSON", "{"],
    ["wrong version", { ...good, version: 2 }],
    ["negative timeout", { ...good, timeoutSeconds: -1 }],
    ["unknown field", { ...good, extra: true }],
    ["env name with =", { ...good, steps: [{ ...good.steps[0], env: [{ name: "A=B", value: "x" }] }] }],
    [
      "secret key not an identifier",
      { ...good, steps: [{ ...good.steps[0], env: [{ name: "A", secret: "1x" }] }] },
    ],
    [
      "entry with both value and secret",
      { ...good, steps: [{ ...good.steps[0], env: [{ name: "A", value: "v", secret: "S" }] }] },
    ],
    ["NUL in command", { ...good, steps: [{ ...good.steps[0], command: "a\0b" }] }],
    ["bad kind", { ...good, steps: [{ ...good.steps[0], kind: "root" }] }],
    ["array root", []],
    ["null", null],
  ];
  for (const [what, input] of bad) {
    it(`rejects ${what} with a SpecError`, () => {
      const text = typeof input === "string" ? input : JSON.stringify(input);
      assert.throws(() => parseRunnerSpec(text), SpecError);
    });
  }

  it("names where the spec is wrong", () => {
    assert.throws(
      () => parseRunnerSpec(JSON.stringify({ ...good, steps: [{ ...good.steps[0], id: -1 }] })),
      /steps\.0\.id/,
    );
  });
});
