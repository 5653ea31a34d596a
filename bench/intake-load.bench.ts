/**
 * Intake under load (issue 12), figures printed with their goals, never asserted:
 *
 * 1. A 20,000-envelope flood from one knot (stand-in in a child process, real WebSocket, real
 *    knot consumer, real SQLite): envelopes per second admitted (goal ≥ 1,000/s), and `/healthz`
 *    latency p50/p99/max asked every 10 ms by the child while the flood lasts (goal p99 < 100 ms
 *    on 2 cores). The child is a separate event loop, so its clock is not stalled with the
 *    server's; a stalled server shows as a slow answer. RSS at the end and settled, with its
 *    parts (V8 heap, external), is the server's alone.
 * 2. RSS before, at the peak of and settled after (gc, 2 s) admitting a pipeline whose workflow
 *    is a 450 KB file of 50,000 YAML documents.
 */
import { type ChildProcess, fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { KnotCursors, Repos } from "../src/spindle/db/index.ts";
import type { SpindleServer } from "../src/spindle/server.ts";
import { KnotStandIn } from "../test/support/knot-standin.ts";
import { BENCH_ALICE, bootBenchServer } from "./bench-server.ts";

const ALICE = BENCH_ALICE;
const N = Number(process.env.LOOM_BENCH_FLOOD ?? 20_000);

function record(knot: string, i: number, raw?: string, repo = "loom") {
  return {
    $type: "",
    triggerMetadata: {
      kind: "push",
      push: { newSha: "f".repeat(40), oldSha: "0".repeat(40), ref: "refs/heads/main" },
      repo: { defaultBranch: "", did: ALICE, knot, repo },
    },
    workflows: [
      {
        clone: { depth: 0, skip: false, submodules: false },
        engine: "kubernetes",
        name: "build.yml",
        raw:
          raw ??
          `engine: kubernetes\nimage: node:24\nsteps:\n  - name: test ${i}\n    command: npm ci && npm test\n`,
      },
    ],
  };
}

const rkey = (i: number) => `3lflood${i.toString(36).padStart(6, "0")}`;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/**
 * Child process: the knot stand-in and the /healthz prober. A process of its own (not a worker
 * thread), so the server's RSS figures are the server's alone.
 */
async function knotMain(): Promise<void> {
  const knot = await KnotStandIn.start({ gen: 1 });
  const port = {
    postMessage: (m: unknown) => process.send?.(m),
    once: (_e: "message", f: (m: never) => void) => process.once("message", (m: unknown) => f(m as never)),
  };
  port.postMessage({ host: knot.host });
  const { healthz } = await new Promise<{ healthz: string }>((r) => port.once("message", r));
  await knot.waitForConnections(1);
  const latencies: number[] = [];
  let flooding = true;
  let failures = 0;
  const probe = (async () => {
    while (flooding) {
      const t0 = performance.now();
      try {
        const res = await fetch(healthz, { signal: AbortSignal.timeout(30_000) });
        await res.arrayBuffer();
        latencies.push(performance.now() - t0);
      } catch {
        failures++;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const stop = new Promise<void>((r) => port.once("message", () => r()));
  for (let i = 0; i < N; i++) {
    knot.emitPipeline(rkey(i), record(knot.host, i));
    if (i % 200 === 199) await new Promise((r) => setImmediate(r));
  }
  // The stand-in sends one batch (≤ 100 rows) per new row; nudge any backlog through.
  const nudge = setInterval(() => knot.emit("sh.tangled.git.refUpdate", "3lnudge", {}), 20);
  await stop;
  clearInterval(nudge);
  flooding = false;
  await probe;
  await knot.stop();
  port.postMessage({ latencies, failures });
  process.disconnect();
}

function boot(dir: string, knotHost: string) {
  return bootBenchServer(dir, {
    knots: true,
    seed: (db) => {
      new Repos(db).upsert({ knot: knotHost, owner: ALICE, name: "loom", rkey: "3lrepo0000001" });
      new Repos(db).upsert({ knot: "knot.bench", owner: ALICE, name: "yaml", rkey: "3lrepo0000002" });
      new KnotCursors(db).set("knot.bench", "1");
    },
  });
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;

/** Where the memory is: RSS and its parts (V8 heap used/total, external incl. array buffers). */
function breakdown(): string {
  const m = process.memoryUsage();
  return `RSS ${mb(m.rss)} (heap used ${mb(m.heapUsed)} of ${mb(m.heapTotal)}, external ${mb(m.external)}, array buffers ${mb(m.arrayBuffers)})`;
}

async function yamlDocuments(server: SpindleServer): Promise<void> {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const raw = `engine: kubernetes\nimage: node:24\nsteps:\n  - name: a\n    command: echo hi\n${"---\na: 1\n".repeat(50_000)}`;
  gc();
  const before = process.memoryUsage().rss;
  let peak = before;
  const sample = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 5);
  const t0 = performance.now();
  await server.pipelines.acceptPipeline("knot.bench", "3lyamldocs001", record("knot.bench", 0, raw, "yaml"));
  const ms = performance.now() - t0;
  peak = Math.max(peak, process.memoryUsage().rss, process.resourceUsage().maxRSS * 1024);
  clearInterval(sample);
  gc();
  await new Promise((r) => setTimeout(r, 2000));
  gc();
  const settled = process.memoryUsage().rss;
  console.log(
    `  50,000-document YAML (${(raw.length / 1024).toFixed(0)} KiB): admitted in ${ms.toFixed(0)} ms; RSS before ${mb(before)}, peak ${mb(peak)} (process max so far), settled ${mb(settled)}; load average ${loadavg()[0]?.toFixed(1)}`,
  );
}

async function flood(
  server: SpindleServer,
  url: string,
  worker: ChildProcess,
  knotHost: string,
): Promise<void> {
  const count = server.db.prepare("SELECT count(*) AS n FROM pipelines WHERE knot = ?");
  const stored = () => Number((count.get(knotHost) as { n: number }).n);
  const result = new Promise<{ latencies: number[]; failures: number }>((r) =>
    worker.on("message", (m: { latencies?: number[]; failures: number }) => m.latencies && r(m as never)),
  );
  worker.send({ healthz: `${url}/healthz` });
  let first = 0;
  while (stored() === 0) await new Promise((r) => setTimeout(r, 5));
  first = performance.now();
  const cpu0 = process.threadCpuUsage();
  while (stored() < N) await new Promise((r) => setTimeout(r, 50));
  const s = (performance.now() - first) / 1000;
  const cpu = process.threadCpuUsage(cpu0);
  worker.send("stop");
  const { latencies, failures } = await result;
  const peakRss = process.memoryUsage().rss;
  const peakParts = breakdown();
  const gc = runInNewContext("gc") as () => void;
  gc();
  await new Promise((r) => setTimeout(r, 2000));
  gc();
  const settledRss = process.memoryUsage().rss;
  const settledParts = breakdown();
  const sorted = latencies.sort((a, b) => a - b);
  console.log(
    `  flood: ${N} envelopes admitted (stored) in ${s.toFixed(2)} s = ${Math.round(N / s)}/s (goal ≥ 1,000/s), ` +
      `${((cpu.user + cpu.system) / N).toFixed(0)} µs server CPU each; load average ${loadavg()[0]?.toFixed(1)}`,
  );
  console.log(
    `  /healthz during the flood: ${sorted.length} answers, p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms (goal < 100 ms), max ${(sorted.at(-1) ?? Number.NaN).toFixed(1)} ms, ${failures} failed; RSS at the end ${mb(peakRss)}, settled (gc, 2 s) ${mb(settledRss)}`,
  );
  // V8 gives back the pages of a grown heap only after its memory reducer ran (idle for a while).
  await new Promise((r) => setTimeout(r, 15_000));
  gc();
  console.log(
    `  memory at the end of the flood: ${peakParts}; settled (gc, 2 s): ${settledParts}; after 15 s more idle: ${breakdown()}`,
  );
}

export async function main(): Promise<void> {
  console.log(
    `  load average at start ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
  console.log(`  memory at start: ${breakdown()}`);
  const worker = fork(fileURLToPath(import.meta.url), [], {
    env: { ...process.env, LOOM_BENCH_ROLE: "knot" },
  });
  const { host } = await new Promise<{ host: string }>((r) => worker.once("message", r));
  const dir = mkdtempSync(join(tmpdir(), "loom-bench-intake-load-"));
  const { server, url } = await boot(dir, host);
  try {
    await yamlDocuments(server);
    await flood(server, url, worker, host);
  } finally {
    await server.stop();
    worker.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.env.LOOM_BENCH_ROLE === "knot") await knotMain();
