/**
 * The Job of one workflow. Pod layout:
 *
 *   init  setup-user      (images.setup)  passwd/group (+ subuid/subgid) for UID 1000 into
 *                                         /loom/setup; creates /tangled/home and /tangled/workspace
 *   init  clone-repo      (images.git)    fetches clone.url@sha into /tangled/workspace; its log
 *                                         goes to /loom/setup/clone.log; no secrets in its env
 *                                         (absent when clone.skip)
 *   init  install-runner  (images.runner) copies the runner bundle of the workflow's architecture
 *                                         into /loom/runner (runner-image.ts)
 *   main  runner          (workflow image) /loom/runner/loom-runner /loom/spec/spec.json
 *
 * Everything runs as UID/GID 1000 (fsGroup 1000) with no service account token, every
 * capability dropped and no privilege escalation, so a workflow pod meets Pod Security
 * `restricted` (test/deploy/pod-security.test.ts asks the API server's own admission). Only a
 * workflow whose image the operator lists in buildah.images (rootless buildah: its newuidmap is
 * setuid) gets SETUID/SETGID and privilege escalation in the main container: that pod meets
 * `baseline`, or only `privileged` with buildah.seccompUnconfined. Secret values reach the main
 * container alone, each through a secretKeyRef to the run's Secret; the Job holds no value.
 *
 * An `engine: microvm` workflow (microvm.ts) runs its mapped image, with a `nix-store` init
 * container and its services' native sidecars after install-runner (microvm-pod.ts), /nix and
 * /workspace/repo mounted in the runner, UID 1000 named spindle-workflow, and the operator's
 * microvm.runtimeClassName when set.
 *
 * The image's own /etc/passwd is replaced (subPath mounts) by one with root, runner (1000) and
 * nobody: the setup image cannot read the workflow image's file, and tools such as buildah, ssh
 * and git refuse to run for a UID with no passwd entry.
 */
import type {
  V1Container,
  V1EnvVar,
  V1Job,
  V1ResourceRequirements,
  V1Volume,
  V1VolumeMount,
} from "@kubernetes/client-node";
import {
  ANNOTATIONS,
  BuildError,
  CONTAINERS,
  cloneScript,
  jobName,
  ownerReference,
  POD_PATHS,
  RUNNER_UID,
  runnerSpecConfigMapName,
  type SpindleSetRef,
  secretEnvName,
  setupScript,
  workflowAnnotations,
  workflowLabels,
} from "../../api/contract/index.ts";
import type { WorkflowSpec } from "../../api/v1alpha1/spindleset.ts";
import { buildahAllowed, type ControllerConfig, type ResourceProfile } from "../config.ts";
import { MICROVM_PATHS, MICROVM_USER, microvmPodImage } from "./microvm.ts";
import { type MicrovmPodParts, microvmPodParts } from "./microvm-pod.ts";
import { installRunnerCommand, runnerImage } from "./runner-image.ts";
import { effectiveTimeoutSeconds, SPEC_KEY } from "./runner-spec.ts";

export { RUNNER_UID };

const VOLUMES = {
  tangled: "tangled",
  tmp: "tmp",
  runner: "runner",
  setup: "setup",
  spec: "spec",
} as const;

export interface JobInput {
  owner: SpindleSetRef;
  pipeline: { knot: string; rkey: string };
  workflow: WorkflowSpec;
  /** spec.secretRef.name; required when the workflow has secretKeys. */
  secretName: string | undefined;
  /** The chosen profile and the node selector it implies (see selectProfile). */
  profile: { profile: ResourceProfile; nodeSelector: Record<string, string> };
  config: ControllerConfig;
  /**
   * The RunnerSpec JSON, to carry in the pod template's annotation (runner-spec.ts); absent:
   * the pod mounts the spec ConfigMap named after the Job.
   */
  inlineSpec?: string;
}

