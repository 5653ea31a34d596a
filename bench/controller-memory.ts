/**
 * Child process of controller.bench.ts: a controller alone in its heap, run as compiled
 * JavaScript the way the image runs dist/ (the parent bundles this file with esbuild; Node's
 * own TypeScript stripping holds 30-50 MB that production never has). Prints one JSON line with
 * its memory once its caches are synced ("idle"), then another once it has a Job for every one
 * of LOOM_BENCH_N runs the parent creates ("full"). Each line has:
 *
 * - `running`: the highest RSS sampled over a few seconds with no forced GC — what a pod's
 *   memory graph shows;
 * - process.memoryUsage() and V8's heap spaces after a full GC (--expose-gc);
 * - where the resident pages are, from /proc/self/smaps: mapped files (the node binary,
 *   libraries), the C heap (glibc's main arena, `[heap]`), glibc's thread arenas (64 MiB-aligned
 *   anonymous reservations) and the other anonymous memory: V8's pages (the heap spaces, and
 *   pages a GC freed but V8 keeps pooled for reuse — freed only by a memory-reducing GC) and
 *   thread stacks;
 * - `reduced`: RSS after a memory-reducing GC (V8's last-resort GC: pooled pages released), the
 *   floor of live data plus the process's fixed cost.
 *
 * LOOM_BENCH_SNAPSHOT=<file> writes a heap snapshot at "full".
 */
import { readFileSync } from "node:fs";
import { getHeapSpaceStatistics, getHeapStatistics, writeHeapSnapshot } from "node:v8";
import { KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { SpindleSetController } from "../src/controller/controller.ts";
import { parkedConfig } from "../test/controller/support.ts";

const ns = process.env.LOOM_BENCH_NS!;
const n = Number(process.env.LOOM_BENCH_N);
const kubeConfig = new KubeConfig();
kubeConfig.loadFromDefault();
const controller = SpindleSetController.create({
  kubeConfig,
  config: parkedConfig(ns, { maxConcurrentJobs: n }),
  log: pino({ level: "silent" }),
  leaderElection: false,
  capacityRetryMs: 1000,
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const ARENA = 64 * 2 ** 20;

/** Resident bytes by kind of mapping, from /proc/self/smaps. */
function residentByMapping(): Record<string, number> {
  const out = { files: 0, cHeap: 0, mallocArenas: 0, otherAnonymous: 0 };
  let text = "";
  try {
    text = readFileSync("/proc/self/smaps", "utf8");
  } catch {
    return out;
  }
  const maps: { start: number; end: number; perms: string; path: string; rss: number }[] = [];
  for (const line of text.split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      maps.push({
        start: Number.parseInt(head[1]!, 16),
        end: Number.parseInt(head[2]!, 16),
        perms: head[3]!,
        path: head[4]!,
        rss: 0,
      });
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && maps.length > 0) maps[maps.length - 1]!.rss = Number(rss[1]) * 1024;
  }
  for (const [i, m] of maps.entries()) {
    if (m.path === "[heap]") out.cHeap += m.rss;
    else if (m.path && !m.path.startsWith("[anon")) out.files += m.rss;
    else {
      // A glibc thread arena: a 64 MiB-aligned reservation, its used part read-write and the
      // rest of the 64 MiB reserved (---p) right after it.
      const next = maps[i + 1];
      const arena =
        m.start % ARENA === 0 &&
        m.perms.startsWith("rw") &&
        (m.end - m.start === ARENA ||
          (next !== undefined &&
            next.start === m.end &&
            next.perms === "---p" &&
            next.end - m.start === ARENA));
      if (arena) out.mallocArenas += m.rss;
      else out.otherAnonymous += m.rss;
    }
  }
  return out;
}

type Gc = (opts?: { type: "major"; execution: "sync"; flavor: "last-resort" }) => void;
const gc = (globalThis as { gc?: Gc }).gc;

/** The highest RSS over `ms`, sampled without forcing a GC. */
async function runningRss(ms: number): Promise<number> {
  let peak = 0;
  for (const end = Date.now() + ms; Date.now() < end; await sleep(100))
    peak = Math.max(peak, process.memoryUsage.rss());
  return peak;
}

async function report(at: string): Promise<void> {
  const running = await runningRss(5000);
  gc?.();
  gc?.();
  const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
  // Where the heap's pages are: the young generation (semi-spaces), old objects, code, large objects.
  const spaces = Object.fromEntries(
    getHeapSpaceStatistics().map((s) => [
      s.space_name,
      { size: s.space_size, used: s.space_used_size, physical: s.physical_space_size },
    ]),
  );
  const heap = getHeapStatistics();
  const mappings = residentByMapping();
  gc?.({ type: "major", execution: "sync", flavor: "last-resort" });
  const reduced = process.memoryUsage.rss();
  process.stdout.write(
    `${JSON.stringify({
      at,
      running,
      reduced,
      rss,
      heapUsed,
      heapTotal,
      heapPhysical: heap.total_physical_size,
      v8Malloced: heap.malloced_memory,
      external,
      arrayBuffers,
      spaces,
      mappings,
    })}\n`,
  );
}

await controller.start();
await report("idle");
for (;;) {
  const active = (await controller.metrics.activeJobs.get()).values[0]?.value ?? 0;
  if (active >= n) break;
  await sleep(1000);
}
// Let the pods the Job controller creates reach the cache, and the last reconciles finish.
await sleep(5000);
await report("full");
if (process.env.LOOM_BENCH_SNAPSHOT) writeHeapSnapshot(process.env.LOOM_BENCH_SNAPSHOT);
await new Promise<void>((resolve) => process.once("SIGTERM", () => resolve()));
await controller.stop();
