/**
 * The Kubernetes engine against a real control plane (full mode: apiserver, etcd,
 * kube-controller-manager, scheduler, kwok) and the real SpindleSet controller.
 *
 * kwok runs no containers: a Job's pod goes Running → Succeeded (exit 0) at once. So the runner's
 * output is recorded by running the real runner on this machine with the exact RunnerSpec the
 * controller mounts, and kwok serves it as the pod's log through the real pods/log endpoint
 * (a kwok Logs object pointing at a CRI-format file the test writes and appends to). Here a
 * pod completes at once (exit 0), so this file covers what is particular to this engine (one
 * SpindleSet per pipeline, the Secret, recovery, reconnects, runner silence, cancel of a pod
 * that never ran). A step that fails or times out inside the pod, and a cancel while the runner
 * runs, are in the shared behaviour suite (kubernetes-suite.test.ts), whose harness holds each
 * pod Running until the runner ends.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { BatchV1Api, CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import pino from "pino";
import { secretName, selectorString, spindleSetName, workflowLabels } from "../../src/api/contract/index.ts";
import { GROUP, SPINDLESET, VERSION } from "../../src/api/v1alpha1/group.ts";
import type { SpindleSet } from "../../src/api/v1alpha1/spindleset.ts";
import { EngineError, type StatusUpdate } from "../../src/engine/engine.ts";
import { KubernetesEngine } from "../../src/engine/kubernetes/engine.ts";
import { PodLogFollower } from "../../src/engine/kubernetes/logs.ts";
import { PodCache } from "../../src/engine/kubernetes/pods.ts";
import { LogFile } from "../../src/relay/logfile.ts";
import { recordRequests } from "../controller/support.ts";
import { eventually, getTestCluster } from "../harness/index.ts";
import {
  controllerConfig,
  expectedLogFile,
  fakeLog,
  firstPod,
  recordRunnerOutput,
  startController,
} from "./kubernetes-support.ts";
import { makeRun, RecordingSink, type TestRun } from "./suite.ts";

const cluster = await getTestCluster({ full: true });
const quiet = pino({ level: process.env.LOOM_TEST_LOG ?? "silent" });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function engineFor(kc: ReturnType<typeof cluster.kubeConfig>, ns: string): KubernetesEngine {
  return new KubernetesEngine({ kubeConfig: kc, namespace: ns, logger: quiet, pollMs: 200 });
}

async function readSpindleSet(kc: ReturnType<typeof cluster.kubeConfig>, ns: string, name: string) {
  const api = kc.makeApiClient(CustomObjectsApi);
  try {
    return (await api.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: SPINDLESET.plural,
      name,
    })) as SpindleSet;
  } catch {
    return undefined;
  }
}

/** A second workflow of the same pipeline as `of`. */
function sibling(of: TestRun, name: string, commands: string[]): TestRun {
  const r = makeRun(commands, { secrets: Object.fromEntries(of.secrets), wid: `${of.plan.wid}-${name}` });
  r.plan = { ...r.plan, pipeline: of.plan.pipeline, workflowName: name };
  return r;
}

