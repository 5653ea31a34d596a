/**
 * The engine behaviour suite (suite.ts) against the Kubernetes engine, on the real control plane
 * (full mode: apiserver, etcd, controller-manager, scheduler, kwok) with the real SpindleSet
 * controller creating the Jobs.
 *
 * kwok runs no containers, so this harness stands in for the kubelet's part, with the pod's own
 * inputs: a profile asks for an extended resource no node offers, so each workflow pod waits
 * unscheduled until the harness takes it. It labels the pod for kwok's failure stage an hour
 * away (so kwok holds it Running), serves a log file as the pod's log (a kwok Logs object), and
 * binds the pod to a kwok node of its architecture. It then runs the real runner on this machine
 * with the pod's RunnerSpec (its annotation, or its ConfigMap) and the secret values its secretKeyRefs name, appending
 * the runner's output to that log as it comes, so the engine reads it live through the real
 * pods/log endpoint. When the runner ends, the container ends with its exit code (the failure
 * stage now, with that code; or the label removed, and kwok completes the pod). A pod deleted
 * while its runner runs (cancel, destroy) gets its runner stopped with SIGTERM, as the kubelet
 * would; kwok removes a deleted pod at once, so what the runner prints after that is lost (the
 * relay still closes the open step).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, PatchStrategy, setHeaderOptions, type V1Pod } from "@kubernetes/client-node";
import pino from "pino";
import { ANNOTATIONS, managedSelector, selectorString } from "../../src/api/contract/index.ts";
import { SPEC_KEY } from "../../src/controller/build/runner-spec.ts";
import { SpindleSetController } from "../../src/controller/controller.ts";
import { KubernetesEngine } from "../../src/engine/kubernetes/engine.ts";
import { FAIL_EXIT_CODE_ANNOTATION, FAIL_POD_LABEL, FAKE_NODES, getTestCluster } from "../harness/index.ts";
import { controllerConfig, criLines } from "./kubernetes-support.ts";
import { findProcesses } from "./procs.ts";
import { type EngineHarness, engineBehaviour } from "./suite.ts";

const cluster = await getTestCluster({ full: true });
const quiet = pino({ level: process.env.LOOM_TEST_LOG ?? "silent" });
const RUNNER_MAIN = new URL("../../src/runner/main.ts", import.meta.url).pathname;
/** No node offers it: workflow pods wait for the harness to bind them. */
const HELD = "loom.test/engine-suite";
const TERMINAL = new Set(["Succeeded", "Failed"]);
const MERGE = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
/** kwok's failure stage reads its delay (and jitter) from these annotations. */
const FAIL_DELAY = `${FAIL_POD_LABEL}/delay`;
const FAIL_JITTER = `${FAIL_POD_LABEL}/jitter-delay`;

engineBehaviour("kubernetes", createHarness, { skip: cluster.skip, milestones: ["job_created@0"] });

