/**
 * Helpers for the Kubernetes engine's tests on the real control plane (full mode: kwok runs no
 * containers, so the runner's output is recorded by running the real runner on this machine
 * with the exact RunnerSpec the controller mounts, and kwok serves it as the pod's log).
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { CoreV1Api, type KubeConfig, type V1Pod, Watch } from "@kubernetes/client-node";
import pino from "pino";
import { parseSpindleSetSpec } from "../../src/api/v1alpha1/spindleset.ts";
import { buildRunnerSpec } from "../../src/controller/build/runner-spec.ts";
import { type ControllerConfig, parseControllerConfig } from "../../src/controller/config.ts";
import { SpindleSetController } from "../../src/controller/controller.ts";
import type { EngineRunPlan } from "../../src/engine/engine.ts";
import { runSpecFromPlan } from "../../src/engine/kubernetes/spec.ts";
import { encodeLogLine } from "../../src/protocol/logline.ts";
import { Relay } from "../../src/relay/relay.ts";
import type { TestCluster } from "../harness/index.ts";
import { RecordingSink } from "./suite.ts";

const ROOT = new URL("../../", import.meta.url);

export function controllerConfig(namespace: string, extra: Record<string, unknown> = {}): ControllerConfig {
  return parseControllerConfig({
    namespace,
    images: { runner: "example.invalid/loom-runner:test" },
    ttl: { jobSecondsAfterFinished: 600 },
    ...extra,
  });
}

/** The real controller for one namespace, stopped after the test. */
export async function startController(
  t: TestContext,
  kc: KubeConfig,
  config: ControllerConfig,
  opts: { checkNodes?: boolean } = {},
): Promise<SpindleSetController> {
  const controller = SpindleSetController.create({
    kubeConfig: kc,
    config,
    log: pino({ level: process.env.LOOM_TEST_LOG ?? "silent" }),
    leaderElection: false,
    checkNodes: opts.checkNodes ?? true,
    secretWaitMs: 15_000,
    resyncMs: 2000,
  });
  await controller.start();
  t.after(() => controller.stop());
  return controller;
}

/**
 * What the runner prints for this plan: the RunnerSpec the controller will mount (built by the
 * same builder), run by the real runner on this machine in a temporary workspace.
 */
export async function recordRunnerOutput(
  plan: EngineRunPlan,
  secrets: ReadonlyMap<string, string>,
  config: ControllerConfig,
): Promise<string[]> {
  const checked = runSpecFromPlan(plan, plan.secretKeys.length > 0);
  if (!checked.ok) throw new Error(checked.error);
  const spec = parseSpindleSetSpec({
    ...checked.spec,
    ...(plan.secretKeys.length > 0 && { secretRef: { name: "s" } }),
  });
  if (!spec.ok) throw new Error(spec.issues.join("; "));
  const dir = await mkdtemp(join(tmpdir(), "loom-record-"));
  try {
    const runnerSpec = { ...buildRunnerSpec(spec.value.workflows[0]!, config), workspace: join(dir, "ws") };
    await writeFile(join(dir, "spec.json"), JSON.stringify(runnerSpec));
    const env: Record<string, string> = { PATH: "/usr/local/bin:/usr/bin:/bin" };
    for (const [k, v] of secrets) env[`LOOM_SECRET_${k}`] = v;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [new URL("src/runner/main.ts", ROOT).pathname, join(dir, "spec.json")],
        {
          env,
          stdio: ["ignore", "pipe", "inherit"],
        },
      );
      let text = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => {
        text += d;
      });
      child.once("error", reject);
      child.once("close", () => resolve(text));
    });
    return out.split("\n").filter((l) => l !== "");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The log file the relay makes of `lines` (what the spindle's log file must hold exactly). */
export function expectedLogFile(lines: readonly string[], secrets: Iterable<string>): string[] {
  const sink = new RecordingSink();
  const relay = new Relay({ sink, secrets });
  for (const l of lines) relay.handleLine(l);
  relay.end();
  return sink.lines.map((l) => encodeLogLine(l));
}

let tick = 0n;
/** CRI log lines, each with a later timestamp than the last (or the same, when `same`). */
export function criLines(lines: readonly string[], same = false): string {
  const base = BigInt(Date.now()) * 1_000_000n;
  return lines
    .map((l) => {
      if (!same) tick += 1000n;
      const ns = base + tick;
      const secs = ns / 1_000_000_000n;
      const frac = String(ns % 1_000_000_000n).padStart(9, "0");
      const iso = new Date(Number(secs) * 1000).toISOString().replace(/\.\d{3}Z$/, `.${frac}Z`);
      return `${iso} stdout F ${l}\n`;
    })
    .join("");
}

export interface FakeLog {
  readonly file: string;
  /** Serves the file as the pod's log (kwok's Logs object). */
  serve(pod: string): Promise<void>;
  append(lines: readonly string[], opts?: { sameTimestamp?: boolean }): Promise<void>;
}

export async function fakeLog(
  cluster: TestCluster,
  namespace: string,
  lines: readonly string[] = [],
): Promise<FakeLog> {
  const file = join(cluster.state.runDir, `engine-log-${randomBytes(4).toString("hex")}.log`);
  await writeFile(file, criLines(lines));
  return {
    file,
    async serve(pod) {
      await cluster.objects().create({
        apiVersion: "kwok.x-k8s.io/v1alpha1",
        kind: "Logs",
        metadata: { name: pod, namespace },
        spec: { logs: [{ logsFile: file, follow: true }] },
      } as never);
    },
    async append(more, opts = {}) {
      await appendFile(file, criLines(more, opts.sameTimestamp));
    },
  };
}

/** Resolves with the name of the first pod matching `selector` (watching from now). */
export async function firstPod(kc: KubeConfig, namespace: string, selector: string): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  const existing = await core.listNamespacedPod({ namespace, labelSelector: selector });
  if (existing.items[0]) return existing.items[0].metadata!.name!;
  return new Promise((resolve, reject) => {
    let ctl: AbortController | undefined;
    let done = false;
    void new Watch(kc)
      .watch(
        `/api/v1/namespaces/${namespace}/pods`,
        { labelSelector: selector, resourceVersion: existing.metadata?.resourceVersion },
        (_type, pod: V1Pod) => {
          if (done) return;
          done = true;
          ctl?.abort();
          resolve(pod.metadata!.name!);
        },
        (err) => {
          if (!done) reject(err ?? new Error("pod watch ended"));
        },
      )
      .then((c) => {
        ctl = c;
        if (done) c.abort();
      }, reject);
  });
}
