import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { describeSecretValueProblem, MIN_SECRET_CHARS, secretValueProblem } from "./secret-value.ts";

describe("secretValueProblem: what a secret value may be", () => {
  it("accepts four characters or more", () => {
    for (const v of [
      "abcd",
      "hunter2",
      "é😀ab",
      "-----BEGIN KEY-----\nAAAA\n-----END KEY-----\n",
      "a b\tc",
    ]) {
      assert.equal(secretValueProblem(v), undefined, JSON.stringify(v));
    }
  });
  it("refuses a NUL byte anywhere", () => {
    for (const v of ["\0", "long-enough\0", "\0long-enough"]) assert.equal(secretValueProblem(v), "nul");
  });
  it("refuses fewer than four characters, trailing line breaks not counted, code points counted", () => {
    assert.equal(MIN_SECRET_CHARS, 4);
    for (const v of ["", "a", "abc", "abc\n", "abc\r\n\n", "😀😀😀", "\n\n\n\n"]) {
      assert.equal(secretValueProblem(v), "short", JSON.stringify(v));
    }
  });
  it("refuses values made only of whitespace", () => {
    for (const v of ["    ", "\t\t\t\t", "  \n  \n", " \r\n \r\n\n", "\u00a0\u2003\u3000 "]) {
      assert.equal(secretValueProblem(v), "blank", JSON.stringify(v));
    }
    assert.equal(secretValueProblem("  x  "), undefined);
    assert.match(describeSecretValueProblem("blank"), /^must not be only whitespace/);
  });
  it("describes each problem without the value", () => {
    assert.equal(describeSecretValueProblem("nul"), "must not contain a NUL byte");
    assert.match(describeSecretValueProblem("short"), /^must be at least 4 characters long/);
  });
});
