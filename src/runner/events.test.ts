import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { EventWriter, MAX_OUTPUT_UNITS } from "./events.ts";
import type { RunnerEvent } from "./protocol.ts";

function collect(): { sink: Writable; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    decodeStrings: false,
    write(chunk: string, _e, cb) {
      lines.push(chunk);
      cb();
    },
  });
  return { sink, lines };
}

describe("EventWriter", () => {
  it("writes one JSON object per line with the clock's time", () => {
    const { sink, lines } = collect();
    const w = new EventWriter(sink, () => "T");
    w.emit("heartbeat", { step: null });
    assert.deepEqual(lines, ['{"type":"heartbeat","time":"T","step":null}\n']);
  });

  it("splits long output without breaking surrogate pairs, seq running on", () => {
    const { sink, lines } = collect();
    const w = new EventWriter(sink, () => "T");
    const data = `${"a".repeat(MAX_OUTPUT_UNITS - 1)}😀${"b".repeat(10)}`;
    w.output(0, "stdout", data);
    w.output(0, "stderr", "x");
    const events = lines.map((l) => JSON.parse(l) as Extract<RunnerEvent, { type: "output" }>);
    assert.deepEqual(
      events.map((e) => [e.seq, e.stream, e.data.length]),
      [
        [1, "stdout", MAX_OUTPUT_UNITS - 1],
        [2, "stdout", 12],
        [3, "stderr", 1],
      ],
    );
    assert.equal(events.map((e) => e.data).join(""), `${data}x`);
    assert.ok(
      lines.every((l) => !/\\ud83d"/.test(l)),
      "no lone surrogate escapes",
    );
  });

  it("reports a broken sink once and drops later events", () => {
    const sink = new Writable({
      write(_c, _e, cb) {
        cb(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
      },
    });
    let broken = 0;
    const w = new EventWriter(
      sink,
      () => "T",
      () => broken++,
    );
    w.emit("heartbeat", { step: null });
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        w.emit("heartbeat", { step: null });
        assert.equal(broken, 1);
        assert.equal(w.broken, true);
        assert.equal(w.blocked, false);
        resolve();
      }),
    );
  });
});
