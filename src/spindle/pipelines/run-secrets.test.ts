import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { EngineRunPlan } from "../../engine/engine.ts";
import type { EnvEntry } from "../../runner/protocol.ts";
import { secretsForRun } from "./run-secrets.ts";

const KEYS = ["API_TOKEN", "NUL_TOKEN", "PIN", "GONE"];

function plan(command: string, extraEnv: EnvEntry[] = []): EngineRunPlan {
  return {
    pipeline: { knot: "k", rkey: "r" },
    workflowName: "w.yml",
    wid: "wid",
    engine: "kubernetes",
    image: "alpine",
    architecture: "amd64",
    secretKeys: KEYS,
    timeoutSeconds: 0,
    steps: [
      {
        id: 0,
        name: "s",
        kind: "user",
        command,
        env: [{ name: "CI", value: "true" }, ...KEYS.map((k) => ({ name: k, secret: k })), ...extraEnv],
      },
    ],
  };
}

const values = new Map([
  ["API_TOKEN", "good-token"],
  ["NUL_TOKEN", "bad\0value"],
  ["PIN", "123"],
]);

describe("secretsForRun", () => {
  it("leaves unusable secrets out of a workflow that does not name them, and says why", () => {
    const r = secretsForRun(plan('curl -H "x: $API_TOKEN"'), { values, failed: false });
    assert.equal(r.error, undefined);
    assert.deepEqual([...r.secrets], [["API_TOKEN", "good-token"]]);
    assert.deepEqual(r.plan.secretKeys, ["API_TOKEN"]);
    assert.deepEqual(
      r.plan.steps[0]!.env.map((e) => e.name),
      ["CI", "API_TOKEN"],
    );
    assert.deepEqual(
      r.unusable.map((u) => [u.key, u.referenced]),
      [
        ["NUL_TOKEN", false],
        ["PIN", false],
        ["GONE", false],
      ],
    );
    assert.match(r.unusable[0]!.reason, /must not contain a NUL byte/);
    assert.match(r.unusable[1]!.reason, /at least 4 characters/);
    assert.match(r.unusable[2]!.reason, /no longer exists/);
    assert.ok(!JSON.stringify(r.unusable).includes("bad"));
  });

  it("fails a workflow that names one, in a command or an environment value, naming each", () => {
    for (const [command, env, expected] of [
      ['echo "$NUL_TOKEN"', [], ["NUL_TOKEN"]],
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, not a JS template
      ["echo ${PIN}; echo $GONE", [], ["PIN", "GONE"]],
      ["node -e 'process.env.PIN'", [], ["PIN"]],
      ["run", [{ name: "X", value: "Bearer $NUL_TOKEN" }], ["NUL_TOKEN"]],
      // Another name for the same secret counts as naming it.
      ["echo $ALIAS", [{ name: "ALIAS", secret: "PIN" }], ["PIN"]],
    ] as const) {
      const r = secretsForRun(plan(command, [...env]), { values, failed: false });
      assert.ok(r.error !== undefined, command);
      assert.deepEqual(
        r.unusable.filter((u) => u.referenced).map((u) => u.key),
        expected,
        command,
      );
      for (const key of expected) assert.ok(r.error.includes(`secret ${key} `), r.error);
      assert.ok(!r.error.includes("bad\0value") && !r.error.includes("123"), r.error);
    }
  });

  it("matches whole words only", () => {
    const r = secretsForRun(plan("echo $PINNED $MY_PIN NUL_TOKENS"), { values, failed: false });
    assert.equal(r.error, undefined);
  });

  it("says the backend failed when nothing could be loaded", () => {
    const r = secretsForRun(plan("echo $API_TOKEN"), { values: new Map(), failed: true });
    assert.equal(r.error, "secret API_TOKEN could not be loaded (the secrets backend failed)");
    assert.equal(r.secrets.size, 0);
  });

  it("changes nothing when every secret is usable", () => {
    const all = new Map([...KEYS.map((k) => [k, `${k}-value`] as const)]);
    const p = plan("echo $PIN");
    const r = secretsForRun(p, { values: all, failed: false });
    assert.equal(r.plan, p);
    assert.equal(r.secrets.size, 4);
    assert.deepEqual(r.unusable, []);
  });
});
