import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Container, V1Job } from "@kubernetes/client-node";
import { BuildError, cloneScript, setupScript, shortHash } from "../../api/contract/index.ts";
import { buildJob, type JobInput } from "./job.ts";
import { postgresScript, postgresSql } from "./postgres.ts";
import { selectProfile } from "./profile.ts";
import { installRunnerCommand } from "./runner-image.ts";
import { config, OWNER, spec } from "./testdata/fixtures.ts";

function input(overrides: Partial<JobInput> = {}, cfg = config()): JobInput {
  const s = spec();
  const choice = selectProfile(cfg.template.resourceProfiles, "amd64", undefined);
  assert.ok(choice.ok);
  return {
    owner: OWNER,
    pipeline: s.pipeline,
    workflow: s.workflows[0]!,
    secretName: s.secretRef?.name,
    profile: choice,
    config: cfg,
    ...overrides,
  };
}

const JOB_NAME = `knot-example-com-3lq2abcxyz22k-build-${shortHash([OWNER.name, "build.yml"], 10)}`;
const LABELS = {
  "app.kubernetes.io/managed-by": "loom",
  "app.kubernetes.io/name": "loom",
  "loom.tangled.sh/spindleset": OWNER.name,
  "app.kubernetes.io/component": "workflow",
  "loom.tangled.sh/workflow": shortHash("knot.example.com-3lq2abcxyz22k-build.yml"),
};
const ANNOTATIONS = {
  "loom.tangled.sh/knot": "knot.example.com",
  "loom.tangled.sh/rkey": "3lq2abcxyz22k",
  "loom.tangled.sh/wid": "knot.example.com-3lq2abcxyz22k-build.yml",
  "loom.tangled.sh/workflow-name": "build.yml",
};
const RESOURCES = { requests: { cpu: "500m", memory: "1Gi" }, limits: { memory: "2Gi" } };
const INIT_DEFAULTS = {
  resources: RESOURCES,
  terminationMessagePolicy: "FallbackToLogsOnError",
  securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
};

function container(job: V1Job, name: string): V1Container {
  const spec = job.spec!.template.spec!;
  const found = [...(spec.initContainers ?? []), ...spec.containers].find((c) => c.name === name);
  assert.ok(found, `no container ${name}`);
  return found;
}

