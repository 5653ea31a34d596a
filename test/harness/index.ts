// What test files use. One control plane per test run, shared by all test files:
//
//   node --test --test-global-setup=test/harness/global-setup.ts "test/**/*.test.ts"
//
// The global setup starts it once (full mode unless LOOM_K8S_MODE=plain) and hands it to the
// test-file processes through an environment variable. A test file run on its own (no global
// setup) starts a private control plane instead, so `node --test test/x.test.ts` also works.
// Tests isolate themselves with a fresh namespace each (cluster.namespace(t)).
//
//   const cluster = await getTestCluster({ full: true });
//   test("...", { skip: cluster.skip }, async (t) => {
//     const ns = await cluster.namespace(t);
//     const batch = cluster.kubeConfig().makeApiClient(BatchV1Api);
//   });
//
// Missing binaries fail the test file (MissingBinariesError says how to build them) unless
// LOOM_SKIP_K8S=1, which turns `cluster.skip` into a reason string.
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { CoreV1Api, CustomObjectsApi, KubeConfig, KubernetesObjectApi } from "@kubernetes/client-node";
import { GROUP, SPINDLESET, VERSION } from "../../src/api/v1alpha1/group.ts";
import { locateBinaries, MissingBinariesError, readConfig } from "./config.ts";
import { ControlPlane, type ControlPlaneState, writeUserKubeconfig } from "./control-plane.ts";
import { applyCrdFile, type KubectlResult, runKubectl, SPINDLESET_CRD_PATH } from "./crd.ts";
import { waitUntil } from "./wait.ts";

export { K8S_VERSION, MissingBinariesError } from "./config.ts";
export { ControlPlane, type ControlPlaneState } from "./control-plane.ts";
export { SPINDLESET_CRD_PATH, TEST_FIELD_MANAGER } from "./crd.ts";
export { FAIL_EXIT_CODE_ANNOTATION, FAIL_POD_LABEL, FAKE_NODES } from "./kwok.ts";
export type { KubectlResult };

export class TestCluster {
  /** false, or why the tests needing Kubernetes are skipped (LOOM_SKIP_K8S=1 and no binaries). */
  readonly skip: false | string;
  readonly #state: ControlPlaneState | undefined;

  constructor(state: ControlPlaneState | undefined, skip: false | string) {
    this.#state = state;
    this.skip = skip;
  }