test("the log follower resumes a broken pod log stream without losing or repeating a line", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const kc = cluster.kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  // A bare pod on a kwok node: no Job owns it, so kwok keeps it Running until it is deleted.
  await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name: "runner-pod", labels: { app: "follow" } },
      spec: { nodeName: "kwok-amd64-0", containers: [{ name: "runner", image: "example.invalid/x" }] },
    },
  });
  const log = await fakeLog(cluster, ns, ["l0", "l1"]);
  await log.serve("runner-pod");
  await eventually("pod Running", async () => {
    const pod = await core.readNamespacedPod({ name: "runner-pod", namespace: ns });
    return pod.status?.phase === "Running" || `phase ${pod.status?.phase}`;
  });
  const got: string[] = [];
  const pods = new PodCache({ kubeConfig: kc, namespace: ns, labelSelector: "app=follow", log: quiet });
  t.after(() => pods.stop());
  const follower = new PodLogFollower({
    kubeConfig: kc,
    namespace: ns,
    labels: { app: "follow" },
    pods,
    container: "runner",
    logger: quiet,
    pollMs: 200,
    onLines: (lines) => {
      got.push(...lines);
    },
  });
  follower.kick();
  const done = follower.run();
  const until = (n: number) =>
    eventually(`${n} lines`, async () => got.length >= n || `${got.join(",")}`, 20_000);
  await until(2);
  follower.interrupt();
  await log.append(["l2", "l3"]);
  await log.append(["l4", "l5", "l6"], { sameTimestamp: true });
  await until(7);
  follower.interrupt();
  await log.append(["l7"], { sameTimestamp: true });
  await log.append(["l8"]);
  await until(9);
  follower.interrupt();
  await sleep(1500); // a reconnect that brings nothing new
  // Connected to a running container that prints nothing: the heartbeat watchdog's input.
  assert.ok(follower.silentMs() >= 1000, `silent for ${follower.silentMs()} ms`);
  await core.deleteNamespacedPod({ name: "runner-pod", namespace: ns, gracePeriodSeconds: 0 });
  assert.equal(await done, "pod_gone");
  assert.deepEqual(got, ["l0", "l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8"]);
});

test("a pipeline's workflows share one SpindleSet; each log file holds exactly the runner's lines; secrets stay in the Secret", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const kc = cluster.kubeConfig();
  await cluster.installSpindleSetCrd();
  const config = controllerConfig(ns);
  await startController(t, kc, config);
  const value = "s3cr3t-V4lue!";
  const a = makeRun(['echo "token=$TOKEN"; printf %s "$TOKEN" | base64', "echo two >&2"], {
    secrets: { TOKEN: value },
  });
  const b = sibling(a, "second.yml", ["echo from-b", 'echo "$TOKEN" >&2']);
  const ssName = spindleSetName(a.plan.pipeline);
  const dir = await mkdtemp(join(tmpdir(), "loom-k8s-logs-"));
  t.after(() => rm(dir, { recursive: true, force: true }));

  const runs: { run: TestRun; file: LogFile; expected: string[] }[] = [];
  for (const run of [a, b]) {
    const recorded = await recordRunnerOutput(run.plan, run.secrets, config);
    const log = await fakeLog(cluster, ns, recorded);
    void firstPod(kc, ns, selectorString(workflowLabels(ssName, run.plan.wid))).then((pod) => log.serve(pod));
    runs.push({
      run,
      file: await LogFile.open(dir, run.plan.wid),
      expected: expectedLogFile(recorded, [value]),
    });
  }
  const engineKc = cluster.kubeConfig();
  const requests = recordRequests(engineKc);
  const engine = engineFor(engineKc, ns);
  t.after(() => engine.close());
  await Promise.all(runs.map(({ run, file }) => engine.start({ ...run, log: file })));
  await assert.rejects(
    engine.start({ ...a, log: new RecordingSink() }),
    (e: unknown) => e instanceof EngineError && e.code === "duplicate",
  );
  for (const { run, file, expected } of runs) {
    const outcome = await engine.wait(run.plan.wid);
    assert.deepEqual(outcome, { status: "success", exitCode: 0, failedStep: null });
    assert.deepEqual(run.statuses, [{ status: "running" }, outcome]);
    await file.close();
    const lines = (await readFile(file.path, "utf8")).split("\n").filter(Boolean);
    assert.deepEqual(lines, expected, `log file of ${run.plan.workflowName}`);
    assert.ok(
      lines.some((l) => l.includes("***")),
      "the secret was printed, masked",
    );
  }

  // The followers found their pods in the engine's one pod informer: a single pod list.
  const podLists = requests.filter((r) => /^GET .*\/pods\?/.test(r) && !/[?&]watch=true/.test(r));
  assert.equal(podLists.length, 1, podLists.join("\n"));

  // One SpindleSet for the pipeline, its Secret owned by it and the only holder of the value.
  const ss = (await readSpindleSet(kc, ns, ssName))!;
  assert.deepEqual(ss.spec.workflows.map((w) => w.name).sort(), ["second.yml", "test.yml"]);
  const core = kc.makeApiClient(CoreV1Api);
  const secret = await core.readNamespacedSecret({ name: secretName(ssName), namespace: ns });
  assert.equal(Buffer.from(secret.data!.TOKEN!, "base64").toString(), value);
  assert.equal(secret.metadata?.ownerReferences?.[0]?.uid, ss.metadata.uid);
  const batch = kc.makeApiClient(BatchV1Api);
  const stored = JSON.stringify([
    ss,
    (await batch.listNamespacedJob({ namespace: ns })).items,
    (await core.listNamespacedConfigMap({ namespace: ns })).items,
    (await core.listNamespacedPod({ namespace: ns })).items,
    (await core.listNamespacedEvent({ namespace: ns })).items,
    runs.map((r) => r.run.statuses),
    await Promise.all(runs.map((r) => readFile(r.file.path, "utf8"))),
  ]);
  const b64 = Buffer.from(value).toString("base64").replace(/=+$/, "");
  assert.ok(!stored.includes(value) && !stored.includes(b64), "a secret value outside the Secret");

  // The SpindleSet goes with the pipeline's last workflow; its Secret with it.
  await engine.destroy(a.plan.wid);
  await engine.destroy(a.plan.wid);
  assert.ok(await readSpindleSet(kc, ns, ssName), "deleted while a workflow of the run was still known");
  await engine.destroy(b.plan.wid);
  assert.equal(await readSpindleSet(kc, ns, ssName), undefined);
  await assert.rejects(
    engine.wait(a.plan.wid),
    (e: unknown) => e instanceof EngineError && e.code === "not_found",
  );
  // The Secret follows through its owner reference (checked above); the garbage collector
  // takes up to its 30 s discovery resync to learn a new CRD, so it is not waited for here.
});

