import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fromByteText, toByteText } from "./byte-text.ts";

describe("byte text", () => {
  it("holds UTF-8 bytes one per character and round-trips any text", () => {
    for (const text of ["", "ascii", "é → µ ✓", "😀 x", "\u2028\u2029", "\ufffd", "a\nb\r\n"]) {
      const bytes = toByteText(text);
      assert.equal(bytes, Buffer.from(text, "utf8").toString("latin1"));
      assert.equal(fromByteText(bytes), text);
    }
  });

  it("keeps lone surrogates as themselves (they have no UTF-8 form)", () => {
    const text = "a\ud800b\udc00c😀\ud83d";
    const bytes = toByteText(text);
    assert.equal(bytes, `a\ud800b\udc00c${Buffer.from("😀").toString("latin1")}\ud83d`);
    assert.equal(fromByteText(bytes), text);
  });

  it("decodes bytes that are not UTF-8 as U+FFFD, as any decoder does", () => {
    assert.equal(fromByteText("a\xffb"), "a\ufffdb");
  });
});
