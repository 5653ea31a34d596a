/** Leader election against a real apiserver: two controllers, exactly one acts. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { CoordinationV1Api } from "@kubernetes/client-node";
import { eventually, getTestCluster } from "../harness/index.ts";
import {
  createRun,
  ensureNodes,
  installCrd,
  LogCapture,
  listJobs,
  parkedConfig,
  startController,
  waitForWorkflow,
  workflow,
} from "./support.ts";

const cluster = await getTestCluster();
if (!cluster.skip) {
  await installCrd(cluster);
  await ensureNodes(cluster);
}

const FAST = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 300 };

test("two controllers: exactly one acts; a successor takes over on release, crash and loss", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const config = parkedConfig(ns);
  const logsA = new LogCapture();
  const logsB = new LogCapture();
  const a = await startController(t, cluster, config, { leaderElection: { identity: "a", ...FAST } }, logsA);
  const b = await startController(t, cluster, config, { leaderElection: { identity: "b", ...FAST } }, logsB);
  await eventually("a leader", async () => a.controller.active || b.controller.active);
  await sleep(1000);
  assert.equal(Number(a.controller.active) + Number(b.controller.active), 1, "exactly one leader");
  const [leader, follower] = a.controller.active ? [a, b] : [b, a];

  const run = await createRun(cluster, ns, [workflow("one.yml")]);
  await waitForWorkflow(cluster, ns, run.metadata.name!, "one.yml", (_p, r) => r === "Scheduled");
  assert.equal((await listJobs(cluster, ns)).length, 1);
  assert.match(leader.logs.text(), /job created/);
  assert.doesNotMatch(follower.logs.text(), /job created|workflow status changed/, "the follower never acts");

  // Someone else takes the Lease: the leader must stop acting.
  const coord = cluster.kubeConfig().makeApiClient(CoordinationV1Api);
  // Read and replace until no renewal of the leader came in between (a 409 means one did).
  for (let attempt = 0; ; attempt++) {
    const lease = await coord.readNamespacedLease({ name: "loom-controller", namespace: ns });
    const now = new Date().toISOString().replace("Z", "000Z");
    try {
      await coord.replaceNamespacedLease({
        name: "loom-controller",
        namespace: ns,
        body: {
          metadata: {
            name: "loom-controller",
            namespace: ns,
            resourceVersion: lease.metadata!.resourceVersion!,
          },
          spec: {
            holderIdentity: "intruder",
            leaseDurationSeconds: 4,
            renewTime: now as never,
            acquireTime: now as never,
          },
        },
      });
      break;
    } catch (err) {
      if ((err as { code?: number }).code !== 409 || attempt >= 20) throw err;
    }
  }
  await eventually("nobody acts while the intruder holds the Lease", async () => {
    return !a.controller.active && !b.controller.active;
  });
  // The intruder never renews: after its duration one of ours takes over again.
  await eventually(
    "a controller leads again",
    async () => a.controller.active || b.controller.active,
    20_000,
  );
  const next = a.controller.active ? a : b;
  const other = next === a ? b : a;

  // A crash (no release): the other waits out the lease duration, then leads.
  await next.controller.stop({ release: false });
  const crashedAt = Date.now();
  await eventually("the survivor leads", async () => other.controller.active, 20_000);
  assert.ok(Date.now() - crashedAt >= 1500, "it waited for the lease to expire");

  // A clean stop releases the Lease at once.
  const successor = await startController(t, cluster, config, {
    leaderElection: { identity: "c", ...FAST, leaseDurationMs: 60_000, renewDeadlineMs: 2000 },
  });
  await other.controller.stop();
  await eventually("the successor leads soon after a release", async () => successor.controller.active, 5000);
  assert.equal((await listJobs(cluster, ns)).length, 1, "no leader change created a second Job");
});
