/**
 * The SpindleSet API, defined once. A SpindleSet is one pipeline run (one trigger, knot + rkey)
 * frozen when it starts: every workflow with its image, architecture, resolved steps and clone
 * options. The controller turns each workflow into one Job and reports back in `status`.
 *
 * The zod schemas below are the single source of truth: the TypeScript types are inferred from
 * them, the controller validates objects read from the cluster with them, and
 * `scripts/generate-crd.ts` derives the CRD's OpenAPI schema from them.
 *
 * Secrets: the spec never holds a secret value. Step environment entries name a secret *key*
 * (`{name, secret: KEY}`), `workflows[].secretKeys` lists the keys a workflow may read, and
 * `secretRef` names the per-run Secret (same namespace) that holds the values.
 */
import type { V1ObjectMeta } from "@kubernetes/client-node";
import { z } from "zod";
import { formatIssues } from "../issues.ts";
import type { API_VERSION, SPINDLESET } from "./group.ts";

/** Tangled's workflow statuses (spec §4.1), used per workflow and for the whole run. */
export const PHASES = ["pending", "running", "success", "failed", "timeout", "cancelled"] as const;
export type Phase = (typeof PHASES)[number];
export const TERMINAL_PHASES: readonly Phase[] = ["success", "failed", "timeout", "cancelled"];

/**
 * Closed list of reasons, for workflow status and conditions. A reason says *why* a workflow is
 * in its phase, precisely enough to act on; user errors (StepFailed, TimedOut, NoMatchingProfile,
 * ImagePullFailed, CloneFailed, InvalidSpec) are told apart from system ones (NodeLost, JobLost,
 * RunnerSilent, InternalError). Adding a value is compatible; renaming or removing one is not.
 */
export const REASONS = [
  /** Accepted, waiting in the controller's queue. */
  "Pending",
  /** Waiting because maxConcurrentJobs workflows are already running. */
  "WaitingForCapacity",
  /** Job created; its pod is not running yet (scheduling, image pull, init containers). */
  "Scheduled",
  /** The runner is executing steps. */
  "Running",
  "Succeeded",
  /** A step exited non-zero. */
  "StepFailed",
  /** The runner's own budget (the workflow timeout) ran out. */
  "TimedOut",
  /** The Job's activeDeadlineSeconds (timeout + setup grace) ran out. */
  "DeadlineExceeded",
  /** An image could not be pulled within the grace period (bad name, no access). */
  "ImagePullFailed",
  /** The pod stayed unschedulable past the configured limit. */
  "Unschedulable",
  /**
   * The Job's pod could not be created past the configured limit (refused by Pod Security
   * admission, a ResourceQuota, an admission webhook): the Job's FailedCreate events say why.
   */
  "PodCreateFailed",
  /** No resource profile matches the workflow's architecture and the cluster's nodes. */
  "NoMatchingProfile",
  /**
   * The workflow asks for something this cluster's Loom does not provide: a microvm image name
   * missing from microvm.images, a service, a virtualisation entry. The message names it.
   */
  "Unsupported",
  /** setup-user or install-runner failed. */
  "InitContainerFailed",
  /** The clone-repo init container failed. */
  "CloneFailed",
  /** The runner exited without a result, or spoke a protocol it should not. */
  "RunnerFailed",
  /** No runner heartbeat within the configured silence limit. */
  "RunnerSilent",
  "OOMKilled",
  "Evicted",
  /** The pod's node disappeared or stopped reporting. */
  "NodeLost",
  "Cancelled",
  /** `secretRef` names a Secret that does not exist or lacks a key. */
  "SecretMissing",
  /** The spec failed validation the CRD schema cannot express. */
  "InvalidSpec",
  /** The Job vanished before reporting a result (deleted by hand, TTL, ...). */
  "JobLost",
  /** The API refused the workflow's objects for good (400/422: an admission policy, or a bug). */
  "InternalError",
] as const;
export type Reason = (typeof REASONS)[number];

/** The terminal phase a terminal reason implies; non-terminal reasons map to pending/running. */
export function phaseForReason(reason: Reason): Phase {
  switch (reason) {
    case "Pending":
    case "WaitingForCapacity":
    case "Scheduled":
      return "pending";
    case "Running":
      return "running";
    case "Succeeded":
      return "success";
    case "TimedOut":
    case "DeadlineExceeded":
      return "timeout";
    case "Cancelled":
      return "cancelled";
    default:
      return "failed";
  }
}

