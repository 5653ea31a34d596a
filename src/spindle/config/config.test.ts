import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ensureSecretsKeyFile } from "../secrets/key-file.ts";
import {
  ConfigError,
  devDefaults,
  loadConfig,
  loadKubernetesSection,
  parseGoDuration,
  schedulerLimits,
} from "./index.ts";

const dir = mkdtempSync(join(tmpdir(), "loom-config-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const KEY_B64 = Buffer.alloc(32, 7).toString("base64");
const noFile = join(dir, "absent.yaml");
const base = {
  SPINDLE_SERVER_HOSTNAME: "spindle.example.com",
  SPINDLE_SERVER_OWNER: "did:plc:abcdefghijklmnopqrstuvwx",
  SPINDLE_SERVER_SECRETS_KEY: KEY_B64,
};
const load = (env: Record<string, string | undefined>) => loadConfig(env, { defaultConfigPath: noFile });

function assertConfigError(fn: () => unknown, variable: string, text?: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.variable, variable);
    assert.ok(err.message.startsWith(variable), err.message);
    if (text) assert.match(err.message, text);
    return true;
  });
}

describe("loadConfig", () => {
  it("applies every §6.4 default", () => {
    const c = load(base);
    assert.deepEqual(c.server.listen, { host: "0.0.0.0", port: 6555 });
    assert.equal(c.server.dbPath, "spindle.db");
    assert.equal(c.server.did, "did:web:spindle.example.com");
    assert.equal(c.server.jetstreamEndpoint, "wss://jetstream1.us-west.bsky.network/subscribe");
    assert.equal(c.server.plcUrl, "https://plc.directory");
    assert.equal(c.server.dev, false);
    assert.equal(c.server.logDir, "/var/log/spindle");
    assert.equal(c.server.queueSize, 100);
    assert.equal(c.server.maxJobCount, 2);
    assert.equal(c.secrets.provider, "sqlite");
    assert.deepEqual([...(c.secrets.key ?? [])], [...Buffer.alloc(32, 7)]);
    assert.equal(c.secrets.openbao.proxyAddr, "http://127.0.0.1:8200");
    assert.equal(c.secrets.openbao.mount, "spindle");
    assert.equal(c.nixery.registry, "nixery.tangled.sh");
    assert.equal(c.nixery.workflowTimeoutMs, 5 * 60_000);
    assert.equal(c.engine, "kubernetes");
    assert.equal(c.configFile, null);
    assert.equal(c.kubernetes, null);
  });

  it("reads every variable and freezes the result deeply", () => {
    const c = load({
      ...base,
      SPINDLE_SERVER_LISTEN_ADDR: "[::1]:7000",
      SPINDLE_SERVER_DB_PATH: "/var/lib/spindle/spindle.db",
      SPINDLE_SERVER_HOSTNAME: "localhost:6555",
      SPINDLE_SERVER_JETSTREAM_ENDPOINT: "ws://127.0.0.1:6008/subscribe",
      SPINDLE_SERVER_PLC_URL: "http://127.0.0.1:2582",
      SPINDLE_SERVER_DEV: "true",
      SPINDLE_SERVER_LOG_DIR: "/tmp/logs",
      SPINDLE_SERVER_QUEUE_SIZE: "5",
      SPINDLE_SERVER_MAX_JOB_COUNT: "3",
      SPINDLE_SERVER_SECRETS_PROVIDER: "",
      SPINDLE_NIXERY_PIPELINES_NIXERY: "nixery.example",
      SPINDLE_NIXERY_PIPELINES_WORKFLOW_TIMEOUT: "1h30m",
      SPINDLE_SERVER_ENGINE: "local",
    });
    assert.deepEqual(c.server.listen, { host: "::1", port: 7000 });
    assert.equal(c.server.did, "did:web:localhost:6555");
    assert.equal(c.server.dev, true);
    assert.equal(c.server.queueSize, 5);
    assert.equal(c.server.maxJobCount, 3);
    assert.equal(c.secrets.provider, "sqlite", "empty provider means sqlite, as upstream");
    assert.equal(c.nixery.workflowTimeoutMs, 90 * 60_000);
    assert.equal(c.engine, "local");
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.server) && Object.isFrozen(c.server.listen));
    assert.throws(() => {
      (c.server as { queueSize: number }).queueSize = 9;
    }, TypeError);
  });

  it("names the variable when a required one is missing", () => {
    assertConfigError(
      () => load({ ...base, SPINDLE_SERVER_HOSTNAME: undefined }),
      "SPINDLE_SERVER_HOSTNAME",
      /required/,
    );
    assertConfigError(
      () => load({ ...base, SPINDLE_SERVER_OWNER: "  " }),
      "SPINDLE_SERVER_OWNER",
      /required/,
    );
  });

  it("names the variable and the expectation when a value is wrong", () => {
    const cases: [string, string, RegExp][] = [
      ["SPINDLE_SERVER_OWNER", "alice.example.com", /DID/],
      ["SPINDLE_SERVER_HOSTNAME", "https://spindle.example.com", /host name/],
      ["SPINDLE_SERVER_LISTEN_ADDR", "6555", /host:port/],
      ["SPINDLE_SERVER_LISTEN_ADDR", "0.0.0.0:70000", /host:port/],
      ["SPINDLE_SERVER_QUEUE_SIZE", "ten", /integer/],
      ["SPINDLE_SERVER_QUEUE_SIZE", "0", /integer from 1/],
      ["SPINDLE_SERVER_MAX_JOB_COUNT", "1.5", /integer/],
      ["SPINDLE_SERVER_DEV", "yes", /true or false/],
      ["SPINDLE_SERVER_PLC_URL", "plc.directory", /URL/],
      ["SPINDLE_SERVER_JETSTREAM_ENDPOINT", "https://jetstream.example/subscribe", /ws\/wss URL/],
      ["SPINDLE_SERVER_SECRETS_PROVIDER", "vault", /sqlite, openbao/],
      ["SPINDLE_NIXERY_PIPELINES_WORKFLOW_TIMEOUT", "5 minutes", /Go duration/],
      ["SPINDLE_NIXERY_PIPELINES_WORKFLOW_TIMEOUT", "0s", /positive/],
      ["SPINDLE_SERVER_ENGINE", "docker", /local, kubernetes/],
    ];
    for (const [name, value, text] of cases)
      assertConfigError(() => load({ ...base, [name]: value }), name, text);
  });

  it("parses Go durations", () => {
    assert.equal(parseGoDuration("5m"), 300_000);
    assert.equal(parseGoDuration("1h30m"), 5_400_000);
    assert.equal(parseGoDuration("1.5h"), 5_400_000);
    assert.equal(parseGoDuration("300ms"), 300);
    assert.equal(parseGoDuration("2m30s"), 150_000);
    for (const bad of ["", "5", "m", "5d", "-5m", "5m-"]) assert.throws(() => parseGoDuration(bad), bad);
  });

  describe("secrets key", () => {
    it("needs a key for the sqlite provider and never echoes a bad one", () => {
      assertConfigError(
        () => load({ ...base, SPINDLE_SERVER_SECRETS_KEY: undefined }),
        "SPINDLE_SERVER_SECRETS_KEY_FILE",
        /required with the sqlite secrets provider/,
      );
      const bad = "not-a-key-but-a-secret-looking-string";
      assert.throws(
        () => load({ ...base, SPINDLE_SERVER_SECRETS_KEY: bad }),
        (err: Error) =>
          err instanceof ConfigError && !err.message.includes(bad) && /32-byte/.test(err.message),
      );
    });

    it("accepts hex and base64 inline keys and key files", () => {
      const hex = "ab".repeat(32);
      assert.equal(
        Buffer.from(load({ ...base, SPINDLE_SERVER_SECRETS_KEY: hex }).secrets.key ?? []).toString("hex"),
        hex,
      );
      const keyFile = join(dir, "key");
      writeFileSync(keyFile, `${KEY_B64}\n`);
      const c = load({
        ...base,
        SPINDLE_SERVER_SECRETS_KEY: undefined,
        SPINDLE_SERVER_SECRETS_KEY_FILE: keyFile,
      });
      assert.equal(Buffer.from(c.secrets.key ?? []).toString("base64"), KEY_B64);
      assertConfigError(
        () => load({ ...base, SPINDLE_SERVER_SECRETS_KEY_FILE: keyFile }),
        "SPINDLE_SERVER_SECRETS_KEY",
        /not both/,
      );
      assertConfigError(
        () =>
          load({
            ...base,
            SPINDLE_SERVER_SECRETS_KEY: undefined,
            SPINDLE_SERVER_SECRETS_KEY_FILE: join(dir, "nope"),
          }),
        "SPINDLE_SERVER_SECRETS_KEY_FILE",
        /ENOENT/,
      );
    });

    it("is not needed for openbao, which may read a token file", () => {
      const tokenFile = join(dir, "bao-token");
      writeFileSync(tokenFile, "s.devtoken\n");
      const c = load({
        ...base,
        SPINDLE_SERVER_SECRETS_KEY: undefined,
        SPINDLE_SERVER_SECRETS_PROVIDER: "openbao",
        SPINDLE_SERVER_SECRETS_OPENBAO_MOUNT: "/ci/",
        SPINDLE_SERVER_SECRETS_OPENBAO_TOKEN_FILE: tokenFile,
      });
      assert.equal(c.secrets.key, null);
      assert.equal(c.secrets.openbao.mount, "ci");
      assert.equal(c.secrets.openbao.token, "s.devtoken");
    });
  });

  describe("config file", () => {
    it("reads settings from the file, environment wins, kubernetes passes through", () => {
      const path = join(dir, "config.yaml");
      writeFileSync(
        path,
        [
          "engine: local",
          "server:",
          "  hostname: file.example.com",
          "  queueSize: 7",
          "  dev: true",
          "nixery:",
          "  workflowTimeout: 10m",
          "kubernetes:",
          "  maxConcurrentJobs: 4",
          "  resourceProfiles: {small: {cpu: 1}}",
        ].join("\n"),
      );
      const c = load({
        ...base,
        SPINDLE_SERVER_HOSTNAME: undefined,
        SPINDLE_SERVER_QUEUE_SIZE: "9",
        LOOM_CONFIG: path,
      });
      assert.equal(c.configFile, path);
      assert.equal(c.server.hostname, "file.example.com");
      assert.equal(c.server.queueSize, 9);
      assert.equal(c.server.dev, true);
      assert.equal(c.nixery.workflowTimeoutMs, 600_000);
      assert.equal(c.engine, "local");
      assert.deepEqual(c.kubernetes, { maxConcurrentJobs: 4, resourceProfiles: { small: { cpu: 1 } } });
    });

    it("names the file key of a bad file value", () => {
      const path = join(dir, "bad-value.yaml");
      writeFileSync(path, "server:\n  queueSize: -1\n");
      assert.throws(
        () => load({ ...base, LOOM_CONFIG: path }),
        (err: Error) => err instanceof ConfigError && err.message.includes(`${path}: server.queueSize`),
      );
    });

    it("refuses unknown keys, bad YAML and a missing explicit file; tolerates a missing default", () => {
      const typo = join(dir, "typo.yaml");
      writeFileSync(typo, "server:\n  hostnam: x\n");
      assertConfigError(() => load({ ...base, LOOM_CONFIG: typo }), `${typo}: server.hostnam`, /unknown/);
      const top = join(dir, "top.yaml");
      writeFileSync(top, "serve: {}\n");
      assert.throws(() => load({ ...base, LOOM_CONFIG: top }), ConfigError);
      const broken = join(dir, "broken.yaml");
      writeFileSync(broken, "server: [\n");
      assertConfigError(() => load({ ...base, LOOM_CONFIG: broken }), "LOOM_CONFIG", /not valid YAML/);
      assertConfigError(
        () => load({ ...base, LOOM_CONFIG: join(dir, "missing.yaml") }),
        "LOOM_CONFIG",
        /ENOENT/,
      );
      assert.equal(load(base).configFile, null);
    });
  });
});

