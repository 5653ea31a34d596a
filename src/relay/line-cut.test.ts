import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { toByteText } from "./byte-text.ts";
import { cutPoint, hasLineLongerThan } from "./line-cut.ts";

describe("cutPoint", () => {
  it("cuts at the limit in plain text", () => {
    assert.equal(cutPoint("abcdefgh", 0, 5), 5);
    assert.equal(cutPoint("abcdefgh", 2, 5), 7);
  });

  it("backs up to the start of a UTF-8 sequence the limit falls inside", () => {
    const bytes = toByteText("ab😀cd"); // a b F0 9F 98 80 c d
    for (const max of [3, 4, 5]) assert.equal(cutPoint(bytes, 0, max), 2);
    assert.equal(cutPoint(bytes, 0, 6), 6);
    assert.equal(cutPoint(toByteText("aé→b"), 0, 4), 3); // a C3 A9 | E2 86 92 b
  });

  it("keeps invalid UTF-8 (stray continuation bytes) to the limit", () => {
    assert.equal(cutPoint("a\x80\x80\x80\x80\x80\x80b", 0, 5), 5);
  });

  it("never cuts between two asterisks (a mask), unless they fill the piece", () => {
    assert.equal(cutPoint("ab***cd", 0, 3), 2);
    assert.equal(cutPoint("ab***cd", 0, 4), 2);
    assert.equal(cutPoint("ab***cd", 0, 5), 5);
    assert.equal(cutPoint("********", 0, 5), 5);
    assert.equal(cutPoint(toByteText("é***x"), 0, 3), 2); // C3 A9 * * * x: before the run
  });

  it("finds lines longer than the limit", () => {
    assert.equal(hasLineLongerThan("abc\ndefg\nhi", 4), false);
    assert.equal(hasLineLongerThan("abc\ndefgh\nhi", 4), true);
    assert.equal(hasLineLongerThan("abc\nd\nhijkl", 4), true);
  });
});
