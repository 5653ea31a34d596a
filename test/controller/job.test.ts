/**
 * The Job a SpindleSet produces, read back from a real apiserver, and the reasons a workflow
 * fails before any Job exists. Runs on a plain control plane too (no Job ever runs here).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AdmissionregistrationV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1Volume,
} from "@kubernetes/client-node";
import { ANNOTATIONS, LABELS, RUNNER_SILENT_ANNOTATION } from "../../src/api/contract/index.ts";
import { GROUP, SPINDLESET, VERSION } from "../../src/api/v1alpha1/group.ts";
import { INLINE_SPEC_MAX_BYTES } from "../../src/controller/build/runner-spec.ts";
import { eventually, getTestCluster } from "../harness/index.ts";
import {
  createRun,
  ensureNodes,
  getRun,
  installCrd,
  listJobs,
  PARKED_RESOURCE,
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

const SECRET = "s3cr3t-value-that-must-not-leak";

test("a SpindleSet produces exactly the expected Job", { skip: cluster.skip }, async (t) => {
  const ns = await cluster.namespace(t);
  const { logs } = await startController(t, cluster, parkedConfig(ns));
  const run = await createRun(
    cluster,
    ns,
    [
      workflow("build.yml", {
        secretKeys: ["TOKEN"],
        clone: {
          skip: false,
          url: "https://knot.test/did:plc:test/hello",
          depth: 1,
          submodules: false,
          stepId: 0,
        },
        steps: [
          { id: 0, name: "clone", kind: "system", command: "git clone", env: [] },
          {
            id: 1,
            name: "test",
            kind: "user",
            command: "make test",
            env: [{ name: "TOKEN", secret: "TOKEN" }],
          },
        ],
      }),
    ],
    { secrets: { TOKEN: SECRET } },
  );
  const name = run.metadata.name!;
  const status = await waitForWorkflow(
    cluster,
    ns,
    name,
    "build.yml",
    (_p, reason) => reason === "Scheduled",
  );
  const wf = status.status!.workflows[0]!;
  assert.equal(wf.profile, "small");
  const jobs = await listJobs(cluster, ns);
  assert.equal(jobs.length, 1);
  const job = jobs[0]!;
  assert.equal(job.metadata!.name, wf.jobName);

  // Ownership and labels: every lookup is by label, deletion follows the owner.
  assert.deepEqual(
    job.metadata!.ownerReferences!.map((o) => [o.kind, o.name, o.uid, o.controller]),
    [["SpindleSet", name, run.metadata.uid, true]],
  );
  assert.equal(job.metadata!.labels!["loom.tangled.sh/spindleset"], name);
  assert.equal(job.metadata!.labels!["app.kubernetes.io/managed-by"], "loom");
  assert.equal(job.spec!.backoffLimit, 0);
  assert.equal(job.spec!.activeDeadlineSeconds, 300 + 600);

  const pod = job.spec!.template.spec!;
  assert.deepEqual(
    pod.initContainers!.map((c) => c.name),
    ["setup-user", "clone-repo", "install-runner"],
  );
  assert.deepEqual(
    pod.containers.map((c) => c.name),
    ["runner"],
  );
  assert.equal(pod.automountServiceAccountToken, false);
  assert.equal(pod.enableServiceLinks, false);
  assert.equal(pod.restartPolicy, "Never");
  assert.deepEqual(pod.securityContext, {
    runAsNonRoot: true,
    runAsUser: 1000,
    runAsGroup: 1000,
    fsGroup: 1000,
    seccompProfile: { type: "RuntimeDefault" },
  });
  assert.deepEqual(pod.nodeSelector, { "kubernetes.io/arch": "amd64" });
  assert.deepEqual(pod.tolerations, [{ key: "ci", operator: "Exists", effect: "NoSchedule" }]);
  const runner = pod.containers[0]!;
  assert.equal(runner.image, "docker.io/library/alpine:3.20");
  assert.deepEqual(runner.securityContext, {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
  });
  assert.deepEqual(runner.resources, {
    requests: { cpu: "100m", memory: "128Mi", [PARKED_RESOURCE]: "1" },
    limits: { memory: "256Mi", [PARKED_RESOURCE]: "1" },
  });
  const secretEnv = runner.env!.filter((e) => e.valueFrom);
  assert.deepEqual(
    secretEnv.map((e) => [e.name, e.valueFrom!.secretKeyRef!.name, e.valueFrom!.secretKeyRef!.key]),
    [["LOOM_SECRET_TOKEN", `${name}-secrets`, "TOKEN"]],
  );
  for (const c of pod.initContainers!) {
    assert.equal(c.securityContext!.allowPrivilegeEscalation, false, c.name);
    assert.ok(!c.env?.some((e) => e.valueFrom?.secretKeyRef), `${c.name} sees no secret`);
  }
  const source = (v: V1Volume) =>
    v.emptyDir ? "emptyDir" : v.configMap ? `cm:${v.configMap.name}` : v.downwardAPI ? "downwardAPI" : "?";
  assert.deepEqual(
    pod.volumes!.map((v) => [v.name, source(v)]),
    [
      ["tangled", "emptyDir"],
      ["tmp", "emptyDir"],
      ["runner", "emptyDir"],
      ["setup", "emptyDir"],
      ["spec", "downwardAPI"],
    ],
  );
  // The RunnerSpec rides in the pod template (a downward API file): no ConfigMap to create.
  const specVolume = pod.volumes!.find((v) => v.name === "spec")!.downwardAPI!;
  assert.deepEqual(specVolume.items, [
    {
      path: "spec.json",
      fieldRef: { apiVersion: "v1", fieldPath: `metadata.annotations['${ANNOTATIONS.runnerSpec}']` },
    },
  ]);
  const spec = JSON.parse(job.spec!.template.metadata!.annotations![ANNOTATIONS.runnerSpec]!) as {
    steps: { id: number; command: string }[];
  };
  assert.equal(
    spec.steps[0]!.command,
    "cat /loom/setup/clone.log",
    "the clone step prints the init container's log",
  );
  const configMaps = await cluster
    .kubeConfig()
    .makeApiClient(CoreV1Api)
    .listNamespacedConfigMap({ namespace: ns, labelSelector: `${LABELS.spindleSet}=${name}` });
  assert.deepEqual(configMaps.items, [], "no spec ConfigMap for a spec that fits the Job");

  // The secret value is in the Secret alone: not in the Job, the run or the log.
  for (const obj of [job, await getRun(cluster, ns, name)]) assert.ok(!JSON.stringify(obj).includes(SECRET));
  assert.ok(!logs.text().includes(SECRET));
  assert.match(logs.text(), /"msg":"job created"/);
});

test("a spec just under the inline limit rides in the Job; a larger one comes in its ConfigMap", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  await startController(t, cluster, parkedConfig(ns));
  const big = (name: string, bytes: number) =>
    workflow(name, {
      steps: [{ id: 0, name: "big", kind: "user", command: `: ${"x".repeat(bytes)}`, env: [] }],
    });
  const run = await createRun(cluster, ns, [
    big("inline.yml", INLINE_SPEC_MAX_BYTES - 1000),
    big("large.yml", INLINE_SPEC_MAX_BYTES + 1000),
  ]);
  const name = run.metadata.name!;
  let jobs: Awaited<ReturnType<typeof listJobs>> = [];
  await eventually("both Jobs created", async () => {
    jobs = await listJobs(cluster, ns);
    return jobs.length === 2 || `${jobs.length} Jobs`;
  });
  const byWorkflow = (wf: string) =>
    jobs.find((j) => j.metadata!.annotations![ANNOTATIONS.workflowName] === wf)!.spec!.template;
  const inline = byWorkflow("inline.yml");
  assert.ok(inline.metadata!.annotations![ANNOTATIONS.runnerSpec]!.length > INLINE_SPEC_MAX_BYTES - 1000);
  assert.ok(inline.spec!.volumes!.find((v) => v.name === "spec")!.downwardAPI);
  const large = byWorkflow("large.yml");
  assert.equal(large.metadata!.annotations![ANNOTATIONS.runnerSpec], undefined);
  const cmName = large.spec!.volumes!.find((v) => v.name === "spec")!.configMap!.name!;
  const cm = await cluster
    .kubeConfig()
    .makeApiClient(CoreV1Api)
    .readNamespacedConfigMap({ name: cmName, namespace: ns });
  const spec = JSON.parse(cm.data!["spec.json"]!) as { steps: { command: string }[] };
  assert.equal(spec.steps[0]!.command.length, INLINE_SPEC_MAX_BYTES + 1002);
  assert.equal(cm.metadata!.ownerReferences![0]!.uid, run.metadata.uid);
  assert.equal(cm.metadata!.labels![LABELS.spindleSet], name);
});

test("workflows that can never run fail at once with a clear reason", { skip: cluster.skip }, async (t) => {
  const ns = await cluster.namespace(t);
  await startController(t, cluster, parkedConfig(ns), { secretWaitMs: 500 });
  // The run names a Secret that never comes.
  const run = await createRun(
    cluster,
    ns,
    [workflow("riscv.yml", { architecture: "riscv64" }), workflow("nosecret.yml", { secretKeys: ["TOKEN"] })],
    { withoutSecret: true },
  );
  const name = run.metadata.name!;
  await waitForWorkflow(cluster, ns, name, "riscv.yml", "failed");
  const done = await waitForWorkflow(cluster, ns, name, "nosecret.yml", "failed");
  const riscv = done.status!.workflows.find((w) => w.name === "riscv.yml")!;
  assert.equal(riscv.reason, "NoMatchingProfile");
  assert.match(riscv.message!, /riscv64/);
  const nosecret = done.status!.workflows.find((w) => w.name === "nosecret.yml")!;
  assert.equal(nosecret.reason, "SecretMissing");
  assert.match(nosecret.message!, /does not exist/);
  assert.equal(done.status!.phase, "failed");
  assert.equal((await listJobs(cluster, ns)).length, 0);
});

test("a spec the CRD accepts but the rules refuse is InvalidSpec", { skip: cluster.skip }, async (t) => {
  const ns = await cluster.namespace(t);
  await startController(t, cluster, parkedConfig(ns));
  const custom = cluster.kubeConfig().makeApiClient(CustomObjectsApi);
  const wf = workflow("dup.yml", {
    steps: [
      { id: 0, name: "a", kind: "user", command: "true", env: [] },
      { id: 0, name: "b", kind: "user", command: "true", env: [] },
    ],
  });
  await custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: SPINDLESET.plural,
    namespace: ns,
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: "SpindleSet",
      metadata: { name: "invalid-run" },
      spec: {
        pipeline: { knot: "knot.test", rkey: "bad" },
        trigger: { kind: "manual", repo: { knot: "knot.test", did: "did:plc:x", repo: "r" } },
        workflows: [wf],
      },
    },
  });
  const run = await waitForWorkflow(cluster, ns, "invalid-run", "dup.yml", "failed");
  assert.equal(run.status!.workflows[0]!.reason, "InvalidSpec");
  assert.match(run.status!.workflows[0]!.message!, /duplicate step id/);
  assert.equal(run.status!.phase, "failed");
  assert.equal(run.status!.conditions.find((c) => c.type === "Succeeded")?.status, "False");
  assert.equal((await listJobs(cluster, ns)).length, 0);
  const events = cluster.kubeConfig().makeApiClient(EventsV1Api);
  await eventually("a Warning event on the run", async () => {
    const list = (await events.listNamespacedEvent({ namespace: ns })).items;
    return list.some(
      (e) => e.regarding?.name === "invalid-run" && e.reason === "InvalidSpec" && e.type === "Warning",
    );
  });
});

test("a missing Secret fails the workflow after the wait; cancel of one workflow deletes its Job", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  // The wait is counted from the SpindleSet's creationTimestamp, which has whole seconds, and
  // createRun writes the Secret just after the SpindleSet: 1 s could run out before it exists.
  await startController(t, cluster, parkedConfig(ns), { secretWaitMs: 4000 });
  const run = await createRun(
    cluster,
    ns,
    [workflow("a.yml", { secretKeys: ["TOKEN"] }), workflow("b.yml")],
    {
      secrets: {},
    },
  );
  const name = run.metadata.name!;
  // The run's Secret exists but lacks TOKEN: SecretMissing, no Job for a.yml.
  const failed = await waitForWorkflow(cluster, ns, name, "a.yml", "failed");
  const a = failed.status!.workflows.find((w) => w.name === "a.yml")!;
  assert.equal(a.reason, "SecretMissing");
  assert.match(a.message!, /TOKEN/);
  const withJob = await waitForWorkflow(cluster, ns, name, "b.yml", (_p, r) => r === "Scheduled");
  const jobName = withJob.status!.workflows.find((w) => w.name === "b.yml")!.jobName!;
  assert.deepEqual(
    (await listJobs(cluster, ns)).map((j) => j.metadata!.name),
    [jobName],
  );
  await patchRunSpec(cluster, ns, name, { cancelWorkflows: ["b.yml"] });
  const cancelled = await waitForWorkflow(cluster, ns, name, "b.yml", "cancelled");
  assert.equal(cancelled.status!.workflows.find((w) => w.name === "b.yml")!.reason, "Cancelled");
  // The status may be written before the delete lands (or while it is processed): wait for it.
  const batch = cluster.kubeConfig().makeApiClient(BatchV1Api);
  await eventually("the cancelled workflow's Job is deleted", () =>
    batch.readNamespacedJob({ name: jobName, namespace: ns }).then(
      (j) => `still there (deletionTimestamp ${j.metadata?.deletionTimestamp ?? "unset"})`,
      (err: { code?: number }) => err.code === 404 || `read failed: ${err.code}`,
    ),
  );
  assert.equal(cancelled.status!.phase, "failed", "the worst outcome names the run: a.yml failed");
  assert.equal(cancelled.status!.progress, "2/2");
});

test("a Job the engine marks runner-silent ends with RunnerSilent and is deleted", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  await startController(t, cluster, parkedConfig(ns));
  const run = await createRun(cluster, ns, [workflow("quiet.yml")]);
  const name = run.metadata.name!;
  const scheduled = await waitForWorkflow(cluster, ns, name, "quiet.yml", (_p, r) => r === "Scheduled");
  const jobName = scheduled.status!.workflows[0]!.jobName!;
  const batch = cluster.kubeConfig().makeApiClient(BatchV1Api);
  await batch.patchNamespacedJob(
    {
      name: jobName,
      namespace: ns,
      body: { metadata: { annotations: { [RUNNER_SILENT_ANNOTATION]: "no runner event for 120s" } } },
    },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
  const failed = await waitForWorkflow(cluster, ns, name, "quiet.yml", "failed");
  assert.equal(failed.status!.workflows[0]!.reason, "RunnerSilent");
  assert.match(failed.status!.workflows[0]!.message!, /no runner event for 120s/);
  await eventually("the silent Job is deleted", async () => (await listJobs(cluster, ns)).length === 0);
});

test("a finished run that gets another workflow (the engine adds them one by one) runs it", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  await startController(t, cluster, parkedConfig(ns));
  const run = await createRun(cluster, ns, [workflow("first.yml", { architecture: "riscv64" })]);
  const name = run.metadata.name!;
  const finished = await waitForWorkflow(cluster, ns, name, "first.yml", "failed");
  assert.ok(finished.status!.completionTime);
  assert.equal(finished.status!.progress, "1/1");
  const second = { ...workflow("second.yml"), wid: `knot.test-${run.spec.pipeline.rkey}-second.yml` };
  await patchRunSpec(cluster, ns, name, { workflows: [...finished.spec.workflows, second] });
  const grown = await waitForWorkflow(cluster, ns, name, "second.yml", (_p, r) => r === "Scheduled");
  assert.equal(grown.status!.progress, "1/2");
  assert.equal(grown.status!.completionTime, undefined, "unfinished again");
  assert.equal(grown.status!.conditions.find((c) => c.type === "Succeeded")!.status, "Unknown");
  assert.equal((await listJobs(cluster, ns)).length, 1);
});

test("a Job an admission policy refuses (422) ends the workflow with the policy's words, not retries for ever", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const admission = cluster.kubeConfig().makeApiClient(AdmissionregistrationV1Api);
  const name = `loom-test-deny-jobs-${ns.slice(-6)}`;
  // A ValidatingAdmissionPolicy (CEL, in the API server): what a cluster's own rules look like.
  await admission.createValidatingAdmissionPolicy({
    body: {
      metadata: { name },
      spec: {
        failurePolicy: "Fail",
        matchConstraints: {
          resourceRules: [
            { apiGroups: ["batch"], apiVersions: ["v1"], operations: ["CREATE"], resources: ["jobs"] },
          ],
        },
        validations: [{ expression: "false", message: "jobs here need the team label" }],
      },
    },
  });
  t.after(() => admission.deleteValidatingAdmissionPolicy({ name }).catch(() => {}));
  await admission.createValidatingAdmissionPolicyBinding({
    body: {
      metadata: { name },
      spec: {
        policyName: name,
        validationActions: ["Deny"],
        matchResources: { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": ns } } },
      },
    },
  });
  t.after(() => admission.deleteValidatingAdmissionPolicyBinding({ name }).catch(() => {}));
  // The policy takes effect once the API server's informers have it: probe with a dry run.
  const batch = cluster.kubeConfig().makeApiClient(BatchV1Api);
  await eventually("the policy denies Jobs", () =>
    batch
      .createNamespacedJob({
        namespace: ns,
        dryRun: "All",
        body: {
          metadata: { name: "probe" },
          spec: {
            template: { spec: { restartPolicy: "Never", containers: [{ name: "c", image: "busybox" }] } },
          },
        },
      })
      .then(
        () => "still admitted",
        (err: { code?: number }) => err.code === 422 || `refused with ${err.code}`,
      ),
  );

  await startController(t, cluster, parkedConfig(ns));
  const run = await createRun(cluster, ns, [workflow("denied.yml")]);
  const done = await waitForWorkflow(cluster, ns, run.metadata.name!, "denied.yml", "failed");
  const w = done.status!.workflows.find((x) => x.name === "denied.yml")!;
  assert.equal(w.reason, "InternalError");
  assert.match(w.message!, /^the API refused the workflow's Job: .*jobs here need the team label/);
  assert.equal((await listJobs(cluster, ns)).length, 0);
});
