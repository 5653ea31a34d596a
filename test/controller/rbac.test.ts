/**
 * The controller with nothing but the shipped RBAC (config/rbac: the Role in its namespace and
 * the nodes ClusterRole), as a client-certificate user of the real apiserver: leader election,
 * caches, Job creation, status, events, cancel and the orphan sweep all work.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { type TestContext, test } from "node:test";
import {
  EventsV1Api,
  RbacAuthorizationV1Api,
  type V1ClusterRole,
  type V1PolicyRule,
  type V1Role,
} from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { eventually, getTestCluster } from "../harness/index.ts";
import {
  createRun,
  ensureNodes,
  installCrd,
  LogCapture,
  listJobs,
  parkedConfig,
  patchRunSpec,
  startController,
  waitForWorkflow,
  workflow,
} from "./support.ts";

const cluster = await getTestCluster();
if (!cluster.skip) {
  await installCrd(cluster);
  await ensureNodes(cluster);
}

async function manifest<T>(file: string): Promise<T> {
  const text = await readFile(new URL(`../../config/rbac/${file}`, import.meta.url), "utf8");
  return parseAllDocuments(text)[0]!.toJS() as T;
}

/**
 * A client-certificate user bound to the shipped Role in `ns` (its rules passed through `edit`)
 * and to the shipped nodes ClusterRole.
 */
async function controllerUser(
  t: TestContext,
  ns: string,
  edit: (rules: V1PolicyRule[]) => V1PolicyRule[] = (rules) => rules,
): Promise<string> {
  const user = `loom-${ns.slice(-6)}`;
  const rbac = cluster.kubeConfig().makeApiClient(RbacAuthorizationV1Api);
  const role = await manifest<V1Role>("role.yaml");
  role.metadata!.namespace = ns;
  role.rules = edit(role.rules ?? []);
  await rbac.createNamespacedRole({ namespace: ns, body: role });
  const subjects = [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user }];
  await rbac.createNamespacedRoleBinding({
    namespace: ns,
    body: {
      metadata: { name: "loom-controller" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata!.name! },
      subjects,
    },
  });
  const nodesRole = await manifest<V1ClusterRole>("cluster_role.yaml");
  await rbac.createClusterRole({ body: nodesRole }).catch((err: { code?: number }) => {
    if (err.code !== 409) throw err;
  });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: user },
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "ClusterRole",
        name: nodesRole.metadata!.name!,
      },
      subjects,
    },
  });
  t.after(() => rbac.deleteClusterRoleBinding({ name: user }).catch(() => {}));
  return user;
}

test("the shipped RBAC is enough for the controller", { skip: cluster.skip }, async (t) => {
  const ns = await cluster.namespace(t);
  const user = await controllerUser(t, ns);

  const logs = new LogCapture();
  const kubeConfig = await cluster.userKubeConfig(user);
  const { controller } = await startController(
    t,
    cluster,
    parkedConfig(ns),
    {
      kubeConfig,
      leaderElection: { identity: "rbac", leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 300 },
    },
    logs,
  );
  const run = await createRun(cluster, ns, [workflow("a.yml", { secretKeys: ["K"] }), workflow("b.yml")], {
    secrets: { K: "v" },
  });
  const name = run.metadata.name!;
  await waitForWorkflow(cluster, ns, name, "a.yml", (_p, r) => r === "Scheduled");
  await waitForWorkflow(cluster, ns, name, "b.yml", (_p, r) => r === "Scheduled");
  await patchRunSpec(cluster, ns, name, { cancel: true });
  await waitForWorkflow(cluster, ns, name, "a.yml", "cancelled");
  await waitForWorkflow(cluster, ns, name, "b.yml", "cancelled");
  // The status is written before the Job's delete lands: wait for the delete, not for a race.
  await eventually("the cancelled workflows' Jobs are deleted", async () => {
    const left = await listJobs(cluster, ns);
    return left.length === 0 || `${left.length} Job(s) left`;
  });
  await controller.sweep();
  assert.ok(controller.active);
  assert.doesNotMatch(logs.text(), /forbidden|Forbidden/, "no call was refused");
});

test("a Role missing a verb: the run says why on its Events (ReconcileFailed) instead of staying silent", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  // A Role cut down by hand, say: Jobs may be read but not created.
  const user = await controllerUser(t, ns, (rules) =>
    rules.map((r) =>
      r.resources?.includes("jobs") ? { ...r, verbs: r.verbs.filter((v) => v !== "create") } : r,
    ),
  );

  await startController(t, cluster, parkedConfig(ns), { kubeConfig: await cluster.userKubeConfig(user) });
  const run = await createRun(cluster, ns, [workflow("a.yml")]);
  const events = cluster.kubeConfig().makeApiClient(EventsV1Api);
  let note = "";
  await eventually("a ReconcileFailed Warning on the run", async () => {
    const list = (await events.listNamespacedEvent({ namespace: ns })).items;
    const e = list.find((x) => x.reason === "ReconcileFailed" && x.regarding?.name === run.metadata.name);
    note = e?.note ?? "";
    return e?.type === "Warning" || `${list.length} events`;
  });
  assert.match(note, /jobs.batch is forbidden: User "loom-\w+" cannot create resource "jobs"/);
  assert.match(note, /\(retrying in \d+s\)$/);
  assert.equal((await listJobs(cluster, ns)).length, 0);
});