export function buildJob(input: JobInput): V1Job {
  const { owner, workflow, config } = input;
  const name = jobName(owner.name, workflow.name);
  const labels = workflowLabels(owner.name, workflow.wid);
  const annotations = workflowAnnotations(input.pipeline, workflow);
  const resources = profileResources(input.profile.profile);
  // engine: microvm — the image name mapped, /nix made the user's, upstream's user and folder.
  const microvm = workflow.microvm !== undefined;
  const image = microvm ? microvmPodImage(workflow, config) : workflow.image;
  const buildah = !microvm && buildahAllowed(config, workflow.image);
  const user = microvm ? MICROVM_USER : "runner";

  const initContainers: V1Container[] = [
    {
      name: CONTAINERS.setupUser,
      image: config.images.setup,
      imagePullPolicy: config.images.pullPolicy,
      command: ["sh", "-c", microvm ? setupScript(undefined, user) : setupScript()],
      volumeMounts: [mount(VOLUMES.tangled, POD_PATHS.tangled), mount(VOLUMES.setup, POD_PATHS.setup)],
      ...containerDefaults(resources),
    },
  ];
  if (!workflow.clone.skip) initContainers.push(cloneContainer(workflow, config, resources));
  initContainers.push({
    name: CONTAINERS.installRunner,
    image: runnerImage(config.images, workflow.architecture),
    imagePullPolicy: config.images.pullPolicy,
    command: installRunnerCommand(config.images.runnerBundlePath, workflow.architecture, POD_PATHS.runner),
    volumeMounts: [mount(VOLUMES.runner, POD_PATHS.runner)],
    ...containerDefaults(resources),
  });
  const passwdMounts = (files: string[]): V1VolumeMount[] =>
    files.map((file) => ({ name: VOLUMES.setup, mountPath: `/etc/${file}`, subPath: file, readOnly: true }));
  // microvm: nix-store, then the services as native sidecars (run for the whole pod; the runner
  // starts once their startup probes pass).
  const parts: MicrovmPodParts | undefined = microvm
    ? microvmPodParts(workflow, config, image, {
        init: containerDefaults(resources),
        sidecar: containerDefaults(undefined),
        pullPolicy: config.images.pullPolicy,
        passwdMounts: passwdMounts(["passwd", "group"]),
      })
    : undefined;
  if (parts !== undefined) initContainers.push(...parts.initContainers);

  const runner: V1Container = {
    name: CONTAINERS.runner,
    image,
    command: [POD_PATHS.runnerBinary, POD_PATHS.specFile],
    workingDir: microvm ? MICROVM_PATHS.workspace : POD_PATHS.workspace,
    env: [
      { name: "HOME", value: POD_PATHS.home },
      { name: "USER", value: user },
      ...secretEnv(workflow, input.secretName),
      ...(parts?.runnerEnv ?? []),
    ],
    volumeMounts: [
      mount(VOLUMES.tangled, POD_PATHS.tangled),
      mount(VOLUMES.tmp, POD_PATHS.tmp),
      mount(VOLUMES.runner, POD_PATHS.runner, true),
      mount(VOLUMES.spec, POD_PATHS.spec, true),
      mount(VOLUMES.setup, POD_PATHS.setup, true),
      ...passwdMounts(["passwd", "group", ...(buildah ? ["subuid", "subgid"] : [])]),
      ...(parts?.runnerMounts ?? []),
    ],
    ...containerDefaults(resources),
    ...(buildah && {
      securityContext: {
        allowPrivilegeEscalation: true,
        capabilities: { drop: ["ALL"], add: ["SETUID", "SETGID"] },
      },
    }),
  };

  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name,
      namespace: owner.namespace,
      labels,
      annotations,
      ownerReferences: [ownerReference(owner)],
    },
    spec: {
      // A workflow runs once: a retry would repeat side effects (deploys, pushes) unasked.
      backoffLimit: 0,
      activeDeadlineSeconds: effectiveTimeoutSeconds(workflow, config) + config.timeouts.setupGraceSeconds,
      ttlSecondsAfterFinished: config.ttl.jobSecondsAfterFinished,
      template: {
        metadata: {
          labels,
          annotations:
            input.inlineSpec === undefined
              ? annotations
              : { ...annotations, [ANNOTATIONS.runnerSpec]: input.inlineSpec },
        },
        spec: {
          restartPolicy: "Never",
          ...(microvm &&
            config.microvm.runtimeClassName !== undefined && {
              runtimeClassName: config.microvm.runtimeClassName,
            }),
          serviceAccountName: config.serviceAccountName,
          automountServiceAccountToken: false,
          // Service env vars of the namespace would leak into every step's environment.
          enableServiceLinks: false,
          terminationGracePeriodSeconds: config.timeouts.terminationGraceSeconds,
          ...(config.imagePullSecrets.length > 0 && {
            imagePullSecrets: config.imagePullSecrets.map((secret) => ({ name: secret })),
          }),
          securityContext: {
            runAsNonRoot: true,
            runAsUser: RUNNER_UID,
            runAsGroup: RUNNER_UID,
            fsGroup: RUNNER_UID,
            seccompProfile: {
              type: buildah && config.buildah.seccompUnconfined ? "Unconfined" : "RuntimeDefault",
            },
          },
          nodeSelector: { ...input.profile.nodeSelector },
          ...tolerations(input.profile.profile, config),
          initContainers,
          containers: [runner],
          volumes: [
            { name: VOLUMES.tangled, emptyDir: {} },
            { name: VOLUMES.tmp, emptyDir: {} },
            { name: VOLUMES.runner, emptyDir: {} },
            { name: VOLUMES.setup, emptyDir: {} },
            ...(parts?.volumes ?? []),
            specVolume(name, input.inlineSpec !== undefined),
          ],
        },
      },
    },
  };
}