/** Architectures Kubernetes reports in the `kubernetes.io/arch` node label. */
export const ARCHITECTURES = ["amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64"] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

/** Overall condition: Unknown while the run is in flight, True/False once it is finished. */
export const CONDITION_SUCCEEDED = "Succeeded";

// --- building blocks -----------------------------------------------------------------------

/** Env var style key: what a repo secret is called, and what a Secret data key may hold. */
export const SECRET_KEY_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$";
const secretKey = z.string().min(1).max(253).regex(new RegExp(SECRET_KEY_PATTERN));
const envName = z.string().min(1).max(1024);
const hexSha = z
  .string()
  .regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/)
  .describe("a full commit id (SHA-1, or SHA-256 for SHA-256 repositories)");
const time = z.iso.datetime({ offset: true });

const EnvValueEntrySchema = z.strictObject({
  name: envName.describe("name of the environment variable"),
  value: z.string().max(131072).describe("literal value of the variable"),
});
const EnvSecretEntrySchema = z.strictObject({
  name: envName.describe("name of the environment variable"),
  secret: secretKey.describe("key of a repo secret; the runner reads it from LOOM_SECRET_<key>"),
});
/** Mirrors `EnvEntry` of the runner protocol: a literal value or a reference to a secret key. */
export const EnvEntrySchema = z.union([EnvValueEntrySchema, EnvSecretEntrySchema]);

export const RunnerStepSchema = z.strictObject({
  id: z.number().int().min(0).describe("Tangled step id, 0.. in step-list order"),
  name: z.string().max(1024).describe("step name shown in the log"),
  command: z.string().max(262144).describe("shell command the runner runs with /bin/sh -c"),
  kind: z
    .enum(["system", "user"])
    .describe("system: added by the spindle (clone, dependencies); user: written in the workflow file"),
  env: z
    .array(EnvEntrySchema)
    .max(1024)
    .default([])
    .describe(
      "the step's environment: each entry a literal value or a repo secret key; applied in order, a later entry wins",
    ),
});

export const CloneOptionsSchema = z
  .strictObject({
    skip: z
      .boolean()
      .default(false)
      .describe("true: no clone-repo init container; the workspace starts empty"),
    url: z.string().max(2048).optional().describe("remote to fetch; required unless skip"),
    sha: hexSha.optional().describe("commit to check out; absent = the remote's HEAD (manual runs)"),
    depth: z.number().int().min(1).default(1).describe("git fetch --depth"),
    submodules: z.boolean().default(false).describe("also fetch the repository's submodules"),
    stepId: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe(
        "id of the system clone step the clone-repo init container replaces; that step then only prints the clone's log",
      ),
  })
  .describe("how the clone-repo init container fetches the repository into the workspace");

/** A PostgreSQL database or role name as Loom accepts it (written into SQL unescaped but quoted). */
const pgName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/)
  .describe("a PostgreSQL name: letters, digits, _ and -");

/** A MariaDB database or user name as Loom accepts it (quoted in the SQL). */
const mysqlName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/)
  .describe("a MariaDB name: letters, digits, _ and -");

/** A list of at most `max` items, empty when left out, that a merge patch replaces whole. */
function atomicList<T extends z.ZodType>(item: T, max: number) {
  return z
    .array(item)
    .max(max)
    .default(() => [])
    .meta({ "x-kubernetes-list-type": "atomic" });
}

/**
 * A database server's options as NixOS names them (services.postgresql, services.mysql): the
 * databases (`name` checks each) and the users (`user`) to create before the first step.
 */
function databaseService<U extends z.ZodType>(name: z.ZodString, user: U, users: string) {
  return z.strictObject({
    ensureDatabases: atomicList(name, 64).describe("databases to create before the first step"),
    ensureUsers: atomicList(user, 64).describe(`${users} to create before the first step`),
  });
}

