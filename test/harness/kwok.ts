// kwok: fake nodes and a fake kubelet. kwok watches pods bound to the nodes it manages and moves
// them through "stages" (kwok's stock ones, copied from the kwok module by hack/control-plane.sh):
//   pod-ready     Pending -> Running (containers "running", a pod IP from --cidr)
//   pod-complete  Running pod owned by a Job -> Succeeded (exit code 0)
//   pod-container-running-failed
//                 Running pod labelled FAIL_POD_LABEL=true -> Failed (exit code 1, or the
//                 pod-container-running-failed.stage.kwok.x-k8s.io/exit-code annotation); its
//                 weight (10000) beats pod-complete, so a labelled pod always fails
//   pod-delete    pod with deletionTimestamp -> removed
// kwok also serves the kubelet API (logs) on 127.0.0.1:<port>; logs come from kwok.x-k8s.io
// Logs/ClusterLogs objects naming a CRI-format log file (see writeFakeLogs in index.ts).
import { CoreV1Api, KubeConfig, type V1Node } from "@kubernetes/client-node";
import { applyCrdFile } from "./crd.ts";
import type { ManagedProcess } from "./processes.ts";
import { waitUntil } from "./wait.ts";

/** Label that makes kwok fail a pod instead of completing it (kwok's stock chaos stage). */
export const FAIL_POD_LABEL = "pod-container-running-failed.stage.kwok.x-k8s.io";
/** Annotation that kwok's failure stage reads for the container exit code. */
export const FAIL_EXIT_CODE_ANNOTATION = "pod-container-running-failed.stage.kwok.x-k8s.io/exit-code";

/** Annotation selecting the nodes this kwok manages (so a real node, if any, is left alone). */
const MANAGED_ANNOTATION = "kwok.x-k8s.io/node";

export interface FakeNode {
  readonly name: string;
  readonly arch: "amd64" | "arm64";
}

export const FAKE_NODES: readonly FakeNode[] = [
  { name: "kwok-amd64-0", arch: "amd64" },
  { name: "kwok-amd64-1", arch: "amd64" },
  { name: "kwok-arm64-0", arch: "arm64" },
];

export function kwokArgs(o: {
  kubeconfigPath: string;
  stagesPath: string;
  port: number;
  certPath: string;
  keyPath: string;
}): string[] {
  return [
    `--kubeconfig=${o.kubeconfigPath}`,
    `--config=${o.stagesPath}`,
    "--manage-all-nodes=false",
    `--manage-nodes-with-annotation-selector=${MANAGED_ANNOTATION}=fake`,
    "--cidr=10.244.0.0/16",
    // The nodes' InternalIP; the apiserver reaches the "kubelet" (kwok's server) there.
    "--node-ip=127.0.0.1",
    `--node-port=${o.port}`,
    // Without it kwok would listen on all interfaces.
    `--server-address=127.0.0.1:${o.port}`,
    `--tls-cert-file=${o.certPath}`,
    `--tls-private-key-file=${o.keyPath}`,
    // Logs and ClusterLogs are read from the apiserver, so a test can add fake logs at run time.
    "--enable-crds=Logs,ClusterLogs",
  ];
}

function client<T>(kubeconfigPath: string, api: new (...args: never[]) => T): T {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return kc.makeApiClient(api as never) as T;
}

/** Installs kwok's Logs/ClusterLogs CRDs (exactly as the file has them) until Established. */
export async function installKwokCrds(
  kubectl: string,
  kubeconfigPath: string,
  crdsPath: string,
): Promise<void> {
  await applyCrdFile(kubectl, kubeconfigPath, crdsPath);
}

/** Creates the fake Node objects; kwok's node-initialize stage then makes them Ready. */
export async function registerFakeNodes(kubeconfigPath: string): Promise<void> {
  const core = client(kubeconfigPath, CoreV1Api);
  for (const n of FAKE_NODES) {
    const body: V1Node = {
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name: n.name,
        annotations: { [MANAGED_ANNOTATION]: "fake" },
        labels: {
          type: "kwok",
          "kubernetes.io/hostname": n.name,
          "kubernetes.io/os": "linux",
          "kubernetes.io/arch": n.arch,
        },
      },
      // The apiserver accepts a Node's status on create; kwok's node-initialize stage keeps the
      // fields set here and fills in the empty ones (kubelet version, ...). Without this every
      // node would report architecture amd64 in `kubectl get nodes -o wide`.
      status: {
        nodeInfo: {
          architecture: n.arch,
          operatingSystem: "linux",
          bootID: "",
          containerRuntimeVersion: "",
          kernelVersion: "",
          kubeProxyVersion: "",
          kubeletVersion: "",
          machineID: "",
          osImage: "",
          systemUUID: "",
        },
      },
    };
    await core.createNode({ body });
  }
}

export async function waitForNodesReady(
  kubeconfigPath: string,
  nodes: readonly FakeNode[],
  opts: { timeoutMs: number; process: ManagedProcess },
): Promise<void> {
  const core = client(kubeconfigPath, CoreV1Api);
  await waitUntil(
    "kwok nodes Ready",
    async () => {
      const list = await core.listNode({ labelSelector: "type=kwok" });
      const ready = new Set(
        list.items
          .filter((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"))
          .map((n) => n.metadata?.name),
      );
      const missing = nodes.filter((n) => !ready.has(n.name)).map((n) => n.name);
      return missing.length === 0 || `not Ready: ${missing.join(", ")}`;
    },
    { ...opts, intervalMs: 200 },
  );
}
