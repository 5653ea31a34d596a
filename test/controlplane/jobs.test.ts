// Full-mode smoke tests: Jobs really run. kube-controller-manager's job controller creates the
// pod, kube-scheduler binds it to a kwok node matching its nodeSelector, kwok's stages move it to
// Succeeded (or Failed), and the job controller sets the Job's terminal condition.
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { finished } from "node:stream/promises";
import { test } from "node:test";
import { BatchV1Api, CoreV1Api, Log, type V1Job, type V1Pod } from "@kubernetes/client-node";
import { eventually, FAIL_POD_LABEL, FAKE_NODES, getTestCluster } from "../harness/index.ts";

const cluster = await getTestCluster({ full: true });

function job(
  name: string,
  opts: { arch?: string; podLabels?: Record<string, string>; ttl?: number } = {},
): V1Job {
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name },
    spec: {
      backoffLimit: 0,
      ...(opts.ttl !== undefined ? { ttlSecondsAfterFinished: opts.ttl } : {}),
      template: {
        metadata: { labels: { app: name, ...opts.podLabels } },
        spec: {
          restartPolicy: "Never",
          ...(opts.arch ? { nodeSelector: { "kubernetes.io/arch": opts.arch } } : {}),
          containers: [{ name: "main", image: "alpine:3", command: ["true"] }],
        },
      },
    },
  };
}

async function waitForCondition(batch: BatchV1Api, ns: string, name: string, type: "Complete" | "Failed") {
  let last: V1Job | undefined;
  await eventually(`Job ${name} ${type}`, async () => {
    last = await batch.readNamespacedJob({ name, namespace: ns });
    const conds = last.status?.conditions ?? [];
    const other = type === "Complete" ? "Failed" : "Complete";
    if (conds.some((c) => c.type === other && c.status === "True")) {
      assert.fail(`Job ${name} reached ${other}, expected ${type}: ${JSON.stringify(last.status)}`);
    }
    return conds.some((c) => c.type === type && c.status === "True") || JSON.stringify(last.status ?? {});
  });
  return last!;
}

async function podsOf(core: CoreV1Api, ns: string, jobName: string): Promise<V1Pod[]> {
  return (await core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${jobName}` })).items;
}

test("the fake nodes are Ready with the expected architectures", { skip: cluster.skip }, async () => {
  const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  const nodes = (await core.listNode({ labelSelector: "type=kwok" })).items;
  const arch = Object.fromEntries(
    nodes.map((n) => [n.metadata!.name!, n.metadata!.labels!["kubernetes.io/arch"]]),
  );
  assert.deepEqual(arch, Object.fromEntries(FAKE_NODES.map((n) => [n.name, n.arch])));
  const amd64 = nodes.filter((n) => n.metadata!.labels!["kubernetes.io/arch"] === "amd64");
  assert.equal(amd64.length, 2);
  for (const n of nodes) {
    assert.equal(
      n.status?.nodeInfo?.architecture,
      n.metadata!.labels!["kubernetes.io/arch"],
      n.metadata!.name,
    );
    assert.match(n.status?.nodeInfo?.kubeletVersion ?? "", /^kwok-/, "kwok filled in the rest of nodeInfo");
  }
});

test("a Job asking for arm64 runs on the arm64 node and reaches Complete", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const kc = cluster.kubeConfig();
  const batch = kc.makeApiClient(BatchV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  await batch.createNamespacedJob({ namespace: ns, body: job("arm", { arch: "arm64" }) });

  const done = await waitForCondition(batch, ns, "arm", "Complete");
  assert.equal(done.status?.succeeded, 1);
  assert.ok(done.status?.completionTime, "completionTime set by the job controller");

  const pods = await podsOf(core, ns, "arm");
  assert.equal(pods.length, 1);
  assert.equal(pods[0]!.spec?.nodeName, "kwok-arm64-0");
  assert.equal(pods[0]!.status?.phase, "Succeeded");
  assert.equal(pods[0]!.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 0);
});

test("a Job whose pod fails reaches Failed", { skip: cluster.skip }, async (t) => {
  const ns = await cluster.namespace(t);
  const kc = cluster.kubeConfig();
  const batch = kc.makeApiClient(BatchV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  await batch.createNamespacedJob({
    namespace: ns,
    body: job("boom", { arch: "amd64", podLabels: { [FAIL_POD_LABEL]: "true" } }),
  });

  const failed = await waitForCondition(batch, ns, "boom", "Failed");
  assert.equal(failed.status?.failed, 1);
  assert.equal(failed.status?.conditions?.find((c) => c.type === "Failed")?.reason, "BackoffLimitExceeded");
  const pods = await podsOf(core, ns, "boom");
  assert.equal(pods[0]!.status?.phase, "Failed");
  assert.match(pods[0]!.spec?.nodeName ?? "", /^kwok-amd64-/);
  assert.equal(pods[0]!.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 1);
});

test("a finished Job with ttlSecondsAfterFinished is deleted with its pods", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const kc = cluster.kubeConfig();
  const batch = kc.makeApiClient(BatchV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  await batch.createNamespacedJob({ namespace: ns, body: job("ttl", { ttl: 0 }) });
  // The TTL controller deletes the Job (foreground); the garbage collector removes the pod and
  // then the Job. Without the garbage collector the Job would hang with its finalizer.
  await eventually("Job ttl and its pod deleted", async () => {
    const jobs = (await batch.listNamespacedJob({ namespace: ns })).items.map((j) => j.metadata?.name);
    const pods = (await podsOf(core, ns, "ttl")).map((p) => p.metadata?.name);
    return (jobs.length === 0 && pods.length === 0) || `jobs ${jobs.join(",")} pods ${pods.join(",")}`;
  });
});

test("container logs are served through the API server from kwok", { skip: cluster.skip }, async (t) => {
  const ns = await cluster.namespace(t);
  const kc = cluster.kubeConfig();
  const batch = kc.makeApiClient(BatchV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  await batch.createNamespacedJob({ namespace: ns, body: job("logs") });
  await waitForCondition(batch, ns, "logs", "Complete");
  const pod = (await podsOf(core, ns, "logs"))[0]!.metadata!.name!;
  await cluster.fakePodLogs(ns, pod, ["hello from kwok", "second line"]);

  // kwok reads Logs objects through an informer; poll until it has seen ours.
  let kubectlOut = "";
  await eventually("kubectl logs", async () => {
    const r = await cluster.kubectl(["logs", "-n", ns, pod]);
    kubectlOut = r.stdout;
    return (r.code === 0 && r.stdout.includes("second line")) || `code ${r.code}: ${r.stderr.trim()}`;
  });
  assert.equal(kubectlOut, "hello from kwok\nsecond line\n");

  // And through @kubernetes/client-node's Log (what the operator will use). In 2.0.1 its `done`
  // callback is never called; the log ends when the piped stream ends.
  const sink = new PassThrough();
  let text = "";
  sink.on("data", (d: Buffer) => {
    text += d.toString();
  });
  await new Log(kc).log(ns, pod, "main", sink, {});
  await finished(sink);
  assert.equal(text, "hello from kwok\nsecond line\n");
});
