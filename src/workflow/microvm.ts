/**
 * What `engine: microvm` means in Loom (shared/spec/microvm-workflows.md). Upstream boots a NixOS
 * (or Nix-carrying) VM per workflow; Loom runs the steps in a container of the image the operator
 * maps the `image` name to. What maps how:
 *
 * - `dependencies` (a flat list: bare nixpkgs names and `flakeref#attr`) become one `mkShellNoCC`
 *   dev shell, realised by a system step before the first user step with `nix print-dev-env`
 *   (its build log is that step's log). The script it prints is kept in the home folder and
 *   sourced by every later step through `BASH_ENV` (bash reads it before a `-c` command), so
 *   setup hooks apply as upstream promises (`pkg-config` sets `PKG_CONFIG_PATH`). The image's
 *   PATH stays after the dev shell's.
 * - `registry` rewrites the flake references the dependencies use (`nixpkgs` pins bare names);
 *   `caches` become extra substituters with their trusted keys. Both, and flakes, are set for
 *   every step through `NIX_CONFIG` (Nix runs single-user in the pod: no daemon, no sandbox).
 * - `$shell -lc <command>` → the runner's `bash -c` (the first bash on PATH) with `BASH_ENV`: the
 *   dev shell takes the place of the login profile.
 * - `/workspace/repo`, user `spindle-workflow`: the Kubernetes Job mounts the workspace there too
 *   and names UID 1000 so (src/controller/build/job.ts).
 * - `services`, `virtualisation`: carried to the engine as data, with the options Loom honours
 *   (microvmServiceOptions); the Kubernetes mapping runs the services in MICROVM_SERVICES as
 *   sidecars and `virtualisation.docker` where the operator allows it. Any other option fails.
 *
 * Every dependency, registry entry and cache is checked against a strict character set here,
 * because they are written into a Nix expression and a Nix configuration.
 */
import type { EnvVar, MicrovmKeys, MicrovmService, YamlValue } from "./types.ts";

/** The image name when the workflow gives none (upstream's default). */
export const DEFAULT_MICROVM_IMAGE = "nixos";

/** NixOS services Loom's Kubernetes mapping can run beside the steps. */
export const MICROVM_SERVICES: readonly string[] = ["postgresql", "redis", "mysql", "mariadb"];

/** `virtualisation` keys Loom's Kubernetes mapping can honour. */
export const MICROVM_VIRTUALISATION: readonly string[] = ["docker"];

export const DEVSHELL_STEP_NAME = "Set up dev shell";

/**
 * Where the Kubernetes engine mounts the operator's Nix store cache volume (microvm.cache),
 * a file:// binary cache; `.loom/key` in it holds the key its paths are signed with. The dev-shell
 * step pushes what it realised there when the folder exists (src/controller/build/microvm-pod.ts
 * has the same paths: the controller may not import this layer).
 */
export const NIX_CACHE_DIR = "/loom/nix-cache";
export const NIX_CACHE_KEY_DIR = `${NIX_CACHE_DIR}/.loom/key`;

const ATTR = /^[A-Za-z_][A-Za-z0-9_+-]*(\.[A-Za-z_][A-Za-z0-9_+-]*)*$/;
/** Flake references: URL-ish text without quotes, spaces, `$`, `\` or `#`. */
const FLAKEREF = /^[A-Za-z0-9][A-Za-z0-9_.:/?=&%~+@,-]*$/;
const REGISTRY_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;
const CACHE_URL = /^https?:\/\/[A-Za-z0-9_.:/?=&%~+@,-]+$/;
const PUBLIC_KEY = /^[A-Za-z0-9_.-]+:[A-Za-z0-9+/]+={0,2}$/;

/** What Loom honours of `services.postgresql` (NixOS options of the same names). */
export interface PostgresqlOptions {
  ensureDatabases: string[];
  ensureUsers: { name: string; ensureDBOwnership: boolean }[];
}

/**
 * A service's `ensureDatabases` (PostgreSQL's and MySQL's read alike): each name checked by
 * `badName` and pushed to `into`; the first problem, or undefined.
 */
function databaseNames(
  at: string,
  value: YamlValue,
  badName: (where: string, v: YamlValue) => string | undefined,
  into: string[],
): string | undefined {
  if (!Array.isArray(value)) return `${at}: expected a list of names`;
  for (const [i, db] of value.entries()) {
    const problem = badName(`${at}[${i}]`, db);
    if (problem !== undefined) return problem;
    into.push(db as string);
  }
  return undefined;
}

