import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { encodeLogLine, type LogLine } from "../protocol/logline.ts";
import type { RunnerEvent } from "../runner/protocol.ts";
import { workflowId } from "../workflow/resolve.ts";
import { LogFile, logFilePath, MemorySink } from "./logfile.ts";
import { Relay, type RelayError } from "./relay.ts";

const T = "2026-02-10T12:00:00.000000001Z";
const hello: RunnerEvent = { type: "hello", time: T, version: 1, pid: 1, shell: "bash" };
let seq = 0;
const out = (step: number, data: string, stream: "stdout" | "stderr" = "stdout", time = T): RunnerEvent => ({
  type: "output",
  time,
  step,
  stream,
  seq: ++seq,
  data,
});
const start = (
  step: number,
  name: string,
  command: string,
  kind: "system" | "user" = "user",
): RunnerEvent => ({
  type: "step_start",
  time: T,
  step,
  name,
  kind,
  command,
});
const end = (step: number, exitCode = 0): RunnerEvent => ({
  type: "step_end",
  time: T,
  step,
  exitCode,
  durationMs: 1,
  timedOut: false,
  cancelled: false,
});
const jsonl = (events: RunnerEvent[]): string => events.map((e) => `${JSON.stringify(e)}\n`).join("");

function relayOf(events: RunnerEvent[], secrets: string[] = []): { relay: Relay; lines: LogLine[] } {
  const sink = new MemorySink();
  const relay = new Relay({ sink, secrets, now: () => new Date(Date.UTC(2030, 0, 1)) });
  relay.feed(jsonl([hello, ...events]));
  relay.end();
  return { relay, lines: sink.lines };
}
const data = (lines: LogLine[]) => lines.filter((l) => l.kind === "data").map((l) => l.content);

describe("Relay: control lines (§4.3)", () => {
  it("writes one start and one end per step with the name as content and the command on both", () => {
    const { lines } = relayOf([
      start(0, "clone", "git init", "system"),
      end(0),
      start(1, "build", "make"),
      end(1),
    ]);
    assert.deepEqual(lines, [
      {
        kind: "control",
        content: "clone",
        time: T,
        step_id: 0,
        step_status: "start",
        step_command: "git init",
      },
      {
        kind: "control",
        content: "clone",
        time: T,
        step_id: 0,
        step_status: "end",
        step_command: "git init",
      },
      {
        kind: "control",
        content: "build",
        time: T,
        step_id: 1,
        step_status: "start",
        step_kind: 1,
        step_command: "make",
      },
      {
        kind: "control",
        content: "build",
        time: T,
        step_id: 1,
        step_status: "end",
        step_kind: 1,
        step_command: "make",
      },
    ]);
  });

  it("omits step_command for an empty command (the skipped clone step)", () => {
    const { lines } = relayOf([start(1, "", "", "system"), end(1)]);
    assert.equal(lines[0]!.step_command, undefined);
    assert.equal(lines[0]!.content, "");
  });

  it("closes steps left open when the runner's output ends", () => {
    const { lines } = relayOf([start(0, "a", "sleep 9"), out(0, "half a line")]);
    assert.deepEqual(
      lines.map((l) => [l.kind, l.step_status ?? l.content]),
      [
        ["control", "start"],
        ["data", "half a line"],
        ["control", "end"],
      ],
    );
  });

  it("relays the setup pseudo-step -1 on both streams", () => {
    const { lines } = relayOf([
      start(-1, "setup", "", "system"),
      out(-1, "o\n"),
      out(-1, "e", "stderr"),
      end(-1),
    ]);
    assert.deepEqual(
      lines.filter((l) => l.kind === "data").map((l) => [l.step_id, l.stream, l.content]),
      [
        [-1, "stdout", "o"],
        [-1, "stderr", "e"],
      ],
    );
  });
});