describe("metrics address", () => {
  it("is unset by default (metrics on the public port) and takes host:port", () => {
    assert.equal(load(base).server.metricsListen, null);
    assert.deepEqual(load({ ...base, SPINDLE_SERVER_METRICS_ADDR: ":9090" }).server.metricsListen, {
      host: "0.0.0.0",
      port: 9090,
    });
    assertConfigError(
      () => load({ ...base, SPINDLE_SERVER_METRICS_ADDR: "9090" }),
      "SPINDLE_SERVER_METRICS_ADDR",
    );
  });
});

describe("log retention", () => {
  it("is off by default, takes 0 or a Go duration of at least an hour", () => {
    assert.equal(load(base).server.logRetentionMs, 0);
    assert.equal(
      load({ ...base, SPINDLE_SERVER_LOG_RETENTION: "720h" }).server.logRetentionMs,
      720 * 3_600_000,
    );
    assert.equal(load({ ...base, SPINDLE_SERVER_LOG_RETENTION: "0" }).server.logRetentionMs, 0);
    assertConfigError(
      () => load({ ...base, SPINDLE_SERVER_LOG_RETENTION: "30m" }),
      "SPINDLE_SERVER_LOG_RETENTION",
      /at least 1h/,
    );
    assertConfigError(
      () => load({ ...base, SPINDLE_SERVER_LOG_RETENTION: "30d" }),
      "SPINDLE_SERVER_LOG_RETENTION",
      /Go duration/,
    );
  });
});

