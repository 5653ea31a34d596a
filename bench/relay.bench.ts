/**
 * Relay throughput: a synthetic runner event stream (16 KiB output chunks of log-like text with
 * secrets sprinkled in, as the runner emits them) through the relay's JSON parsing, the second
 * masking pass with 50 secrets, line splitting and LogLine encoding — once into memory, once into
 * a real log file. MB/s counts step output bytes. Target: at least 100 MB/s. The log file's
 * close (one fsync of the whole log, when the workflow ends) is timed apart: it is the disk's
 * speed, not the relay's, and lines are readable by /logs followers before it.
 * A third figure: the same in memory with 200,000-character lines (each a dozen output events
 * long, a secret inside some), which take the relay's path for lines longer than one event.
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { encodeLogLine, type LogLine } from "../src/protocol/logline.ts";
import { LogFile } from "../src/relay/logfile.ts";
import { Relay } from "../src/relay/relay.ts";
import type { LogSink } from "../src/relay/sink.ts";

const SECRETS = Array.from(
  { length: 50 },
  (_, i) => `sk_live_${i.toString(36)}_${"Qx7Lp2Vm9Rt4".repeat(2)}${i}`,
);
const TOTAL = 128 << 20;
const CHUNK = 16 << 10;
/** Log-like lines of the kinds CI steps print (compilers, test runners, package managers). */
const TEMPLATES: ((n: number) => string)[] = [
  (n) =>
    `   Compiling serde_derive v1.0.${n % 200} (/home/ci/.cargo/registry/src/index.crates.io-6f17d22bba15001f/serde_derive)`,
  (n) =>
    `ok  \tgithub.com/example/module/pkg/server${n % 9}\t0.${n % 1000}s\tcoverage: ${n % 100}.2% of statements`,
  (n) =>
    `npm warn deprecated inflight@1.0.${n % 10}: This module is not supported, and leaks memory → use lru-cache`,
  (n) =>
    `[2026-02-10T12:00:${n % 60}Z] INFO  request handled path=/api/v1/items/${n} status=200 dur=${n % 97}µs`,
  (n) => `PASS src/relay/relay${n % 31}.test.ts (${n % 9}.${n % 7} s)`,
  (n) => `go: downloading golang.org/x/sys v0.${n % 40}.0`,
  () => "",
];
/** Newline-delimited runner events carrying about `bytes` of step output. */
function eventStream(bytes: number): { buf: Buffer; output: number; lines: number } {
  let seed = 42;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const events: string[] = [];
  let output = 0;
  let seq = 0;
  let lines = 0;
  while (output < bytes) {
    let data = "";
    while (data.length < CHUNK) {
      const n = rand(1 << 20);
      let line = TEMPLATES[n % TEMPLATES.length]!(n);
      if (rand(50) === 0) line += ` token=${SECRETS[rand(SECRETS.length)]}`;
      data += `${line}\n`;
      lines++;
    }
    output += Buffer.byteLength(data);
    const ev = {
      type: "output",
      time: "2026-02-10T12:00:00.123456789Z",
      step: 1,
      stream: "stdout",
      seq: ++seq,
      data,
    };
    events.push(JSON.stringify(ev));
  }
  return { buf: Buffer.from(`${events.join("\n")}\n`), output, lines };
}

/** Output of 200,000-character lines (a JSON dump, a minified bundle) in CHUNK-sized events. */
function longLineStream(bytes: number): { buf: Buffer; output: number; lines: number } {
  const words = 'data-chunk minified(function(){return 42}) "key":"value", '.repeat(4000);
  let text = "";
  let lines = 0;
  for (let n = 0; text.length < bytes; n++, lines++) {
    const line = words.slice(n % 50, (n % 50) + 200_000);
    text +=
      n % 3 === 0
        ? `${line.slice(0, 100_000)}${SECRETS[n % SECRETS.length]}${line.slice(100_000)}\n`
        : `${line}\n`;
  }
  const events: string[] = [];
  let seq = 0;
  for (let at = 0; at < text.length; at += CHUNK) {
    const data = text.slice(at, at + CHUNK);
    events.push(
      JSON.stringify({
        type: "output",
        time: "2026-02-10T12:00:00.123456789Z",
        step: 1,
        stream: "stdout",
        seq: ++seq,
        data,
      }),
    );
  }
  return { buf: Buffer.from(`${events.join("\n")}\n`), output: Buffer.byteLength(text), lines };
}

const HEAD = `${JSON.stringify({ type: "hello", time: "2026-02-10T12:00:00Z", version: 1, pid: 1, shell: "bash" })}\n${JSON.stringify({ type: "step_start", time: "2026-02-10T12:00:00Z", step: 1, name: "build", kind: "user", command: "make" })}\n`;