/** The runner's spec file: from the pod's own annotation, or from the spec ConfigMap. */
function specVolume(job: string, inline: boolean): V1Volume {
  if (inline) {
    return {
      name: VOLUMES.spec,
      downwardAPI: {
        items: [
          {
            path: SPEC_KEY,
            fieldRef: { apiVersion: "v1", fieldPath: `metadata.annotations['${ANNOTATIONS.runnerSpec}']` },
          },
        ],
        defaultMode: 0o444,
      },
    };
  }
  return {
    name: VOLUMES.spec,
    configMap: {
      name: runnerSpecConfigMapName(job),
      items: [{ key: SPEC_KEY, path: SPEC_KEY }],
      defaultMode: 0o444,
    },
  };
}

function cloneContainer(
  workflow: WorkflowSpec,
  config: ControllerConfig,
  resources: V1ResourceRequirements | undefined,
): V1Container {
  const { clone } = workflow;
  if (!clone.url) throw new BuildError("InvalidSpec", `workflow ${workflow.name}: clone.url is required`);
  const env: V1EnvVar[] = [
    { name: "LOOM_CLONE_URL", value: clone.url },
    ...(clone.sha ? [{ name: "LOOM_CLONE_SHA", value: clone.sha }] : []),
    { name: "LOOM_CLONE_DEPTH", value: String(clone.depth) },
    { name: "LOOM_CLONE_SUBMODULES", value: String(clone.submodules) },
    // No credential prompts: a repository that needs them fails fast with CloneFailed.
    { name: "GIT_TERMINAL_PROMPT", value: "0" },
    { name: "HOME", value: POD_PATHS.tmp },
  ];
  return {
    name: CONTAINERS.cloneRepo,
    image: config.images.git,
    imagePullPolicy: config.images.pullPolicy,
    command: ["sh", "-c", cloneScript()],
    env,
    volumeMounts: [mount(VOLUMES.tangled, POD_PATHS.tangled), mount(VOLUMES.setup, POD_PATHS.setup)],
    ...containerDefaults(resources),
  };
}

/** One secretKeyRef per key, required: a missing key keeps the pod from starting (SecretMissing). */
function secretEnv(workflow: WorkflowSpec, secretName: string | undefined): V1EnvVar[] {
  const keys = [...new Set(workflow.secretKeys)].sort();
  if (keys.length === 0) return [];
  if (!secretName)
    throw new BuildError("InvalidSpec", `workflow ${workflow.name} has secretKeys but no secretRef`);
  return keys.map((key) => ({
    name: secretEnvName(key),
    valueFrom: { secretKeyRef: { name: secretName, key, optional: false } },
  }));
}

/**
 * Settings every container shares. Init containers get the profile's resources too: a pod's
 * effective request is the larger of its biggest init container and its main containers, so
 * this costs nothing in scheduling and satisfies quotas that demand limits on every container.
 * Every container drops every capability; only a buildah workflow's main container adds two.
 */
function containerDefaults(resources: V1ResourceRequirements | undefined): Partial<V1Container> {
  return {
    ...(resources && { resources }),
    // On failure the tail of the log becomes the termination message: the controller reads
    // why a clone failed from the pod status, with no pods/log call.
    terminationMessagePolicy: "FallbackToLogsOnError",
    securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
  };
}

function profileResources(profile: ResourceProfile): V1ResourceRequirements | undefined {
  const { requests, limits } = profile.resources;
  const out: V1ResourceRequirements = {};
  if (Object.keys(requests).length > 0) out.requests = { ...requests };
  if (Object.keys(limits).length > 0) out.limits = { ...limits };
  return out.requests || out.limits ? out : undefined;
}

function tolerations(profile: ResourceProfile, config: ControllerConfig) {
  const all = [...profile.tolerations, ...config.template.tolerations].map((t) => ({ ...t }));
  return all.length > 0 ? { tolerations: all } : {};
}

function mount(name: string, mountPath: string, readOnly = false): V1VolumeMount {
  return readOnly ? { name, mountPath, readOnly } : { name, mountPath };
}
