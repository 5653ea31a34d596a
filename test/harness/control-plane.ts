// A real Kubernetes control plane for tests, envtest-style: etcd + kube-apiserver on free
// loopback ports, client-certificate authentication, RBAC authorization. "Full" mode adds
// kube-controller-manager (Jobs, TTL, garbage collection, namespaces), kube-scheduler and kwok
// with fake nodes, so Jobs really get pods that are scheduled, run and finish.
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { stringify } from "yaml";
import type { Binaries } from "./config.ts";
import { FAKE_NODES, installKwokCrds, kwokArgs, registerFakeNodes, waitForNodesReady } from "./kwok.ts";
import { createPki, issueClientCert, issueServingCert, type Pki } from "./pki.ts";
import { ManagedProcess, recordGroup, registerRunDir, startReaper, unregisterRunDir } from "./processes.ts";
import { http200, waitUntil } from "./wait.ts";

export interface ControlPlaneOptions {
  readonly binaries: Binaries;
  /** Add kube-controller-manager, kube-scheduler and kwok with fake nodes. */
  readonly full?: boolean;
  /** Keep the run folder (logs, PKI, etcd data) after stop(), for debugging. */
  readonly keepRunDir?: boolean;
  /** Progress messages (default: none). */
  readonly log?: (message: string) => void;
  /** Per-component readiness timeout; a loaded 2-core machine needs tens of seconds. */
  readonly timeoutMs?: number;
  /**
   * kube-controller-manager's client rate limit (`--kube-api-qps`/`--kube-api-burst`, its own
   * defaults 20 and 30 when unset). Its job controller makes every Job's pod and writes its
   * status through it, so it bounds how many short workflows a minute the cluster completes
   * (bench/controller.bench.ts raises it; tests keep the defaults).
   */
  readonly kcmApiQps?: number;
  readonly kcmApiBurst?: number;
  /** kube-controller-manager's `--concurrent-job-syncs` (its default 5): Job syncs at once. */
  readonly kcmJobSyncs?: number;
  /** kube-scheduler's `--kube-api-qps`/`--kube-api-burst` (its defaults 50 and 100). */
  readonly schedulerApiQps?: number;
  readonly schedulerApiBurst?: number;
}

/** What another process needs to use a running control plane (see ControlPlane.state()). */
export interface ControlPlaneState {
  readonly kubeconfigPath: string;
  readonly server: string;
  readonly runDir: string;
  readonly pkiDir: string;
  readonly full: boolean;
  readonly versions: Readonly<Record<string, string>>;
  readonly kubectl: string;
  readonly pids: Readonly<Record<string, number>>;
}

export interface Timings {
  readonly [step: string]: number;
}

export class ControlPlane {
  readonly runDir: string;
  readonly kubeconfigPath: string;
  readonly server: string;
  readonly full: boolean;
  readonly pki: Pki;
  readonly binaries: Binaries;
  /** Milliseconds from start() to each component being ready. */
  readonly timings: Timings;
  readonly #processes: readonly ManagedProcess[];
  readonly #stopReaper: () => void;
  readonly #keep: boolean;
  #stopped: Promise<void> | undefined;

  private constructor(init: {
    runDir: string;
    kubeconfigPath: string;
    server: string;
    full: boolean;
    pki: Pki;
    binaries: Binaries;
    timings: Timings;
    processes: ManagedProcess[];
    stopReaper: () => void;
    keep: boolean;
  }) {
    this.runDir = init.runDir;
    this.kubeconfigPath = init.kubeconfigPath;
    this.server = init.server;
    this.full = init.full;
    this.pki = init.pki;
    this.binaries = init.binaries;
    this.timings = init.timings;
    this.#processes = init.processes;
    this.#stopReaper = init.stopReaper;
    this.#keep = init.keep;
  }