describe("Relay: data lines (§4.3)", () => {
  it("splits output into one line each, trims trailing \\r\\n and keeps the stream", () => {
    const { lines } = relayOf([
      start(0, "s", "c"),
      out(0, "one\r\ntwo\n\nthree\r"),
      out(0, "oops\n", "stderr"),
      end(0),
    ]);
    const d = lines.filter((l) => l.kind === "data");
    assert.deepEqual(
      d.map((l) => [l.stream, l.content]),
      [
        ["stdout", "one"],
        ["stdout", "two"],
        ["stdout", ""],
        ["stderr", "oops"],
        ["stdout", "three"],
      ],
    );
    for (const l of d) assert.equal(l.step_kind, undefined);
  });

  it("joins a line written in pieces and flushes a partial line at step end", () => {
    const { lines } = relayOf([start(0, "s", "c"), out(0, "hel"), out(0, "lo\nwor"), out(0, "ld"), end(0)]);
    assert.deepEqual(data(lines), ["hello", "world"]);
    assert.equal(lines.at(-1)!.step_status, "end");
  });

  it("keeps embedded carriage returns (progress bars) and only trims trailing ones", () => {
    const { lines } = relayOf([start(0, "s", "c"), out(0, "10%\r50%\r100%\r\r\n"), end(0)]);
    assert.deepEqual(data(lines), ["10%\r50%\r100%"]);
  });

  it("uses the runner's event time in Go's RFC3339Nano form, or the relay clock if unusable", () => {
    const { lines } = relayOf([
      start(0, "s", "c"),
      out(0, "a\n", "stdout", "2026-02-10T13:00:00.500000000+01:00"),
      out(0, "b\n", "stdout", "not a time"),
      end(0),
    ]);
    assert.deepEqual(
      lines.filter((l) => l.kind === "data").map((l) => l.time),
      ["2026-02-10T12:00:00.5Z", "2030-01-01T00:00:00Z"],
    );
  });

  it("cuts a line over the limit into bounded pieces marked partial, without losing a character", () => {
    const big = "x".repeat(1 << 20);
    const sink = new MemorySink();
    const relay = new Relay({ sink, secrets: [], maxLineBytes: 64 << 10 });
    relay.feed(jsonl([hello, start(0, "s", "c")]));
    for (let i = 0; i < big.length; i += 100_000) relay.feed(jsonl([out(0, big.slice(i, i + 100_000))]));
    relay.feed(jsonl([out(0, "\n"), end(0)]));
    const d = sink.lines.filter((l) => l.kind === "data");
    assert.ok(d.every((l) => l.content.length <= 64 << 10));
    assert.equal(d.map((l) => l.content).join(""), big);
    // Every piece but the last says the line goes on; no piece is a line of its own.
    assert.deepEqual(
      d.map((l) => l.partial === true),
      d.map((_, i) => i < d.length - 1),
    );
  });

  it("never cuts inside a UTF-8 sequence", () => {
    const sink = new MemorySink();
    const relay = new Relay({ sink, secrets: [], maxLineBytes: 5 });
    relay.feed(jsonl([hello, start(0, "s", "c"), out(0, "abcd😀efgh"), end(0)]));
    assert.deepEqual(data(sink.lines), ["abcd", "😀e", "fgh"]);
  });
});