/** What an `engine: microvm` workflow asks of the cluster beyond its steps. */
export const MicrovmSpecSchema = z
  .strictObject({
    image: z
      .string()
      .min(1)
      .max(253)
      .describe(
        "the workflow's image name (e.g. nixos); the controller's microvm.images maps it to an OCI image",
      ),
    services: atomicList(z.string().min(1).max(253), 32).describe(
      "names of the NixOS services the workflow enables, to run beside the steps or refuse by name",
    ),
    virtualisation: atomicList(z.string().min(1).max(253), 32).describe(
      "names of the virtualisation entries the workflow enables (e.g. docker)",
    ),
    postgresql: databaseService(
      pgName,
      z.strictObject({
        name: pgName.describe("role to create (with LOGIN)"),
        ensureDBOwnership: z
          .boolean()
          .default(false)
          .describe("make the role the owner of the database of the same name"),
      }),
      "roles",
    )
      .optional()
      .describe("services.postgresql's options, when the workflow enables it (NixOS option names)"),
    redis: z
      .strictObject({
        port: z
          .number()
          .int()
          .min(0)
          .max(65535)
          .default(6379)
          .describe("TCP port on 127.0.0.1 beside the socket /run/redis/redis.sock; 0 = the socket only"),
      })
      .optional()
      .describe("services.redis's options, when the workflow enables it (NixOS option names)"),
    mysql: databaseService(
      mysqlName,
      z.strictObject({
        name: mysqlName.describe("user to create, identified by the Unix socket (OS user of the same name)"),
        ensurePermissions: atomicList(
          z.strictObject({
            on: z
              .string()
              .regex(
                /^(\*|[A-Za-z0-9_-]{1,64}|`[A-Za-z0-9_-]{1,64}`)\.(\*|[A-Za-z0-9_-]{1,64}|`[A-Za-z0-9_-]{1,64}`)$/,
              )
              .describe("what the grant is on: db.*, *.* or db.table"),
            privileges: z
              .string()
              .max(256)
              .regex(/^[A-Za-z][A-Za-z ]*(, *[A-Za-z][A-Za-z ]*)*$/)
              .describe("privileges as GRANT takes them, e.g. ALL PRIVILEGES"),
          }),
          64,
        ).describe("NixOS's ensurePermissions map as a list of grants"),
      }),
      "users",
    )
      .optional()
      .describe(
        "services.mysql's (or services.mariadb's) options, when the workflow enables one: one MariaDB server",
      ),
  })
  .describe(
    "set for engine: microvm workflows: the image name to map, and the services and virtualisation asked for",
  );

export const WorkflowSpecSchema = z.strictObject({
  name: z.string().min(1).max(255).describe("workflow file name, e.g. build.yml"),
  wid: z.string().min(1).max(1024).describe("workflow id normalize(knot)-rkey-normalize(name), spec §4.3"),
  image: z.string().min(1).max(1024).describe("OCI image the steps run in (the runner container's image)"),
  architecture: z
    .enum(ARCHITECTURES)
    .describe("CPU architecture of the node the workflow runs on (the kubernetes.io/arch node label)"),
  timeoutSeconds: z
    .number()
    .int()
    .min(0)
    .describe(
      "budget for the steps, 0 = none; capped by the controller's maxWorkflowSeconds, setup grace is added for the Job",
    ),
  secretKeys: z
    .array(secretKey)
    .max(1024)
    .default([])
    .describe("keys of the secretRef Secret this workflow's runner receives"),
  clone: CloneOptionsSchema,
  microvm: MicrovmSpecSchema.optional(),
  steps: z
    .array(RunnerStepSchema)
    .max(1024)
    .meta({ "x-kubernetes-list-type": "atomic" })
    .describe("the steps in the order the runner runs them, system steps included"),
});

const TriggerRepoSchema = z
  .strictObject({
    knot: z.string().max(253).describe("host name of the knot that serves the repository"),
    did: z.string().max(2048).describe("DID of the repository's owner"),
    repo: z.string().max(1024).describe("repository name"),
    defaultBranch: z.string().max(1024).optional().describe("the repository's default branch, when known"),
  })
  .describe("the repository the pipeline runs for");