/** Database and role names Loom writes into SQL and shell: letters, digits, `_`, `-`. */
const PG_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/;

/**
 * `services.postgresql`'s options, or the first one Loom cannot honour (as `services.postgresql.…:
 * reason`). NixOS requires a database of the user's name for `ensureDBOwnership`; so does Loom.
 */
export function postgresqlOptions(
  service: MicrovmService,
): { ok: true; options: PostgresqlOptions } | { ok: false; error: string } {
  const at = "services.postgresql";
  const out: PostgresqlOptions = { ensureDatabases: [], ensureUsers: [] };
  const badName = (where: string, v: YamlValue) =>
    typeof v !== "string" || !PG_NAME.test(v)
      ? `${where}: ${JSON.stringify(v)} is not a name Loom accepts (letters, digits, _ and -, at most 63)`
      : undefined;
  for (const [key, value] of Object.entries(service.options)) {
    if (key === "ensureDatabases") {
      const problem = databaseNames(`${at}.ensureDatabases`, value, badName, out.ensureDatabases);
      if (problem !== undefined) return { ok: false, error: problem };
    } else if (key === "ensureUsers") {
      if (!Array.isArray(value)) return { ok: false, error: `${at}.ensureUsers: expected a list of users` };
      for (const [i, user] of value.entries()) {
        const where = `${at}.ensureUsers[${i}]`;
        if (user === null || typeof user !== "object" || Array.isArray(user)) {
          return { ok: false, error: `${where}: expected a mapping with name` };
        }
        const other = Object.keys(user).find((k) => k !== "name" && k !== "ensureDBOwnership");
        if (other !== undefined)
          return { ok: false, error: `${where}.${other}: Loom cannot honour this option` };
        const problem = badName(`${where}.name`, user.name ?? null);
        if (problem !== undefined) return { ok: false, error: problem };
        const owner = user.ensureDBOwnership ?? false;
        if (typeof owner !== "boolean")
          return { ok: false, error: `${where}.ensureDBOwnership: expected true or false` };
        const name = user.name as string;
        out.ensureUsers.push({ name, ensureDBOwnership: owner });
      }
    } else {
      return {
        ok: false,
        error: `${at}.${key}: Loom cannot honour this option (it honours ensureDatabases, ensureUsers)`,
      };
    }
  }
  for (const [i, user] of out.ensureUsers.entries()) {
    if (user.ensureDBOwnership && !out.ensureDatabases.includes(user.name)) {
      return {
        ok: false,
        error: `${at}.ensureUsers[${i}].ensureDBOwnership: needs a database named ${user.name} in ensureDatabases`,
      };
    }
  }
  return { ok: true, options: out };
}

/** What Loom honours of `services.redis` (NixOS's default server: `/run/redis/redis.sock`). */
export interface RedisOptions {
  /** TCP port on 127.0.0.1; 0 = socket only (as NixOS). */
  port: number;
}

/**
 * What Loom honours of `services.mysql` (and `services.mariadb`, Loom's name for the same
 * MariaDB server): NixOS's `ensureDatabases`, and `ensureUsers` identified by the Unix socket with
 * `ensurePermissions` (`"db.*": "ALL PRIVILEGES"`, a list here: `on`, `privileges`).
 */
export interface MysqlOptions {
  ensureDatabases: string[];
  ensureUsers: { name: string; ensurePermissions: { on: string; privileges: string }[] }[];
}

/** The options of every enabled service, by the engine's field name. */
export interface MicrovmServiceOptions {
  postgresql?: PostgresqlOptions;
  redis?: RedisOptions;
  mysql?: MysqlOptions;
}

type Checked<T> = { ok: true; options: T } | { ok: false; error: string };

/** A MariaDB database or user name: letters, digits, `_`, `-` (quoted in the SQL). */
const MYSQL_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
/** A GRANT target as NixOS's ensurePermissions keys: `db.*`, `*.*`, `db.table`, names backquoted or not. */
const MYSQL_ON =
  /^(\*|[A-Za-z0-9_-]{1,64}|`[A-Za-z0-9_-]{1,64}`)\.(\*|[A-Za-z0-9_-]{1,64}|`[A-Za-z0-9_-]{1,64}`)$/;
/** Privileges as GRANT takes them: words and commas only (`ALL PRIVILEGES`, `SELECT, INSERT`). */
const MYSQL_PRIVILEGES = /^[A-Za-z][A-Za-z ]*(, *[A-Za-z][A-Za-z ]*)*$/;

