/**
 * Masker.masked (what loom_secrets_masked_total adds up): one count per occurrence replaced,
 * whether by `mask` or by a stream, a secret split across writes counted once, and the relay's
 * `result` event validation accepts the runner's count and refuses a bad one.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Masker } from "../../src/mask/masker.ts";
import { checkRunnerEvent } from "../../src/relay/events.ts";

test("Masker.masked counts each occurrence once, across stream writes too", () => {
  const m = new Masker(["s3cret"]);
  assert.equal(m.masked, 0);
  assert.equal(m.mask("a s3cret b s3cret"), "a *** b ***");
  assert.equal(m.masked, 2);
  const s = m.stream();
  const out =
    s.write("x s3") + s.write("cret y ") + s.write(Buffer.from("s3cret").toString("base64")) + s.end();
  assert.equal(out, "x *** y ***");
  assert.equal(m.masked, 4);
  assert.equal(new Masker([]).mask("s3cret"), "s3cret");
});

test("a runner result event may carry masked: a non-negative integer", () => {
  const base = {
    type: "result",
    time: "2026-01-01T00:00:00Z",
    status: "success",
    exitCode: 0,
    failedStep: null,
  };
  assert.equal(typeof checkRunnerEvent({ ...base, masked: 3 }), "object");
  assert.equal(typeof checkRunnerEvent(base), "object");
  assert.equal(checkRunnerEvent({ ...base, masked: -1 }), "result: masked is not a non-negative integer");
  assert.equal(checkRunnerEvent({ ...base, masked: "3" }), "result: masked is not a non-negative integer");
});
