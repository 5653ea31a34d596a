import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EventDeduper, LogCursor, parsePodLogLine, sortKey } from "./cursor.ts";

/** Feeds one connection's raw lines through a cursor, returning the texts it accepts. */
function connection(cursor: LogCursor, raw: string[]): string[] {
  cursor.reconnect();
  return raw
    .map(parsePodLogLine)
    .filter((l) => cursor.accept(l))
    .map((l) => l.text);
}

describe("parsePodLogLine", () => {
  it("splits the runtime timestamp from the text, keeping spaces in the text", () => {
    assert.deepEqual(parsePodLogLine('2026-11-27T17:00:00.123456789Z {"a": 1} x'), {
      ts: "2026-11-27T17:00:00.123456789Z",
      text: '{"a": 1} x',
    });
    assert.deepEqual(parsePodLogLine('{"type":"hello"}'), { ts: undefined, text: '{"type":"hello"}' });
  });
  it("sorts timestamps of any precision and offset as times", () => {
    assert.ok(sortKey("2026-11-27T17:00:00.5Z") > sortKey("2026-11-27T17:00:00.123456789Z"));
    assert.equal(sortKey("2026-11-27T18:00:00+01:00"), sortKey("2026-11-27T17:00:00Z"));
  });
});

describe("LogCursor", () => {
  const ts = (n: number) => `2026-11-27T17:00:0${Math.floor(n / 10)}.${String(n % 10).padStart(9, "0")}Z`;
  const log = [0, 1, 2, 2, 2, 13, 14].map((n, i) => `${ts(n)} line${i}`);

  it("resumes a broken stream without loss or repeat, even when lines share a timestamp", () => {
    const cursor = new LogCursor();
    const seen = connection(cursor, log.slice(0, 4)); // broke after the second line at ts 2
    assert.equal(cursor.sinceTime(), "2026-11-27T17:00:00Z");
    // The source replays from the whole second: everything again.
    seen.push(...connection(cursor, log));
    assert.deepEqual(
      seen,
      log.map((_, i) => `line${i}`),
    );
  });

  it("drops a full replay (a source that ignores sinceTime) and a replay that starts mid-way", () => {
    const cursor = new LogCursor();
    const seen = connection(cursor, log);
    seen.push(...connection(cursor, log));
    seen.push(...connection(cursor, log.slice(5)));
    assert.deepEqual(
      seen,
      log.map((_, i) => `line${i}`),
    );
  });

  it("counts lines when the source has no timestamps", () => {
    const cursor = new LogCursor();
    const plain = ["a", "b", "c", "d"];
    const seen = connection(cursor, plain.slice(0, 2));
    assert.equal(cursor.sinceTime(), undefined);
    seen.push(...connection(cursor, plain));
    assert.deepEqual(seen, plain);
  });
});

describe("EventDeduper", () => {
  it("drops repeated output by seq and repeated step boundaries, passes heartbeats and garbage", () => {
    const d = new EventDeduper();
    const ev = (o: object) => JSON.stringify({ time: "t", ...o });
    const input = [
      ev({ type: "hello", version: 1 }),
      ev({ type: "step_start", step: 0 }),
      ev({ type: "output", step: 0, seq: 1 }),
      ev({ type: "output", step: 0, seq: 2 }),
      ev({ type: "output", step: 0, seq: 2 }),
      ev({ type: "heartbeat", step: 0 }),
      ev({ type: "heartbeat", step: 0 }),
      ev({ type: "step_start", step: 0 }),
      ev({ type: "step_end", step: 0 }),
      ev({ type: "output", step: 1, seq: 1 }),
      "not json",
      ev({ type: "result" }),
      ev({ type: "result" }),
    ];
    const kept = input.filter((l) => d.accept(l));
    assert.deepEqual(kept, [
      input[0],
      input[1],
      input[2],
      input[3],
      input[5],
      input[6],
      input[8],
      input[10],
      input[11],
    ]);
  });
});
