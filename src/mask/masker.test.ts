import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MASK, Masker, maskSecrets, secretPatterns } from "./masker.ts";

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

/** Obviously-correct reference: leftmost-longest, position by position. */
function reference(text: string, values: string[]): string {
  const pats = secretPatterns(values);
  let out = "";
  let i = 0;
  while (i < text.length) {
    const p = pats.find((q) => text.startsWith(q, i));
    if (p === undefined) {
      out += text[i];
      i++;
    } else {
      out += MASK;
      i += p.length;
    }
  }
  return out;
}

function streamed(masker: Masker, pieces: string[]): string {
  const s = masker.stream();
  return pieces.map((p) => s.write(p)).join("") + s.end();
}

/** Deterministic PRNG so a failure reproduces. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe("secretPatterns (spec §5.3)", () => {
  it("yields the value, its standard base64 and base64 without padding, longest first", () => {
    assert.deepEqual(secretPatterns(["hunter2"]), ["aHVudGVyMg==", "aHVudGVyMg", "hunter2"]);
  });
  it("skips empty values and duplicates", () => {
    assert.deepEqual(secretPatterns(["", "abc", "abc"]), ["YWJj", "abc"]);
  });
  it("also masks a value's trailing line breaks trimmed (beyond §5.3)", () => {
    const key = "-----BEGIN KEY-----\nAAAA\n-----END KEY-----\n";
    const trimmed = key.trimEnd();
    assert.ok(secretPatterns([key]).includes(trimmed));
    assert.ok(secretPatterns([key]).includes(b64(trimmed)));
    assert.equal(maskSecrets(`k=${trimmed};`, [key]), "k=***;");
    assert.deepEqual(secretPatterns(["\n"]).includes(""), false);
  });
  it("encodes UTF-8 before base64", () => {
    assert.ok(secretPatterns(["pässwörd"]).includes(b64("pässwörd")));
  });
});

describe("maskSecrets", () => {
  it("masks the value and both base64 forms", () => {
    const v = "s3cr3t-value";
    const text = `a ${v} b ${b64(v)} c ${b64(v).replace(/=+$/, "")}!`;
    assert.equal(maskSecrets(text, [v]), "a *** b *** c ***!");
  });
  it("prefers the longest pattern at a position", () => {
    assert.equal(maskSecrets("xabcdefx", ["abc", "abcdef"]), "x***x");
  });
  it("masks multi-line values", () => {
    const key = "-----BEGIN KEY-----\nAAAA\nBBBB\n-----END KEY-----";
    assert.equal(maskSecrets(`key:\n${key}\ndone`, [key]), "key:\n***\ndone");
  });
  it("masks one-character secrets (the short-pattern path)", () => {
    assert.equal(maskSecrets("a-b-a", ["a"]), "***-b-***");
  });
  it("leaves text alone when there are no secrets", () => {
    assert.equal(maskSecrets("nothing", []), "nothing");
    assert.equal(maskSecrets("nothing", [""]), "nothing");
  });
  it("matches the reference on random text with long secrets (the skipping search)", () => {
    const r = rng(99);
    const alphabet = "abAB=+/\n";
    const pick = (n: number) =>
      Array.from({ length: n }, () => alphabet[Math.floor(r() * alphabet.length)]).join("");
    for (let round = 0; round < 100; round++) {
      const values = Array.from({ length: 1 + Math.floor(r() * 6) }, () => pick(4 + Math.floor(r() * 26)));
      // Text made of pieces of the secrets and their encodings, so near-misses abound.
      const pool = [...values, ...values.map(b64)];
      let text = "";
      while (text.length < 400) {
        const src = pool[Math.floor(r() * pool.length)]!;
        const from = Math.floor(r() * src.length);
        text += r() < 0.3 ? src : src.slice(from, from + 1 + Math.floor(r() * 12));
        if (r() < 0.3) text += pick(3);
      }
      assert.equal(maskSecrets(text, values), reference(text, values), JSON.stringify({ text, values }));
      const m = new Masker(values);
      const pieces: string[] = [];
      for (let i = 0; i < text.length; ) {
        const n = 1 + Math.floor(r() * 40);
        pieces.push(text.slice(i, i + n));
        i += n;
      }
      assert.equal(streamed(m, pieces), reference(text, values), JSON.stringify({ text, values, pieces }));
    }
  });
  it("matches the reference on random text", () => {
    const r = rng(42);
    const alphabet = "ab=\nxyzé😀";
    const pick = (n: number) =>
      Array.from({ length: n }, () => alphabet[Math.floor(r() * alphabet.length)]).join("");
    for (let round = 0; round < 300; round++) {
      const values = Array.from({ length: 1 + Math.floor(r() * 4) }, () => pick(1 + Math.floor(r() * 6)));
      const text = pick(Math.floor(r() * 80));
      assert.equal(maskSecrets(text, values), reference(text, values), JSON.stringify({ text, values }));
    }
  });
});

describe("StreamMasker", () => {
  it("masks a secret split across writes, one character at a time", () => {
    const v = "tok_ABCDEF123456";
    const m = new Masker([v]);
    assert.equal(streamed(m, [..."before tok_ABCDEF123456 after"]), "before *** after");
  });
  it("masks a base64 form split across writes", () => {
    const v = "another-secret";
    const m = new Masker([v]);
    const enc = b64(v);
    assert.equal(streamed(m, ["x", enc.slice(0, 5), enc.slice(5), "y"]), "x***y");
  });
  it("holds back only what could still become a secret", () => {
    const m = new Masker(["secret"]);
    const s = m.stream();
    assert.equal(s.write("plain text "), "plain text ");
    assert.equal(s.write("then sec"), "then ");
    assert.equal(s.write("ond"), "second");
    assert.equal(s.end(), "");
  });
  it("flushes a held prefix that never completed at end()", () => {
    const s = new Masker(["secret"]).stream();
    assert.equal(s.write("a secr"), "a ");
    assert.equal(s.end(), "secr");
  });
  it("keeps the held tail shorter than the longest pattern", () => {
    const v = `${"x".repeat(40)}!`;
    const m = new Masker([v]);
    const s = m.stream();
    for (let i = 0; i < 1000; i++) {
      s.write("x".repeat(7));
      assert.ok(s.pendingLength < m.maxLength, `held ${s.pendingLength}`);
    }
    assert.equal(s.end(), "x".repeat(40));
  });
  it("gives the same result as one-shot masking for any split (random)", () => {
    const r = rng(7);
    const alphabet = "abc=\n01";
    const pick = (n: number) =>
      Array.from({ length: n }, () => alphabet[Math.floor(r() * alphabet.length)]).join("");
    for (let round = 0; round < 300; round++) {
      const values = Array.from({ length: 1 + Math.floor(r() * 3) }, () => pick(2 + Math.floor(r() * 8)));
      const m = new Masker(values);
      const text = pick(Math.floor(r() * 120));
      const pieces: string[] = [];
      for (let i = 0; i < text.length; ) {
        const n = 1 + Math.floor(r() * 9);
        pieces.push(text.slice(i, i + n));
        i += n;
      }
      assert.equal(streamed(m, pieces), reference(text, values), JSON.stringify({ text, values, pieces }));
    }
  });
});
