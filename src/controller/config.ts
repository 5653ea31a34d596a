/**
 * The controller's part of /etc/loom/config.yaml (the `kubernetes:` section). The server's config
 * loader reads the file and hands the parsed section here; this module only validates it, fills
 * in defaults and freezes the result, failing at start-up with one line per problem that names
 * the exact place, e.g. `kubernetes.template.resourceProfiles[1].resources.limits.memory: ...`.
 */
import { z } from "zod";
import { isLabelKey, isLabelValue } from "../api/contract/index.ts";
import { formatPath } from "../api/issues.ts";
import { ARCHITECTURES } from "../api/v1alpha1/spindleset.ts";
import { parseQuantity } from "./build/quantity.ts";

const dnsLabel = z
  .string()
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a DNS label (lower-case letters, digits, '-')");
const seconds = (min: number) => z.number().int().min(min);

/** YAML writes `cpu: 2` as a number; Kubernetes wants the string "2". Both are accepted. */
const quantity = z.preprocess(
  (v) => (typeof v === "number" ? String(v) : v),
  z.string().refine((s) => parseQuantity(s) !== undefined, "not a Kubernetes quantity (e.g. 500m, 2, 4Gi)"),
);
const resourceName = z.string().refine(isLabelKey, "not a resource name (e.g. cpu, memory, nvidia.com/gpu)");
const resourceList = z.record(resourceName, quantity);

const ResourcesSchema = z
  .strictObject({ requests: resourceList.default({}), limits: resourceList.default({}) })
  .superRefine((r, ctx) => {
    for (const [name, limit] of Object.entries(r.limits)) {
      const request = r.requests[name];
      if (request !== undefined && parseQuantity(request)! > parseQuantity(limit)!) {
        ctx.addIssue({
          code: "custom",
          path: ["limits", name],
          message: `limit ${limit} is below the request ${request}`,
        });
      }
    }
  });

const TolerationSchema = z
  .strictObject({
    key: z.string().refine(isLabelKey, "not a taint key").optional(),
    operator: z.enum(["Equal", "Exists"]).default("Equal"),
    value: z.string().refine(isLabelValue, "not a taint value").optional(),
    effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]).optional(),
    tolerationSeconds: z.number().int().optional(),
  })
  .superRefine((t, ctx) => {
    if (t.operator === "Exists" && t.value) {
      ctx.addIssue({ code: "custom", path: ["value"], message: "must be empty when operator is Exists" });
    }
    if (t.operator === "Equal" && !t.key) {
      ctx.addIssue({ code: "custom", path: ["key"], message: "required when operator is Equal" });
    }
    if (t.tolerationSeconds !== undefined && t.effect !== "NoExecute") {
      ctx.addIssue({
        code: "custom",
        path: ["tolerationSeconds"],
        message: "only applies to effect NoExecute",
      });
    }
  });

const nodeSelector = z.record(
  z.string().refine(isLabelKey, "not a label key"),
  z.string().refine(isLabelValue, "not a label value"),
);

const ARCH_LABEL = "kubernetes.io/arch";

const ResourceProfileSchema = z
  .strictObject({
    name: dnsLabel.optional(),
    /** The workflow architecture this profile serves; absent = any (or the nodeSelector's arch). */
    architecture: z.enum(ARCHITECTURES).optional(),
    nodeSelector: nodeSelector.default({}),
    resources: ResourcesSchema.prefault({}),
    tolerations: z.array(TolerationSchema).default([]),
  })
  .superRefine((p, ctx) => {
    const selected = p.nodeSelector[ARCH_LABEL];
    if (p.architecture && selected && selected !== p.architecture) {
      ctx.addIssue({
        code: "custom",
        path: ["nodeSelector", ARCH_LABEL],
        message: `${selected} contradicts architecture ${p.architecture}`,
      });
    }
  });

/** The official Nix image, multi-arch (amd64, arm64), pinned: the default for `image: nixos`. */
export const DEFAULT_MICROVM_IMAGES: Readonly<Record<string, string>> = {
  nixos: "docker.io/nixos/nix:2.28.3",
};

const dnsSubdomain = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, "must be a DNS subdomain");

/** An OCI image for every architecture (a multi-arch reference), or one per architecture. */
const MicrovmImageSchema = z.union([
  z.string().min(1).max(1024),
  z.partialRecord(z.enum(ARCHITECTURES), z.string().min(1).max(1024)),
]);