describe("devDefaults", () => {
  it("gives a working configuration with nothing set, under the base dir", () => {
    const d = devDefaults({}, join(dir, ".loom"));
    assert.ok(d.keyFile);
    assert.equal(ensureSecretsKeyFile(d.keyFile), true);
    assert.equal(ensureSecretsKeyFile(d.keyFile), false, "an existing key is kept");
    assert.equal(statSync(d.keyFile).mode & 0o777, 0o600);
    const c = loadConfig({}, { defaultConfigPath: noFile, fallbacks: d.fallbacks });
    assert.equal(c.server.hostname, "localhost:6555");
    assert.equal(c.server.owner, d.ownerPlaceholder);
    assert.equal(c.server.dev, true);
    assert.equal(c.engine, "local");
    assert.ok(c.server.dbPath.startsWith(join(dir, ".loom")));
    assert.equal(Buffer.from(c.secrets.key ?? []).toString("base64"), readFileSync(d.keyFile, "utf8").trim());
  });

  it("keeps explicit values and drops the dev key file when an inline key is set", () => {
    const d = devDefaults({ SPINDLE_SERVER_OWNER: "did:plc:me", SPINDLE_SERVER_SECRETS_KEY: KEY_B64 }, dir);
    assert.equal(d.keyFile, null);
    assert.equal(d.fallbacks.SPINDLE_SERVER_SECRETS_KEY_FILE, undefined);
    const env = { SPINDLE_SERVER_OWNER: "did:plc:me", SPINDLE_SERVER_SECRETS_KEY: KEY_B64 };
    assert.equal(
      loadConfig(env, { defaultConfigPath: noFile, fallbacks: d.fallbacks }).server.owner,
      "did:plc:me",
    );
  });

  it("sit under the config file: a file's settings beat the dev defaults, the environment beats both", () => {
    const d = devDefaults({}, join(dir, ".loom-file"));
    ensureSecretsKeyFile(d.keyFile!);
    const file = join(dir, "dev-over-file.yaml");
    writeFileSync(
      file,
      "server:\n  hostname: ci.example.com\n  owner: did:plc:fromfile\nengine: kubernetes\n",
    );
    const c = loadConfig({ LOOM_CONFIG: file, SPINDLE_SERVER_ENGINE: "local" }, { fallbacks: d.fallbacks });
    assert.equal(c.server.hostname, "ci.example.com");
    assert.equal(c.server.owner, "did:plc:fromfile");
    assert.equal(c.engine, "local", "the environment still wins");
    assert.equal(c.server.dev, true, "what the file leaves unset comes from the dev defaults");
    assert.ok(c.server.dbPath.startsWith(join(dir, ".loom-file")));
  });
});