function mapping(value: YamlValue | undefined): Record<string, YamlValue> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? value : undefined;
}

/**
 * NixOS's current form `services.redis.servers."".{enable, port, …}` (the default server, whose
 * socket is /run/redis/redis.sock) read as `services.redis.{enable, port, …}`, the older form
 * NixOS renames to it. Other server names are left for redisOptions to refuse.
 */
export function liftDefaultRedisServer(service: MicrovmService): MicrovmService {
  const servers = mapping(service.options.servers);
  const server =
    servers !== undefined && Object.keys(servers).length === 1 ? mapping(servers[""]) : undefined;
  if (server === undefined) return service;
  const { servers: _, ...rest } = service.options;
  const { enable, ...options } = server;
  if (Object.keys(options).some((k) => k in rest) || (enable !== undefined && typeof enable !== "boolean"))
    return service;
  return { ...service, enable: service.enable || enable === true, options: { ...rest, ...options } };
}

/** `services.redis`'s options, or the first one Loom cannot honour. */
export function redisOptions(service: MicrovmService): Checked<RedisOptions> {
  const at = `services.${service.name}`;
  const out: RedisOptions = { port: 6379 };
  for (const [key, value] of Object.entries(service.options)) {
    if (key === "port") {
      if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 65535)
        return { ok: false, error: `${at}.port: expected a port number (0 for the socket only)` };
      out.port = value;
    } else if (key === "servers") {
      return { ok: false, error: `${at}.servers: Loom runs only the default server (servers."")` };
    } else {
      return { ok: false, error: `${at}.${key}: Loom cannot honour this option (it honours port)` };
    }
  }
  return { ok: true, options: out };
}

/** `services.mysql`'s (or `services.mariadb`'s) options, or the first one Loom cannot honour. */
export function mysqlOptions(service: MicrovmService): Checked<MysqlOptions> {
  const at = `services.${service.name}`;
  const out: MysqlOptions = { ensureDatabases: [], ensureUsers: [] };
  const badName = (where: string, v: YamlValue | undefined) =>
    typeof v !== "string" || !MYSQL_NAME.test(v)
      ? `${where}: ${JSON.stringify(v ?? null)} is not a name Loom accepts (letters, digits, _ and -, at most 64)`
      : undefined;
  for (const [key, value] of Object.entries(service.options)) {
    if (key === "ensureDatabases") {
      const problem = databaseNames(`${at}.ensureDatabases`, value, badName, out.ensureDatabases);
      if (problem !== undefined) return { ok: false, error: problem };
    } else if (key === "ensureUsers") {
      if (!Array.isArray(value)) return { ok: false, error: `${at}.ensureUsers: expected a list of users` };
      for (const [i, entry] of value.entries()) {
        const where = `${at}.ensureUsers[${i}]`;
        const user = mapping(entry);
        if (user === undefined) return { ok: false, error: `${where}: expected a mapping with name` };
        const other = Object.keys(user).find((k) => k !== "name" && k !== "ensurePermissions");
        if (other !== undefined)
          return { ok: false, error: `${where}.${other}: Loom cannot honour this option` };
        const problem = badName(`${where}.name`, user.name);
        if (problem !== undefined) return { ok: false, error: problem };
        const grants = user.ensurePermissions ?? {};
        const perms = mapping(grants);
        if (perms === undefined)
          return {
            ok: false,
            error: `${where}.ensurePermissions: expected a mapping of "db.*" to privileges`,
          };
        const ensurePermissions: MysqlOptions["ensureUsers"][number]["ensurePermissions"] = [];
        for (const [on, privileges] of Object.entries(perms)) {
          if (!MYSQL_ON.test(on))
            return {
              ok: false,
              error: `${where}.ensurePermissions: ${JSON.stringify(on)} is not db.* or db.table`,
            };
          if (typeof privileges !== "string" || !MYSQL_PRIVILEGES.test(privileges))
            return {
              ok: false,
              error: `${where}.ensurePermissions.${on}: ${JSON.stringify(privileges)} is not a list of privileges`,
            };
          ensurePermissions.push({ on, privileges });
        }
        out.ensureUsers.push({ name: user.name as string, ensurePermissions });
      }
    } else {
      return {
        ok: false,
        error: `${at}.${key}: Loom cannot honour this option (it honours ensureDatabases, ensureUsers)`,
      };
    }
  }
  return { ok: true, options: out };
}

