/**
 * Shared pieces of the controller's integration tests: the CRD, a controller per test with its
 * log captured, SpindleSets built with the real builder, and reads of the stored objects.
 */
import { Writable } from "node:stream";
import type { TestContext } from "node:test";
import {
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1Job,
} from "@kubernetes/client-node";
import { pino } from "pino";
import { buildRunSecret, buildSpindleSet } from "../../src/api/contract/index.ts";
import { GROUP, SPINDLESET, VERSION } from "../../src/api/v1alpha1/group.ts";
import type { SpindleSet, SpindleSetSpecInput, WorkflowSpec } from "../../src/api/v1alpha1/spindleset.ts";
import { type ControllerConfig, parseControllerConfig } from "../../src/controller/config.ts";
import { type ControllerOptions, SpindleSetController } from "../../src/controller/controller.ts";
import { eventually, type TestCluster } from "../harness/index.ts";

const CR = { group: GROUP, version: VERSION, plural: SPINDLESET.plural };

/** Installs (or updates) the SpindleSet CRD exactly as config/crd has it; waits until it is served. */
export async function installCrd(cluster: TestCluster): Promise<void> {
  await cluster.installSpindleSetCrd();
}

export function testConfig(namespace: string, extra: Record<string, unknown> = {}): ControllerConfig {
  return parseControllerConfig({
    namespace,
    images: { runner: "ghcr.io/example/loom-runner:0.1.0" },
    template: {
      resourceProfiles: [
        {
          name: "small",
          resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "256Mi" } },
          tolerations: [{ key: "ci", operator: "Exists", effect: "NoSchedule" }],
        },
      ],
    },
    ...extra,
  });
}

/**
 * testConfig whose pods also ask for an extended resource no node offers: on a full control
 * plane they wait unschedulable (the Job stays unfinished, as on a plain one), so a test can
 * look at a created Job, cancel it or restart the controller without racing kwok.
 */
export const PARKED_RESOURCE = "loom.test/parked";

export function parkedConfig(namespace: string, extra: Record<string, unknown> = {}): ControllerConfig {
  return testConfig(namespace, {
    template: {
      resourceProfiles: [
        {
          name: "small",
          resources: {
            requests: { cpu: "100m", memory: "128Mi", [PARKED_RESOURCE]: "1" },
            limits: { memory: "256Mi", [PARKED_RESOURCE]: "1" },
          },
          tolerations: [{ key: "ci", operator: "Exists", effect: "NoSchedule" }],
        },
      ],
    },
    ...extra,
  });
}

/** Captures every log line of a controller, for "no secret in any log" checks. */
export class LogCapture {
  readonly lines: string[] = [];
  readonly stream = new Writable({
    write: (chunk: Buffer, _enc, done) => {
      this.lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      done();
    },
  });
  readonly log = pino({ level: "debug" }, this.stream);

  text(): string {
    return this.lines.join("\n");
  }
}

export interface Started {
  controller: SpindleSetController;
  logs: LogCapture;
}

export async function startController(
  t: TestContext,
  cluster: TestCluster,
  config: ControllerConfig,
  opts: Partial<ControllerOptions> = {},
  logs = new LogCapture(),
): Promise<Started> {
  const controller = SpindleSetController.create({
    kubeConfig: cluster.kubeConfig(),
    config,
    log: logs.log,
    leaderElection: false,
    capacityRetryMs: 1000,
    secretWaitMs: 10_000,
    ...opts,
  });
  t.after(() => controller.stop());
  await controller.start();
  return { controller, logs };
}

let counter = 0;

/** A workflow spec with two steps and no clone unless asked. */
export function workflow(
  name: string,
  extra: Partial<WorkflowSpec> = {},
): SpindleSetSpecInput["workflows"][number] {
  return {
    name,
    wid: `knot.test-${name}`,
    image: "docker.io/library/alpine:3.20",
    architecture: "amd64",
    timeoutSeconds: 300,
    clone: { skip: true },
    steps: [
      { id: 0, name: "hello", kind: "user", command: "echo hello" },
      { id: 1, name: "bye", kind: "user", command: "echo bye" },
    ],
    ...extra,
  };
}