async function measure(
  label: string,
  sinkFor: () => Promise<{ sink: LogSink; done: () => Promise<number> }>,
  /** What `done` adds after the last line is written (said apart from the relay's figure). */
  doneIs?: string,
  sample = eventStream(8 << 20),
) {
  const rounds = Math.ceil(TOTAL / sample.output);
  const { sink, done } = await sinkFor();
  const relay = new Relay({ sink, secrets: SECRETS });
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  // Pipe-sized pieces, one per turn of the event loop, as a child's stdout delivers them; through
  // Relay.pump, which waits for the sink as the engines do.
  async function* stdout(): AsyncGenerator<Buffer> {
    yield Buffer.from(HEAD);
    for (let i = 0; i < rounds; i++) {
      for (let off = 0; off < sample.buf.length; off += 64 << 10) {
        await new Promise(setImmediate);
        yield sample.buf.subarray(off, off + (64 << 10));
      }
    }
  }
  // pump returns once every line is written (for a file: in the page cache, readable by /logs).
  await relay.pump(stdout());
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const t1 = performance.now();
  const written = await done();
  const doneSecs = (performance.now() - t1) / 1000;
  const cpuSecs = (cpu.user + cpu.system) / 1e6;
  const mb = (sample.output * rounds) / 1e6;
  if (relay.errorCount > 0) throw new Error(`relay errors: ${relay.errors[0]?.message}`);
  const lines = sample.lines * rounds;
  console.log(
    `relay + masking ${label}: ${(mb / secs).toFixed(0)} MB/s, ${count(lines / secs)} lines/s with ${SECRETS.length} secrets (target ≥ 100 MB/s; ${mb.toFixed(0)} MB, ${count(lines)} lines in ${secs.toFixed(2)} s; ${(mb / cpuSecs).toFixed(0)} MB per CPU-second; ${(written / 1e6).toFixed(0)} MB of log lines, ${(sample.output / sample.lines).toFixed(0)} B/line)`,
  );
  if (doneIs)
    console.log(
      `  then ${doneIs}: ${doneSecs.toFixed(2)} s for ${(written / 1e6).toFixed(0)} MB (${(written / 1e6 / doneSecs).toFixed(0)} MB/s; ${(mb / (secs + doneSecs)).toFixed(0)} MB/s of output with it)`,
    );
}

/** 2.0 M, 670 k or 12: a count as read at a glance. */
const count = (n: number): string =>
  n >= 1e5 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0);

/** How busy and how fast this machine is right now, so a figure can be read in context. */
function machine(): string {
  const src = Buffer.alloc(64 << 20, 1);
  const t0 = performance.now();
  Buffer.from(src);
  const gbs = (src.length / 1e9 / ((performance.now() - t0) / 1000)).toFixed(1);
  return `machine: memcpy ${gbs} GB/s, ${cpus().length} CPUs, load average ${loadavg()[0]!.toFixed(1)}`;
}

/** A sink that counts encoded bytes and checks a prefix of them for a secret. */
async function memorySink(): Promise<{ sink: LogSink; done: () => Promise<number> }> {
  let bytes = 0;
  let leaked = false;
  const sink = {
    backlog: 0,
    flush: () => Promise.resolve(),
    write(line: LogLine, plain?: boolean) {
      const text = encodeLogLine(line, plain);
      bytes += text.length + 1;
      // Checking every line would measure String.includes; a prefix of the run is enough.
      if (bytes < 4 << 20 && text.includes("sk_live_")) leaked = true;
    },
    writeEncoded(utf8: string) {
      bytes += utf8.length;
      if (bytes < 4 << 20 && utf8.includes("sk_live_")) leaked = true;
    },
  };
  return {
    sink,
    done: async () => {
      if (leaked) throw new Error("a secret reached the log");
      return bytes;
    },
  };
}

export async function main(): Promise<void> {
  console.log(machine());
  await measure("in memory", memorySink);
  await measure("in memory, 200,000-character lines", memorySink, undefined, longLineStream(8 << 20));
  const dir = await mkdtemp(join(tmpdir(), "loom-relay-bench-"));
  try {
    await measure(
      "to a log file",
      async () => {
        const file = await LogFile.open(dir, "bench.knot-3abc-build.yml");
        return {
          sink: file,
          done: async () => {
            await file.close();
            return (await stat(file.path)).size;
          },
        };
      },
      "close with fsync (the disk: a log is made durable once, when its workflow ends)",
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
