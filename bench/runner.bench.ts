/**
 * The runner's overhead per step against a bare `sh -c`: N steps of `true` run by the Runner
 * (spawn in its own group, env, pipes, masking, events) against N bare spawns of the same
 * shell with pipes. Both use /bin/sh (the steps' PATH has no bash), so only the runner differs.
 * Also the bundle's start-up: launching dist/runner-bundle for a one-step spec.
 * Target: under 5 ms a step.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { buildRunnerBundle } from "../scripts/build-runner-bundle.ts";
import { Runner } from "../src/runner/runner.ts";

const STEPS = 200;

function bareOnce(cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("/bin/sh", ["-c", "true"], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    child.on("error", reject);
    child.on("close", () => resolve());
  });
}

function sink(): Writable {
  return new Writable({
    decodeStrings: false,
    write(_c, _e, cb) {
      cb();
    },
  });
}

interface Cost {
  /** Milliseconds of wall time. */
  wall: number;
  /** Milliseconds of this process's CPU time (the spawns' fork/exec included). */
  cpu: number;
}

async function measure(f: () => Promise<void>): Promise<Cost> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await f();
  const c = process.cpuUsage(c0);
  return { wall: performance.now() - t0, cpu: (c.user + c.system) / 1000 };
}

/** One Runner run of `n` steps of `true`. */
function runnerRun(cwd: string, n: number): Promise<Cost> {
  const env = { PATH: "/nonexistent-no-bash", LOOM_SECRET_A: "bench-secret-value" };
  const steps = Array.from({ length: n }, (_, id) => ({
    id,
    name: `s${id}`,
    kind: "user" as const,
    command: "true",
    env: [],
  }));
  return measure(async () => {
    const result = await new Runner({ env, out: sink() }).run({
      version: 1,
      workspace: cwd,
      timeoutSeconds: 3600,
      heartbeatSeconds: 10,
      steps,
    });
    if (result.status !== "success") throw new Error(`runner bench ${result.status}`);
  });
}

function bareRun(cwd: string, n: number): Promise<Cost> {
  return measure(async () => {
    for (let i = 0; i < n; i++) await bareOnce(cwd);
  });
}

/**
 * Per-step wall time of bare spawns and of the runner. They alternate in rounds so that load
 * from elsewhere on a shared machine falls on both alike.
 */
async function perStepMs(cwd: string): Promise<{ bare: Cost; runner: Cost }> {
  await bareRun(cwd, 10);
  await runnerRun(cwd, 10);
  const rounds = 4;
  const bare = { wall: 0, cpu: 0 };
  const runner = { wall: 0, cpu: 0 };
  const add = (sum: Cost, c: Cost) => {
    sum.wall += c.wall / STEPS;
    sum.cpu += c.cpu / STEPS;
  };
  for (let r = 0; r < rounds; r++) {
    add(bare, await bareRun(cwd, STEPS / rounds));
    add(runner, await runnerRun(cwd, STEPS / rounds));
  }
  return { bare, runner };
}

async function bundleStartMs(cwd: string): Promise<number> {
  const bundle = await buildRunnerBundle();
  const specFile = join(cwd, "spec.json");
  writeFileSync(
    specFile,
    JSON.stringify({
      version: 1,
      workspace: cwd,
      timeoutSeconds: 0,
      heartbeatSeconds: 0,
      steps: [{ id: 0, name: "s", kind: "user", command: "true", env: [] }],
    }),
  );
  const t0 = performance.now();
  const r = spawnSync(bundle.launcher, [specFile], { env: { PATH: "/bin" } });
  if (r.status !== 0) throw new Error(`bundle failed: ${r.stderr}`);
  return performance.now() - t0;
}

export async function main(): Promise<void> {
  const cwd = mkdtempSync(join(tmpdir(), "loom-bench-"));
  try {
    const { bare, runner } = await perStepMs(cwd);
    console.log(
      `runner: overhead per step ${(runner.wall - bare.wall).toFixed(2)} ms ` +
        `(runner ${runner.wall.toFixed(2)} ms, bare sh -c ${bare.wall.toFixed(2)} ms, ${STEPS} steps; target < 5 ms)`,
    );
    console.log(
      `runner: CPU per step ${runner.cpu.toFixed(2)} ms against ${bare.cpu.toFixed(2)} ms for bare sh -c ` +
        "(steadier than wall time on a shared machine)",
    );
    console.log(`runner: bundle start-up + one step ${(await bundleStartMs(cwd)).toFixed(0)} ms`);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

if (import.meta.main) await main();
