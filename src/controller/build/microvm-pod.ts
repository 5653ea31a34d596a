/**
 * What an `engine: microvm` workflow adds to its pod (job.ts puts it in): the `nix-store` init
 * container, the services as Kubernetes native sidecars (init containers with restartPolicy
 * Always whose startup probe holds the steps back until the service is ready), the rootless
 * Docker daemon for `virtualisation.docker`, the Nix store cache, and what the runner container
 * mounts and gets in its environment for them. Pure: config and workflow in, objects out.
 *
 *   init  nix-store              (workflow image)  /nix → the nix volume; with a cache, its nix.conf
 *   init  service-postgresql     (postgresqlImage) /run/postgresql        (postgres.ts)
 *   init  service-redis          (redisImage)      /run/redis/redis.sock  (redis.ts)
 *   init  service-mysql|mariadb  (mariadbImage)    /run/mysqld/mysqld.sock (mysql.ts)
 *   init  virtualisation-docker  (docker.image)    /run/user/1000/docker.sock, DOCKER_HOST
 *
 * Every sidecar but Docker's runs as the pod's UID 1000 with every capability dropped (Pod
 * Security `restricted`); the Docker daemon is privileged (rootlesskit needs user namespaces and
 * mounts), allowed only with microvm.docker.enabled, and needs a `privileged` namespace.
 */