test("after a restart, recover re-reads the pod log and appends only what the log file lacks", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const kc = cluster.kubeConfig();
  await cluster.installSpindleSetCrd();
  const config = controllerConfig(ns);
  await startController(t, kc, config);
  const run = makeRun(["echo one; echo two", "echo three >&2"]);
  const recorded = await recordRunnerOutput(run.plan, run.secrets, config);
  const expected = expectedLogFile(recorded, []);
  const log = await fakeLog(cluster, ns, recorded);
  const pod = firstPod(
    kc,
    ns,
    selectorString(workflowLabels(spindleSetName(run.plan.pipeline), run.plan.wid)),
  );
  const dir = await mkdtemp(join(tmpdir(), "loom-k8s-logs-"));
  t.after(() => rm(dir, { recursive: true, force: true }));

  // The first process starts the run and goes away before it relayed anything ...
  const first = engineFor(kc, ns);
  const file1 = await LogFile.open(dir, run.plan.wid);
  await first.start({ ...run, log: file1 });
  await first.close();
  await file1.close();
  // ... except the first lines, which it had written to the log file before it died (the
  // last one only half).
  await writeFile(file1.path, `${expected.slice(0, 3).join("\n")}\n${expected[3]!.slice(0, 12)}`);
  await log.serve(await pod);

  const second = engineFor(kc, ns);
  t.after(() => second.close());
  const file2 = await LogFile.open(dir, run.plan.wid);
  assert.deepEqual(await second.recover({ ...run, log: file2 }), { state: "resumed" });
  const outcome = await second.wait(run.plan.wid);
  assert.equal(outcome.status, "success");
  await file2.close();
  assert.deepEqual((await readFile(file2.path, "utf8")).split("\n").filter(Boolean), expected);

  const never = makeRun(["true"]);
  assert.equal((await second.recover(never)).state, "lost");
  await second.destroy(run.plan.wid);
});