  static async start(opts: ControlPlaneOptions): Promise<ControlPlane> {
    const t0 = performance.now();
    const timings: Record<string, number> = {};
    const mark = (step: string) => {
      timings[step] = Math.round(performance.now() - t0);
      opts.log?.(`${step} after ${timings[step]} ms`);
    };
    const full = opts.full ?? false;
    const timeoutMs = opts.timeoutMs ?? 90_000;
    const bins = opts.binaries;
    const runDir = await mkdtemp(join(tmpdir(), "loom-k8s-"));
    const keep = opts.keepRunDir ?? false;
    if (!keep) registerRunDir(runDir);
    const reaper = startReaper(runDir, keep);
    const processes: ManagedProcess[] = [];
    const spawn = (name: string, command: string, args: string[]) => {
      const p = ManagedProcess.start(name, command, args, { logDir: runDir });
      recordGroup(runDir, p.pid);
      processes.push(p);
      return p;
    };

    try {
      const pki = await createPki(join(runDir, "pki"));
      const { etcdClient, etcdPeer, api, kcm, sched, kwokPort } = await freePorts([
        "etcdClient",
        "etcdPeer",
        "api",
        "kcm",
        "sched",
        "kwokPort",
      ] as const);
      mark("pki");

      const etcdUrl = `http://127.0.0.1:${etcdClient}`;
      const etcd = spawn("etcd", bins.etcd, [
        "--name=default",
        `--data-dir=${join(runDir, "etcd")}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
        // Test data is thrown away; fsync only costs time.
        "--unsafe-no-fsync=true",
        "--log-level=warn",
      ]);
      await waitUntil("etcd /health", http200(`${etcdUrl}/health`), { timeoutMs, process: etcd });
      mark("etcd");

      const server = `https://127.0.0.1:${api}`;
      const apiserver = spawn("kube-apiserver", bins.kubeApiserver, [
        `--etcd-servers=${etcdUrl}`,
        "--bind-address=127.0.0.1",
        `--secure-port=${api}`,
        `--cert-dir=${join(runDir, "apiserver-certs")}`,
        `--tls-cert-file=${pki.serverCert}`,
        `--tls-private-key-file=${pki.serverKey}`,
        `--client-ca-file=${pki.caCert}`,
        "--authorization-mode=RBAC",
        "--service-cluster-ip-range=10.96.0.0/24",
        "--allow-privileged=true",
        // ServiceAccount: its token controller does not run, so pods would be rejected for a
        // missing "default" service account. TaintNodesByCondition: would taint every new Node
        // not-ready, and only the node-lifecycle controller (not run) removes that taint.
        "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
        `--service-account-issuer=${server}/`,
        `--service-account-key-file=${pki.saPublicKey}`,
        `--service-account-signing-key-file=${pki.saPrivateKey}`,
        // `kubectl logs` is proxied to the node's kubelet endpoint: kwok's server on 127.0.0.1.
        "--kubelet-preferred-address-types=InternalIP",
        // kwok's serving certificate comes from the run's CA, so the apiserver can verify it.
        `--kubelet-certificate-authority=${pki.caCert}`,
        `--kubelet-client-certificate=${pki.adminCert}`,
        `--kubelet-client-key=${pki.adminKey}`,
        ...advertiseAddressArgs(),
      ]);
      const adminTls = {
        ca: await readFile(pki.caCert, "utf8"),
        cert: await readFile(pki.adminCert, "utf8"),
        key: await readFile(pki.adminKey, "utf8"),
      };
      // /readyz as system:masters: 200 only once every post-start hook (RBAC bootstrap roles,
      // priority levels, ...) has finished.
      await waitUntil("kube-apiserver /readyz", http200(`${server}/readyz`, adminTls), {
        timeoutMs,
        process: apiserver,
      });
      mark("kube-apiserver");

      const kubeconfigPath = join(runDir, "kubeconfig");
      await writeKubeconfig(kubeconfigPath, server, pki.caCert, pki.adminCert, pki.adminKey);

      if (full) {
        const componentArgs = (port: number, name: string) => [
          `--kubeconfig=${kubeconfigPath}`,
          `--authentication-kubeconfig=${kubeconfigPath}`,
          `--authorization-kubeconfig=${kubeconfigPath}`,
          "--leader-elect=false",
          "--bind-address=127.0.0.1",
          `--secure-port=${port}`,
          `--cert-dir=${join(runDir, `${name}-certs`)}`,
          "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
        ];
        const controllerManager = spawn("kube-controller-manager", bins.kubeControllerManager, [
          ...componentArgs(kcm, "kube-controller-manager"),
          // Only what a Job's life needs: pods and status (job), deletion after
          // ttlSecondsAfterFinished (ttl-after-finished), the cascade that deletion starts
          // (garbage-collector), and namespace deletion finishing (namespace); plus what Loom's
          // own Deployment needs (deployment, replicaset, PV binding) for the install test.
          "--controllers=job-controller,ttl-after-finished-controller,garbage-collector-controller,namespace-controller,deployment-controller,replicaset-controller,persistentvolume-binder-controller",
          ...(opts.kcmApiQps !== undefined ? [`--kube-api-qps=${opts.kcmApiQps}`] : []),
          ...(opts.kcmApiBurst !== undefined ? [`--kube-api-burst=${opts.kcmApiBurst}`] : []),
          ...(opts.kcmJobSyncs !== undefined ? [`--concurrent-job-syncs=${opts.kcmJobSyncs}`] : []),
        ]);
        const scheduler = spawn("kube-scheduler", bins.kubeScheduler, [
          ...componentArgs(sched, "kube-scheduler"),
          ...(opts.schedulerApiQps !== undefined ? [`--kube-api-qps=${opts.schedulerApiQps}`] : []),
          ...(opts.schedulerApiBurst !== undefined ? [`--kube-api-burst=${opts.schedulerApiBurst}`] : []),
        ]);

        await installKwokCrds(bins.kubectl, kubeconfigPath, bins.kwokCrds);
        // kwok serves the kubelet API (logs) with a certificate from the run's CA.
        const kwokCert = await issueServingCert(pki.dir, "kwok");
        const kwok = spawn(
          "kwok",
          bins.kwok,
          kwokArgs({
            kubeconfigPath,
            stagesPath: bins.kwokStages,
            port: kwokPort,
            certPath: kwokCert.certPath,
            keyPath: kwokCert.keyPath,
          }),
        );
        await registerFakeNodes(kubeconfigPath);
        await Promise.all([
          waitUntil(
            "kube-controller-manager /healthz",
            http200(`https://127.0.0.1:${kcm}/healthz`, { insecure: true }),
            { timeoutMs, process: controllerManager },
          ),
          waitUntil(
            "kube-scheduler /readyz",
            http200(`https://127.0.0.1:${sched}/readyz`, { insecure: true }),
            {
              timeoutMs,
              process: scheduler,
            },
          ),
          waitForNodesReady(kubeconfigPath, FAKE_NODES, { timeoutMs, process: kwok }),
        ]);
        mark("full");
      }

      return new ControlPlane({
        runDir,
        kubeconfigPath,
        server,
        full,
        pki,
        binaries: bins,
        timings,
        processes,
        stopReaper: reaper.stop,
        keep,
      });
    } catch (err) {
      // Leave nothing behind when startup fails; keep the logs in the error message instead.
      await Promise.all(processes.map((p) => p.stop(3_000)));
      reaper.stop();
      if (!keep) await rm(runDir, { recursive: true, force: true });
      unregisterRunDir(runDir);
      throw err;
    }
  }

  /** A fresh KubeConfig for the admin user (system:masters). */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfigPath);
    return kc;
  }