const MicrovmSchema = z
  .strictObject({
    /**
     * `engine: microvm` image names → OCI images, merged over DEFAULT_MICROVM_IMAGES (an entry
     * of the same name replaces the default). The image needs Nix (for dependencies), bash and
     * coreutils; its /nix is copied into a volume the workflow's user owns.
     */
    images: z
      .record(
        z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "an image name such as nixos"),
        MicrovmImageSchema,
      )
      .default({})
      .transform((images) => ({ ...DEFAULT_MICROVM_IMAGES, ...images })),
    /** The PostgreSQL sidecar of workflows with services.postgresql: needs initdb, postgres, pg_isready, psql on PATH. */
    postgresqlImage: z.string().min(1).max(1024).default("docker.io/library/postgres:17.6"),
    /** The Redis sidecar of workflows with services.redis: needs sh, redis-server and redis-cli. */
    redisImage: z.string().min(1).max(1024).default("docker.io/library/redis:7.4.5"),
    /**
     * The MariaDB sidecar of workflows with services.mysql or services.mariadb: needs sh,
     * mariadb-install-db, mariadbd, mariadb-admin and mariadb.
     */
    mariadbImage: z.string().min(1).max(1024).default("docker.io/library/mariadb:11.8.2"),
    /** A RuntimeClass (e.g. Kata Containers) for microvm workflow pods; absent: the cluster's default. */
    runtimeClassName: dnsSubdomain.optional(),
    /**
     * virtualisation.docker: a rootless Docker daemon sidecar. Off by default; it runs privileged
     * (rootlesskit needs user namespaces and mounts), so the namespace must allow Pod Security
     * `privileged`, as buildah.seccompUnconfined does for buildah.
     */
    docker: z
      .strictObject({
        /** Workflows asking for virtualisation.docker get a daemon; false: they fail with Unsupported. */
        enabled: z.boolean().default(false),
        /** A rootless dind image (runs as UID 1000, dockerd-entrypoint.sh, docker CLI). */
        image: z.string().min(1).max(1024).default("docker.io/library/docker:28.3.3-dind-rootless"),
      })
      .prefault({}),
    /**
     * A Nix store cache for microvm workflows, off by default: a PersistentVolumeClaim mounted as
     * a local binary cache (each run's dev shell pushed into it, later runs substitute from it),
     * or a binary cache URL (with its public key) added as a substituter. One or the other.
     */
    cache: z
      .strictObject({
        /** A PersistentVolumeClaim in the namespace (ReadWriteMany when workflows run at once). */
        volumeClaimName: dnsSubdomain.optional(),
        /** An http(s) binary cache, added as an extra substituter. */
        url: z
          .string()
          .max(1024)
          .regex(/^https?:\/\/[A-Za-z0-9_.:/?=&%~+@,-]+$/, "an http(s) binary cache URL")
          .optional(),
        /** The cache's signing key (name:base64), trusted for the URL's paths. */
        publicKey: z
          .string()
          .max(1024)
          .regex(/^[A-Za-z0-9_.-]+:[A-Za-z0-9+/]+={0,2}$/, "a Nix public key (name:base64)")
          .optional(),
      })
      .superRefine((c, ctx) => {
        if (c.volumeClaimName !== undefined && c.url !== undefined) {
          ctx.addIssue({ code: "custom", path: ["url"], message: "set volumeClaimName or url, not both" });
        }
        if (c.publicKey !== undefined && c.url === undefined) {
          ctx.addIssue({ code: "custom", path: ["publicKey"], message: "only applies with url" });
        }
      })
      .prefault({}),
  })
  .prefault({});