test("cancel names the workflow in spec.cancelWorkflows; the controller stops it; the engine reports cancelled", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const kc = cluster.kubeConfig();
  await cluster.installSpindleSetCrd();
  // A profile no node matches: the pod stays Pending, so the cancel lands before it finishes.
  const config = controllerConfig(ns, {
    template: { resourceProfiles: [{ architecture: "amd64", nodeSelector: { "loom.test/never": "true" } }] },
  });
  await startController(t, kc, config, { checkNodes: false });
  const run = makeRun(["sleep 300"]);
  const ssName = spindleSetName(run.plan.pipeline);
  const engine = engineFor(kc, ns);
  t.after(() => engine.close());
  await engine.start(run);
  await eventually("Job created", async () => {
    const ws = (await readSpindleSet(kc, ns, ssName))?.status?.workflows?.[0];
    return Boolean(ws?.jobName) || `status ${JSON.stringify(ws)}`;
  });
  await engine.cancel(run.plan.wid, "User canceled the workflow");
  const outcome = await engine.wait(run.plan.wid);
  assert.equal(outcome.status, "cancelled");
  assert.equal(outcome.error, "User canceled the workflow");
  assert.deepEqual(
    run.statuses.map((s: StatusUpdate) => s.status),
    ["running", "cancelled"],
  );
  assert.deepEqual((await readSpindleSet(kc, ns, ssName))?.spec.cancelWorkflows, ["test.yml"]);
  await engine.cancel(run.plan.wid); // finished: nothing happens
  await engine.destroy(run.plan.wid);
  assert.equal(await readSpindleSet(kc, ns, ssName), undefined);
});

test("a runner silent past the limit gets its Job annotated; the controller ends the workflow RunnerSilent", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const kc = cluster.kubeConfig();
  await cluster.installSpindleSetCrd();
  // The Job's own pod never schedules (no node matches) ...
  const config = controllerConfig(ns, {
    template: { resourceProfiles: [{ architecture: "amd64", nodeSelector: { "loom.test/never": "true" } }] },
  });
  await startController(t, kc, config, { checkNodes: false });
  const run = makeRun(["sleep 300"]);
  const ssName = spindleSetName(run.plan.pipeline);
  const engine = new KubernetesEngine({
    kubeConfig: kc,
    namespace: ns,
    logger: quiet,
    pollMs: 200,
    runnerSilentSeconds: 2,
  });
  t.after(() => engine.close());
  await engine.start(run);
  const jobName = await (async () => {
    let name: string | undefined;
    await eventually("Job created", async () => {
      name = (await readSpindleSet(kc, ns, ssName))?.status?.workflows?.[0]?.jobName;
      return Boolean(name) || "no jobName yet";
    });
    return name!;
  })();
  // ... so a pod with the workflow's labels stands in for it on a kwok node: no Job owns it,
  // so kwok keeps it Running, and its log holds the runner's hello and then nothing.
  const hello = (await recordRunnerOutput(makeRun(["true"]).plan, new Map(), config))[0]!;
  assert.match(hello, /"type":"hello"/);
  const log = await fakeLog(cluster, ns, [hello]);
  await kc.makeApiClient(CoreV1Api).createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name: "silent-runner", labels: workflowLabels(ssName, run.plan.wid) },
      spec: { nodeName: "kwok-amd64-0", containers: [{ name: "runner", image: "example.invalid/x" }] },
    },
  });
  await log.serve("silent-runner");
  await eventually("RunnerSilent", async () => {
    const ws = (await readSpindleSet(kc, ns, ssName))?.status?.workflows?.[0];
    return ws?.reason === "RunnerSilent" || `${ws?.phase}/${ws?.reason}`;
  });
  // Deleting the Job takes its pod; the stand-in has no owner, so it goes by hand.
  await kc
    .makeApiClient(CoreV1Api)
    .deleteNamespacedPod({ name: "silent-runner", namespace: ns, gracePeriodSeconds: 0 });
  const outcome = await engine.wait(run.plan.wid);
  assert.equal(outcome.status, "failed");
  assert.match(outcome.error ?? "", /the runner sent nothing for too long/);
  const job = await kc
    .makeApiClient(BatchV1Api)
    .readNamespacedJob({ name: jobName, namespace: ns })
    .catch(() => undefined);
  // The controller deletes the Job of a silent runner; if it is still there, it carries the note.
  if (job)
    assert.match(
      job.metadata?.annotations?.["loom.tangled.sh/runner-silent"] ?? "",
      /^no runner event since /,
    );
  const ws = (await readSpindleSet(kc, ns, ssName))?.status?.workflows?.[0];
  assert.equal(ws?.reason, "RunnerSilent");
  await engine.destroy(run.plan.wid);
});