  /** Resident memory (kB) per component, from /proc/<pid>/status VmRSS. */
  async rss(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const p of this.#processes) {
      const status = await readFile(`/proc/${p.pid}/status`, "utf8").catch(() => "");
      const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
      if (m) out[p.name] = Number(m[1]);
    }
    return out;
  }

  pids(): Record<string, number> {
    return Object.fromEntries(this.#processes.map((p) => [p.name, p.pid]));
  }

  state(): ControlPlaneState {
    return {
      kubeconfigPath: this.kubeconfigPath,
      server: this.server,
      runDir: this.runDir,
      pkiDir: this.pki.dir,
      full: this.full,
      versions: this.binaries.versions,
      kubectl: this.binaries.kubectl,
      pids: this.pids(),
    };
  }

  /** Stops every component (reverse start order) and deletes the run folder. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      for (const p of [...this.#processes].reverse()) await p.stop();
      this.#stopReaper();
      if (!this.#keep) await rm(this.runDir, { recursive: true, force: true });
      unregisterRunDir(this.runDir);
    })();
    return this.#stopped;
  }
}

async function writeKubeconfig(path: string, server: string, ca: string, cert: string, key: string) {
  const b64 = async (p: string) => (await readFile(p)).toString("base64");
  const doc = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "loom-test", cluster: { server, "certificate-authority-data": await b64(ca) } }],
    users: [
      {
        name: "test-admin",
        user: { "client-certificate-data": await b64(cert), "client-key-data": await b64(key) },
      },
    ],
    contexts: [{ name: "loom-test", context: { cluster: "loom-test", user: "test-admin" } }],
    "current-context": "loom-test",
  };
  await writeFile(path, stringify(doc), { mode: 0o600 });
}

/** A kubeconfig for another user (RBAC applies: no groups means no permissions). */
export async function writeUserKubeconfig(
  state: Pick<ControlPlaneState, "pkiDir" | "server" | "runDir">,
  user: string,
  groups: readonly string[] = [],
): Promise<string> {
  const stem = `user-${user.replace(/[^A-Za-z0-9]/g, "_")}-${process.pid}-${Date.now()}`;
  const c = await issueClientCert(state.pkiDir, stem, user, groups);
  const path = join(state.runDir, `${stem}.kubeconfig`);
  await writeKubeconfig(path, state.server, join(state.pkiDir, "ca.crt"), c.certPath, c.keyPath);
  return path;
}

/**
 * With --bind-address=127.0.0.1 the apiserver advertises the default-route interface's address
 * and refuses to start on a machine that has none ("Unable to find suitable network address").
 * Only then advertise loopback: the `kubernetes` Service's endpoints are then rejected and merely
 * logged, which no test depends on.
 */
function advertiseAddressArgs(): string[] {
  let routes = "";
  try {
    routes = readFileSync("/proc/net/route", "utf8");
  } catch {
    // Not Linux: let the apiserver choose.
    return [];
  }
  // Columns: Iface Destination Gateway ...; a default route has destination 00000000.
  const hasDefault = routes.split("\n").some((line) => line.split(/\s+/)[1] === "00000000");
  return hasDefault ? [] : ["--advertise-address=127.0.0.1"];
}

/** Free loopback ports, one per name: all listeners are open at once, so the ports are distinct. */
async function freePorts<K extends string>(names: readonly K[]): Promise<Record<K, number>> {
  const servers = await Promise.all(
    names.map(
      () =>
        new Promise<Server>((resolve, reject) => {
          const s = createServer();
          s.once("error", reject);
          s.listen(0, "127.0.0.1", () => resolve(s));
        }),
    ),
  );
  const ports = {} as Record<K, number>;
  names.forEach((name, i) => {
    const a = servers[i]!.address();
    if (a === null || typeof a === "string") throw new Error("unexpected listener address");
    ports[name] = a.port;
  });
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}