export const ControllerConfigSchema = z
  .strictObject({
    /** Where SpindleSets live and Jobs, Secrets and ConfigMaps are created. */
    namespace: dnsLabel.default("loom"),
    /** Workflows (= Jobs) running at once across all runs. */
    maxConcurrentJobs: z.number().int().min(1).max(10000).default(5),
    /**
     * Runs reconciled at once. A reconcile spends most of its time waiting on API round trips
     * (ConfigMap, Job, status), so more workers than cores pays; one run is never reconciled
     * twice at once whatever the number. `loom serve`'s engine creates as many SpindleSets at once.
     */
    workers: z.number().int().min(1).max(256).default(16),
    /** The Jobs' ServiceAccount: it must have no RBAC bindings (config/rbac/job_service_account.yaml). */
    serviceAccountName: dnsLabel.default("loom-job-runner"),
    imagePullSecrets: z.array(dnsLabel).default([]),
    template: z
      .strictObject({
        /** Ordered; the first profile matching the workflow's architecture and a node wins. */
        resourceProfiles: z.array(ResourceProfileSchema).default([]),
        /** Added to every Job, after the profile's own tolerations. */
        tolerations: z.array(TolerationSchema).default([]),
      })
      .prefault({}),
    images: z.strictObject({
      /** The runner bundle image (multi-arch); install-runner copies `runnerBundlePath` out of it. */
      runner: z.string().min(1, "required: the runner bundle image"),
      /** An image per architecture instead of `runner`'s multi-arch tag (build/runner-image.ts). */
      runnerByArchitecture: z.partialRecord(z.enum(ARCHITECTURES), z.string().min(1)).default({}),
      runnerBundlePath: z.string().startsWith("/").default("/loom-runner"),
      /** clone-repo: needs `sh` and `git`. */
      git: z.string().min(1).default("docker.io/alpine/git:v2.45.1"),
      /** setup-user: needs `sh`, `mkdir` and `cat`. */
      setup: z.string().min(1).default("docker.io/library/busybox:1.37"),
      pullPolicy: z.enum(["Always", "IfNotPresent", "Never"]).default("IfNotPresent"),
    }),
    ttl: z
      .strictObject({
        /** How long a finished SpindleSet (and, through owner references, everything it owns) stays. */
        spindleSetSecondsAfterFinished: seconds(0).default(86400),
        /** The Job's ttlSecondsAfterFinished: the pod stays this long for `kubectl logs`. */
        jobSecondsAfterFinished: seconds(0).default(900),
      })
      .prefault({}),
    timeouts: z
      .strictObject({
        /** Cap on a workflow's step budget, and the budget of workflows that set none (0). */
        maxWorkflowSeconds: seconds(1).default(21600),
        /** Added to the workflow timeout for the Job's activeDeadlineSeconds (pull, init containers). */
        setupGraceSeconds: seconds(0).default(600),
        /** How long ErrImagePull/ImagePullBackOff is tolerated before ImagePullFailed. */
        imagePullGraceSeconds: seconds(1).default(300),
        /** How long a pod may stay unschedulable (node autoscaling takes minutes). */
        unschedulableSeconds: seconds(1).default(900),
        /** How long a Job's pod may fail to be created (quota, Pod Security) before PodCreateFailed. */
        podCreateFailedSeconds: seconds(1).default(300),
        /** The runner's heartbeat period (RunnerSpec.heartbeatSeconds). */
        heartbeatSeconds: seconds(1).default(10),
        /** No runner event for this long ends the workflow with RunnerSilent. */
        runnerSilentSeconds: seconds(1).default(120),
        /** Pod terminationGracePeriodSeconds: time the runner gets to stop steps on cancel. */
        terminationGraceSeconds: seconds(0).default(30),
      })
      .prefault({}),
    buildah: z
      .strictObject({
        /**
         * The images whose workflows may run rootless buildah: a workflow opts in by naming one
         * as its `image`, and only its pod gets SETUID/SETGID and privilege escalation (setuid
         * newuidmap). An entry is an image without tag (any tag or digest), an exact reference,
         * or a prefix ending in `*`. Empty: every workflow pod meets Pod Security `restricted`.
         */
        images: z
          .array(
            z
              .string()
              .min(1)
              .max(1024)
              .regex(/^[^\s*]+\*?$/, "an image, or a prefix ending in *"),
          )
          .default([]),
        /** Some clusters' RuntimeDefault seccomp profile blocks the syscalls buildah needs. */
        seccompUnconfined: z.boolean().default(false),
        /** Replaced by `images` (one switch let every workflow escalate): refused with a hint. */
        enabled: z
          .unknown()
          .refine(
            (v) => v === undefined,
            "replaced by buildah.images: list the buildah images workflows may opt in with",
          )
          .optional(),
      })
      .transform(({ enabled: _, ...rest }) => rest)
      .prefault({}),
    /** `engine: microvm` workflows (src/workflow/microvm.ts, build/job.ts). */
    microvm: MicrovmSchema,
  })
  .superRefine((c, ctx) => {
    if (c.buildah.seccompUnconfined && c.buildah.images.length === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["buildah", "seccompUnconfined"],
        message: "only applies when buildah.images lists an image",
      });
    }
    if (c.timeouts.runnerSilentSeconds < 2 * c.timeouts.heartbeatSeconds) {
      ctx.addIssue({
        code: "custom",
        path: ["timeouts", "runnerSilentSeconds"],
        message: `must be at least twice heartbeatSeconds (${c.timeouts.heartbeatSeconds})`,
      });
    }
    const seen = new Map<string, number>();
    c.template.resourceProfiles.forEach((p, i) => {
      if (p.name === undefined) return;
      const first = seen.get(p.name);
      if (first !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["template", "resourceProfiles", i, "name"],
          message: `duplicate of resourceProfiles[${first}].name`,
        });
      } else seen.set(p.name, i);
    });
  });

