import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { baseEnv, missingSecrets, pickShell, secretsFromEnv, stepEnv } from "./env.ts";

describe("runner environment", () => {
  const runnerEnv = {
    PATH: "/usr/bin:/bin",
    HOME: "/root",
    LOOM_SECRET_API_KEY: "k-1",
    LOOM_SECRET_EMPTY: "",
    LOOM_RUN_ID: "r-1",
    LOOM_IMAGE_NODE_OPTIONS: "--enable-source-maps",
  };

  it("reads secrets from LOOM_SECRET_<KEY>", () => {
    assert.deepEqual(
      [...secretsFromEnv(runnerEnv)],
      [
        ["API_KEY", "k-1"],
        ["EMPTY", ""],
      ],
    );
  });

  it("drops every LOOM_* variable from the base and restores the image's NODE_OPTIONS", () => {
    assert.deepEqual(baseEnv(runnerEnv), {
      PATH: "/usr/bin:/bin",
      HOME: "/root",
      NODE_OPTIONS: "--enable-source-maps",
    });
  });

  it("applies entries in order, later wins, secrets resolved by key", () => {
    const secrets = secretsFromEnv(runnerEnv);
    const env = stepEnv(
      baseEnv(runnerEnv),
      [
        { name: "HOME", value: "/tangled/home" },
        { name: "KEY", value: "plain" },
        { name: "KEY", secret: "API_KEY" },
        { name: "CI", value: "true" },
      ],
      secrets,
    );
    assert.equal(env.HOME, "/tangled/home");
    assert.equal(env.KEY, "k-1");
    assert.equal(env.CI, "true");
    assert.equal(env.PATH, "/usr/bin:/bin");
  });

  it("lists secrets a step needs but the runner was not given", () => {
    const secrets = secretsFromEnv(runnerEnv);
    assert.deepEqual(
      missingSecrets(
        [
          { name: "A", secret: "API_KEY" },
          { name: "B", secret: "NOPE" },
          { name: "C", value: "x" },
        ],
        secrets,
      ),
      ["NOPE"],
    );
  });

  it("picks the first bash on an absolute PATH entry, else /bin/sh", () => {
    const has = (set: string[]) => (p: string) => set.includes(p);
    assert.equal(pickShell("/a:/b/:/c", has(["/b/bash", "/c/bash"])), "/b/bash");
    assert.equal(pickShell("bin:.:/x", has(["bin/bash", "./bash"])), "/bin/sh");
    assert.equal(pickShell(undefined, has([])), "/bin/sh");
    assert.equal(pickShell("", has([])), "/bin/sh");
  });
});
