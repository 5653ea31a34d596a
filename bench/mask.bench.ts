/**
 * Masking throughput with 50 secrets (each as its value, base64 with and without padding, base64
 * at the three offsets inside longer encoded text, those broken at every phase of 64- and
 * 76-column wrapping, URL-safe forms, JSON-escaped forms: about 12,000 patterns).
 *   mask:  the StreamMasker alone, 64 KiB writes of log-like text.
 *   mask, encoded secrets: the same, with the secrets printed inside HTTP Basic headers
 *          (base64 of `user:secret`, the secret at another offset) instead of raw.
 *   mask, varied secrets: 45 passwords with punctuation (their base64 has `+` and `/`, so the
 *          URL-safe forms count) and 5 PEM keys (each line a pattern with all its forms, base64
 *          wrapped at 64 and 76 columns): the pattern set of a repo with keys, about 20 times larger.
 *   runner-output: the runner's whole output path — a real child writing 200 MB through a pipe,
 *          UTF-8 decode, masking, JSON-lines output events — into a sink that drops them.
 * Target: at least 100 MB/s.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { Masker } from "../src/mask/masker.ts";
import { Runner } from "../src/runner/runner.ts";

const SECRETS = 50;

function secrets(): string[] {
  return Array.from({ length: SECRETS }, (_, i) => randomBytes(12 + (i % 24)).toString("base64url"));
}

/** 45 passwords of printable ASCII with punctuation and 5 multi-line PEM keys (25 lines of 64). */
function variedSecrets(): string[] {
  const printable = (n: number) =>
    [...randomBytes(n)].map((b) => String.fromCharCode(33 + (b % 94))).join("");
  const pem = () =>
    `-----BEGIN PRIVATE KEY-----\n${Array.from({ length: 25 }, () => randomBytes(48).toString("base64")).join("\n")}\n-----END PRIVATE KEY-----\n`;
  return [
    ...Array.from({ length: 45 }, (_, i) => printable(12 + (i % 24))),
    ...Array.from({ length: 5 }, pem),
  ];
}

/** A PEM key shows up one line at a time; a password whole. */
const oneLine = (secret: string) => (secret.includes("\n") ? secret.split("\n")[3]! : secret);

/** Log-like text: words, paths, timestamps, and a secret about every 100 KB. */
function logText(values: string[], bytes: number, form: (secret: string) => string = (v) => v): string {
  const words = "the build step compiling src/main.ts npm WARN deprecated 2026-11-27T16:10:16Z info ok".split(
    " ",
  );
  const parts: string[] = [];
  let n = 0;
  let seed = 1;
  const next = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  while (n < bytes) {
    const w =
      next() < 0.0002
        ? form(values[Math.floor(next() * values.length)]!)
        : words[Math.floor(next() * words.length)]!;
    const sep = next() < 0.1 ? "\n" : " ";
    parts.push(w, sep);
    n += w.length + 1;
  }
  return parts.join("");
}

interface Rate {
  /** MB per second of wall time. */
  wall: number;
  /** MB per second of this process's CPU time: steadier than wall time on a shared machine. */
  cpu: number;
}

function rate(bytes: number, t0: number, c0: NodeJS.CpuUsage): Rate {
  const c = process.cpuUsage(c0);
  return {
    wall: bytes / 1e6 / ((performance.now() - t0) / 1000),
    cpu: bytes / 1e6 / ((c.user + c.system) / 1e6),
  };
}

const show = (r: Rate) => `${r.wall.toFixed(0)} MB/s (${r.cpu.toFixed(0)} MB per CPU-second)`;

function maskerThroughput(values: string[], form?: (secret: string) => string): Rate {
  const masker = new Masker(values);
  const text = logText(values, 64 * 1024 * 1024, form);
  // Warm the JIT on the first 8 MiB, as a long-running relay would be, then measure one pass.
  const warm = masker.stream();
  for (let i = 0; i < 8 * 1024 * 1024; i += 65536) warm.write(text.slice(i, i + 65536));
  const s = masker.stream();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let out = 0;
  for (let i = 0; i < text.length; i += 65536) out += s.write(text.slice(i, i + 65536)).length;
  out += s.end().length;
  const r = rate(text.length, t0, c0);
  if (out >= text.length) throw new Error("no secret was masked: the benchmark text is wrong");
  return r;
}

async function relayThroughput(values: string[]): Promise<Rate> {
  const bytes = 200 * 1024 * 1024;
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
  values.forEach((v, i) => {
    env[`LOOM_SECRET_S${i}`] = v;
  });
  const sink = new Writable({
    decodeStrings: false,
    write(_chunk, _enc, cb) {
      cb();
    },
  });
  const ws = mkdtempSync(join(tmpdir(), "loom-bench-"));
  try {
    const runner = new Runner({ env, out: sink });
    // The child replays an 8 MiB log 25 times with `cat` (128 KiB writes from the page cache),
    // so the producer is cheap and the figure is the runner's.
    const piece = 8 * 1024 * 1024;
    writeFileSync(join(ws, "log.txt"), logText(values, piece).slice(0, piece));
    const times = Math.round(bytes / piece);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const result = await runner.run({
      version: 1,
      workspace: ws,
      timeoutSeconds: 0,
      heartbeatSeconds: 0,
      steps: [
        {
          id: 0,
          name: "flood",
          kind: "user",
          command: `for i in $(seq ${times}); do cat log.txt; done`,
          env: [],
        },
      ],
    });
    const r = rate(bytes, t0, c0);
    if (result.status !== "success") throw new Error(`relay run ${result.status}`);
    return r;
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
}

/**
 * `Authorization: Basic base64(user:secret)`, as curl -u and most HTTP clients print it; user
 * names of three lengths put the secret at each offset modulo 3 of the encoded text.
 */
const basicAuth = (secret: string) => {
  const user = "ci-bot".slice(0, 3 + (secret.length % 3));
  return `Authorization: Basic ${Buffer.from(`${user}:${secret}`).toString("base64")}`;
};

export async function main(): Promise<void> {
  const values = secrets();
  const patterns = new Masker(values).patterns.length;
  console.log(`machine: ${cpus().length} CPUs, load average ${loadavg()[0]!.toFixed(1)}`);
  console.log(
    `mask: ${show(maskerThroughput(values))} with ${SECRETS} secrets (${patterns} patterns; target ≥ 100 MB/s)`,
  );
  console.log(
    `mask, encoded secrets: ${show(maskerThroughput(values, basicAuth))} with ${SECRETS} secrets in HTTP Basic headers (target ≥ 100 MB/s)`,
  );
  const varied = variedSecrets();
  console.log(
    `mask, varied secrets: ${show(maskerThroughput(varied, oneLine))} with 45 passwords and 5 PEM keys (${new Masker(varied).patterns.length} patterns; target ≥ 100 MB/s)`,
  );
  console.log(
    `runner-output: ${show(await relayThroughput(values))} through the runner's output path ` +
      `(pipe → decode → mask → JSON events) with ${SECRETS} secrets (target ≥ 100 MB/s)`,
  );
}

if (import.meta.main) await main();