/** The whole Job for the base input: amd64, buildah off, two secrets, clone at a sha. */
function expectedJob(): V1Job {
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: JOB_NAME,
      namespace: "loom",
      labels: LABELS,
      annotations: ANNOTATIONS,
      ownerReferences: [
        {
          apiVersion: "loom.tangled.sh/v1alpha1",
          kind: "SpindleSet",
          name: OWNER.name,
          uid: OWNER.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: 300 + 600,
      ttlSecondsAfterFinished: 900,
      template: {
        metadata: { labels: LABELS, annotations: ANNOTATIONS },
        spec: {
          restartPolicy: "Never",
          serviceAccountName: "loom-job-runner",
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 30,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 1000,
            runAsGroup: 1000,
            fsGroup: 1000,
            seccompProfile: { type: "RuntimeDefault" },
          },
          nodeSelector: { "kubernetes.io/arch": "amd64" },
          tolerations: [{ key: "ci", operator: "Exists", effect: "NoSchedule" }],
          initContainers: [
            {
              name: "setup-user",
              image: "docker.io/library/busybox:1.37",
              imagePullPolicy: "IfNotPresent",
              command: ["sh", "-c", setupScript()],
              volumeMounts: [
                { name: "tangled", mountPath: "/tangled" },
                { name: "setup", mountPath: "/loom/setup" },
              ],
              ...INIT_DEFAULTS,
            },
            {
              name: "clone-repo",
              image: "docker.io/alpine/git:v2.45.1",
              imagePullPolicy: "IfNotPresent",
              command: ["sh", "-c", cloneScript()],
              env: [
                { name: "LOOM_CLONE_URL", value: "https://knot.example.com/did:plc:abc/hello" },
                { name: "LOOM_CLONE_SHA", value: "9f2c3a1e0b7d4c6a8e5f1d2b3c4a5e6f7a8b9c0d" },
                { name: "LOOM_CLONE_DEPTH", value: "1" },
                { name: "LOOM_CLONE_SUBMODULES", value: "false" },
                { name: "GIT_TERMINAL_PROMPT", value: "0" },
                { name: "HOME", value: "/tmp" },
              ],
              volumeMounts: [
                { name: "tangled", mountPath: "/tangled" },
                { name: "setup", mountPath: "/loom/setup" },
              ],
              ...INIT_DEFAULTS,
            },
            {
              name: "install-runner",
              image: "ghcr.io/example/loom-runner:0.1.0",
              imagePullPolicy: "IfNotPresent",
              command: installRunnerCommand("/loom-runner", "amd64", "/loom/runner"),
              volumeMounts: [{ name: "runner", mountPath: "/loom/runner" }],
              ...INIT_DEFAULTS,
            },
          ],
          containers: [
            {
              name: "runner",
              image: "docker.io/library/node:24",
              command: ["/loom/runner/loom-runner", "/loom/spec/spec.json"],
              workingDir: "/tangled/workspace",
              env: [
                { name: "HOME", value: "/tangled/home" },
                { name: "USER", value: "runner" },
                {
                  name: "LOOM_SECRET_APP_PASSWORD",
                  valueFrom: {
                    secretKeyRef: { name: `${OWNER.name}-secrets`, key: "APP_PASSWORD", optional: false },
                  },
                },
                {
                  name: "LOOM_SECRET_NPM_TOKEN",
                  valueFrom: {
                    secretKeyRef: { name: `${OWNER.name}-secrets`, key: "NPM_TOKEN", optional: false },
                  },
                },
              ],
              volumeMounts: [
                { name: "tangled", mountPath: "/tangled" },
                { name: "tmp", mountPath: "/tmp" },
                { name: "runner", mountPath: "/loom/runner", readOnly: true },
                { name: "spec", mountPath: "/loom/spec", readOnly: true },
                { name: "setup", mountPath: "/loom/setup", readOnly: true },
                { name: "setup", mountPath: "/etc/passwd", subPath: "passwd", readOnly: true },
                { name: "setup", mountPath: "/etc/group", subPath: "group", readOnly: true },
              ],
              resources: RESOURCES,
              terminationMessagePolicy: "FallbackToLogsOnError",
              securityContext: {
                allowPrivilegeEscalation: false,
                capabilities: { drop: ["ALL"] },
              },
            },
          ],
          volumes: [
            { name: "tangled", emptyDir: {} },
            { name: "tmp", emptyDir: {} },
            { name: "runner", emptyDir: {} },
            { name: "setup", emptyDir: {} },
            {
              name: "spec",
              configMap: {
                name: `${JOB_NAME}-spec`,
                items: [{ key: "spec.json", path: "spec.json" }],
                defaultMode: 0o444,
              },
            },
          ],
        },
      },
    },
  };
}

