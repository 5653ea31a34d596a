import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
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
    const pats = secretPatterns(["hunter2"]);
    for (const p of ["aHVudGVyMg==", "aHVudGVyMg", "hunter2"]) assert.ok(pats.includes(p), p);
    assert.deepEqual(
      pats.map((p) => p.length),
      pats.map((p) => p.length).sort((a, b) => b - a),
    );
  });
  it("adds the base64 of the value at each offset inside a longer encoded text", () => {
    // The characters of base64(x + "hunter2" + y) whose bits all come from "hunter2".
    assert.deepEqual(secretPatterns(["hunter2"]), [
      "aHVudGVyMg==",
      "aHVudGVyMg",
      "aHVudGVyM", // offset 0: "hunter2…"
      "odW50ZXIy", // offset 1: "x" + "hunter2…"
      "h1bnRlcj", // offset 2: "xy" + "hunter2…"
      "hunter2",
    ]);
  });
  it("skips empty values and duplicates", () => {
    assert.deepEqual(secretPatterns(["", "abcd", "abcd"]), [
      "YWJjZA==",
      "YWJjZA",
      "YWJjZ",
      "hYmNk",
      "abcd",
      "FiY2",
    ]);
  });
  it("leaves out base64 slices and lines shorter than four characters", () => {
    // A legacy three-character value keeps its §5.3 forms only.
    assert.deepEqual(secretPatterns(["abc"]), ["YWJj", "abc"]);
    assert.deepEqual(
      secretPatterns(["long-line-1\nab\nxyz!"]).filter((p) => !p.includes("long")),
      secretPatterns(["long-line-1\nab\nxyz!"]).filter((p) => !p.includes("long") && p.length >= 4),
    );
    assert.ok(!secretPatterns(["long-line-1\nab\nxyz!"]).includes("ab"));
    assert.ok(secretPatterns(["long-line-1\nab\nxyz!"]).includes("xyz!"));
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

describe("maskSecrets: the forms users print (issue 12)", () => {
  const token = "ghp_R8xTq2LmZ0pW7vKc";
  it("masks the raw value", () => {
    assert.equal(maskSecrets(`token=${token}.`, [token]), "token=***.");
  });

  it("masks the value inside any base64-encoded text, at offsets 0, 1 and 2", () => {
    for (const before of ["", "a", "ab", "abc", "abcd", "abcde", '{"password":"']) {
      for (const after of ["", "x", "xy", "xyz", '"}\n']) {
        const encoded = b64(`${before}${token}${after}`);
        const masked = maskSecrets(`data: ${encoded} end`, [token]);
        const m = /^data: ([A-Za-z0-9+/=]*)\*\*\*([A-Za-z0-9+/=]*) end$/.exec(masked);
        assert.ok(m, JSON.stringify({ before, after, masked }));
        // What stays visible carries no bit of the token: the characters before the mask hold
        // bits of `before` only (some may share a character with the token's first bits) ...
        const beforeBits = 8 * Buffer.byteLength(before);
        assert.ok(m[1]!.length <= Math.ceil(beforeBits / 6), JSON.stringify({ before, after, masked }));
        // ... and those after it start at or after the character holding the token's last bits.
        const tokenEnd = beforeBits + 8 * token.length;
        assert.ok(
          encoded.length - m[2]!.length >= Math.floor(tokenEnd / 6),
          JSON.stringify({ before, after, masked }),
        );
      }
    }
  });

  it("masks an HTTP Basic authorization header (user:token base64-encoded)", () => {
    for (const user of ["x-access-token", "ci", "bot1"]) {
      const header = `Authorization: Basic ${b64(`${user}:${token}`)}`;
      const masked = maskSecrets(header, [token]);
      assert.match(masked, /\*\*\*/);
      const visible = masked.slice("Authorization: Basic ".length).replace("***", "");
      // Decoding what is left must not give back any four consecutive characters of the token.
      const decoded = Buffer.from(visible, "base64").toString("latin1");
      for (let i = 0; i + 4 <= token.length; i++) assert.ok(!decoded.includes(token.slice(i, i + 4)), masked);
    }
  });

  it("masks each line of a multi-line secret on its own (a PEM key line)", () => {
    const pem =
      "-----BEGIN OPENSSH PRIVATE KEY-----\n" +
      "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n" +
      "QyNTUxOQAAACBnJXH3Lx0dUEdwoNiTRbN5c1a7W5QnLmmVbUE9v0ecpAAAAJhkGpHqZBqR\n" +
      "-----END OPENSSH PRIVATE KEY-----\n";
    const line = pem.split("\n")[2]!;
    assert.equal(maskSecrets(`debug: ${line}\n`, [pem]), "debug: ***\n");
    // The whole key still masks as one.
    assert.equal(maskSecrets(`k:\n${pem}`, [pem]), "k:\n***");
    // CRLF line ends: the line without its \r.
    assert.equal(maskSecrets(`> ${line} <`, [pem.replaceAll("\n", "\r\n")]), "> *** <");
  });

  it("masks JSON-escaped forms of a value with quotes, backslashes, controls or non-ASCII", () => {
    const v = 'p"a\\ss\tw<ö>rd';
    const js = JSON.stringify({ password: v });
    assert.equal(maskSecrets(js, [v]), '{"password":"***"}');
    // Python's json.dumps (ASCII only) and Go's encoding/json (HTML-safe).
    assert.equal(maskSecrets('{"password": "p\\"a\\\\ss\\tw<\\u00f6>rd"}', [v]), '{"password": "***"}');
    assert.equal(maskSecrets('{"password":"p\\"a\\\\ss\\tw\\u003cö\\u003erd"}', [v]), '{"password":"***"}');
    // A multi-line value printed as one JSON string.
    const key = "line-one\nline-two";
    assert.equal(maskSecrets(JSON.stringify([key]), [key]), '["***"]');
  });

  /** Whether what is left of a masked base64 text (any alphabet, line breaks) decodes to 4 characters of `value`. */
  const leaks = (masked: string, value: string): boolean => {
    const decoded = masked
      .split("***")
      .map((part) =>
        Buffer.from(part.replace(/\s+/g, "").replaceAll("-", "+").replaceAll("_", "/"), "base64"),
      )
      .map((b) => b.toString("latin1"))
      .join("\0");
    for (let i = 0; i + 4 <= value.length; i++) if (decoded.includes(value.slice(i, i + 4))) return true;
    return false;
  };
  const sh = (cmd: string, input: string) => execFileSync("sh", ["-c", cmd], { input, encoding: "utf8" });

  it("masks URL-safe base64, with and without padding, and inside longer URL-safe text (a JWT)", () => {
    const v = "tok>>>secret???value~~1"; // its standard base64 has both + and /
    assert.match(b64(v), /\+/);
    assert.match(b64(v), /\//);
    const url = Buffer.from(v).toString("base64url");
    const padded = b64(v).replaceAll("+", "-").replaceAll("/", "_");
    assert.notEqual(url, padded);
    assert.equal(maskSecrets(`a ${url} b`, [v]), "a *** b");
    assert.equal(maskSecrets(`a ${padded} b`, [v]), "a *** b");
    for (const before of ["", "x", "xy"]) {
      const payload = Buffer.from(`{"sub":"${before}${v}"}`).toString("base64url");
      const masked = maskSecrets(`eyJhbGciOiJIUzI1NiJ9.${payload}.sig`, [v]);
      assert.match(masked, /\*\*\*/);
      assert.ok(!leaks(masked.split(".")[1]!, v), masked);
    }
  });

  it("masks base64 broken into lines (base64 -w 76, -w 64, echo | base64)", () => {
    const v = `long-secret-${"Zq9/x+".repeat(12)}-end`; // 88 characters: 120 of base64
    for (const cmd of ["base64", "base64 -w 64", "base64 -w 76 | sed 's/$/\r/'"]) {
      for (const input of [v, `${v}\n`]) {
        const encoded = sh(cmd, input);
        assert.match(encoded.trimEnd(), /\n/, "wrapped");
        const masked = maskSecrets(`key:\n${encoded}done\n`, [v]);
        assert.ok(
          !leaks(masked.slice(5, -5), v),
          `${cmd} ${JSON.stringify(input)} → ${JSON.stringify(masked)}`,
        );
      }
    }
  });

  it("masks a token inside a longer text that is base64-encoded and wrapped (base64 config.json)", () => {
    for (const [cmd, width] of [
      ["base64", 76],
      ["base64 -w 64", 64],
      ["base64 | sed 's/$/\r/'", 76],
    ] as const) {
      for (let pad = 0; pad < 80; pad += 7) {
        const before = `{"auths":{"registry.example":{"note":"${"x".repeat(pad)}","password":"`;
        const text = `${before}${token}"}}}\n`;
        const encoded = sh(cmd, text);
        assert.match(encoded.trimEnd(), /\n/);
        const masked = maskSecrets(encoded, [token]).replace(/\r?\n/g, "");
        const m = /^([A-Za-z0-9+/=]*)\*\*\*([A-Za-z0-9+/=]*)$/.exec(masked);
        assert.ok(m, `${cmd}, pad ${pad}: ${masked}`);
        // The same bounds as for unwrapped text: nothing visible holds a bit of the token.
        const beforeBits = 8 * Buffer.byteLength(before);
        const flat = Buffer.from(text).toString("base64");
        assert.ok(m[1]!.length <= Math.ceil(beforeBits / 6), `${cmd} w${width}, pad ${pad}`);
        assert.ok(flat.length - m[2]!.length >= Math.floor((beforeBits + 8 * token.length) / 6));
      }
    }
  });

  it("masks the base64 of one line of a multi-line secret (a PEM line)", () => {
    const pem =
      "-----BEGIN OPENSSH PRIVATE KEY-----\n" +
      "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n" +
      "QyNTUxOQAAACBnJXH3Lx0dUEdwoNiTRbN5c1a7W5QnLmmVbUE9v0ecpAAAAJhkGpHqZBqR\n" +
      "-----END OPENSSH PRIVATE KEY-----\n";
    const line = pem.split("\n")[2]!;
    for (const cmd of [
      "sed -n 3p | base64",
      "sed -n 3p | tr -d '\\n' | base64 -w 0",
      "sed -n 3p | base64 -w 0",
    ]) {
      const encoded = sh(cmd, pem);
      const masked = maskSecrets(encoded, [pem]);
      assert.ok(!leaks(masked, line), `${cmd} → ${JSON.stringify(masked)}`);
    }
  });

  it("masks the URL-safe, wrapped and PEM-line forms across every split of the stream", () => {
    const v = `long-secret-${"Zq9/x+".repeat(12)}-end`;
    const pem = "-----BEGIN KEY-----\nQyNTUxOQAAACBnJXH3Lx0dUEdwoNiTRbN5c1a7\n-----END KEY-----";
    const m = new Masker([v, pem]);
    const text =
      `url ${Buffer.from(`x${v}`).toString("base64url")}\n` +
      `wrapped\n${sh("base64 | sed 's/$/\r/'", v)}` +
      `pem-line ${sh("sed -n 2p | base64", pem)}`;
    const whole = m.mask(text);
    assert.equal(whole.split("***").length - 1, 3, whole);
    for (let cut = 1; cut < text.length; cut++) {
      assert.equal(streamed(m, [text.slice(0, cut), text.slice(cut)]), whole, `cut at ${cut}`);
    }
    assert.equal(streamed(m, [...text]), whole);
  });

  it("never masks indentation for a multi-line secret with a whitespace-only line", () => {
    const v = "first-line-value\n        \nlast-line-value";
    assert.equal(maskSecrets("        indented\n", [v]), "        indented\n");
    assert.equal(maskSecrets("x first-line-value y", [v]), "x *** y");
  });

  it("masks every form across chunk boundaries and split writes", () => {
    const pem = "-----BEGIN KEY-----\nQyNTUxOQAAACBnJXH3Lx0dUEdwoNiTRbN5c1a7\n-----END KEY-----";
    const quoted = 'pa"ss\\word!';
    const values = [token, pem, quoted];
    const m = new Masker(values);
    const text =
      `raw ${token}\n` +
      `basic ${b64(`user:${token}`)}\n` +
      `b64@1 ${b64(`x${token}yz`)}\n` +
      `b64@2 ${b64(`xy${token}z`)}\n` +
      `pem ${pem.split("\n")[1]} tail\n` +
      `json ${JSON.stringify({ quoted })}\n`;
    const whole = m.mask(text);
    for (const v of [token, pem.split("\n")[1]!, JSON.stringify(quoted).slice(1, -1)]) {
      assert.ok(!whole.includes(v), whole);
    }
    assert.equal(whole.split("***").length - 1, 6, whole);
    // Every split point, and one unit at a time.
    for (let cut = 1; cut < text.length; cut++) {
      assert.equal(streamed(m, [text.slice(0, cut), text.slice(cut)]), whole, `cut at ${cut}`);
    }
    assert.equal(streamed(m, [...text]), whole);
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