describe("loadKubernetesSection (loom controller)", () => {
  it("reads the section through the same checks as loadConfig, and needs no spindle settings", () => {
    const file = join(dir, "controller-only.yaml");
    writeFileSync(file, "kubernetes:\n  namespace: ci\n");
    const got = loadKubernetesSection({ LOOM_CONFIG: ` ${file} ` });
    assert.equal(got.configFile, file);
    assert.deepEqual(got.kubernetes, { namespace: "ci" });
    assert.deepEqual(loadKubernetesSection({}, { defaultConfigPath: noFile }), {
      configFile: null,
      kubernetes: null,
    });
    const typo = join(dir, "controller-typo.yaml");
    writeFileSync(typo, "kubernetes: {}\nkubernetess: {}\n");
    assertConfigError(() => loadKubernetesSection({ LOOM_CONFIG: typo }), `${typo}: kubernetess`);
  });
});

describe("queue limits", () => {
  it("reads the per-repo limit; unset means none; a bad value names the variable", () => {
    assert.equal(load(base).server.maxJobCountPerRepo, null);
    assert.equal(load({ ...base, SPINDLE_SERVER_MAX_JOB_COUNT_PER_REPO: "3" }).server.maxJobCountPerRepo, 3);
    assertConfigError(
      () => load({ ...base, SPINDLE_SERVER_MAX_JOB_COUNT_PER_REPO: "0" }),
      "SPINDLE_SERVER_MAX_JOB_COUNT_PER_REPO",
    );
  });

  it("with the cluster's capacity, unset limits follow it; set ones win; without it §6.4 stands", () => {
    const defaults = load(base).server;
    assert.deepEqual(schedulerLimits(defaults, null), { maxJobCount: 2, queueSize: 100 });
    assert.deepEqual(schedulerLimits(defaults, 5), { maxJobCount: 5, queueSize: 250 });
    assert.deepEqual(schedulerLimits(defaults, 1), { maxJobCount: 1, queueSize: 100 });
    const set = load({ ...base, SPINDLE_SERVER_MAX_JOB_COUNT: "2", SPINDLE_SERVER_QUEUE_SIZE: "100" }).server;
    assert.deepEqual(schedulerLimits(set, 5), { maxJobCount: 2, queueSize: 100 });
  });
});