/**
 * The options of the enabled services, or the first thing Loom cannot honour with the service's
 * position: a service outside MICROVM_SERVICES, an option, or both mysql and mariadb (one server).
 */
export function microvmServiceOptions(
  services: readonly MicrovmService[],
): { ok: true; options: MicrovmServiceOptions } | { ok: false; error: string; pos: MicrovmService["pos"] } {
  const options: MicrovmServiceOptions = {};
  let mysqlName: string | undefined;
  for (const service of services) {
    if (!service.enable) continue;
    let checked: Checked<unknown>;
    if (service.name === "postgresql") {
      const pg = postgresqlOptions(service);
      if (pg.ok) options.postgresql = pg.options;
      checked = pg;
    } else if (service.name === "redis") {
      const redis = redisOptions(service);
      if (redis.ok) options.redis = redis.options;
      checked = redis;
    } else if (service.name === "mysql" || service.name === "mariadb") {
      if (mysqlName !== undefined) {
        const error = `services.${service.name}: Loom runs one MariaDB server for mysql and mariadb; services.${mysqlName} is already enabled`;
        return { ok: false, error, pos: service.pos };
      }
      mysqlName = service.name;
      const mysql = mysqlOptions(service);
      if (mysql.ok) options.mysql = mysql.options;
      checked = mysql;
    } else {
      continue; // not one Loom runs: the engine refuses it by name (lint says so too)
    }
    if (!checked.ok) return { ok: false, error: checked.error, pos: service.pos };
  }
  return { ok: true, options };
}

/** `docker: true` or `docker: {enable: true, …}` asks for it; `false` or `enable: false` does not. */
export function virtualisationEnabled(value: YamlValue): boolean {
  if (typeof value === "boolean") return value;
  if (value !== null && typeof value === "object" && !Array.isArray(value)) return value.enable !== false;
  return false;
}

/** The nixpkgs package NixOS's `virtualisation.docker` puts on PATH (the daemon is the engine's). */
export const DOCKER_CLI_PACKAGE = "docker-client";

/**
 * The dev shell's packages: the dependencies, plus the docker CLI when `virtualisation.docker` is
 * enabled (NixOS adds docker to the system packages; the workflow need not list it) unless a
 * dependency named docker or docker-client is there already.
 */
export function devShellPackages(
  packages: readonly string[],
  virtualisation: readonly { name: string; value: YamlValue }[],
): string[] {
  const docker = virtualisation.some((v) => v.name === "docker" && virtualisationEnabled(v.value));
  const listed = packages.some((p) => /^(docker|docker-client)$/.test(p.slice(p.indexOf("#") + 1)));
  return docker && !listed ? [...packages, DOCKER_CLI_PACKAGE] : [...packages];
}

/** Why a dependency cannot be used, or undefined. */
export function checkDependency(dep: string): string | undefined {
  const hash = dep.indexOf("#");
  if (hash < 0) {
    return ATTR.test(dep) ? undefined : `"${dep}" is not a nixpkgs attribute name (or flakeref#attr)`;
  }
  const ref = dep.slice(0, hash);
  const attr = dep.slice(hash + 1);
  if (!FLAKEREF.test(ref)) return `"${ref}" is not a flake reference`;
  if (!ATTR.test(attr)) return `"${attr}" is not an attribute name`;
  return undefined;
}

export function checkRegistry(name: string, flakeref: string): string | undefined {
  if (!REGISTRY_NAME.test(name)) return `"${name}" is not a flake registry name`;
  if (!FLAKEREF.test(flakeref) || flakeref.includes("#")) return `"${flakeref}" is not a flake reference`;
  return undefined;
}

export function checkCache(url: string, publicKey: string): string | undefined {
  if (!CACHE_URL.test(url)) return `"${url}" is not an http(s) binary cache URL`;
  if (!PUBLIC_KEY.test(publicKey)) return `"${publicKey}" is not a Nix public key (name:base64)`;
  return undefined;
}

/** Flake ref + attribute path of one dependency, with `registry` applied. */
export function dependencyTarget(
  dep: string,
  registry: MicrovmKeys["registry"],
): { flake: string; attr: string } {
  const hash = dep.indexOf("#");
  const ref = hash < 0 ? "nixpkgs" : dep.slice(0, hash);
  const attr = hash < 0 ? dep : dep.slice(hash + 1);
  const pinned = registry.find((r) => r.name === ref);
  return { flake: pinned?.flakeref ?? ref, attr };
}