async function createHarness(): Promise<EngineHarness> {
  const kc = cluster.kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const ns = `t-engine-suite-${randomBytes(3).toString("hex")}`;
  await core.createNamespace({ body: { metadata: { name: ns, labels: { "loom.test/namespace": "true" } } } });
  await cluster.installSpindleSetCrd();
  const config = controllerConfig(ns, {
    template: {
      resourceProfiles: [{ name: "held", resources: { requests: { [HELD]: "1" }, limits: { [HELD]: "1" } } }],
    },
  });
  const controller = SpindleSetController.create({
    kubeConfig: kc,
    config,
    log: quiet,
    leaderElection: false,
    secretWaitMs: 15_000,
    resyncMs: 2000,
  });
  await controller.start();
  const engine = new KubernetesEngine({ kubeConfig: kc, namespace: ns, logger: quiet, pollMs: 200 });
  const kubelet = new KubeletStandIn(core, ns);
  kubelet.start();

  const others: KubernetesEngine[] = [];
  return {
    engine,
    another() {
      const e = new KubernetesEngine({ kubeConfig: kc, namespace: ns, logger: quiet, pollMs: 200 });
      others.push(e);
      return e;
    },
    /**
     * Once the cluster has had its time (the garbage collector deletes pods asynchronously):
     * pods of the run that are not finished, and processes of its steps or its runner.
     */
    async leftovers(wid) {
      let left: string[] = [];
      for (let i = 0; i < 100; i++) {
        const pods = (
          await core.listNamespacedPod({ namespace: ns, labelSelector: selectorString(managedSelector()) })
        ).items;
        left = [
          ...pods
            .filter(
              (p) =>
                p.metadata?.annotations?.[ANNOTATIONS.wid] === wid && !TERMINAL.has(p.status?.phase ?? ""),
            )
            .map((p) => `pod ${p.metadata?.name} (${p.status?.phase})`),
          ...findProcesses(`SUITE_RUN=${wid}`).map((p) => `process ${p}`),
          ...kubelet.runnersOf(wid).map((pid) => `runner process ${pid}`),
        ];
        if (left.length === 0) return [];
        await new Promise((r) => setTimeout(r, 200));
      }
      return left;
    },
    async close() {
      await Promise.all([engine, ...others].map((e) => e.close()));
      await kubelet.stop();
      await controller.stop();
      await core.deleteNamespace({ name: ns }).catch(() => {});
    },
  };
}