describe("buildJob", () => {
  it("builds the whole Job for an amd64 workflow with secrets", () => {
    assert.deepEqual(buildJob(input()), expectedJob());
  });

  it("is deterministic", () => {
    assert.deepEqual(buildJob(input()), buildJob(input()));
  });

  it("runs the setup and clone scripts (tested on their own in scripts.test.ts) at the pod's paths", () => {
    const job = buildJob(input());
    assert.deepEqual(container(job, "setup-user").command, ["sh", "-c", setupScript()]);
    assert.deepEqual(container(job, "clone-repo").command, ["sh", "-c", cloneScript()]);
    assert.match(setupScript(), /^mkdir -p \/tangled\/home \/tangled\/workspace$/m);
  });

  it("clones from the environment, never splicing the URL into the script", () => {
    const script = container(buildJob(input()), "clone-repo").command![2]!;
    assert.ok(!script.includes("knot.example.com") && !script.includes("9f2c3a1e"));
    assert.match(
      script,
      /git fetch --no-tags --depth="\$LOOM_CLONE_DEPTH" origin \$\{LOOM_CLONE_SHA:\+"\$LOOM_CLONE_SHA"\}/,
    );
    assert.match(script, /> \/loom\/setup\/clone.log 2>&1/);
  });

  it("builds an arm64 buildah Job for an allowed image: SETUID/SETGID, escalation, subuid/subgid, seccomp per config", () => {
    const cfg = config({ buildah: { images: ["quay.io/buildah/stable"], seccompUnconfined: true } });
    const s = spec((x) => {
      x.workflows[0]!.architecture = "arm64";
      x.workflows[0]!.image = "quay.io/buildah/stable:latest";
    });
    const choice = selectProfile(cfg.template.resourceProfiles, "arm64", undefined);
    assert.ok(choice.ok);
    const job = buildJob(input({ workflow: s.workflows[0]!, profile: choice }, cfg));

    const expected = expectedJob();
    const pod = expected.spec!.template.spec!;
    pod.securityContext!.seccompProfile = { type: "Unconfined" };
    pod.nodeSelector = { "kubernetes.io/arch": "arm64" };
    // The arm64 bundle: install-runner checks the image's bundle is arm64 before copying it.
    pod.initContainers!.find((c) => c.name === "install-runner")!.command = installRunnerCommand(
      "/loom-runner",
      "arm64",
      "/loom/runner",
    );
    const runner = pod.containers[0]!;
    runner.image = "quay.io/buildah/stable:latest";
    runner.securityContext = {
      allowPrivilegeEscalation: true,
      capabilities: { drop: ["ALL"], add: ["SETUID", "SETGID"] },
    };
    runner.volumeMounts!.push(
      { name: "setup", mountPath: "/etc/subuid", subPath: "subuid", readOnly: true },
      { name: "setup", mountPath: "/etc/subgid", subPath: "subgid", readOnly: true },
    );
    assert.deepEqual(job, expected);
  });

  it("takes the runner image per architecture: runnerByArchitecture, else the multi-arch tag", () => {
    const cfg = config({
      images: {
        runner: "ghcr.io/example/loom-runner:0.1.0",
        runnerByArchitecture: { arm64: "r.test/runner:arm64" },
      },
    });
    const arm = spec((x) => {
      x.workflows[0]!.architecture = "arm64";
    }).workflows[0]!;
    const choice = selectProfile(cfg.template.resourceProfiles, "arm64", undefined);
    assert.ok(choice.ok);
    const armJob = buildJob(input({ workflow: arm, profile: choice }, cfg));
    assert.equal(container(armJob, "install-runner").image, "r.test/runner:arm64");
    assert.deepEqual(container(armJob, "install-runner").command!.slice(3), [
      "install-runner",
      "/loom-runner",
      "arm64",
      "/loom/runner",
    ]);
    const amdJob = buildJob(input({}, cfg));
    assert.equal(container(amdJob, "install-runner").image, "ghcr.io/example/loom-runner:0.1.0");
    assert.equal(container(amdJob, "install-runner").command![5], "amd64");
  });

  it("buildah is per workflow: an image the operator did not list gets the restricted pod", () => {
    const cfg = config({ buildah: { images: ["quay.io/buildah/stable", "ghcr.io/example/builders/*"] } });
    for (const image of [
      "docker.io/library/node:24",
      "quay.io/buildah/stable-fork:1",
      "ghcr.io/example/other:1",
    ]) {
      const s = spec((x) => {
        x.workflows[0]!.image = image;
      });
      const job = buildJob(input({ workflow: s.workflows[0]! }, cfg));
      const expected = expectedJob();
      expected.spec!.template.spec!.containers[0]!.image = image;
      assert.deepEqual(job, expected, image);
    }
  });

  it("keeps seccomp RuntimeDefault in buildah mode unless asked", () => {
    const s = spec((x) => {
      x.workflows[0]!.image = "ghcr.io/example/builders/buildah@sha256:0123";
    });
    const cfg = config({ buildah: { images: ["ghcr.io/example/builders/*"] } });
    const job = buildJob(input({ workflow: s.workflows[0]! }, cfg));
    assert.deepEqual(job.spec!.template.spec!.securityContext!.seccompProfile, { type: "RuntimeDefault" });
    assert.equal(container(job, "runner").securityContext!.allowPrivilegeEscalation, true);
    for (const name of ["setup-user", "clone-repo", "install-runner"]) {
      assert.equal(container(job, name).securityContext!.allowPrivilegeEscalation, false, name);
    }
  });

  it("without secrets: no secret env, and no secretRef needed", () => {
    const s = spec((x) => {
      delete x.secretRef;
      x.workflows[0]!.secretKeys = [];
      x.workflows[0]!.steps[1]!.env = [];
    });
    const job = buildJob(input({ workflow: s.workflows[0]!, secretName: undefined }));
    const expected = expectedJob();
    expected.spec!.template.spec!.containers[0]!.env = [
      { name: "HOME", value: "/tangled/home" },
      { name: "USER", value: "runner" },
    ];
    assert.deepEqual(job, expected);
  });

  it("with many secrets: one required secretKeyRef each, sorted, deduplicated, only in the runner", () => {
    const keys = Array.from({ length: 40 }, (_, i) => `KEY_${String(i).padStart(2, "0")}`);
    const s = spec((x) => {
      x.workflows[0]!.secretKeys = [...keys].reverse().concat(keys[0]!);
      x.workflows[0]!.steps[1]!.env = keys.map((key) => ({ name: key, secret: key }));
    });
    const job = buildJob(input({ workflow: s.workflows[0]! }));
    const env = container(job, "runner").env!.slice(2);
    assert.deepEqual(
      env,
      keys.map((key) => ({
        name: `LOOM_SECRET_${key}`,
        valueFrom: { secretKeyRef: { name: `${OWNER.name}-secrets`, key, optional: false } },
      })),
    );
    for (const name of ["setup-user", "clone-repo", "install-runner"]) {
      const c = container(job, name);
      assert.ok(!JSON.stringify(c).includes("secretKeyRef") && !c.envFrom, `${name} must not see secrets`);
    }
  });

  it("without a clone: no clone-repo container", () => {
    const s = spec((x) => {
      x.workflows[0]!.clone = { skip: true };
    });
    const job = buildJob(input({ workflow: s.workflows[0]! }));
    assert.deepEqual(
      job.spec!.template.spec!.initContainers!.map((c) => c.name),
      ["setup-user", "install-runner"],
    );
  });

  it("passes a manual run's missing sha, depth and submodules to the clone", () => {
    const s = spec((x) => {
      x.workflows[0]!.clone = { url: "https://k/d/r", depth: 50, submodules: true };
    });
    assert.deepEqual(container(buildJob(input({ workflow: s.workflows[0]! })), "clone-repo").env, [
      { name: "LOOM_CLONE_URL", value: "https://k/d/r" },
      { name: "LOOM_CLONE_DEPTH", value: "50" },
      { name: "LOOM_CLONE_SUBMODULES", value: "true" },
      { name: "GIT_TERMINAL_PROMPT", value: "0" },
      { name: "HOME", value: "/tmp" },
    ]);
  });

  it("keeps a long name within 63 characters", () => {
    const owner = { ...OWNER, name: `${"a".repeat(52)}-0123456789` };
    const s = spec((x) => {
      x.workflows[0]!.name = "an-exceedingly-long-workflow-file-name.yaml";
    });
    const job = buildJob(input({ owner, workflow: s.workflows[0]! }));
    assert.ok(job.metadata!.name!.length <= 63);
    assert.equal(job.spec!.template.spec!.volumes![4]!.configMap!.name, `${job.metadata!.name}-spec`);
  });

  it("omits resources, tolerations and pull secrets when the config has none, and adds pull secrets when it does", () => {
    const cfg = config({ template: { resourceProfiles: [] }, imagePullSecrets: ["regcred"] });
    const choice = selectProfile(cfg.template.resourceProfiles, "amd64", undefined);
    assert.ok(choice.ok);
    const pod = buildJob(input({ profile: choice }, cfg)).spec!.template.spec!;
    assert.equal(pod.tolerations, undefined);
    assert.deepEqual(pod.imagePullSecrets, [{ name: "regcred" }]);
    for (const c of [...pod.initContainers!, ...pod.containers]) assert.equal(c.resources, undefined, c.name);
  });

  it("refuses secret keys without a Secret to read them from", () => {
    assert.throws(
      () => buildJob(input({ secretName: undefined })),
      (err: unknown) => err instanceof BuildError && err.reason === "InvalidSpec",
    );
  });
});

