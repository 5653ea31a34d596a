import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { pino } from "pino";
import { Informer } from "./informer.ts";

/** A KubeConfig whose server refuses connections: the watch after the list fails and retries. */
function nowhere(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: "https://127.0.0.1:1", skipTLSVerify: true }],
    users: [{ name: "u" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return kc;
}

const pod = (name: string): V1Pod => ({
  metadata: { name, namespace: "loom", managedFields: [{ manager: "kcm" }] },
  spec: { containers: [{ name: "runner", image: "i" }] },
});

describe("Informer list", () => {
  it("hands its transform to the LIST, so each page is slimmed as it arrives, and transforms each object once", async () => {
    let transformed = 0;
    let fullAfterList = -1;
    let listed!: () => void;
    const once = new Promise<void>((resolve) => {
      listed = resolve;
    });
    const informer = new Informer<V1Pod>({
      kubeConfig: nowhere(),
      path: "/api/v1/namespaces/loom/pods",
      log: pino({ level: "silent" }),
      baseDelayMs: 60_000,
      transform: (p) => {
        transformed++;
        return { metadata: { name: p.metadata!.name!, namespace: "loom" } };
      },
      list: async (each?: (p: V1Pod) => V1Pod) => {
        // Two pages: a list that slims the first page's objects before it fetches the second.
        const slim = typeof each === "function" ? each : (p: V1Pod) => p;
        const first = [pod("a"), pod("b")].map(slim);
        const second = [pod("c")].map(slim);
        const items = [...first, ...second];
        fullAfterList = items.filter((p) => p.spec !== undefined).length;
        listed();
        return { items, metadata: { resourceVersion: "5" } };
      },
    });
    void informer.start();
    await once;
    await informer.stop();
    assert.equal(fullAfterList, 0, "the LIST got no transform to slim its pages with");
    assert.equal(transformed, 3);
    assert.deepEqual(
      informer.list().map((p) => p.metadata?.name),
      ["a", "b", "c"],
    );
    assert.equal(informer.get("loom/a")?.spec, undefined);
  });
});