describe("Relay: long lines (issue 12, item 7)", () => {
  /** Runner stdout for one step printing `text`, cut into output events at `eventCuts`. */
  const stdoutOf = (text: string, eventCuts: number[]): Buffer => {
    const events: RunnerEvent[] = [hello, start(0, "s", "c")];
    let at = 0;
    for (const cut of [...eventCuts, text.length]) {
      events.push(out(0, text.slice(at, cut)));
      at = cut;
    }
    events.push(end(0));
    return Buffer.from(jsonl(events));
  };
  const relayChunked = (input: Buffer, feed: number, secrets: string[], maxLineBytes?: number) => {
    const sink = new MemorySink();
    const relay = new Relay({ sink, secrets, ...(maxLineBytes ? { maxLineBytes } : {}) });
    for (let i = 0; i < input.length; i += feed) relay.feed(input.subarray(i, i + feed));
    relay.end();
    return sink.lines.filter((l) => l.kind === "data");
  };
  function rng(seed: number): (n: number) => number {
    let s = seed;
    return (n) => {
      s = (s * 1103515245 + 12345) & 0x7fffffff;
      return (s >>> 8) % n;
    };
  }
  const randomCuts = (r: (n: number) => number, length: number): number[] => {
    const cuts = new Set<number>();
    for (let i = r(12); i > 0; i--) cuts.add(1 + r(length - 1));
    return [...cuts].sort((a, b) => a - b);
  };

  it("relays a 200,000-character line as one line, whatever the chunking", () => {
    let line = "";
    for (let i = 0; line.length < 200_000; i++) line += `${i % 10}é→`;
    line = line.slice(0, 200_000);
    const r = rng(7);
    for (let run = 0; run < 8; run++) {
      const input = stdoutOf(`${line}\nnext\n`, randomCuts(r, line.length));
      const lines = relayChunked(input, 1 + r(70_000), []);
      assert.deepEqual(
        lines.map((l) => [l.content, l.partial]),
        [
          [line, undefined],
          ["next", undefined],
        ],
      );
    }
  });

  it("cuts an over-long line at the same points for every chunking, masking a secret across a cut", () => {
    const secret = "s3cr3t-straddling-the-cut";
    const max = 1000;
    // The secret starts 10 bytes before each multiple of `max`; multi-byte characters around.
    let line = "";
    while (line.length < 5 * max) {
      const fill = max - 10 - (Buffer.byteLength(line) % max);
      line += `${"é".repeat(Math.floor(fill / 2))}${fill % 2 ? "x" : ""}${secret}`;
    }
    const r = rng(11);
    let first: string | undefined;
    for (let run = 0; run < 10; run++) {
      const input = stdoutOf(`${line}\n`, randomCuts(r, line.length));
      const lines = relayChunked(input, 1 + r(9000), [secret], max);
      const joined = lines.map((l) => l.content).join("");
      assert.equal(joined, line.replaceAll(secret, "***"));
      assert.ok(lines.length > 1);
      assert.ok(lines.every((l) => Buffer.byteLength(l.content) <= max));
      assert.ok(
        lines.every((l) => !l.content.includes("\ufffd")),
        "a cut split a UTF-8 sequence",
      );
      assert.ok(
        lines.every((l) => !l.content.endsWith("*") || l.content.endsWith("***")),
        "a cut split a mask",
      );
      assert.deepEqual(
        lines.map((l) => l.partial === true),
        lines.map((_, i) => i < lines.length - 1),
      );
      const shape = JSON.stringify(lines.map((l) => l.content));
      first ??= shape;
      assert.equal(shape, first, `run ${run} cut the line elsewhere`);
    }
  });

  it("cuts the same through the encoding sink as through the object sink", async () => {
    const dir = await mkdtemp(join(tmpdir(), "loom-relay-long-"));
    try {
      const line = "ab".repeat(40_000);
      const input = stdoutOf(`short\n${line}\nend\n`, [3, 70_000]);
      const file = await LogFile.open(dir, "w");
      const relay = new Relay({ sink: file, secrets: [], maxLineBytes: 30_000 });
      relay.feed(input);
      relay.end();
      await file.close();
      const stored = (await readFile(file.path, "utf8"))
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l) as LogLine)
        .filter((l) => l.kind === "data");
      assert.deepEqual(stored, relayChunked(input, 17, [], 30_000));
      assert.deepEqual(
        stored.map((l) => [l.content.length, l.partial]),
        [
          [5, undefined],
          [30_000, true],
          [30_000, true],
          [20_000, undefined],
          [3, undefined],
        ],
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("Relay: event lines as bytes", () => {
  const relayBytes = (lines: string[], secrets: string[] = []) => {
    const sink = new MemorySink();
    const relay = new Relay({ sink, secrets });
    relay.feed(jsonl([hello, start(1, "build", "make")]));
    for (const l of lines) relay.feed(Buffer.from(`${l}\n`, "utf8"));
    relay.end();
    assert.equal(relay.errorCount, 0, relay.errors[0]?.message);
    return sink.lines;
  };
  const outLine = (data: string) =>
    `{"type":"output","time":"${T}","step":1,"stream":"stdout","seq":1,"data":${data}}`;

  it("reads non-ASCII output raw, escaped (\\u00e9) or mixed the same", () => {
    const lines = relayBytes([
      outLine('"é → ✓\\n"'),
      outLine('"\\u00e9 \\u2192 \\u2713\\n"'),
      outLine('"é \\u2192 ✓\\n"'),
    ]);
    assert.deepEqual(data(lines), ["é → ✓", "é → ✓", "é → ✓"]);
  });

  it("joins a surrogate pair split across two output events", () => {
    assert.deepEqual(data(relayBytes([outLine('"a \\ud83d"'), outLine('"\\ude00 b\\n"')])), ["a 😀 b"]);
  });

  it("keeps a step name outside ASCII as text", () => {
    const sink = new MemorySink();
    const relay = new Relay({ sink, secrets: [] });
    relay.feed(jsonl([hello]));
    relay.feed(Buffer.from(`${JSON.stringify(start(1, "Bauen ✓ 😀", "make ✓"))}\n`, "utf8"));
    relay.end();
    assert.equal(sink.lines[0]?.content, "Bauen ✓ 😀");
    assert.equal(sink.lines[0]?.step_command, "make ✓");
  });

  it("masks secrets outside ASCII, raw and as base64, in raw and in escaped output", () => {
    const secret = "pässwörd→😀";
    const b64 = Buffer.from(secret).toString("base64");
    const lines = relayBytes(
      [
        outLine(JSON.stringify(`x ${secret} y ${b64}\n`)),
        outLine(`"\\u00e9 ${"p\\u00e4ssw\\u00f6rd\\u2192\\ud83d\\ude00"}\\n"`),
      ],
      [secret],
    );
    assert.deepEqual(data(lines), ["x *** y ***", "é ***"]);
  });
});

describe("Relay: control characters held from earlier output", () => {
  // Output arrives in events; a control character can sit in a partial line or in text the
  // masker holds back, and the next event's escapes say nothing about it.
  const encodedBoth = (datas: string[], secrets: string[]) => {
    let batched = "";
    let perLine = "";
    for (const [mode, events] of [
      ["batched", datas],
      ["perLine", datas],
    ] as const) {
      const relay = new Relay({
        secrets,
        sink: {
          backlog: 0,
          flush: () => Promise.resolve(),
          write: (l, plain) => {
            const text = `${encodeLogLine(l, plain)}\n`;
            if (mode === "batched") batched += text;
            else perLine += text;
          },
          ...(mode === "batched" && {
            writeEncoded: (utf8: string) => {
              batched += Buffer.from(utf8, "latin1").toString("utf8");
            },
          }),
        },
      });
      relay.feed(jsonl([hello, start(1, "build", "make"), ...events.map((d) => out(1, d))]));
      relay.end();
    }
    return { batched, perLine };
  };

  it("in a partial line", () => {
    const { batched, perLine } = encodedBoth(["abc\x01", "def\n", "\x02x\n"], []);
    assert.equal(batched, perLine);
    assert.match(batched, /"content":"abc\\u0001def"/);
  });

  it("in a secret's possible start held by the masker", () => {
    const { batched, perLine } = encodedBoth(["a\x02", "c\n"], ["a\x02b"]);
    assert.equal(batched, perLine);
    assert.match(batched, /"content":"a\\u0002c"/);
  });
});

describe("Relay: output for many steps at once (a runner bug)", () => {
  it("flushes earlier streams instead of keeping a masker per step forever", () => {
    const events: RunnerEvent[] = [];
    for (let i = 0; i < 1000; i++) events.push(out(i, `p${i}`));
    const { lines } = relayOf(events);
    assert.equal(data(lines).length, 1000);
    assert.deepEqual(data(lines).slice(0, 2), ["p0", "p1"]);
  });

  it("ends a step the runner never ended when the next one starts", () => {
    const { lines } = relayOf([
      start(0, "a", "x"),
      out(0, "no newline"),
      start(1, "b", "y"),
      out(1, "b\n"),
      end(1),
    ]);
    assert.deepEqual(
      lines.map((l) => [l.step_id, l.kind, l.step_status ?? l.content]),
      [
        [0, "control", "start"],
        [0, "data", "no newline"],
        [0, "control", "end"],
        [1, "control", "start"],
        [1, "data", "b"],
        [1, "control", "end"],
      ],
    );
  });
});

describe("Relay: second masking pass (§5.3)", () => {
  const secret = "hunter2-s3cret";
  const b64 = Buffer.from(secret).toString("base64"); // has "=" padding
  it("masks the value, its base64 and its unpadded base64 in data lines", () => {
    assert.ok(b64.endsWith("="));
    const { lines } = relayOf(
      [
        start(0, "s", `echo ${secret}`),
        out(0, `v=${secret} b=${b64} u=${b64.replace(/=+$/, "")}.\n`),
        end(0),
      ],
      [secret],
    );
    assert.deepEqual(data(lines), ["v=*** b=*** u=***."]);
  });

  it("does not mask control lines (step_command keeps its text)", () => {
    const { lines } = relayOf([start(0, "s", `echo ${secret}`), end(0)], [secret]);
    assert.equal(lines[0]!.step_command, `echo ${secret}`);
  });

  it("masks a secret split across output events, per stream", () => {
    const { lines } = relayOf(
      [
        start(0, "s", "c"),
        out(0, "a hun"),
        out(0, "noise", "stderr"),
        out(0, "ter2-s3"),
        out(0, "cret b\n"),
        end(0),
      ],
      [secret],
    );
    assert.deepEqual(data(lines), ["a *** b", "noise"]);
  });

  it("masks every one of 50 secrets and ignores empty ones", () => {
    const secrets = Array.from({ length: 50 }, (_, i) => `secret-${i}-value`);
    const text = `${secrets.join(" ")}\n`;
    const { lines } = relayOf([start(0, "s", "c"), out(0, text), end(0)], [...secrets, ""]);
    assert.equal(data(lines)[0], Array(50).fill("***").join(" "));
  });
});

describe("Relay: every form of a secret users print (issue 12)", () => {
  const token = "ghp_R8xTq2LmZ0pW7vKc";
  const pem = "-----BEGIN KEY-----\nQyNTUxOQAAACBnJXH3Lx0dUEdwoNiTRbN5c1a7\n-----END KEY-----\n";
  const quoted = 'pä"ss\\wörd→';
  const secrets = [token, pem, quoted];
  const b = (s: string) => Buffer.from(s).toString("base64");
  const output = [
    `raw ${token}`,
    `b64@0 ${b(`${token}xyz`)}`,
    `b64@1 ${b(`x${token}yz`)}`,
    `b64@2 ${b(`xy${token}z`)}`,
    `basic Authorization: Basic ${b(`x-access-token:${token}`)}`,
    `pem ${pem.split("\n")[1]}`,
    `json ${JSON.stringify({ quoted })}`,
  ]
    .map((l) => `${l}\n`)
    .join("");
  const leaks = (lines: string[]) => {
    const all = lines.join("\n");
    return [token, pem.split("\n")[1]!, JSON.stringify(quoted).slice(1, -1), b(token).slice(0, 12)].filter(
      (v) => all.includes(v),
    );
  };

  it("masks the raw value, base64 at offsets 0/1/2, Basic auth, a PEM line and JSON-escaped text", () => {
    const { lines } = relayOf([start(0, "s", "c"), out(0, output), end(0)], secrets);
    const got = data(lines);
    assert.equal(got.length, 7);
    for (const line of got) assert.match(line, /\*\*\*/, line);
    assert.deepEqual(leaks(got), []);
    assert.equal(got[6], 'json {"quoted":"***"}');
  });

  it("masks them split across output events at every point, and across chunks of the runner's stdout", () => {
    const whole = data(relayOf([start(0, "s", "c"), out(0, output), end(0)], secrets).lines);
    assert.deepEqual(leaks(whole), []);
    for (let cut = 1; cut < output.length; cut += 3) {
      const { lines } = relayOf(
        [start(0, "s", "c"), out(0, output.slice(0, cut)), out(0, output.slice(cut)), end(0)],
        secrets,
      );
      assert.deepEqual(data(lines), whole, `cut at ${cut}`);
    }
    // The event stream itself fed in pieces of every size from 1 to 97 bytes.
    const bytes = Buffer.from(
      jsonl([hello, start(0, "s", "c"), ...[...output].map((c) => out(0, c)), end(0)]),
    );
    for (const size of [1, 2, 3, 7, 64, 97]) {
      const sink = new MemorySink();
      const relay = new Relay({ sink, secrets });
      for (let i = 0; i < bytes.length; i += size) relay.feed(bytes.subarray(i, i + size));
      relay.end();
      assert.deepEqual(data(sink.lines), whole, `pieces of ${size}`);
    }
  });
});

describe("Relay: bad runner output", () => {
  it("turns non-JSON and invalid events into errors without quoting them, and carries on", () => {
    const sink = new MemorySink();
    const relay = new Relay({ sink, secrets: ["topsecret"] });
    relay.feed(`${JSON.stringify(hello)}\nnot json topsecret\n{"type":"mystery","time":"x"}\n[1]\n`);
    relay.feed(jsonl([start(0, "s", "c"), end(0)]));
    relay.end();
    assert.equal(relay.errorCount, 3);
    assert.deepEqual(
      relay.errors.map((e) => e.code),
      ["malformed_event", "invalid_event", "invalid_event"],
    );
    assert.ok(relay.errors.every((e) => !e.message.includes("topsecret")));
    assert.equal(relay.fatal, undefined);
    assert.equal(sink.lines.length, 2);
  });

  it("refuses a hello with an unknown protocol version and stops relaying", () => {
    const fatal: RelayError[] = [];
    const sink = new MemorySink();
    const relay = new Relay({ sink, secrets: [], onFatal: (e) => fatal.push(e) });
    relay.feed(jsonl([{ ...hello, version: 2 } as RunnerEvent, start(0, "s", "c")]));
    assert.equal(fatal.length, 1);
    assert.equal(fatal[0]!.code, "unsupported_version");
    assert.match(fatal[0]!.message, /version 2.*version 1/);
    assert.equal(sink.lines.length, 0);
  });

  it("refuses a runner that does not start with hello", () => {
    const sink = new MemorySink();
    const relay = new Relay({ sink, secrets: [] });
    relay.feed(jsonl([start(0, "s", "c")]));
    assert.equal(relay.fatal?.code, "no_hello");
  });

  it("drops an over-long event line and relays the next one", () => {
    const sink = new MemorySink();
    const relay = new Relay({ sink, secrets: [], maxEventBytes: 1000 });
    relay.feed(jsonl([hello, start(0, "s", "c")]));
    const long = JSON.stringify(out(0, "y".repeat(5000)));
    relay.feed(long.slice(0, 600));
    relay.feed(long.slice(600, 3000));
    relay.feed(`${long.slice(3000)}\n`);
    relay.feed(jsonl([out(0, "ok\n")]));
    relay.end();
    assert.equal(relay.errors[0]?.code, "event_too_long");
    assert.deepEqual(data(sink.lines), ["ok"]);
  });

  it("survives random binary on its input", () => {
    const sink = new MemorySink();
    const relay = new Relay({ sink, secrets: ["s3"] });
    relay.feed(jsonl([hello]));
    let x = 12345;
    const junk = Buffer.alloc(1 << 16);
    for (let i = 0; i < junk.length; i++) {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      junk[i] = x & 0xff;
    }
    relay.feed(junk);
    relay.feed("\n");
    relay.end();
    assert.ok(relay.errorCount > 0);
    assert.equal(relay.fatal, undefined);
  });

  it("relays invalid UTF-8 the runner replaced with U+FFFD, and lone surrogates, as valid JSON", () => {
    const sink = new MemorySink();
    const relay = new Relay({ sink, secrets: [] });
    relay.feed(jsonl([hello, start(0, "s", "c")]));
    // A raw invalid byte inside a JSON string (a buggy runner) decodes to U+FFFD.
    relay.feed(
      Buffer.concat([
        Buffer.from('{"type":"output","time":"x","step":0,"stream":"stdout","seq":1,"data":"a'),
        Buffer.from([0xff]),
        Buffer.from('\\ud800b\\n"}\n'),
      ]),
    );
    relay.end();
    assert.deepEqual(data(sink.lines), ["a\ufffd\ud800b"]);
  });

  it("relays 200 MB of output in bounded memory", () => {
    let count = 0;
    let bytes = 0;
    const sink = {
      backlog: 0,
      flush: () => Promise.resolve(),
      write: (l: LogLine) => {
        count++;
        bytes += l.content.length;
      },
    };
    const relay = new Relay({ sink, secrets: ["abcdefgh"] });
    relay.feed(jsonl([hello, start(0, "s", "c")]));
    const chunk = Buffer.from(jsonl([out(0, `${"z".repeat(1023)}\n`.repeat(64)), out(0, "q".repeat(65536))]));
    const before = process.memoryUsage().heapUsed;
    let peak = 0;
    for (let sent = 0; sent < 200 << 20; sent += chunk.length) {
      relay.feed(chunk);
      if ((sent & 0xffffff) < chunk.length) peak = Math.max(peak, process.memoryUsage().heapUsed - before);
    }
    relay.end();
    assert.ok(bytes >= 190 << 20, `relayed ${bytes}`);
    assert.ok(peak < 64 << 20, `heap grew by ${peak}`);
    assert.ok(count > 0);
  });
});

describe("Relay: idleMs (for the engine's heartbeat watchdog)", () => {
  it("counts time since the runner last wrote, and not while the relay waits for its sink", async () => {
    let release = () => {};
    const sink = {
      backlog: 2 << 20,
      write: () => {},
      flush: () => new Promise<void>((r) => (release = r)),
    };
    const relay = new Relay({ sink, secrets: [] });
    relay.feed(jsonl([hello]));
    const t = performance.now();
    assert.ok(relay.idleMs(t + 5000) >= 4999);
    const pumped = relay.pump([jsonl([start(0, "s", "c")])]);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(relay.idleMs(performance.now() + 5000), 0);
    release();
    await new Promise((r) => setTimeout(r, 0));
    release();
    await pumped;
    assert.ok(relay.idleMs(performance.now() + 5000) >= 4999);
  });
});

describe("LogFile", () => {
  it("appends encoded lines to <logDir>/<wid>.log across reopenings", async () => {
    const dir = await mkdtemp(join(tmpdir(), "loom-relay-"));
    try {
      const wid = "knot.example.com-3lxyz-build.yml";
      for (const step of [0, 1]) {
        const file = await LogFile.open(join(dir, "logs"), wid);
        const relay = new Relay({ sink: file, secrets: ["pw"] });
        await relay.pump([jsonl([hello, start(step, "s", "c"), out(step, "pw <ok>\n"), end(step)])]);
        await file.close();
        await file.close();
      }
      const text = await readFile(join(dir, "logs", `${wid}.log`), "utf8");
      const lines = text.trimEnd().split("\n");
      assert.equal(lines.length, 6);
      assert.equal(
        lines[1],
        `{"kind":"data","content":"*** \\u003cok\\u003e","time":"${T}","step_id":0,"stream":"stdout"}`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("writes lines larger than its batch buffer, and many lines across batches, intact", async () => {
    const dir = await mkdtemp(join(tmpdir(), "loom-relay-"));
    try {
      const file = await LogFile.open(dir, "big");
      const huge = "\u0001é<".repeat(100_000);
      const lines: LogLine[] = [];
      for (let i = 0; i < 5000; i++)
        lines.push({ kind: "data", content: `line ${i} ✓`, time: T, step_id: 0, stream: "stdout" });
      lines.splice(2500, 0, { kind: "data", content: huge, time: T, step_id: 0, stream: "stderr" });
      for (const l of lines) file.write(l);
      await file.close();
      const back = (await readFile(file.path, "utf8"))
        .trimEnd()
        .split("\n")
        .map((t) => JSON.parse(t) as LogLine);
      assert.deepEqual(back, lines);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("names the file by the §4.3 workflow id rule", () => {
    const wid = workflowId("localhost:3000", "3kxyz", "build & test.yml");
    assert.equal(wid, "localhost-3000-3kxyz-build---test.yml");
    assert.equal(
      logFilePath("/var/log/spindle", wid),
      "/var/log/spindle/localhost-3000-3kxyz-build---test.yml.log",
    );
  });

  it("refuses workflow ids that would escape the log directory", () => {
    for (const bad of ["", ".", "..", "a/b", "..\\x", "a\0b"]) assert.throws(() => logFilePath("/logs", bad));
    assert.equal(logFilePath("/logs", "k-r-w"), "/logs/k-r-w.log");
  });
});
