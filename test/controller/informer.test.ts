/**
 * The informer against a real apiserver reached through a TCP proxy the test can cut: the
 * connection drops and is refused for a while (an apiserver restart, a network blip). The
 * client-node ListWatch would stop for good; ours restarts with backoff and its cache catches up,
 * including objects deleted while it was cut off.
 */
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1ConfigMap,
} from "@kubernetes/client-node";
import { Informer } from "../../src/api/informer.ts";
import { eventually, getTestCluster } from "../harness/index.ts";
import { LogCapture, plain } from "./support.ts";

const cluster = await getTestCluster();

/** A TCP proxy to the apiserver that can refuse and drop connections. */
class CuttableProxy {
  readonly #target: URL;
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  port = 0;

  constructor(target: string) {
    this.#target = new URL(target);
  }

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(Number(this.#target.port), this.#target.hostname);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on("close", () => this.#sockets.delete(s));
        s.on("error", () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, "127.0.0.1", resolve));
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  /** Drops every connection and refuses new ones until open() again. */
  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }
}

test("the informer survives a cut connection and catches up, deletions included", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const admin = cluster.kubeConfig();
  const core = admin.makeApiClient(CoreV1Api);
  const proxy = new CuttableProxy(admin.getCurrentCluster()!.server);
  await proxy.open();
  t.after(() => proxy.cut());

  const viaProxy = new KubeConfig();
  viaProxy.loadFromFile(cluster.kubeconfigPath);
  const current = viaProxy.getCurrentCluster()!;
  const clusters = viaProxy.clusters.map((c) =>
    c.name === current.name ? { ...c, server: `https://127.0.0.1:${proxy.port}` } : c,
  );
  viaProxy.loadFromOptions({
    clusters,
    users: viaProxy.users,
    contexts: viaProxy.contexts,
    currentContext: viaProxy.currentContext,
  });
  const proxied = viaProxy.makeApiClient(CoreV1Api);
  const logs = new LogCapture();
  const deleted: string[] = [];
  const informer = new Informer<V1ConfigMap>({
    kubeConfig: viaProxy,
    path: `/api/v1/namespaces/${ns}/configmaps`,
    list: async () => plain(await proxied.listNamespacedConfigMap({ namespace: ns })),
    log: logs.log,
    baseDelayMs: 100,
    maxDelayMs: 500,
    handlers: { delete: (cm) => deleted.push(cm.metadata!.name!) },
  });
  t.after(() => informer.stop());
  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "before" } } });
  await informer.start();
  assert.ok(informer.get(`${ns}/before`));

  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "watched" } } });
  await eventually("watch delivers", async () => informer.get(`${ns}/watched`) !== undefined);

  await proxy.cut();
  await core.deleteNamespacedConfigMap({ name: "before", namespace: ns });
  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "during" } } });
  await sleep(1500); // several failed reconnects
  await proxy.open();

  await eventually("cache caught up", async () => {
    // kube-root-ca.crt comes and goes with the controller-manager (full mode only).
    const names = informer
      .list()
      .map((c) => c.metadata!.name!)
      .filter((n) => n !== "kube-root-ca.crt")
      .sort();
    return names.join(",") === "during,watched" || names.join(",");
  });
  assert.ok(!informer.get(`${ns}/before`), "deleted while cut off: gone from the cache");
  assert.ok(deleted.includes("before"), "and reported as deleted");
  assert.match(logs.text(), /watch failed, restarting/);

  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "after" } } });
  await eventually("watching again", async () => informer.get(`${ns}/after`) !== undefined);
});

test("the cache keeps objects without managedFields, from the list and from the watch", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const kc = cluster.kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const informer = new Informer<V1ConfigMap>({
    kubeConfig: kc,
    path: `/api/v1/namespaces/${ns}/configmaps`,
    list: async () => plain(await core.listNamespacedConfigMap({ namespace: ns })),
    log: new LogCapture().log,
  });
  t.after(() => informer.stop());
  await core.createNamespacedConfigMap({
    namespace: ns,
    body: { metadata: { name: "listed" }, data: { a: "1" } },
  });
  const stored = await core.readNamespacedConfigMap({ name: "listed", namespace: ns });
  assert.ok(stored.metadata?.managedFields?.length, "the API server keeps managedFields");
  await informer.start();
  await core.createNamespacedConfigMap({
    namespace: ns,
    body: { metadata: { name: "watched" }, data: { b: "2" } },
  });
  await eventually("watch delivers", async () => informer.get(`${ns}/watched`) !== undefined);
  for (const name of ["listed", "watched"]) {
    const cached = informer.get(`${ns}/${name}`)!;
    assert.equal(cached.metadata?.managedFields, undefined, name);
    assert.ok(cached.metadata?.resourceVersion && cached.data, `${name} keeps the rest`);
  }
});

test("byIndex finds objects by their index value as they are added, relabelled and deleted", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const kc = cluster.kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const informer = new Informer<V1ConfigMap>({
    kubeConfig: kc,
    path: `/api/v1/namespaces/${ns}/configmaps`,
    list: async () => plain(await core.listNamespacedConfigMap({ namespace: ns })),
    log: new LogCapture().log,
    index: (cm) => cm.metadata?.labels?.run,
  });
  t.after(() => informer.stop());
  const cm = (name: string, run: string) => ({ metadata: { name, labels: { run } } });
  await core.createNamespacedConfigMap({ namespace: ns, body: cm("a1", "a") });
  await informer.start();
  await core.createNamespacedConfigMap({ namespace: ns, body: cm("a2", "a") });
  await core.createNamespacedConfigMap({ namespace: ns, body: cm("b1", "b") });
  const names = (run: string) =>
    informer
      .byIndex(run)
      .map((c) => c.metadata!.name!)
      .sort()
      .join(",");
  await eventually("indexed from the list and the watch", async () => {
    const now = `${names("a")} ${names("b")}`;
    return now === "a1,a2 b1" || now;
  });
  await core.patchNamespacedConfigMap(
    { name: "a2", namespace: ns, body: { metadata: { labels: { run: "b" } } } },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
  await core.deleteNamespacedConfigMap({ name: "a1", namespace: ns });
  // Both watch events (the relabel and the delete) must have arrived: wait for the two at once.
  await eventually("moved and deleted", async () => {
    const now = `${names("a")}|${names("b")}`;
    return now === "|a2,b1" || now;
  });
  assert.equal(names("c"), "");
});
