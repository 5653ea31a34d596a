import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { STATUS_NSID } from "./nsid.ts";
import { encodeEnvelope, encodeStatus, type PipelineStatus } from "./status.ts";

// The spec's wire examples, copied into the repository (test/fixtures/spec).
const EXAMPLES = new URL("../../test/fixtures/spec/examples/events/spindle-stream", import.meta.url).pathname;

function fromWire(line: string): { status: PipelineStatus; rkey: string } {
  const env = JSON.parse(line);
  const e = env.event;
  return {
    rkey: env.rkey,
    status: {
      pipeline: e.pipeline,
      workflow: e.workflow,
      status: e.status,
      createdAt: new Date(e.createdAt),
      ...(e.error !== undefined ? { error: e.error } : {}),
      ...(e.exitCode !== undefined ? { exitCode: e.exitCode } : {}),
    },
  };
}

for (const file of ["status-sequence-success", "status-sequence-failed", "status-other-kinds"]) {
  test(`status envelopes reproduce ${file}.jsonl byte for byte`, () => {
    const lines = readFileSync(`${EXAMPLES}/${file}.jsonl`, "utf8").trim().split("\n");
    for (const line of lines) {
      const { status, rkey } = fromWire(line);
      assert.equal(encodeEnvelope(encodeStatus(status), STATUS_NSID, rkey), line);
    }
  });
}

test("error text is escaped as Go does", () => {
  const json = encodeStatus({
    pipeline: "at://did:web:k/sh.tangled.pipeline/x",
    workflow: "a<b>&.yml",
    status: "failed",
    createdAt: new Date(0),
    error: 'unknown engine "<x>"',
    exitCode: 2,
  });
  assert.equal(
    json,
    '{"$type":"","createdAt":"1970-01-01T00:00:00Z","error":"unknown engine \\"\\u003cx\\u003e\\"","exitCode":2,"pipeline":"at://did:web:k/sh.tangled.pipeline/x","status":"failed","workflow":"a\\u003cb\\u003e\\u0026.yml"}',
  );
});
