/**
 * One connection pool per cluster for every client Loom makes from a KubeConfig.
 *
 * `@kubernetes/client-node` 2.0.1 builds a new undici Agent in `createDispatcher` on every
 * `applySecurityAuthentication`, i.e. for every API call, watch and log stream: each call pays a
 * TCP + TLS handshake and leaves a socket behind until it idles out (measured: 5.2 ms of client
 * CPU per call and 85 open sockets under load, against 1.7 ms and one socket with reuse;
 * test/controller/connections.test.ts counts the connections the API server gets).
 * `shareConnections` makes the KubeConfig hand out one Agent per TLS identity instead — keyed
 * by the cluster, the proxy and the TLS material, so a rotated client certificate gets a new
 * pool. Tokens travel in headers, not in the Agent, so exec/OIDC auth is unaffected.
 *
 * The controller and the Kubernetes engine call it on the KubeConfig they are given, so every
 * client they build (API, Watch, Log) shares the pool. Idempotent.
 */
import { createHash } from "node:crypto";
import type { Cluster, KubeConfig } from "@kubernetes/client-node";

interface Dispatcher {
  close(): Promise<void>;
}
type CreateDispatcher = (cluster: Cluster | null, agentOptions: object) => Dispatcher | undefined;
interface Patchable {
  createDispatcher: CreateDispatcher;
}

const pools = new WeakMap<KubeConfig, Map<string, Dispatcher | undefined>>();

export function shareConnections(kc: KubeConfig): KubeConfig {
  if (pools.has(kc)) return kc;
  const pool = new Map<string, Dispatcher | undefined>();
  pools.set(kc, pool);
  const target = kc as unknown as Patchable;
  if (typeof target.createDispatcher !== "function") {
    // A client-node without the per-call Agent: nothing to share.
    return kc;
  }
  const create = target.createDispatcher.bind(kc);
  target.createDispatcher = (cluster, agentOptions) => {
    const key = dispatcherKey(kc, cluster, agentOptions);
    if (pool.has(key)) return pool.get(key);
    const dispatcher = create(cluster, agentOptions);
    pool.set(key, dispatcher);
    return dispatcher;
  };
  return kc;
}

/** Closes the shared connections of `kc` (after its clients are done). */
export async function closeConnections(kc: KubeConfig): Promise<void> {
  const pool = pools.get(kc);
  if (!pool) return;
  const dispatchers = [...pool.values()];
  pool.clear();
  await Promise.all(dispatchers.map((d) => d?.close().catch(() => {})));
}

function dispatcherKey(kc: KubeConfig, cluster: Cluster | null, agentOptions: object): string {
  const options = kc.createDispatcherOptions(cluster, agentOptions);
  const hash = createHash("sha256");
  hash.update(JSON.stringify([cluster?.name, cluster?.server]));
  // Certificates may be Buffers: hash them as base64, not as Buffer.toJSON's list of numbers.
  hash.update(
    JSON.stringify(options, function (this: Record<string, unknown>, k: string, v: unknown) {
      const raw = this[k];
      return Buffer.isBuffer(raw) ? raw.toString("base64") : v;
    }),
  );
  return hash.digest("hex");
}