/** A frozen copy of the pipeline record's triggerMetadata (spec §1.5), for people and audits. */
export const TriggerSchema = z
  .strictObject({
    kind: z.enum(["push", "pull_request", "manual"]).describe("what started the pipeline"),
    repo: TriggerRepoSchema,
    push: z
      .strictObject({
        ref: z.string().max(1024).describe("the pushed ref, e.g. refs/heads/main"),
        oldSha: z.string().max(64).describe("commit the ref pointed at before the push (may be empty)"),
        newSha: z.string().max(64).describe("commit the ref points at after the push"),
      })
      .optional()
      .describe("set when kind is push"),
    pullRequest: z
      .strictObject({
        sourceBranch: z.string().max(1024).describe("branch the pull request comes from"),
        targetBranch: z.string().max(1024).describe("branch the pull request targets"),
        sourceSha: z.string().max(64).describe("head commit of the source branch"),
        action: z.string().max(64).describe("what happened to the pull request, e.g. create or update"),
      })
      .optional()
      .describe("set when kind is pull_request"),
    manual: z
      .strictObject({
        inputs: z
          .array(
            z.strictObject({
              key: z.string().max(1024).describe("input name"),
              value: z.string().max(65536).describe("input value"),
            }),
          )
          .max(256)
          .default([])
          .describe("the inputs given when the run was started by hand"),
      })
      .optional()
      .describe("set when kind is manual"),
  })
  .describe(
    "a copy of the pipeline record's triggerMetadata, for people and audits; the controller does not act on it",
  );

const SpindleSetSpecObject = z
  .strictObject({
    pipeline: z
      .strictObject({
        knot: z.string().min(1).max(253).describe("host name of the knot that emitted the pipeline"),
        rkey: z.string().min(1).max(512).describe("record key of the pipeline record on that knot"),
      })
      .describe("which pipeline this run is: knot + rkey identify it on Tangled"),
    trigger: TriggerSchema,
    secretRef: z
      .strictObject({
        name: z.string().min(1).max(253).describe("name of the Secret in the SpindleSet's namespace"),
      })
      .optional()
      .describe("the per-run Secret holding repo secret values; absent when the run has no secrets"),
    cancel: z.boolean().default(false).describe("set to true to cancel every unfinished workflow"),
    cancelWorkflows: z
      .array(z.string().min(1).max(255))
      .max(64)
      .default([])
      .meta({ "x-kubernetes-list-type": "set" })
      .describe("names of single workflows to cancel (Tangled's cancelPipeline names one workflow)"),
    workflows: z
      .array(WorkflowSpecSchema)
      .min(1)
      .max(64)
      .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] })
      .describe("the run's workflows, resolved and frozen; each runs as one Job"),
  })
  .describe(
    "the run as the spindle froze it when it started; only the spindle writes it, except cancel and cancelWorkflows",
  );

/** Cross-field rules the CRD schema cannot state; the controller reports them as InvalidSpec. */
export const SpindleSetSpecSchema = SpindleSetSpecObject.superRefine((spec, ctx) => {
  const names = new Set<string>();
  spec.workflows.forEach((wf, i) => {
    const at = (...rest: (string | number)[]) => ["workflows", i, ...rest];
    if (names.has(wf.name))
      ctx.addIssue({ code: "custom", path: at("name"), message: "duplicate workflow name" });
    names.add(wf.name);
    if (wf.secretKeys.length > 0 && !spec.secretRef) {
      ctx.addIssue({ code: "custom", path: at("secretKeys"), message: "secret keys need spec.secretRef" });
    }
    const keys = new Set(wf.secretKeys);
    const ids = new Set<number>();
    wf.steps.forEach((step, j) => {
      if (ids.has(step.id))
        ctx.addIssue({ code: "custom", path: at("steps", j, "id"), message: "duplicate step id" });
      ids.add(step.id);
      step.env.forEach((entry, k) => {
        if ("secret" in entry && !keys.has(entry.secret)) {
          ctx.addIssue({
            code: "custom",
            path: at("steps", j, "env", k, "secret"),
            message: `secret ${entry.secret} is not in the workflow's secretKeys`,
          });
        }
      });
    });
    if (!wf.clone.skip && !wf.clone.url) {
      ctx.addIssue({ code: "custom", path: at("clone", "url"), message: "required unless clone.skip" });
    }
    if (wf.clone.stepId !== undefined) {
      const step = wf.steps.find((s) => s.id === wf.clone.stepId);
      if (step?.kind !== "system") {
        ctx.addIssue({ code: "custom", path: at("clone", "stepId"), message: "must name a system step" });
      }
    }
  });
});

// --- status --------------------------------------------------------------------------------

