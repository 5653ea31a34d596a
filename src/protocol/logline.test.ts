import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import {
  decodeLogLine,
  encodeLogLine,
  failedWithoutLogLines,
  formatTime,
  goJsonString,
  type LogLine,
  normalizeTime,
  ZERO_TIME,
} from "./logline.ts";

// Copies of spec/examples/events/logs (synthesised from the upstream Go types).
const fixtureDir = new URL("./testdata", import.meta.url).pathname;
const fixture = (name: string): string[] =>
  readFileSync(`${fixtureDir}/${name}`, "utf8")
    .split("\n")
    .filter((l) => l !== "");

describe("decodeLogLine", () => {
  it("reads back every fixture line and every line the encoder writes", () => {
    for (const text of [...fixture("workflow-log.jsonl"), ...fixture("failed-without-logfile.jsonl")]) {
      const line = decodeLogLine(text);
      assert.ok(line, text);
      assert.equal(encodeLogLine(line), text);
    }
    const piece: LogLine = { kind: "data", content: "a<b", time: ZERO_TIME, step_id: 2, partial: true };
    assert.deepEqual(decodeLogLine(encodeLogLine(piece)), piece);
  });

  it("refuses torn, blank and foreign lines; drops fields it does not know", () => {
    const full = encodeLogLine({
      kind: "control",
      content: "build",
      time: ZERO_TIME,
      step_id: 1,
      step_status: "start",
    });
    for (const text of [
      "",
      full.slice(0, -3),
      "null",
      "[]",
      '"text"',
      '{"kind":"other","content":"","time":"","step_id":0}',
      '{"kind":"data","content":1,"time":"","step_id":0}',
      '{"kind":"data","content":"","step_id":0}',
      '{"kind":"data","content":"","time":"","step_id":1.5}',
      '{"kind":"data","content":"","time":"","step_id":0,"stream":"stdin"}',
      '{"kind":"control","content":"","time":"","step_id":0,"step_status":"begin"}',
      '{"kind":"control","content":"","time":"","step_id":0,"step_kind":"1"}',
      '{"kind":"data","content":"","time":"","step_id":0,"partial":"yes"}',
    ]) {
      assert.equal(decodeLogLine(text), undefined, text);
    }
    assert.deepEqual(
      decodeLogLine('{"kind":"data","content":"x","time":"t","step_id":0,"partial":false,"extra":1}'),
      {
        kind: "data",
        content: "x",
        time: "t",
        step_id: 0,
      },
    );
  });
});

describe("encodeLogLine", () => {
  it("reproduces every line of the workflow log fixture byte for byte", () => {
    for (const text of fixture("workflow-log.jsonl")) {
      assert.equal(encodeLogLine(JSON.parse(text) as LogLine), text);
    }
  });

  it("reproduces the failed-without-log-file fixture from failedWithoutLogLines()", () => {
    const lines = failedWithoutLogLines('unknown engine "docker"').map((l) => encodeLogLine(l));
    assert.deepEqual(lines, fixture("failed-without-logfile.jsonl"));
  });

  it("writes fields in struct order and omits empty optional ones", () => {
    const line: LogLine = {
      step_command: "make",
      step_kind: 1,
      step_status: "end",
      stream: "stdout",
      step_id: 3,
      time: "2026-01-01T00:00:00Z",
      content: "x",
      kind: "control",
    };
    assert.equal(
      encodeLogLine(line),
      '{"kind":"control","content":"x","time":"2026-01-01T00:00:00Z","step_id":3,"stream":"stdout","step_status":"end","step_kind":1,"step_command":"make"}',
    );
    assert.equal(
      encodeLogLine({ ...line, stream: undefined, step_kind: 0, step_command: "", content: "" }),
      '{"kind":"control","content":"","time":"2026-01-01T00:00:00Z","step_id":3,"step_status":"end"}',
    );
  });

  it("marks a piece of a longer line with a trailing partial field, only when true", () => {
    const piece: LogLine = { kind: "data", content: "abc", time: ZERO_TIME, step_id: 1, stream: "stdout" };
    const enc = (l: LogLine, plain?: boolean) => encodeLogLine(l, plain);
    assert.equal(
      enc({ ...piece, partial: true }),
      '{"kind":"data","content":"abc","time":"0001-01-01T00:00:00Z","step_id":1,"stream":"stdout","partial":true}',
    );
    assert.equal(enc({ ...piece, partial: true }, true), enc({ ...piece, partial: true }));
    assert.equal(enc({ ...piece, partial: false }), enc(piece));
    assert.deepEqual(JSON.parse(enc({ ...piece, partial: true })), { ...piece, partial: true });
  });

  it("keeps negative step ids (the setup pseudo-step) and sanitises non-integers", () => {
    const base: LogLine = { kind: "data", content: "", time: ZERO_TIME, step_id: -1 };
    assert.match(encodeLogLine(base), /"step_id":-1}$/);
    assert.match(encodeLogLine({ ...base, step_id: Number.NaN }), /"step_id":0}$/);
  });
});