export type ControllerConfig = DeepReadonly<z.output<typeof ControllerConfigSchema>>;
export type ResourceProfile = ControllerConfig["template"]["resourceProfiles"][number];
export type Toleration = ResourceProfile["tolerations"][number];

type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** The image without its digest and tag: `quay.io/buildah/stable:v1.38@sha256:…` → `quay.io/buildah/stable`. */
function imageRepository(image: string): string {
  const noDigest = image.split("@")[0]!;
  const slash = noDigest.lastIndexOf("/");
  const colon = noDigest.lastIndexOf(":");
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}

/** Whether a workflow running `image` opted into rootless buildah, as `buildah.images` allows. */
export function buildahAllowed(config: Pick<ControllerConfig, "buildah">, image: string): boolean {
  return config.buildah.images.some((entry) =>
    entry.endsWith("*")
      ? image.startsWith(entry.slice(0, -1))
      : entry === image || entry === imageRepository(image),
  );
}

/**
 * The OCI image a microvm workflow's image name maps to on `architecture`, or why there is none.
 */
export function microvmImage(
  config: Pick<ControllerConfig, "microvm">,
  name: string,
  architecture: string,
): { ok: true; image: string } | { ok: false; message: string } {
  const entry = Object.hasOwn(config.microvm.images, name) ? config.microvm.images[name] : undefined;
  if (entry === undefined || entry === null) {
    const known = Object.keys(config.microvm.images).sort().join(", ");
    return { ok: false, message: `microvm image "${name}" is not in microvm.images (configured: ${known})` };
  }
  const image = typeof entry === "string" ? entry : entry[architecture as keyof typeof entry];
  if (image === undefined) {
    return {
      ok: false,
      message: `microvm image "${name}" has no image for ${architecture} in microvm.images`,
    };
  }
  return { ok: true, image };
}

export class ControllerConfigError extends Error {
  override readonly name = "ControllerConfigError";
  readonly code = "CONFIG_INVALID";
  readonly issues: readonly string[];
  constructor(issues: string[]) {
    super(`invalid controller configuration:\n  ${issues.join("\n  ")}`);
    this.issues = issues;
  }
}

/**
 * Validates the `kubernetes` section (as parsed from YAML; `undefined` when the section is
 * absent) and returns a deeply frozen config. Throws ControllerConfigError listing every problem.
 * `topLevel` lists dotted keys of the section (`maxConcurrentJobs`, `template.resourceProfiles`)
 * that the file wrote at its top level, the original Loom's form (src/spindle/config/kubernetes.ts):
 * their problems are named without the prefix, where the operator wrote them.
 */
export function parseControllerConfig(
  section: unknown,
  pathPrefix = "kubernetes",
  topLevel: readonly string[] = [],
): ControllerConfig {
  const result = ControllerConfigSchema.safeParse(section ?? {});
  if (!result.success) {
    const fromTop = (path: readonly PropertyKey[]) =>
      topLevel.includes(String(path[0])) || topLevel.includes(`${String(path[0])}.${String(path[1])}`);
    throw new ControllerConfigError(
      result.error.issues.map(
        (issue) => `${formatPath(issue.path, fromTop(issue.path) ? "" : pathPrefix)}: ${issue.message}`,
      ),
    );
  }
  return deepFreeze(result.data);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