/** metav1.Condition, as Kubernetes API conventions define it. */
export const ConditionSchema = z.strictObject({
  type: z
    .string()
    .max(316)
    .regex(
      /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/,
    )
    .describe("condition type, e.g. Succeeded"),
  status: z.enum(["True", "False", "Unknown"]).describe("True, False or Unknown"),
  observedGeneration: z
    .number()
    .int()
    .min(0)
    .optional()
    .describe("the metadata.generation the condition was set for"),
  lastTransitionTime: time.describe("when status last changed"),
  reason: z
    .string()
    .min(1)
    .max(1024)
    .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
    .describe("one of the workflow reasons (docs/operating.md)"),
  message: z.string().max(32768).describe("details for people"),
});

export const WorkflowStatusSchema = z.strictObject({
  name: z.string().min(1).max(255).describe("the workflow's name in spec.workflows"),
  phase: z.enum(PHASES).describe("Tangled's workflow status"),
  reason: z.enum(REASONS).describe("why the workflow is in its phase (docs/operating.md lists every reason)"),
  message: z
    .string()
    .max(32768)
    .optional()
    .describe("details for people: what it waits for, or why it failed"),
  jobName: z.string().max(63).optional().describe("the workflow's Job, once created"),
  profile: z
    .string()
    .max(253)
    .optional()
    .describe("name of the resource profile chosen (or its index as #n when unnamed)"),
  startTime: time.optional().describe("when the runner started the steps"),
  finishTime: time.optional().describe("when the workflow reached a terminal phase"),
  exitCode: z
    .number()
    .int()
    .optional()
    .describe("exit code of the failing step, 0 on success; -1 when no step ran (Tangled's convention)"),
});

export const SpindleSetStatusSchema = z
  .strictObject({
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("the metadata.generation the controller last acted on"),
    phase: z.enum(PHASES).optional().describe("overall phase of the run"),
    reason: z.enum(REASONS).optional().describe("why the run is in its phase"),
    progress: z.string().max(16).optional().describe("finished/total workflows, for kubectl get"),
    startTime: time.optional().describe("when the first workflow started"),
    completionTime: time.optional().describe("when the last workflow finished"),
    workflows: z
      .array(WorkflowStatusSchema)
      .max(64)
      .default([])
      .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] })
      .describe("one entry per workflow of spec.workflows"),
    conditions: z
      .array(ConditionSchema)
      .max(16)
      .default([])
      .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] })
      .describe("standard conditions; Succeeded is Unknown while the run is in flight"),
  })
  .describe("what the controller observed; only the controller writes it");

export type EnvEntrySpec = z.output<typeof EnvEntrySchema>;
export type RunnerStepSpec = z.output<typeof RunnerStepSchema>;
export type CloneOptions = z.output<typeof CloneOptionsSchema>;
export type WorkflowSpec = z.output<typeof WorkflowSpecSchema>;
export type MicrovmSpec = z.output<typeof MicrovmSpecSchema>;
export type Trigger = z.output<typeof TriggerSchema>;
export type SpindleSetSpec = z.output<typeof SpindleSetSpecSchema>;
/** What a writer may omit (defaults fill it in): the engine builds specs of this type. */
export type SpindleSetSpecInput = z.input<typeof SpindleSetSpecSchema>;
export type Condition = z.output<typeof ConditionSchema>;
export type WorkflowStatus = z.output<typeof WorkflowStatusSchema>;
export type SpindleSetStatus = z.output<typeof SpindleSetStatusSchema>;

/** The object schema (without the cross-field refinement), for CRD generation. */
export const SPEC_OBJECT_SCHEMA = SpindleSetSpecObject;

// --- the resource --------------------------------------------------------------------------

export interface SpindleSet {
  apiVersion: typeof API_VERSION;
  kind: typeof SPINDLESET.kind;
  metadata: V1ObjectMeta;
  spec: SpindleSetSpec;
  status?: SpindleSetStatus;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; issues: string[] };

/** Validates a spec read from the cluster; issues are `spec.workflows[0].clone.url: ...` lines. */
export function parseSpindleSetSpec(input: unknown): ParseResult<SpindleSetSpec> {
  const result = SpindleSetSpecSchema.safeParse(input);
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, issues: formatIssues(result.error, "spec") };
}