/** Builds a SpindleSet with the engine's builder (fresh rkey each call) and creates it. */
export async function createRun(
  cluster: TestCluster,
  namespace: string,
  workflows: SpindleSetSpecInput["workflows"],
  opts: { secrets?: Record<string, string>; rkey?: string; withoutSecret?: boolean } = {},
): Promise<SpindleSet> {
  const rkey = opts.rkey ?? `3run${Date.now().toString(36)}${(counter++).toString(36)}`;
  const wfs = workflows.map((w) => ({ ...w, wid: `knot.test-${rkey}-${w.name}` }));
  const built = buildSpindleSet({
    namespace,
    withSecrets: opts.secrets !== undefined || opts.withoutSecret === true,
    spec: {
      pipeline: { knot: "knot.test", rkey },
      trigger: { kind: "manual", repo: { knot: "knot.test", did: "did:plc:test", repo: "hello" } },
      workflows: wfs,
    },
  });
  const custom = cluster.kubeConfig().makeApiClient(CustomObjectsApi);
  const created = (await custom.createNamespacedCustomObject({
    ...CR,
    namespace,
    body: built,
  })) as SpindleSet;
  if (opts.secrets) {
    const secret = buildRunSecret({
      owner: { name: created.metadata.name!, namespace, uid: created.metadata.uid! },
      pipeline: created.spec.pipeline,
      values: opts.secrets,
    });
    await cluster.kubeConfig().makeApiClient(CoreV1Api).createNamespacedSecret({ namespace, body: secret });
  }
  return created;
}

export function getRun(cluster: TestCluster, namespace: string, name: string): Promise<SpindleSet> {
  const custom = cluster.kubeConfig().makeApiClient(CustomObjectsApi);
  return custom.getNamespacedCustomObject({ ...CR, namespace, name }) as Promise<SpindleSet>;
}

/** Typed client objects are class instances; tests compare plain JSON. */
export function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

export async function patchRunSpec(
  cluster: TestCluster,
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
): Promise<void> {
  const { PatchStrategy, setHeaderOptions } = await import("@kubernetes/client-node");
  const custom = cluster.kubeConfig().makeApiClient(CustomObjectsApi);
  await custom.patchNamespacedCustomObject(
    { ...CR, namespace, name, body: { spec } },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
}

/** Waits until the stored run's workflow `name` has `phase`; returns the run. */
export async function waitForWorkflow(
  cluster: TestCluster,
  namespace: string,
  run: string,
  name: string,
  phase: string | ((p: string, reason: string) => boolean),
  timeoutMs = 60_000,
): Promise<SpindleSet> {
  let last: SpindleSet | undefined;
  const ok = typeof phase === "string" ? (p: string) => p === phase : phase;
  await eventually(
    `workflow ${name} of ${run} reaching ${phase}`,
    async () => {
      last = await getRun(cluster, namespace, run);
      const w = last.status?.workflows?.find((x) => x.name === name);
      return w && ok(w.phase, w.reason) ? true : `now ${w?.phase}/${w?.reason} ${w?.message ?? ""}`;
    },
    timeoutMs,
  );
  return last!;
}

export async function listJobs(cluster: TestCluster, namespace: string): Promise<V1Job[]> {
  const batch = cluster.kubeConfig().makeApiClient(BatchV1Api);
  return plain((await batch.listNamespacedJob({ namespace })).items);
}

/** Fake nodes for a plain control plane (no kwok): only their labels matter to the controller. */
export async function ensureNodes(cluster: TestCluster): Promise<void> {
  if (cluster.full) return;
  const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  for (const arch of ["amd64", "arm64"]) {
    const name = `plain-${arch}-0`;
    await core
      .createNode({
        body: { metadata: { name, labels: { "kubernetes.io/arch": arch, "kubernetes.io/os": "linux" } } },
      })
      .catch((err: { code?: number }) => {
        if (err.code !== 409) throw err;
      });
  }
}

/**
 * Records every request made through `kc` (method and URL, watches included) as the clients
 * built from it authenticate it: what one controller asks of the API server, apart from every
 * other client of the shared control plane.
 */
export function recordRequests(kc: KubeConfig): string[] {
  const seen: string[] = [];
  const apply = kc.applySecurityAuthentication.bind(kc);
  kc.applySecurityAuthentication = (ctx) => {
    seen.push(`${ctx.getHttpMethod()} ${ctx.getUrl()}`);
    return apply(ctx);
  };
  return seen;
}
