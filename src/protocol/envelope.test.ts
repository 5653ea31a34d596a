import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  EnvelopeError,
  encodeKnotEnvelope,
  formatCursor,
  parseCursorParam,
  parseEnvelope,
} from "./envelope.ts";

// Two nanosecond stamps one apart, both above 2^53: JSON.parse maps them to the same double.
const A = "1795000000000000001";
const B = "1795000000000000002";

describe("parseEnvelope", () => {
  it("keeps created exact where JSON.parse would round", () => {
    assert.equal(JSON.parse(A), JSON.parse(B), "premise: doubles collide");
    const a = parseEnvelope(`{"rkey":"3mabc","nsid":"sh.tangled.git.refUpdate","event":{},"created":${A}}`);
    const b = parseEnvelope(`{"rkey":"3mabd","nsid":"sh.tangled.git.refUpdate","event":{},"created":${B}}`);
    assert.equal(a.created, 1795000000000000001n);
    assert.equal(b.created, 1795000000000000002n);
    assert.ok((b.created ?? 0n) > (a.created ?? 0n));
    assert.equal(formatCursor(b.created ?? 0n), B);
  });

  it("reads any key order, and ignores a nested created", () => {
    const env = parseEnvelope(
      `{"created":${B},"event":{"created":${A},"x":{"created":1}},"nsid":"sh.tangled.pipeline","rkey":"r"}`,
    );
    assert.equal(env.created, 1795000000000000002n);
    assert.equal(env.nsid, "sh.tangled.pipeline");
    assert.equal(env.rkey, "r");
    assert.deepEqual(Object.keys(env.event), ["created", "x"]);
  });

  it("accepts a Gen1 envelope without created", () => {
    const env = parseEnvelope(`{"rkey":"r","nsid":"sh.tangled.pipeline","event":{"a":1}}`);
    assert.equal(env.created, undefined);
    assert.deepEqual(env.event, { a: 1 });
  });

  it("refuses malformed envelopes with a clear error", () => {
    const bad: Array<[string, RegExp]> = [
      ["not json", /not JSON/],
      ["[1]", /not a JSON object/],
      [`{"nsid":"a","event":{},"created":1}`, /rkey/],
      [`{"rkey":"r","event":{},"created":1}`, /nsid/],
      [`{"rkey":"r","nsid":"a","event":[],"created":1}`, /event/],
      [`{"rkey":"r","nsid":"a","event":{},"created":1.5}`, /created must be/],
      [`{"rkey":"r","nsid":"a","event":{},"created":1e18}`, /created must be/],
      [`{"rkey":"r","nsid":"a","event":{},"created":-4}`, /created must be/],
      [`{"rkey":"r","nsid":"a","event":{},"created":"17"}`, /created must be/],
      [`{"rkey":"r","nsid":"a","event":{},"created":9223372036854775808}`, /int64/],
    ];
    for (const [text, message] of bad) {
      assert.throws(
        () => parseEnvelope(text),
        (err: unknown) => err instanceof EnvelopeError && message.test(err.message),
        text,
      );
    }
  });

  it("round-trips through encodeKnotEnvelope", () => {
    const text = encodeKnotEnvelope({
      rkey: "r",
      nsid: "n",
      event: { a: [1] },
      created: 9223372036854775807n,
    });
    assert.equal(text, `{"rkey":"r","nsid":"n","event":{"a":[1]},"created":9223372036854775807}`);
    assert.equal(parseEnvelope(text).created, 9223372036854775807n);
  });
});

describe("parseCursorParam", () => {
  it("treats missing or unparsable as 0 (replay from the oldest)", () => {
    assert.equal(parseCursorParam(undefined), 0n);
    assert.equal(parseCursorParam(null), 0n);
    assert.equal(parseCursorParam(""), 0n);
    assert.equal(parseCursorParam("abc"), 0n);
    assert.equal(parseCursorParam("1.5"), 0n);
    assert.equal(parseCursorParam(B), 1795000000000000002n);
  });
});