describe("buildJob deadline", () => {
  it("is the capped workflow timeout plus the setup grace", () => {
    const cfg = config({ timeouts: { maxWorkflowSeconds: 1000, setupGraceSeconds: 60 } });
    const s = spec((x) => {
      x.workflows[0]!.timeoutSeconds = 0;
    });
    assert.equal(buildJob(input({ workflow: s.workflows[0]! }, cfg)).spec!.activeDeadlineSeconds, 1060);
  });
});

describe("buildJob: engine microvm", () => {
  const DEV_SHELL = {
    id: 1,
    name: "Set up dev shell",
    kind: "system" as const,
    command: "nix print-dev-env --impure -L --expr '...' > /tangled/home/.cache/loom/devshell.sh",
    env: [{ name: "NIX_CONFIG", value: "experimental-features = nix-command flakes" }],
  };
  /** The base workflow as the engine writes a microvm one: the image is a name, mapped here. */
  const microvmSpec = (microvm: {
    image: string;
    services?: string[];
    virtualisation?: string[];
    postgresql?: { ensureDatabases: string[]; ensureUsers: { name: string; ensureDBOwnership: boolean }[] };
    mysql?: { ensureDatabases: string[]; ensureUsers: [] };
  }) =>
    spec((x) => {
      const wf = x.workflows[0]!;
      wf.image = microvm.image;
      wf.microvm = microvm;
      const [clone, test] = wf.steps;
      wf.steps = [clone!, DEV_SHELL, { ...test!, id: 2 }];
    });
  const microvmJob = (cfg = config(), s = microvmSpec({ image: "nixos" })) =>
    buildJob(input({ workflow: s.workflows[0]! }, cfg));

  /** The base Job with what microvm changes, written out. */
  function expectedMicrovmJob(image: string): V1Job {
    const expected = expectedJob();
    const pod = expected.spec!.template.spec!;
    pod.initContainers![0]!.command = ["sh", "-c", setupScript(undefined, "spindle-workflow")];
    pod.initContainers!.push({
      name: "nix-store",
      image,
      imagePullPolicy: "IfNotPresent",
      command: ["sh", "-c", "cp -a /nix/. /loom/nix/"],
      volumeMounts: [{ name: "nix", mountPath: "/loom/nix" }],
      ...INIT_DEFAULTS,
    });
    const runner = pod.containers[0]!;
    runner.image = image;
    runner.workingDir = "/workspace/repo";
    runner.env![1] = { name: "USER", value: "spindle-workflow" };
    runner.volumeMounts!.push(
      { name: "tangled", mountPath: "/workspace/repo", subPath: "workspace" },
      { name: "nix", mountPath: "/nix" },
    );
    pod.volumes!.splice(4, 0, { name: "nix", emptyDir: {} });
    return expected;
  }

  it("builds the whole Job: mapped image, nix-store copy, spindle-workflow in /workspace/repo, restricted security", () => {
    const job = microvmJob();
    assert.deepEqual(job, expectedMicrovmJob("docker.io/nixos/nix:2.28.3"));
    // Pod Security restricted, as every workflow pod: nothing microvm adds escalates.
    const pod = job.spec!.template.spec!;
    assert.equal(pod.securityContext!.runAsNonRoot, true);
    for (const c of [...pod.initContainers!, ...pod.containers]) {
      assert.deepEqual(c.securityContext, {
        allowPrivilegeEscalation: false,
        capabilities: { drop: ["ALL"] },
      });
    }
    assert.equal("runtimeClassName" in pod, false);
  });

  it("services.postgresql: a native sidecar before the steps, its socket shared with the runner", () => {
    const postgresql = {
      ensureDatabases: ["spindle-workflow"],
      ensureUsers: [{ name: "spindle-workflow", ensureDBOwnership: true }],
    };
    const job = microvmJob(config(), microvmSpec({ image: "nixos", services: ["postgresql"], postgresql }));
    const expected = expectedMicrovmJob("docker.io/nixos/nix:2.28.3");
    const pod = expected.spec!.template.spec!;
    pod.initContainers!.push({
      name: "service-postgresql",
      image: "docker.io/library/postgres:17.6",
      imagePullPolicy: "IfNotPresent",
      restartPolicy: "Always",
      command: ["sh", "-c", postgresScript()],
      env: [
        { name: "LOOM_PG_USER", value: "spindle-workflow" },
        { name: "LOOM_PG_SQL", value: postgresSql(postgresql) },
      ],
      startupProbe: {
        exec: { command: ["test", "-f", "/run/postgresql/.loom-ready"] },
        periodSeconds: 1,
        failureThreshold: 600,
      },
      volumeMounts: [
        { name: "postgresql-run", mountPath: "/run/postgresql" },
        { name: "postgresql-state", mountPath: "/var/lib/loom-postgresql" },
        { name: "setup", mountPath: "/etc/passwd", subPath: "passwd", readOnly: true },
        { name: "setup", mountPath: "/etc/group", subPath: "group", readOnly: true },
      ],
      terminationMessagePolicy: "FallbackToLogsOnError",
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
    });
    pod.containers[0]!.volumeMounts!.push({ name: "postgresql-run", mountPath: "/run/postgresql" });
    pod.volumes!.splice(
      5,
      0,
      { name: "postgresql-run", emptyDir: {} },
      { name: "postgresql-state", emptyDir: {} },
    );
    assert.deepEqual(job, expected);
    assert.equal(
      postgresSql(postgresql),
      [
        `SELECT 'CREATE DATABASE "spindle-workflow"' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'spindle-workflow')\\gexec`,
        `SELECT 'CREATE ROLE "spindle-workflow" LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'spindle-workflow')\\gexec`,
        `ALTER DATABASE "spindle-workflow" OWNER TO "spindle-workflow";`,
      ].join("\n"),
    );
  });

  it("the setup script names UID 1000 spindle-workflow", () => {
    const script = setupScript(undefined, "spindle-workflow");
    assert.match(script, /'spindle-workflow:x:1000:1000:Loom runner:\/tangled\/home:\/bin\/sh'/);
    assert.match(script, /'spindle-workflow:x:1000:'/);
    assert.doesNotMatch(script, /runner:x/);
  });

  it("puts the pod under microvm.runtimeClassName when configured, and only microvm pods", () => {
    const cfg = config({ microvm: { runtimeClassName: "kata-qemu" } });
    const expected = expectedMicrovmJob("docker.io/nixos/nix:2.28.3");
    expected.spec!.template.spec!.runtimeClassName = "kata-qemu";
    assert.deepEqual(microvmJob(cfg), expected);
    assert.equal("runtimeClassName" in buildJob(input({}, cfg)).spec!.template.spec!, false);
  });

  it("maps image names through microvm.images, per architecture", () => {
    const cfg = config({
      microvm: { images: { alpine: { amd64: "r.test/alpine-nix:amd64" }, nixos: "r.test/nix:1" } },
    });
    assert.deepEqual(microvmJob(cfg), expectedMicrovmJob("r.test/nix:1"));
    assert.deepEqual(
      microvmJob(cfg, microvmSpec({ image: "alpine" })),
      expectedMicrovmJob("r.test/alpine-nix:amd64"),
    );
    const arm = microvmSpec({ image: "alpine" });
    arm.workflows[0]!.architecture = "arm64";
    assert.throws(
      () => buildJob(input({ workflow: arm.workflows[0]! }, cfg)),
      (err: unknown) =>
        err instanceof BuildError &&
        err.reason === "Unsupported" &&
        err.message === 'microvm image "alpine" has no image for arm64 in microvm.images',
    );
  });

  it("fails at once with Unsupported naming an unknown image, a service or virtualisation", () => {
    const cases: [Parameters<typeof microvmSpec>[0], string][] = [
      [{ image: "ubuntu" }, 'microvm image "ubuntu" is not in microvm.images (configured: nixos)'],
      [
        { image: "nixos", services: ["mysql", "mariadb"], mysql: { ensureDatabases: [], ensureUsers: [] } },
        "services.mariadb: Loom runs one MariaDB server for mysql and mariadb; the workflow was not started",
      ],
      [
        { image: "nixos", services: ["redis"] },
        "services.redis: the SpindleSet carries no redis options for it; the workflow was not started",
      ],
      [
        { image: "nixos", services: ["nginx"] },
        "services.nginx: Loom runs only postgresql, redis, mysql, mariadb; the workflow was not started",
      ],
      [
        { image: "nixos", virtualisation: ["docker"] },
        "virtualisation.docker: this Loom runs no Docker daemon for microvm workflows (microvm.docker.enabled is false); the workflow was not started",
      ],
    ];
    for (const [microvm, message] of cases) {
      assert.throws(
        () => microvmJob(config(), microvmSpec(microvm)),
        (err: unknown) =>
          err instanceof BuildError && err.reason === "Unsupported" && err.message === message,
        message,
      );
    }
  });
});