  get state(): ControlPlaneState {
    if (!this.#state) throw new Error(`no control plane: ${this.skip}`);
    return this.#state;
  }

  /** Path of the admin kubeconfig (system:masters); also what KUBECONFIG should point at. */
  get kubeconfigPath(): string {
    return this.state.kubeconfigPath;
  }

  get full(): boolean {
    return this.state.full;
  }

  /** A fresh admin KubeConfig (@kubernetes/client-node). */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfigPath);
    return kc;
  }

  /**
   * A KubeConfig for `user` in `groups`, authenticated by a client certificate from the run's CA.
   * RBAC decides what it may do; with no bindings it may do nothing.
   */
  async userKubeConfig(user: string, groups: readonly string[] = []): Promise<KubeConfig> {
    const kc = new KubeConfig();
    kc.loadFromFile(await writeUserKubeconfig(this.state, user, groups));
    return kc;
  }

  /**
   * Creates a namespace unique to this test, deleted after it (with full mode's namespace
   * controller the deletion completes; in plain mode it stays Terminating, which is harmless).
   */
  async namespace(t: TestContext, labels: Record<string, string> = {}): Promise<string> {
    const slug =
      t.name
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, "-")
        .replace(/^-+|-+$/g, "")
        .slice(0, 40)
        .replace(/-+$/, "") || "test";
    const name = `t-${slug}-${randomBytes(3).toString("hex")}`;
    const core = this.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespace({
      body: { metadata: { name, labels: { "loom.test/namespace": "true", ...labels } } },
    });
    t.after(async () => {
      await core.deleteNamespace({ name }).catch(() => {});
    });
    return name;
  }

  /** Generic client for applying manifests (create/patch/delete any kind). */
  objects(): KubernetesObjectApi {
    return KubernetesObjectApi.makeApiClient(this.kubeConfig());
  }

  /**
   * Installs the SpindleSet CRD, or updates it to config/crd's file, exactly as the file has it
   * (a server-side apply, as `make install` does; client-node would drop `enum`, `default` and
   * the `x-kubernetes-*` keys, see crd.ts), and waits until SpindleSets are served.
   */
  async installSpindleSetCrd(): Promise<void> {
    await applyCrdFile(this.state.kubectl, this.kubeconfigPath, SPINDLESET_CRD_PATH);
    const custom = this.kubeConfig().makeApiClient(CustomObjectsApi);
    await eventually("SpindleSets served", async () => {
      try {
        await custom.listClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural: SPINDLESET.plural,
          limit: 1,
        });
        return true;
      } catch (err) {
        return `list: ${(err as Error).message}`;
      }
    });
  }

  /** Runs the kubectl built with the control plane against it; `input` goes to stdin. */
  kubectl(args: readonly string[], input?: string): Promise<KubectlResult> {
    return runKubectl(this.state.kubectl, this.kubeconfigPath, args, input);
  }

  /**
   * Fake container logs for a pod (full mode): writes `lines` as a CRI-format log file and
   * creates a kwok Logs object pointing at it, so the apiserver's pods/log (kubectl logs,
   * client-node Log) streams them from kwok's kubelet endpoint.
   */
  async fakePodLogs(namespace: string, pod: string, lines: readonly string[], follow = false): Promise<void> {
    const file = join(this.state.runDir, `logs-${namespace}-${pod}-${randomBytes(3).toString("hex")}.log`);
    const now = new Date().toISOString().replace("Z", "000000Z");
    await writeFile(file, lines.map((l) => `${now} stdout F ${l}\n`).join(""));
    await this.objects().create({
      apiVersion: "kwok.x-k8s.io/v1alpha1",
      kind: "Logs",
      metadata: { name: pod, namespace },
      spec: { logs: [{ logsFile: file, follow }] },
    } as never);
  }
}

/** Polls `probe` until it returns true (or a string saying what is still missing). */
export function eventually(
  what: string,
  probe: () => Promise<boolean | string>,
  timeoutMs = 60_000,
): Promise<void> {
  return waitUntil(what, probe, { timeoutMs, intervalMs: 200 });
}

let own: Promise<TestCluster> | undefined;

/**
 * The run's shared control plane, or (a test file run without the global setup) one private to
 * this process, stopped when the process ends. `full: true` demands kube-controller-manager,
 * kube-scheduler and kwok.
 */
export async function getTestCluster(opts: { full?: boolean } = {}): Promise<TestCluster> {
  const config = readConfig();
  if (config.sharedState) {
    const state = JSON.parse(config.sharedState) as ControlPlaneState;
    if (opts.full && !state.full) {
      throw new Error(
        "this test file needs the full control plane (controller-manager, scheduler, kwok), " +
          "but the run started a plain one (LOOM_K8S_MODE=plain); unset LOOM_K8S_MODE",
      );
    }
    return new TestCluster(state, false);
  }
  own ??= (async () => {
    let binaries: ReturnType<typeof locateBinaries>;
    try {
      binaries = locateBinaries(config.cacheDir);
    } catch (err) {
      if (err instanceof MissingBinariesError && config.skipIfMissing) {
        return new TestCluster(undefined, `LOOM_SKIP_K8S=1 and no Kubernetes binaries in ${config.cacheDir}`);
      }
      throw err;
    }
    const cp = await ControlPlane.start({
      binaries,
      full: opts.full || config.mode === "full",
      keepRunDir: config.keepRunDir,
    });
    // Children do not hold the event loop open, so this fires once the tests are done.
    process.once("beforeExit", () => void cp.stop());
    return new TestCluster(cp.state(), false);
  })();
  const cluster = await own;
  if (opts.full && !cluster.skip && !cluster.full) {
    throw new Error("getTestCluster({ full: true }) after a plain control plane was started in this process");
  }
  return cluster;
}
