import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as dagCbor from "@ipld/dag-cbor";
// cborg is @ipld/dag-cbor's own decoder (a dependency of it): decodeFirst reads one value of a
// sequence and returns the rest, which is what a frame is.
import { decodeFirst } from "cborg";
import { validate } from "./lexicons.ts";
import { encodeErrorFrame, encodeLogFrame } from "./log-frames.ts";

function decodeFrame(bytes: Uint8Array): [unknown, unknown] {
  const [header, rest] = decodeFirst(bytes, dagCbor.decodeOptions);
  const [body, tail] = decodeFirst(rest, dagCbor.decodeOptions);
  assert.equal(tail.byteLength, 0, "exactly two values");
  return [header, body];
}

describe("subscribePipelineLogs frames", () => {
  it("encodes a data line: header #data, content + newline, seconds-precision time", () => {
    const frame = encodeLogFrame(
      {
        kind: "data",
        content: "hello",
        time: "2026-07-26T12:00:00.123456789Z",
        step_id: 2,
        stream: "stderr",
      },
      "ci.yml",
    );
    const [header, body] = decodeFrame(frame);
    assert.deepEqual(header, { op: 1, t: "#data" });
    assert.deepEqual(body, {
      time: "2026-07-26T12:00:00Z",
      workflow: "ci.yml",
      step: 2,
      content: "hello\n",
      stream: "stderr",
    });
    validate.logMessage({ $type: "sh.tangled.ci.subscribePipelineLogs#data", ...(body as object) });
  });

  it("gives a piece of a longer line (partial) no newline, so joined contents show one line", () => {
    const base = { kind: "data", time: "2026-07-26T12:00:00Z", step_id: 0, stream: "stdout" } as const;
    const pieces = [
      { ...base, content: "first half ", partial: true },
      { ...base, content: "second half" },
    ];
    const contents = pieces.map(
      (l) => (decodeFrame(encodeLogFrame(l, "ci.yml"))[1] as { content: string }).content,
    );
    assert.deepEqual(contents, ["first half ", "second half\n"]);
    for (const l of pieces) {
      const [, body] = decodeFrame(encodeLogFrame(l, "ci.yml"));
      assert.equal(Object.hasOwn(body as object, "partial"), false, "the lexicon's #data has no such field");
      validate.logMessage({ $type: "sh.tangled.ci.subscribePipelineLogs#data", ...(body as object) });
    }
  });

  it("encodes control lines with optional fields only when set", () => {
    const [h1, start] = decodeFrame(
      encodeLogFrame(
        {
          kind: "control",
          content: "build",
          time: "2026-07-26T12:00:01Z",
          step_id: 3,
          step_status: "start",
          step_kind: 1,
          step_command: "make",
        },
        "ci.yml",
      ),
    );
    assert.deepEqual(h1, { op: 1, t: "#control" });
    assert.deepEqual(start, {
      time: "2026-07-26T12:00:01Z",
      workflow: "ci.yml",
      step: 3,
      content: "build",
      command: "make",
      status: "start",
      kind: "user",
    });
    validate.logMessage({ $type: "sh.tangled.ci.subscribePipelineLogs#control", ...(start as object) });
    const [, sys] = decodeFrame(
      encodeLogFrame({ kind: "control", content: "Clone", time: "2026-07-26T12:00:01Z", step_id: 0 }, "w"),
    );
    assert.deepEqual(sys, {
      time: "2026-07-26T12:00:01Z",
      workflow: "w",
      step: 0,
      content: "Clone",
      kind: "system",
    });
  });

  it("writes map keys in canonical DAG-CBOR order (length first)", () => {
    const frame = encodeLogFrame(
      { kind: "data", content: "x", time: "2026-07-26T12:00:00Z", step_id: 0, stream: "stdout" },
      "w",
    );
    const [header] = decodeFrame(frame);
    // Re-encoding the decoded values gives the same bytes only if the input was canonical.
    const headerBytes = dagCbor.encode(header);
    assert.deepEqual(frame.subarray(0, headerBytes.byteLength), headerBytes);
    assert.deepEqual(Object.keys(dagCbor.decode(headerBytes) as object), ["t", "op"]);
  });

  it("encodes an error frame", () => {
    assert.deepEqual(decodeFrame(encodeErrorFrame("NotFound", "no such pipeline")), [
      { op: -1 },
      { error: "NotFound", message: "no such pipeline" },
    ]);
    assert.deepEqual(decodeFrame(encodeErrorFrame("Gone")), [{ op: -1 }, { error: "Gone" }]);
  });
});