/** The kubelet's part for workflow pods, as described at the top. */
class KubeletStandIn {
  readonly #core: CoreV1Api;
  readonly #ns: string;
  /** Pods taken, by uid; the runner while it runs. */
  readonly #taken = new Map<string, { wid: string; runner: ChildProcess | undefined }>();
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(core: CoreV1Api, ns: string) {
    this.#core = core;
    this.#ns = ns;
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.#polling = this.#polling.then(() => this.#poll()).catch(() => {});
    }, 200);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#polling;
    for (const t of this.#taken.values()) if (running(t.runner)) t.runner!.kill("SIGTERM");
  }

  runnersOf(wid: string): number[] {
    return [...this.#taken.values()]
      .filter((t) => t.wid === wid && running(t.runner))
      .map((t) => t.runner!.pid!);
  }

  async #poll(): Promise<void> {
    const pods = (
      await this.#core.listNamespacedPod({
        namespace: this.#ns,
        labelSelector: selectorString(managedSelector()),
      })
    ).items;
    const live = new Set<string>();
    for (const pod of pods) {
      const uid = pod.metadata!.uid!;
      if (!pod.metadata?.deletionTimestamp) live.add(uid);
      if (this.#taken.has(uid) || pod.spec?.nodeName || pod.metadata?.deletionTimestamp) continue;
      const wid = pod.metadata?.annotations?.[ANNOTATIONS.wid] ?? "";
      const taken = { wid, runner: undefined as ChildProcess | undefined };
      this.#taken.set(uid, taken);
      void this.#run(pod, taken).catch((err: unknown) => {
        // Deleted before it ran (cancel, destroy): nothing to run.
        if ((err as { code?: number }).code !== 404) console.error("engine suite: pod not run", err);
      });
    }
    // A pod deleted (cancel, destroy) stops its runner, as the kubelet would.
    for (const [uid, t] of this.#taken) if (!live.has(uid) && running(t.runner)) t.runner!.kill("SIGTERM");
  }

  /**
   * The runner's spec file as the kubelet writes it from the pod's `spec` volume: a downward API
   * file of the pod's own annotation, or the key of the spec ConfigMap.
   */
  async #specFile(pod: V1Pod): Promise<string> {
    const volume = pod.spec!.volumes!.find((v) => v.name === "spec")!;
    const field = volume.downwardAPI?.items?.find((i) => i.path === SPEC_KEY)?.fieldRef?.fieldPath;
    if (field) {
      const key = /^metadata\.annotations\['(.+)'\]$/.exec(field)![1]!;
      return pod.metadata!.annotations![key]!;
    }
    const cm = await this.#core.readNamespacedConfigMap({
      name: volume.configMap!.name!,
      namespace: this.#ns,
    });
    return cm.data![SPEC_KEY]!;
  }

  async #run(pod: V1Pod, taken: { runner: ChildProcess | undefined }): Promise<void> {
    const name = pod.metadata!.name!;
    const specText = await this.#specFile(pod);
    const container = pod.spec!.containers.find((c) => c.name === "runner")!;
    const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", USER: "runner" };
    for (const e of container.env ?? []) {
      const ref = e.valueFrom?.secretKeyRef;
      if (!ref) continue;
      const secret = await this.#core.readNamespacedSecret({ name: ref.name!, namespace: this.#ns });
      env[e.name] = Buffer.from(secret.data?.[ref.key] ?? "", "base64").toString("utf8");
    }
    const dir = await mkdtemp(join(tmpdir(), "loom-suite-pod-"));
    try {
      // The pod's log: a file kwok serves while the runner writes to it.
      const logFile = join(cluster.state.runDir, `engine-suite-${randomBytes(4).toString("hex")}.log`);
      await writeFile(logFile, "");
      await cluster.objects().create({
        apiVersion: "kwok.x-k8s.io/v1alpha1",
        kind: "Logs",
        metadata: { name, namespace: this.#ns },
        spec: { logs: [{ logsFile: logFile, follow: true }] },
      } as never);
      // Held Running: kwok's failure stage, an hour away, outweighs its completion stage.
      await this.#patchPod(name, {
        labels: { [FAIL_POD_LABEL]: "true" },
        annotations: { [FAIL_DELAY]: "1h", [FAIL_JITTER]: "1h" },
      });
      const arch = pod.spec?.nodeSelector?.["kubernetes.io/arch"] ?? "amd64";
      await this.#core.createNamespacedPodBinding({
        name,
        namespace: this.#ns,
        body: {
          apiVersion: "v1",
          kind: "Binding",
          metadata: { name },
          target: { apiVersion: "v1", kind: "Node", name: FAKE_NODES.find((n) => n.arch === arch)!.name },
        },
      });

      const spec = { ...JSON.parse(specText), workspace: join(dir, "workspace") };
      await writeFile(join(dir, "spec.json"), JSON.stringify(spec));
      env.HOME = dir;
      const runner = spawn(process.execPath, [RUNNER_MAIN, join(dir, "spec.json")], {
        env,
        stdio: ["ignore", "pipe", "inherit"],
      });
      taken.runner = runner;
      // Whole lines go to the log as they come, one append at a time, in order.
      let partial = "";
      let appending = Promise.resolve();
      runner.stdout!.setEncoding("utf8").on("data", (d: string) => {
        const text = partial + d;
        const end = text.lastIndexOf("\n");
        partial = text.slice(end + 1);
        if (end < 0) return;
        const lines = text
          .slice(0, end)
          .split("\n")
          .filter((l) => l !== "");
        appending = appending.then(() => appendFile(logFile, criLines(lines)));
      });
      const code = await new Promise<number>((resolve) => runner.once("close", (c) => resolve(c ?? 1)));
      await appending;
      if (this.#stopped) return;
      // The runner is done: the container ends with its exit code.
      await this.#patchPod(
        name,
        code === 0
          ? { labels: { [FAIL_POD_LABEL]: null } }
          : {
              annotations: {
                [FAIL_EXIT_CODE_ANNOTATION]: String(code),
                [FAIL_DELAY]: "0s",
                [FAIL_JITTER]: "0s",
              },
            },
      ).catch(() => {}); // gone meanwhile (cancel, destroy)
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  #patchPod(name: string, metadata: Record<string, unknown>): Promise<unknown> {
    return this.#core.patchNamespacedPod({ name, namespace: this.#ns, body: { metadata } }, MERGE);
  }
}

/** Not exited (a process that ended on a signal has a signalCode instead of an exitCode). */
function running(child: ChildProcess | undefined): boolean {
  return child !== undefined && child.exitCode === null && child.signalCode === null;
}