describe("goJsonString", () => {
  it("escapes like Go's HTML-safe encoder", () => {
    assert.equal(goJsonString("<a href='x'>&</a>"), "\"\\u003ca href='x'\\u003e\\u0026\\u003c/a\\u003e\"");
    assert.equal(goJsonString("\u2028\u2029"), '"\\u2028\\u2029"');
  });

  it("uses Go's short escapes for \\b \\f \\n \\r \\t and lowercase \\u00XX for other controls", () => {
    assert.equal(goJsonString("\b\f\n\r\t"), '"\\b\\f\\n\\r\\t"');
    assert.equal(goJsonString("\u0000\u001b\u001f"), '"\\u0000\\u001b\\u001f"');
    assert.equal(goJsonString("\u007f"), '"\u007f"');
    assert.equal(goJsonString('"\\'), '"\\"\\\\"');
  });

  it("writes lone surrogates (invalid UTF-8 on the Go side) as \\ufffd and keeps valid pairs raw", () => {
    assert.equal(goJsonString("a\ud800b"), '"a\\ufffdb"');
    assert.equal(goJsonString("\udc00"), '"\\ufffd"');
    assert.equal(goJsonString("😀"), '"😀"');
    assert.equal(goJsonString("\ufffd"), '"\ufffd"');
  });

  it("does not mistake an escaped backslash followed by text for an escape", () => {
    assert.equal(goJsonString("\\ud800<"), '"\\\\ud800\\u003c"');
    assert.equal(goJsonString("\\\ud800"), '"\\\\\\ufffd"');
  });

  it("always produces JSON that decodes back to the (well-formed) input", () => {
    const samples = ["plain", "<>&", "\u2028x\u2029", "tab\there", "é日本😀", "\\\\<\\"];
    for (const s of samples) assert.equal(JSON.parse(goJsonString(s)), s);
  });
});

describe("formatTime", () => {
  it("trims trailing fractional zeros like Go's RFC3339Nano", () => {
    const d = new Date(Date.UTC(2026, 1, 10, 12, 0, 0, 0));
    assert.equal(formatTime(d), "2026-02-10T12:00:00Z");
    assert.equal(formatTime(d, 1), "2026-02-10T12:00:00.000000001Z");
    assert.equal(formatTime(new Date(d.getTime() + 120)), "2026-02-10T12:00:00.12Z");
    assert.equal(formatTime(new Date(d.getTime() + 5), 500), "2026-02-10T12:00:00.0050005Z");
  });

  it("falls back to the zero time for an invalid date", () => {
    assert.equal(formatTime(new Date(Number.NaN)), ZERO_TIME);
  });
});

describe("normalizeTime", () => {
  it("re-expresses runner times in UTC RFC3339Nano", () => {
    assert.equal(normalizeTime("2026-02-10T12:00:00.000000001Z"), "2026-02-10T12:00:00.000000001Z");
    assert.equal(normalizeTime("2026-02-10T12:00:00.500000000Z"), "2026-02-10T12:00:00.5Z");
    assert.equal(normalizeTime("2026-02-10T13:30:00.123+01:30"), "2026-02-10T12:00:00.123Z");
    assert.equal(normalizeTime("2026-01-01T00:30:00-01:00"), "2026-01-01T01:30:00Z");
    assert.equal(normalizeTime(ZERO_TIME), ZERO_TIME);
  });

  it("refuses text that is not an RFC 3339 time", () => {
    for (const bad of [
      "",
      "yesterday",
      "2026-13-01T00:00:00Z",
      "2026-02-30T00:00:00Z",
      "2026-02-10 12:00:00",
    ]) {
      assert.equal(normalizeTime(bad), undefined, bad);
    }
  });
});
