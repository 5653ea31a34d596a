import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import { prettyDestination, prettyLine } from "./log-format.ts";

describe("pretty serve logs", () => {
  it("a pino line becomes time, level, message and key=value fields", () => {
    const time = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    const json = JSON.stringify({
      level: 40,
      time,
      pid: 1,
      hostname: "h",
      name: "loom",
      msg: "jetstream connection failed",
      reason: "ECONNREFUSED 127.0.0.1:6008",
      delayMs: 1234,
      opened: false,
      err: { type: "Error", message: "boom", stack: "Error: boom\n    at x" },
    });
    assert.equal(
      prettyLine(json, false),
      '03:04:05.678 WARN  jetstream connection failed reason="ECONNREFUSED 127.0.0.1:6008" delayMs=1234 opened=false err="boom"\n',
    );
    assert.match(prettyLine(json, true), /\u001b\[33mWARN /);
    assert.equal(prettyLine("not json", false), "not json\n");
  });

  it("works as pino's destination, one human line per record", () => {
    const out: string[] = [];
    const log = pino(
      { name: "loom", base: undefined },
      prettyDestination({ write: (t) => out.push(t) }, false),
    );
    log.info({ url: "http://127.0.0.1:6555" }, "spindle listening");
    log.child({ component: "intake" }).error("gone");
    assert.equal(out.length, 2);
    assert.match(
      out[0]!,
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}spindle listening url=http:\/\/127\.0\.0\.1:6555\n$/,
    );
    assert.match(out[1]!, /^\d\d:\d\d:\d\d\.\d{3} ERROR gone component=intake\n$/);
  });
});
