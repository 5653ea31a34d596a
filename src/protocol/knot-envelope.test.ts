import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { parseKnotEnvelope } from "./envelope.ts";

const WIRE = readFileSync(
  new URL("../../test/fixtures/spec/examples/events/knot-stream/pipeline-push.wire.txt", import.meta.url),
  "utf8",
);

describe("parseKnotEnvelope", () => {
  it("reads the recorded Gen1 wire frame (no created)", () => {
    const d = parseKnotEnvelope(WIRE);
    assert.ok(d.ok);
    assert.equal(d.envelope.nsid, "sh.tangled.pipeline");
    assert.equal(d.envelope.rkey, "3lxyz2abcde22");
    assert.equal(d.envelope.created, null);
    const tm = d.envelope.event.triggerMetadata as { repo: { knot: string } };
    assert.equal(tm.repo.knot, "knot1.tangled.sh");
  });

  it("keeps a Gen2 created beyond 2^53 exact, in any key order", () => {
    const created = "1800000000000000001";
    assert.notEqual(String(Number(created)), created, "a JS number would round it");
    for (const text of [
      `{"rkey":"3lxyz2abcde22","nsid":"sh.tangled.git.refUpdate","event":{"created":5},"created":${created}}`,
      `{"created":${created},"event":{"created":7},"nsid":"sh.tangled.git.refUpdate","rkey":"3lxyz2abcde22"}`,
    ]) {
      const d = parseKnotEnvelope(text);
      assert.ok(d.ok, text);
      assert.equal(d.envelope.created, created);
    }
  });

  it("accepts created as a decimal string and canonicalises it", () => {
    const d = parseKnotEnvelope('{"rkey":"3l2","nsid":"a.b.c","event":{},"created":"0042"}');
    assert.ok(d.ok);
    assert.equal(d.envelope.created, "42");
  });

  const bad: [string, RegExp][] = [
    ["not json at all", /not JSON/],
    ['"a string"', /not a JSON object/],
    ["[1,2]", /not a JSON object/],
    ['{"rkey":"3l2","event":{}}', /nsid is missing/],
    ['{"rkey":"3l2","nsid":42,"event":{}}', /nsid is missing or not an NSID: 42/],
    ['{"rkey":"3l2","nsid":"no-dots","event":{}}', /not an NSID/],
    ['{"nsid":"a.b.c","event":{}}', /rkey is missing/],
    ['{"rkey":"../etc","nsid":"a.b.c","event":{}}', /not a record key/],
    ['{"rkey":"3l2","nsid":"a.b.c"}', /event of a.b.c\/3l2 is missing/],
    ['{"rkey":"3l2","nsid":"a.b.c","event":"x"}', /not an object/],
    ['{"rkey":"3l2","nsid":"a.b.c","event":{},"created":-1}', /created is not a non-negative int64/],
    ['{"rkey":"3l2","nsid":"a.b.c","event":{},"created":1.5}', /created is not/],
    ['{"rkey":"3l2","nsid":"a.b.c","event":{},"created":1e18}', /created is not/],
    ['{"rkey":"3l2","nsid":"a.b.c","event":{},"created":99999999999999999999}', /created is not/],
  ];
  for (const [text, reason] of bad) {
    it(`refuses ${text.slice(0, 50)}`, () => {
      const d = parseKnotEnvelope(text);
      assert.equal(d.ok, false);
      if (!d.ok) assert.match(d.reason, reason);
    });
  }
});
