/**
 * The microvm pod's services, Docker daemon and Nix store cache, as whole Jobs: each expected Job
 * is the plain microvm Job (written out in full in job.test.ts) plus exactly the containers,
 * mounts, environment and volumes written out here, so nothing else may change.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Container, V1Job } from "@kubernetes/client-node";
import type { MicrovmSpec } from "../../api/v1alpha1/spindleset.ts";
import * as workflowMicrovm from "../../workflow/microvm.ts";
import { buildJob, type JobInput } from "./job.ts";
import { NIX_CACHE_DIR, NIX_CACHE_KEY_DIR, nixStoreScript } from "./microvm-pod.ts";
import { mysqlScript, mysqlSql } from "./mysql.ts";
import { selectProfile } from "./profile.ts";
import { redisScript } from "./redis.ts";
import { config, OWNER, spec } from "./testdata/fixtures.ts";

type Microvm = Partial<MicrovmSpec> & { image: string };

function job(microvm: Microvm, cfg = config()): V1Job {
  const s = spec((x) => {
    const wf = x.workflows[0]!;
    wf.image = microvm.image;
    wf.microvm = { services: [], virtualisation: [], ...microvm };
  });
  const choice = selectProfile(cfg.template.resourceProfiles, "amd64", undefined);
  assert.ok(choice.ok);
  const input: JobInput = {
    owner: OWNER,
    pipeline: s.pipeline,
    workflow: s.workflows[0]!,
    secretName: s.secretRef?.name,
    profile: choice,
    config: cfg,
  };
  return buildJob(input);
}

const PLAIN = () => job({ image: "nixos" });
const pod = (j: V1Job) => j.spec!.template.spec!;
const PASSWD = [
  { name: "setup", mountPath: "/etc/passwd", subPath: "passwd", readOnly: true },
  { name: "setup", mountPath: "/etc/group", subPath: "group", readOnly: true },
];
const RESTRICTED = {
  terminationMessagePolicy: "FallbackToLogsOnError",
  securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
};

describe("microvm pod: services as native sidecars", () => {
  it("services.redis: a sidecar with its socket in /run/redis shared with the runner, port from the options", () => {
    const got = job({ image: "nixos", services: ["redis"], redis: { port: 6380 } });
    const expected = PLAIN();
    const p = pod(expected);
    const sidecar: V1Container = {
      name: "service-redis",
      image: "docker.io/library/redis:7.4.5",
      imagePullPolicy: "IfNotPresent",
      restartPolicy: "Always",
      command: ["sh", "-c", redisScript()],
      env: [{ name: "LOOM_REDIS_PORT", value: "6380" }],
      startupProbe: {
        exec: { command: ["test", "-f", "/run/redis/.loom-ready"] },
        periodSeconds: 1,
        failureThreshold: 600,
      },
      volumeMounts: [
        { name: "redis-run", mountPath: "/run/redis" },
        { name: "redis-state", mountPath: "/var/lib/loom-redis" },
        ...PASSWD,
      ],
      ...RESTRICTED,
    };
    p.initContainers!.push(sidecar);
    p.containers[0]!.volumeMounts!.push({ name: "redis-run", mountPath: "/run/redis" });
    p.volumes!.splice(5, 0, { name: "redis-run", emptyDir: {} }, { name: "redis-state", emptyDir: {} });
    assert.deepEqual(got, expected);
    assert.match(redisScript(), /--unixsocket '\/run\/redis\/redis\.sock'/);
  });

  for (const service of ["mysql", "mariadb"] as const) {
    it(`services.${service}: one MariaDB sidecar, /run/mysqld shared, the SQL of ensureDatabases/ensureUsers`, () => {
      const mysql = {
        ensureDatabases: ["app"],
        ensureUsers: [
          { name: "spindle-workflow", ensurePermissions: [{ on: "app.*", privileges: "ALL PRIVILEGES" }] },
        ],
      };
      const got = job({ image: "nixos", services: [service], mysql });
      const expected = PLAIN();
      const p = pod(expected);
      p.initContainers!.push({
        name: `service-${service}`,
        image: "docker.io/library/mariadb:11.8.2",
        imagePullPolicy: "IfNotPresent",
        restartPolicy: "Always",
        command: ["sh", "-c", mysqlScript()],
        env: [
          { name: "LOOM_DB_USER", value: "spindle-workflow" },
          { name: "LOOM_MYSQL_SQL", value: mysqlSql(mysql) },
        ],
        startupProbe: {
          exec: { command: ["test", "-f", "/run/mysqld/.loom-ready"] },
          periodSeconds: 1,
          failureThreshold: 600,
        },
        volumeMounts: [
          { name: "mysql-run", mountPath: "/run/mysqld" },
          { name: "mysql-state", mountPath: "/var/lib/loom-mysql" },
          ...PASSWD,
        ],
        ...RESTRICTED,
      });
      p.containers[0]!.volumeMounts!.push({ name: "mysql-run", mountPath: "/run/mysqld" });
      p.volumes!.splice(5, 0, { name: "mysql-run", emptyDir: {} }, { name: "mysql-state", emptyDir: {} });
      assert.deepEqual(got, expected);
      assert.equal(
        mysqlSql(mysql),
        [
          "CREATE DATABASE IF NOT EXISTS `app`;",
          "CREATE USER IF NOT EXISTS 'spindle-workflow'@'localhost' IDENTIFIED WITH unix_socket;",
          "GRANT ALL PRIVILEGES ON `app`.* TO 'spindle-workflow'@'localhost';",
        ].join("\n"),
      );
    });
  }

  it("every service at once: sidecars in file order of kind (postgresql, redis, mariadb), all restricted", () => {
    const got = job({
      image: "nixos",
      services: ["mariadb", "redis", "postgresql"],
      postgresql: { ensureDatabases: [], ensureUsers: [] },
      redis: { port: 6379 },
      mysql: { ensureDatabases: [], ensureUsers: [] },
    });
    const p = pod(got);
    assert.deepEqual(
      p.initContainers!.map((c) => [c.name, c.restartPolicy ?? "-"]),
      [
        ["setup-user", "-"],
        ["clone-repo", "-"],
        ["install-runner", "-"],
        ["nix-store", "-"],
        ["service-postgresql", "Always"],
        ["service-redis", "Always"],
        ["service-mariadb", "Always"],
      ],
    );
    for (const c of [...p.initContainers!, ...p.containers])
      assert.deepEqual(c.securityContext, RESTRICTED.securityContext);
    assert.deepEqual(
      p.containers[0]!.volumeMounts!.map((m) => m.mountPath).filter((m) => m.startsWith("/run/")),
      ["/run/postgresql", "/run/redis", "/run/mysqld"],
    );
    assert.equal(new Set(p.volumes!.map((v) => v.name)).size, p.volumes!.length);
  });
});

describe("microvm pod: virtualisation.docker", () => {
  it("with microvm.docker.enabled: a privileged rootless dind sidecar, DOCKER_HOST on its socket in a shared emptyDir", () => {
    const cfg = config({ microvm: { docker: { enabled: true } } });
    const got = job({ image: "nixos", virtualisation: ["docker"] }, cfg);
    const expected = job({ image: "nixos" }, cfg);
    const p = pod(expected);
    p.initContainers!.push({
      name: "virtualisation-docker",
      image: "docker.io/library/docker:28.3.3-dind-rootless",
      imagePullPolicy: "IfNotPresent",
      restartPolicy: "Always",
      args: ["dockerd", "--host=unix:///run/user/1000/docker.sock"],
      env: [
        { name: "DOCKER_TLS_CERTDIR", value: "" },
        { name: "XDG_RUNTIME_DIR", value: "/run/user/1000" },
      ],
      startupProbe: {
        exec: { command: ["docker", "--host=unix:///run/user/1000/docker.sock", "version"] },
        periodSeconds: 1,
        failureThreshold: 600,
      },
      volumeMounts: [
        { name: "docker-run", mountPath: "/run/user/1000" },
        { name: "docker-data", mountPath: "/home/rootless/.local/share/docker" },
      ],
      terminationMessagePolicy: "FallbackToLogsOnError",
      securityContext: { privileged: true, allowPrivilegeEscalation: true },
    });
    const runner = p.containers[0]!;
    runner.env!.push({ name: "DOCKER_HOST", value: "unix:///run/user/1000/docker.sock" });
    runner.volumeMounts!.push({ name: "docker-run", mountPath: "/run/user/1000" });
    p.volumes!.splice(5, 0, { name: "docker-run", emptyDir: {} }, { name: "docker-data", emptyDir: {} });
    assert.deepEqual(got, expected);
  });
});

describe("microvm pod: Nix store cache", () => {
  it("off by default: the nix-store container only copies /nix", () => {
    assert.equal(nixStoreScript({}), "cp -a /nix/. /loom/nix/");
    assert.deepEqual(pod(PLAIN()).initContainers![3]!.command, ["sh", "-c", "cp -a /nix/. /loom/nix/"]);
  });

  it("microvm.cache.url: the nix-store container writes the substituter and key; every step reads it", () => {
    const cache = { url: "https://cache.example.org", publicKey: "cache.example.org-1:AAAA+/bbbb=" };
    const cfg = config({ microvm: { cache } });
    const got = job({ image: "nixos" }, cfg);
    const expected = job({ image: "nixos" });
    const p = pod(expected);
    p.initContainers![3]!.command = [
      "sh",
      "-c",
      [
        "set -eu",
        "cp -a /nix/. /loom/nix/",
        "mkdir -p '/loom/nix/loom'",
        "printf '%s\\n' 'extra-substituters = https://cache.example.org' 'extra-trusted-public-keys = cache.example.org-1:AAAA+/bbbb=' > '/loom/nix/loom/nix.conf'",
      ].join("\n"),
    ];
    p.containers[0]!.env!.push({ name: "NIX_USER_CONF_FILES", value: "/nix/loom/nix.conf" });
    assert.deepEqual(got, expected);
  });

  it("microvm.cache.volumeClaimName: the claim mounted as a file:// cache, a signing key made once, the runner pushes", () => {
    const cfg = config({ microvm: { cache: { volumeClaimName: "loom-nix-cache" } } });
    const got = job({ image: "nixos" }, cfg);
    const expected = job({ image: "nixos" });
    const p = pod(expected);
    const nixStore = p.initContainers![3]!;
    nixStore.command = ["sh", "-c", nixStoreScript({ volumeClaimName: "loom-nix-cache" })];
    nixStore.env = [{ name: "HOME", value: "/tmp" }];
    nixStore.volumeMounts!.push({ name: "nix-cache", mountPath: "/loom/nix-cache" });
    const runner = p.containers[0]!;
    runner.env!.push({ name: "NIX_USER_CONF_FILES", value: "/nix/loom/nix.conf" });
    runner.volumeMounts!.push({ name: "nix-cache", mountPath: "/loom/nix-cache" });
    p.volumes!.splice(5, 0, { name: "nix-cache", persistentVolumeClaim: { claimName: "loom-nix-cache" } });
    assert.deepEqual(got, expected);
    const script = nixStoreScript({ volumeClaimName: "loom-nix-cache" });
    assert.match(script, /key generate-secret --key-name loom-nix-cache-1/);
    assert.match(script, /mv -T "\$tmp" '\/loom\/nix-cache\/\.loom\/key'/);
    assert.match(
      script,
      /'extra-substituters = file:\/\/\/loom\/nix-cache\?priority=10' "extra-trusted-public-keys = \$\(cat '\/loom\/nix-cache\/\.loom\/key\/public'\)"/,
    );
  });

  it("the controller's cache paths are the dev-shell step's (the layers may not share a module)", () => {
    assert.equal(NIX_CACHE_DIR, workflowMicrovm.NIX_CACHE_DIR);
    assert.equal(NIX_CACHE_KEY_DIR, workflowMicrovm.NIX_CACHE_KEY_DIR);
  });
});
