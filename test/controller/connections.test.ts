/**
 * One connection pool per cluster (src/api/kube-client.ts): the API server is reached through a
 * TCP proxy that counts the connections it accepts. client-node 2.0.1 alone opens one per call
 * (a new undici Agent each time); with `shareConnections` sequential calls — from several API
 * clients built from the same KubeConfig — reuse one kept-alive connection.
 */
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { test } from "node:test";
import { BatchV1Api, CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { closeConnections, shareConnections } from "../../src/api/kube-client.ts";
import { getTestCluster } from "../harness/index.ts";

const cluster = await getTestCluster();

class CountingProxy {
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  accepted = 0;
  port = 0;

  async open(target: URL): Promise<void> {
    const server = createServer((client) => {
      this.accepted++;
      const upstream = connect(Number(target.port), target.hostname);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on("close", () => this.#sockets.delete(s));
        s.on("error", () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}

function viaProxy(port: number): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  const current = kc.getCurrentCluster()!;
  kc.loadFromOptions({
    clusters: kc.clusters.map((c) =>
      c.name === current.name ? { ...c, server: `https://127.0.0.1:${port}` } : c,
    ),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
  });
  return kc;
}

async function calls(kc: KubeConfig, n: number): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const batch = kc.makeApiClient(BatchV1Api);
  for (let i = 0; i < n; i++) {
    await core.listNamespace({ limit: 1 });
    await batch.listNamespacedJob({ namespace: "default", limit: 1 });
  }
}

test("clients of one shared KubeConfig reuse one connection", { skip: cluster.skip }, async (t) => {
  const target = new URL(cluster.kubeConfig().getCurrentCluster()!.server);
  const proxy = new CountingProxy();
  await proxy.open(target);
  t.after(() => proxy.close());

  const shared = shareConnections(viaProxy(proxy.port));
  assert.equal(shareConnections(shared), shared, "idempotent");
  await calls(shared, 10);
  assert.equal(proxy.accepted, 1, `20 sequential calls opened ${proxy.accepted} connections`);
  await closeConnections(shared);

  // What the library does alone (if this fails, client-node reuses connections itself now and
  // src/api/kube-client.ts can go).
  proxy.accepted = 0;
  await calls(viaProxy(proxy.port), 5);
  assert.ok(proxy.accepted >= 5, `unshared: ${proxy.accepted} connections for 10 calls`);
});