/**
 * The Nix expression of the dev shell: `mkShellNoCC` from the nixpkgs bare names come from,
 * with each dependency looked up as the flake CLI does (`packages.<system>`, then
 * `legacyPackages.<system>`, then the flake's own attributes).
 */
export function devShellExpression(packages: readonly string[], registry: MicrovmKeys["registry"]): string {
  const targets = packages.map((p) => dependencyTarget(p, registry));
  const flakes = [...new Set([dependencyTarget("stdenv", registry).flake, ...targets.map((t) => t.flake)])];
  const lines = [
    "let",
    "  system = builtins.currentSystem;",
    ...flakes.map((f, i) => `  f${i} = builtins.getFlake "${f}";`),
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Nix interpolation, not a JS template
    "  pkgs = f0.legacyPackages.${system};",
    '  pick = flake: attr: let path = pkgs.lib.splitString "." attr; in',
    "    pkgs.lib.attrByPath path (pkgs.lib.attrByPath path (pkgs.lib.getAttrFromPath path flake)",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Nix interpolation, not a JS template
    "      (flake.legacyPackages.${system} or { })) (flake.packages.${system} or { });",
    "in",
    "pkgs.mkShellNoCC {",
    "  packages = [",
    ...targets.map((t) => `    (pick f${flakes.indexOf(t.flake)} "${t.attr}")`),
    "  ];",
    "}",
  ];
  return lines.join("\n");
}

/**
 * `NIX_CONFIG` for every step: flakes on, single-user Nix without build users or sandbox (the pod
 * is unprivileged), and the workflow's caches as extra substituters.
 */
export function nixConfig(caches: MicrovmKeys["caches"]): string {
  const lines = ["experimental-features = nix-command flakes", "build-users-group =", "sandbox = false"];
  if (caches.length > 0) {
    lines.push(`extra-substituters = ${caches.map((c) => c.url).join(" ")}`);
    lines.push(`extra-trusted-public-keys = ${caches.map((c) => c.publicKey).join(" ")}`);
  }
  return lines.join("\n");
}

/**
 * Shell lines pushing every valid store path to the cache volume, signed with its key, when the
 * volume is mounted (a `file://` binary cache: paths already there are skipped).
 */
export function nixCachePush(cache: string = NIX_CACHE_DIR): string {
  const key = `${cache}/.loom/key/secret`;
  return [
    `if [ -r '${key}' ] && [ -w '${cache}' ]; then`,
    "  echo 'Pushing the store to the Nix store cache'",
    `  nix copy --all --to 'file://${cache}?compression=zstd&secret-key=${key}'`,
    "fi",
  ].join("\n");
}

export interface DevShellStep {
  name: string;
  command: string;
  environment: EnvVar[];
  /** The script later steps source (their `BASH_ENV`). */
  envFile: string;
}

/**
 * The system step that realises the dependencies. The build log (stderr, `-L`) is the step's
 * log; the printed environment goes to `<home>/.cache/loom/devshell.sh`, wrapped so the image's
 * PATH stays after the dev shell's and a nested bash does not source it twice.
 */
export function devShellStep(
  packages: readonly string[],
  registry: MicrovmKeys["registry"],
  homeDir: string,
): DevShellStep | undefined {
  if (packages.length === 0) return undefined;
  const dir = `${homeDir}/.cache/loom`;
  const envFile = `${dir}/devshell.sh`;
  const raw = `${dir}/devshell.raw.sh`;
  const expr = devShellExpression(packages, registry);
  const command = [
    "set -eu",
    `mkdir -p '${dir}'`,
    `echo 'Realising ${packages.length} ${packages.length === 1 ? "dependency" : "dependencies"}: ${packages.join(" ")}'`,
    `nix print-dev-env --impure -L --expr '${expr}' > '${raw}'`,
    "{",
    `  echo 'if [ -z "\${LOOM_DEVSHELL_SOURCED:-}" ]; then'`,
    `  echo '__loom_path=$PATH'`,
    `  cat '${raw}'`,
    `  echo 'PATH="$PATH:$__loom_path"; unset __loom_path; export LOOM_DEVSHELL_SOURCED=1'`,
    "  echo 'fi'",
    `} > '${envFile}'`,
    nixCachePush(),
    "echo 'Dev shell ready; every later step sources it'",
  ].join("\n");
  return {
    name: DEVSHELL_STEP_NAME,
    command,
    environment: [
      { name: "NIX_NO_COLOR", value: "1" },
      { name: "NIX_SHOW_DOWNLOAD_PROGRESS", value: "0" },
    ],
    envFile,
  };
}
