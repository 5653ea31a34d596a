/**
 * Spindle server figures (targets printed, never asserted):
 *
 * 1. intake: pipelines per second from a knot envelope (Gen1 knot stand-in, real WebSocket,
 *    real knot consumer) to its `pending` event on /events — validation, planning, the SQLite
 *    transaction and the event fan-out included. Target: at least 500/s. The engine holds the
 *    one claimed run, so nothing else competes for the CPU.
 * 2. fan-out: 200 /events subscribers (in a worker thread, so they do not share the server's
 *    event loop); every subscriber must get every event; p50/p99/max delivery latency from the
 *    moment the status is recorded to the moment each subscriber has the frame, at a paced rate
 *    and in one burst.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { WebSocket } from "ws";
import { Repos, transaction } from "../src/spindle/db/index.ts";
import { KnotStandIn } from "../test/support/knot-standin.ts";
import { BENCH_ALICE, bootBenchServer } from "./bench-server.ts";

const ALICE = BENCH_ALICE;
const now = () => performance.timeOrigin + performance.now();

function boot(dir: string, knot: KnotStandIn | null) {
  return bootBenchServer(dir, {
    knots: knot !== null,
    ...(knot && {
      seed: (db) =>
        new Repos(db).upsert({ knot: knot.host, owner: ALICE, name: "loom", rkey: "3lrepo0000001" }),
    }),
  });
}

function record(knot: string, i: number) {
  return {
    $type: "",
    triggerMetadata: {
      kind: "push",
      push: { newSha: "f".repeat(40), oldSha: "0".repeat(40), ref: "refs/heads/main" },
      repo: { defaultBranch: "", did: ALICE, knot, repo: "loom" },
    },
    workflows: [
      {
        clone: { depth: 0, skip: false, submodules: false },
        engine: "kubernetes",
        name: "build.yml",
        raw: `engine: kubernetes\nimage: node:24\nsteps:\n  - name: test ${i}\n    command: npm ci && npm test\n`,
      },
    ],
  };
}

async function intake(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "loom-bench-server-"));
  const knot = await KnotStandIn.start({ gen: 1 });
  const { server, wsUrl } = await boot(dir, knot);
  try {
    await knot.waitForConnections(1);
    const ws = new WebSocket(`${wsUrl}/events`);
    await new Promise((r) => ws.once("open", r));
    const N = 5000;
    let pending = 0;
    let resolveAll: () => void = () => {};
    const all = new Promise<void>((r) => (resolveAll = r));
    ws.on("message", (d) => {
      if (d.toString().includes('"status":"pending"') && ++pending === N) resolveAll();
    });
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    // Emit in slices so the knot stand-in's per-emit batches (≤100 frames) keep the socket busy.
    for (let i = 0; i < N; i++) {
      knot.emitPipeline(`3lbench${i.toString(36).padStart(6, "0")}`, record(knot.host, i));
      if (i % 100 === 99) await new Promise((r) => setImmediate(r));
    }
    // The stand-in sends one batch per emit; nudge the tail of the backlog through.
    const nudge = setInterval(() => knot.emit("sh.tangled.git.refUpdate", "3lnudge", {}), 5);
    await all;
    clearInterval(nudge);
    const s = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpuS = (cpu.user + cpu.system) / 1e6;
    console.log(
      `  intake: ${N} pipelines knot envelope → pending on /events in ${s.toFixed(2)} s = ${Math.round(N / s)} pipelines/s (target ≥ 500/s); ` +
        `${((cpuS / N) * 1e6).toFixed(0)} µs CPU per pipeline incl. the stand-in = ${Math.round(N / cpuS)} pipelines per CPU-second; load average ${loadavg()[0]?.toFixed(1)}`,
    );
    ws.close();
  } finally {
    await server.stop();
    await knot.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The processor alone: `acceptPipeline` called directly, no knot stand-in or consumer. */