import type { V1Container, V1EnvVar, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import { RUNNER_UID } from "../../api/contract/index.ts";
import type { WorkflowSpec } from "../../api/v1alpha1/spindleset.ts";
import type { ControllerConfig } from "../config.ts";
import { MICROVM_PATHS, MICROVM_USER, NIX_STORE_CONTAINER } from "./microvm.ts";
import { MYSQL_PATHS, MYSQL_READY_FILE, mysqlScript, mysqlSql } from "./mysql.ts";
import { POSTGRES_PATHS, POSTGRES_READY_FILE, postgresScript, postgresSql } from "./postgres.ts";
import { REDIS_PATHS, REDIS_READY_FILE, redisScript } from "./redis.ts";

export const POSTGRES_CONTAINER = "service-postgresql";
export const REDIS_CONTAINER = "service-redis";
export const DOCKER_CONTAINER = "virtualisation-docker";

/** The rootless daemon's runtime folder (the dind-rootless image's user is UID 1000 too). */
export const DOCKER_RUNTIME_DIR = `/run/user/${RUNNER_UID}`;
export const DOCKER_HOST = `unix://${DOCKER_RUNTIME_DIR}/docker.sock`;
/** The rootless daemon's data root in the dind-rootless image (an emptyDir here). */
const DOCKER_DATA_DIR = "/home/rootless/.local/share/docker";

/**
 * The cache volume's mount point and its signing key's folder: the paths the dev-shell step
 * (src/workflow/microvm.ts NIX_CACHE_DIR, NIX_CACHE_KEY_DIR) pushes to; a test keeps them equal.
 */
export const NIX_CACHE_DIR = "/loom/nix-cache";
export const NIX_CACHE_KEY_DIR = `${NIX_CACHE_DIR}/.loom/key`;

/** Where the nix-store script reads and writes (parameters only so a test can run it for real). */
export interface NixStorePaths {
  /** The image's Nix folder. */
  nix: string;
  /** The volume the runner mounts at /nix. */
  nixCopy: string;
  /** The cache volume's mount point. */
  cache: string;
}

export const NIX_STORE_PATHS: NixStorePaths = {
  nix: MICROVM_PATHS.nix,
  nixCopy: MICROVM_PATHS.nixCopy,
  cache: NIX_CACHE_DIR,
};

/** The Nix configuration the nix-store container writes when a cache is configured. */
export const NIX_CACHE_CONF = `${MICROVM_PATHS.nix}/loom/nix.conf`;

const VOLUMES = {
  nix: "nix",
  nixCache: "nix-cache",
  pgRun: "postgresql-run",
  pgState: "postgresql-state",
  redisRun: "redis-run",
  redisState: "redis-state",
  mysqlRun: "mysql-run",
  mysqlState: "mysql-state",
  dockerRun: "docker-run",
  dockerData: "docker-data",
} as const;

export interface MicrovmPodParts {
  /** After install-runner, in this order. */
  initContainers: V1Container[];
  /** Appended to the runner container's mounts. */
  runnerMounts: V1VolumeMount[];
  /** Appended to the runner container's environment (steps inherit it). */
  runnerEnv: V1EnvVar[];
  /** Added after the pod's own emptyDirs. */
  volumes: V1Volume[];
}

/** Settings job.ts gives every container: for init containers (profile resources) and sidecars. */
export interface ContainerBases {
  init: Partial<V1Container>;
  sidecar: Partial<V1Container>;
  pullPolicy: string;
  /** The pod's passwd and group (names UID 1000 spindle-workflow), mounted read-only. */
  passwdMounts: V1VolumeMount[];
}

/**
 * The nix-store container's script: copy the image's /nix into the volume the user owns (`cp -a`
 * as UID 1000: the copies are the user's, modes and links kept). With a cache configured, also
 * the Nix configuration every step reads (NIX_USER_CONF_FILES): the binary cache URL and key, or
 * the cache volume as a file:// substituter signed by a key made once in the volume (an atomic
 * rename, so runs starting at once agree on one key).
 */
export function nixStoreScript(
  cache: ControllerConfig["microvm"]["cache"],
  paths: NixStorePaths = NIX_STORE_PATHS,
): string {
  const copy = `cp -a ${paths.nix}/. ${paths.nixCopy}/`;
  const conf = `${paths.nixCopy}/loom/nix.conf`;
  if (cache.url !== undefined) {
    return [
      "set -eu",
      copy,
      `mkdir -p '${paths.nixCopy}/loom'`,
      `printf '%s\\n' 'extra-substituters = ${cache.url}'${cache.publicKey !== undefined ? ` 'extra-trusted-public-keys = ${cache.publicKey}'` : ""} > '${conf}'`,
    ].join("\n");
  }
  if (cache.volumeClaimName !== undefined) {
    const keys = `${paths.cache}/.loom/key`;
    return [
      "set -eu",
      copy,
      `mkdir -p '${paths.nixCopy}/loom'`,
      `if [ ! -s '${keys}/public' ]; then`,
      `  tmp='${paths.cache}/.loom/key.'$$`,
      `  mkdir -p "$tmp"`,
      `  nix --extra-experimental-features nix-command key generate-secret --key-name loom-nix-cache-1 > "$tmp/secret"`,
      `  nix --extra-experimental-features nix-command key convert-secret-to-public < "$tmp/secret" > "$tmp/public"`,
      // A rename onto an existing non-empty folder fails: the first run's key stays.
      `  mv -T "$tmp" '${keys}' 2>/dev/null || rm -rf "$tmp"`,
      "fi",
      `printf '%s\\n' 'extra-substituters = file://${paths.cache}?priority=10' "extra-trusted-public-keys = $(cat '${keys}/public')" > '${conf}'`,
    ].join("\n");
  }
  return copy;
}

/** A native sidecar: restartPolicy Always, ready once `readyFile` exists. */
function serviceSidecar(
  bases: ContainerBases,
  name: string,
  image: string,
  script: string,
  env: V1EnvVar[],
  readyFile: string,
  mounts: V1VolumeMount[],
): V1Container {
  return {
    name,
    image,
    imagePullPolicy: bases.pullPolicy,
    restartPolicy: "Always",
    command: ["sh", "-c", script],
    env,
    startupProbe: { exec: { command: ["test", "-f", readyFile] }, periodSeconds: 1, failureThreshold: 600 },
    volumeMounts: [...mounts, ...bases.passwdMounts],
    ...bases.sidecar,
  };
}

/**
 * The pod parts of a microvm workflow whose image (`image`) microvmPodImage has already mapped
 * and whose services and virtualisation it has already accepted.
 */
export function microvmPodParts(
  workflow: WorkflowSpec,
  config: ControllerConfig,
  image: string,
  bases: ContainerBases,
): MicrovmPodParts {
  const microvm = workflow.microvm!;
  const { cache } = config.microvm;
  const cacheVolume = cache.volumeClaimName;
  const parts: MicrovmPodParts = {
    initContainers: [
      {
        name: NIX_STORE_CONTAINER,
        image,
        imagePullPolicy: bases.pullPolicy,
        command: ["sh", "-c", nixStoreScript(cache)],
        // The key is made by `nix key`, which wants a HOME of its own (the pod names none here).
        ...(cacheVolume !== undefined && { env: [{ name: "HOME", value: "/tmp" }] }),
        volumeMounts: [
          { name: VOLUMES.nix, mountPath: MICROVM_PATHS.nixCopy },
          ...(cacheVolume !== undefined ? [{ name: VOLUMES.nixCache, mountPath: NIX_CACHE_DIR }] : []),
        ],
        ...bases.init,
      },
    ],
    runnerMounts: [
      { name: "tangled", mountPath: MICROVM_PATHS.workspace, subPath: "workspace" },
      { name: VOLUMES.nix, mountPath: MICROVM_PATHS.nix },
    ],
    runnerEnv: [],
    volumes: [{ name: VOLUMES.nix, emptyDir: {} }],
  };
  const emptyDirs = (...names: string[]) => {
    for (const name of names) parts.volumes.push({ name, emptyDir: {} });
  };

  if (microvm.postgresql !== undefined) {
    parts.initContainers.push(
      serviceSidecar(
        bases,
        POSTGRES_CONTAINER,
        config.microvm.postgresqlImage,
        postgresScript(),
        [
          { name: "LOOM_PG_USER", value: MICROVM_USER },
          { name: "LOOM_PG_SQL", value: postgresSql(microvm.postgresql) },
        ],
        `${POSTGRES_PATHS.socket}/${POSTGRES_READY_FILE}`,
        [
          { name: VOLUMES.pgRun, mountPath: POSTGRES_PATHS.socket },
          { name: VOLUMES.pgState, mountPath: POSTGRES_PATHS.state },
        ],
      ),
    );
    parts.runnerMounts.push({ name: VOLUMES.pgRun, mountPath: POSTGRES_PATHS.socket });
    emptyDirs(VOLUMES.pgRun, VOLUMES.pgState);
  }
  if (microvm.redis !== undefined) {
    parts.initContainers.push(
      serviceSidecar(
        bases,
        REDIS_CONTAINER,
        config.microvm.redisImage,
        redisScript(),
        [{ name: "LOOM_REDIS_PORT", value: String(microvm.redis.port) }],
        `${REDIS_PATHS.socket}/${REDIS_READY_FILE}`,
        [
          { name: VOLUMES.redisRun, mountPath: REDIS_PATHS.socket },
          { name: VOLUMES.redisState, mountPath: REDIS_PATHS.state },
        ],
      ),
    );
    parts.runnerMounts.push({ name: VOLUMES.redisRun, mountPath: REDIS_PATHS.socket });
    emptyDirs(VOLUMES.redisRun, VOLUMES.redisState);
  }
  if (microvm.mysql !== undefined) {
    const service = microvm.services.includes("mariadb") ? "mariadb" : "mysql";
    parts.initContainers.push(
      serviceSidecar(
        bases,
        `service-${service}`,
        config.microvm.mariadbImage,
        mysqlScript(),
        [
          { name: "LOOM_DB_USER", value: MICROVM_USER },
          { name: "LOOM_MYSQL_SQL", value: mysqlSql(microvm.mysql) },
        ],
        `${MYSQL_PATHS.socket}/${MYSQL_READY_FILE}`,
        [
          { name: VOLUMES.mysqlRun, mountPath: MYSQL_PATHS.socket },
          { name: VOLUMES.mysqlState, mountPath: MYSQL_PATHS.state },
        ],
      ),
    );
    parts.runnerMounts.push({ name: VOLUMES.mysqlRun, mountPath: MYSQL_PATHS.socket });
    emptyDirs(VOLUMES.mysqlRun, VOLUMES.mysqlState);
  }
  if (microvm.virtualisation.includes("docker")) {
    parts.initContainers.push({
      name: DOCKER_CONTAINER,
      image: config.microvm.docker.image,
      imagePullPolicy: bases.pullPolicy,
      restartPolicy: "Always",
      // The image's entrypoint (dockerd-entrypoint.sh) runs dockerd through rootlesskit for a
      // non-root user; TLS off: the socket is the only way in, shared with the runner alone.
      args: ["dockerd", `--host=${DOCKER_HOST}`],
      env: [
        { name: "DOCKER_TLS_CERTDIR", value: "" },
        { name: "XDG_RUNTIME_DIR", value: DOCKER_RUNTIME_DIR },
      ],
      startupProbe: {
        exec: { command: ["docker", `--host=${DOCKER_HOST}`, "version"] },
        periodSeconds: 1,
        failureThreshold: 600,
      },
      volumeMounts: [
        { name: VOLUMES.dockerRun, mountPath: DOCKER_RUNTIME_DIR },
        { name: VOLUMES.dockerData, mountPath: DOCKER_DATA_DIR },
      ],
      terminationMessagePolicy: "FallbackToLogsOnError",
      securityContext: { privileged: true, allowPrivilegeEscalation: true },
    });
    parts.runnerMounts.push({ name: VOLUMES.dockerRun, mountPath: DOCKER_RUNTIME_DIR });
    parts.runnerEnv.push({ name: "DOCKER_HOST", value: DOCKER_HOST });
    emptyDirs(VOLUMES.dockerRun, VOLUMES.dockerData);
  }
  if (cache.url !== undefined || cacheVolume !== undefined) {
    parts.runnerEnv.push({ name: "NIX_USER_CONF_FILES", value: NIX_CACHE_CONF });
  }
  if (cacheVolume !== undefined) {
    parts.runnerMounts.push({ name: VOLUMES.nixCache, mountPath: NIX_CACHE_DIR });
    parts.volumes.push({ name: VOLUMES.nixCache, persistentVolumeClaim: { claimName: cacheVolume } });
  }
  return parts;
}
