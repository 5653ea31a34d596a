// The one module of the test harness that reads the environment. Everything else receives a
// frozen HarnessConfig, so what a run depends on is visible in one place.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, relative } from "node:path";

/** Kubernetes release the binaries are built from; must match hack/control-plane.sh. */
export const K8S_VERSION = "v1.37.2";

/** Env var through which the global setup hands the shared control plane to test files. */
export const ENV_SHARED_STATE = "LOOM_TEST_K8S_STATE";

export interface Binaries {
  readonly dir: string;
  readonly etcd: string;
  readonly kubeApiserver: string;
  readonly kubeControllerManager: string;
  readonly kubeScheduler: string;
  readonly kubectl: string;
  readonly kwok: string;
  readonly helm: string;
  /** kwok's stock stages (copied from the kwok module by hack/control-plane.sh). */
  readonly kwokStages: string;
  /** CRDs of kwok's Logs/ClusterLogs kinds. */
  readonly kwokCrds: string;
  /** Contents of versions.env: K8S_VERSION, ETCD_VERSION, KWOK_VERSION, HELM_VERSION, GO_VERSION. */
  readonly versions: Readonly<Record<string, string>>;
}

export interface HarnessConfig {
  /** Folder holding bin/ and share/, default ~/.cache/loom/k8s-v1.37.2. */
  readonly cacheDir: string;
  /** LOOM_SKIP_K8S=1: tests needing Kubernetes skip instead of failing when binaries are missing. */
  readonly skipIfMissing: boolean;
  /** LOOM_K8S_MODE=plain|full: what the global setup starts (default full). */
  readonly mode: "plain" | "full";
  /** LOOM_K8S_KEEP=1: leave the run folder (logs, PKI) behind for debugging. */
  readonly keepRunDir: boolean;
  /** Serialized state of a control plane started by the global setup, if any. */
  readonly sharedState: string | undefined;
  /**
   * LOOM_KCM_QPS / LOOM_KCM_BURST: kube-controller-manager's `--kube-api-qps`/`--kube-api-burst`
   * for a control plane that asks for them (the controller bench); unset: KCM's defaults (20/30).
   */
  readonly kcmApiQps: number | undefined;
  readonly kcmApiBurst: number | undefined;
  /** LOOM_KCM_JOB_SYNCS: kube-controller-manager's `--concurrent-job-syncs` (default 5). */
  readonly kcmJobSyncs: number | undefined;
  /** LOOM_SCHEDULER_QPS / LOOM_SCHEDULER_BURST: kube-scheduler's (defaults 50/100). */
  readonly schedulerApiQps: number | undefined;
  readonly schedulerApiBurst: number | undefined;
}

export class MissingBinariesError extends Error {
  override name = "MissingBinariesError";
  readonly missing: readonly string[];
  constructor(dir: string, missing: readonly string[]) {
    super(
      `Kubernetes test binaries missing in ${dir}: ${missing.join(", ")}. ` +
        "Build them with `make control-plane` (hack/control-plane.sh), " +
        "or set LOOM_SKIP_K8S=1 to skip the tests that need them.",
    );
    this.missing = missing;
  }
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): HarnessConfig {
  const cacheRoot = env.LOOM_CACHE || join(env.HOME || homedir(), ".cache", "loom");
  const mode = env.LOOM_K8S_MODE || "full";
  if (mode !== "plain" && mode !== "full") {
    throw new Error(`LOOM_K8S_MODE must be "plain" or "full", not ${JSON.stringify(mode)}`);
  }
  return Object.freeze({
    cacheDir: env.LOOM_K8S_DIR || join(cacheRoot, `k8s-${K8S_VERSION}`),
    skipIfMissing: env.LOOM_SKIP_K8S === "1",
    mode,
    keepRunDir: env.LOOM_K8S_KEEP === "1",
    sharedState: env[ENV_SHARED_STATE] || undefined,
    kcmApiQps: positive(env, "LOOM_KCM_QPS"),
    kcmApiBurst: positive(env, "LOOM_KCM_BURST"),
    kcmJobSyncs: positive(env, "LOOM_KCM_JOB_SYNCS"),
    schedulerApiQps: positive(env, "LOOM_SCHEDULER_QPS"),
    schedulerApiBurst: positive(env, "LOOM_SCHEDULER_BURST"),
  });
}

function positive(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`${name} must be a whole number ≥ 1, not ${JSON.stringify(raw)}`);
  return n;
}

/** Finds the binaries built by hack/control-plane.sh; throws MissingBinariesError naming each one absent. */
export function locateBinaries(cacheDir: string): Binaries {
  const bin = (name: string) => join(cacheDir, "bin", name);
  const paths = {
    etcd: bin("etcd"),
    kubeApiserver: bin("kube-apiserver"),
    kubeControllerManager: bin("kube-controller-manager"),
    kubeScheduler: bin("kube-scheduler"),
    kubectl: bin("kubectl"),
    kwok: bin("kwok"),
    helm: bin("helm"),
    kwokStages: join(cacheDir, "share", "kwok-stages.yaml"),
    kwokCrds: join(cacheDir, "share", "kwok-crds.yaml"),
  };
  const missing = Object.values(paths)
    .filter((p) => !existsSync(p))
    .map((p) => relative(cacheDir, p));
  if (missing.length > 0) throw new MissingBinariesError(cacheDir, missing);
  return Object.freeze({ dir: cacheDir, ...paths, versions: readVersions(join(cacheDir, "versions.env")) });
}

function readVersions(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}