async function processorOnly(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "loom-bench-accept-"));
  const { server } = await boot(dir, null);
  try {
    new Repos(server.db).upsert({ knot: "knot.bench", owner: ALICE, name: "loom", rkey: "3lrepo0000001" });
    const N = 5000;
    const t0 = performance.now();
    const cpu0 = process.threadCpuUsage();
    for (let i = 0; i < N; i++) {
      await server.pipelines.acceptPipeline(
        "knot.bench",
        `3lbench${i.toString(36).padStart(6, "0")}`,
        record("knot.bench", i),
      );
    }
    const s = (performance.now() - t0) / 1000;
    const cpu = process.threadCpuUsage(cpu0);
    console.log(
      `  processor alone: ${Math.round(N / s)} pipelines/s accepted and durably recorded (${((cpu.user + cpu.system) / N) | 0} µs CPU each); load average ${loadavg()[0]?.toFixed(1)}`,
    );
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface WorkerResult {
  /** receive time (epoch ms) per subscriber per event index */
  received: number[][];
}

async function fanOut(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "loom-bench-fanout-"));
  const { server, wsUrl } = await boot(dir, null);
  const SUBS = 200;
  try {
    for (const [label, count, paceMs] of [
      ["paced 1000 events at 500/s", 1000, 2],
      ["burst of 2000 events", 2000, 0],
    ] as const) {
      const worker = new Worker(new URL(import.meta.url), {
        workerData: { url: `${wsUrl}/events`, subs: SUBS, count },
      });
      const ready = new Promise<void>((r) => worker.once("message", () => r()));
      const result = new Promise<WorkerResult>((r) => worker.on("message", (m) => m.received && r(m)));
      await ready;
      const sent: number[] = [];
      const cpu0 = process.threadCpuUsage();
      for (let i = 0; i < count; i++) {
        const ev = transaction(server.db, () =>
          server.events.insert({
            pipeline: "at://did:web:knot.bench/sh.tangled.pipeline/3lbenchfanout",
            workflow: `w${i}`,
            status: "running",
            createdAt: new Date(),
          }),
        );
        sent.push(now());
        server.events.publish([ev]);
        if (paceMs > 0) await new Promise((r) => setTimeout(r, paceMs));
        else if (i % 200 === 199) await new Promise((r) => setImmediate(r));
      }
      const { received } = await result;
      const cpu = process.threadCpuUsage(cpu0);
      await worker.terminate();
      const lat: number[] = [];
      let complete = 0;
      for (const sub of received) {
        if (sub.every((t) => t > 0)) complete++;
        for (const [i, t] of sub.entries()) lat.push(t - (sent[i] as number));
      }
      lat.sort((a, b) => a - b);
      const q = (p: number) =>
        (lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] as number).toFixed(1);
      const lastAll = Math.max(...received.map((s) => Math.max(...s))) - (sent[0] as number);
      console.log(
        `  fan-out (${label}) to ${SUBS} subscribers: ${complete}/${SUBS} got every event; ` +
          `latency p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1 - 1e-9)} ms; all delivered ${lastAll.toFixed(0)} ms after the first; ` +
          `server thread ${((cpu.user + cpu.system) / (count * SUBS)) | 0} µs CPU per delivered frame; load average ${loadavg()[0]?.toFixed(1)}`,
      );
    }
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function subscribers(): Promise<void> {
  const { url, subs, count } = workerData as { url: string; subs: number; count: number };
  const received: number[][] = Array.from({ length: subs }, () => new Array<number>(count).fill(0));
  let done = 0;
  const sockets: WebSocket[] = [];
  await Promise.all(
    Array.from({ length: subs }, (_, s) => {
      const ws = new WebSocket(url);
      sockets.push(ws);
      let got = 0;
      ws.on("message", (d) => {
        const t = now();
        const m = /"workflow":"w(\d+)"/.exec(d.toString());
        if (m) (received[s] as number[])[Number(m[1])] = t;
        if (++got === count && ++done === subs) parentPort?.postMessage({ received });
      });
      return new Promise((r) => ws.once("open", r));
    }),
  );
  parentPort?.postMessage({ ready: true });
}

export async function main(): Promise<void> {
  console.log(`  (${cpus().length} CPUs; server, knot stand-in and intake in one process)`);
  const only = process.env.LOOM_BENCH_SERVER;
  if (only !== "fanout") await intake();
  if (only !== "fanout") await processorOnly();
  if (only !== "intake") await fanOut();
}

if (!isMainThread && workerData?.subs) void subscribers();
else if (import.meta.url === `file://${process.argv[1]}`) await main();
