import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { describeWorkflowDefinition, workflowDefinitionHash } from "./fingerprint.ts";

// Expected values computed outside Node with `printf '<bytes>' | sha256sum`.
describe("workflowDefinitionHash", () => {
  it("hashes name, 0x00, 8-byte LE length, content, sorted by name", () => {
    const files = [
      { name: "b.yml", content: "x" },
      { name: "a.yml", content: new Uint8Array() },
    ];
    const expected = "sha256:450a4cb4bd0b599139ec0170dcc48d5098a86297058a1d90420dda8cfeddd50e";
    assert.equal(workflowDefinitionHash(files), expected);
    assert.equal(workflowDefinitionHash([...files].reverse()), expected, "input order does not matter");
  });

  it("sorts by UTF-8 bytes (Go), not UTF-16 units", () => {
    // U+FF21 is EF BC A1 in UTF-8, before U+1F600 (F0 9F 98 80); in UTF-16 it sorts after.
    const files = [
      { name: "\u{1F600}", content: "" },
      { name: "\uFF21", content: "" },
    ];
    assert.equal(
      workflowDefinitionHash(files),
      "sha256:a62a4015b2a4c0821c4656c23538a0affe7f5afccc51fe08be20ccba894bd5c1",
    );
    assert.deepEqual(describeWorkflowDefinition(files).workflows, ["\uFF21", "\u{1F600}"]);
  });

  it("hashes no files as the empty input", () => {
    assert.deepEqual(describeWorkflowDefinition([]), {
      derived: true,
      hash: "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      workflows: [],
    });
  });

  it("changes when a name moves bytes between name and content", () => {
    const a = workflowDefinitionHash([{ name: "ab", content: "c" }]);
    const b = workflowDefinitionHash([{ name: "a", content: "bc" }]);
    assert.notEqual(a, b);
  });
});
