/**
 * Child process of controller.bench.ts: a controller alone in its heap. Prints one JSON line
 * with its memory once its caches are synced ("idle"), then another once it has a Job for every
 * one of LOOM_BENCH_N runs the parent creates ("full"), each after a full GC (--expose-gc).
 */
import { getHeapSpaceStatistics } from "node:v8";
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

function report(at: string): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
  // Where the heap's pages are: the young generation (semi-spaces), old objects, code, large objects.
  const spaces = Object.fromEntries(
    getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size }]),
  );
  process.stdout.write(
    `${JSON.stringify({ at, rss, heapUsed, heapTotal, external, arrayBuffers, spaces })}\n`,
  );
}

await controller.start();
await sleep(1000);
report("idle");
for (;;) {
  const active = (await controller.metrics.activeJobs.get()).values[0]?.value ?? 0;
  if (active >= n) break;
  await sleep(1000);
}
// Let the pods the Job controller creates reach the cache, and the last reconciles finish.
await sleep(5000);
report("full");
await new Promise<void>((resolve) => process.once("SIGTERM", () => resolve()));
await controller.stop();
