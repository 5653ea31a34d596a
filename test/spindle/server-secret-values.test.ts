/**
 * Secret values stored before addSecret refused them (a NUL byte, under four characters): a real
 * server with the local engine runs a pipeline of a repo that has such values. Only the
 * workflows that refer to a bad secret fail, with an error naming it; the others run, without
 * it; the server log reports it by key. No value appears in statuses, logs or the server log.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { repoScopeKey } from "../../src/spindle/rbac/index.ts";
import { SqliteSecretsProvider } from "../../src/spindle/secrets/index.ts";
import { workflowId } from "../../src/workflow/resolve.ts";
import {
  ALICE,
  addRepo,
  type Booted,
  bootServer,
  Collector,
  KEY_HEX,
  KNOT,
  pipelineRecord,
  statuses,
  workflow,
} from "./server-kit.ts";

const GOOD = "good-value-1234";
const NUL = "hunter\u0000nul";
const SHORT = "Q~z";

describe("spindle server: stored secret values a run cannot use", () => {
  let b: Booted;
  const serverLog: string[] = [];

  before(async () => {
    b = await bootServer({
      server: { logger: pino({ level: "info" }, { write: (line: string) => serverLog.push(line) }) },
    });
    addRepo(b.server, ALICE, "loom");
    // Stored as an older server would have: the provider itself checks only the lexicon limits.
    const provider = new SqliteSecretsProvider({ db: b.server.db, key: Buffer.from(KEY_HEX, "hex") });
    const repo = repoScopeKey({ ownerDid: ALICE, name: "loom" });
    for (const [key, value] of [
      ["GOOD_TOKEN", GOOD],
      ["NUL_TOKEN", NUL],
      ["SHORT_PIN", SHORT],
    ] as const) {
      await provider.add({ repo, key, value, createdBy: ALICE });
    }
  });
  after(() => b.stop());

  it("fails only the workflows that refer to a bad secret, and says which", async () => {
    const events = new Collector(`${b.wsUrl}/events`);
    await events.opened;
    const rkey = "3lxyz2badsec2";
    await b.server.pipelines.acceptPipeline(
      KNOT,
      rkey,
      pipelineRecord([
        workflow("good.yml", [
          { name: "s", command: `test "\${#GOOD_TOKEN}" = ${GOOD.length} && echo "g=$GOOD_TOKEN"` },
        ]),
        // Names the variables it sees without naming a bad secret as a word.
        workflow("plain.yml", [
          { name: "s", command: "env | cut -d= -f1 | grep -E 'TOKEN|_PIN' | sort | xargs" },
        ]),
        workflow("nul.yml", [{ name: "s", command: 'echo "n=$NUL_TOKEN"' }]),
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, not a JS template
        workflow("short.yml", [{ name: "s", command: 'echo "p=${SHORT_PIN}"' }]),
      ]),
    );
    const names = ["good.yml", "plain.yml", "nul.yml", "short.yml"];
    const final = (f: string[], name: string) =>
      statuses(f, name).find((e) => ["success", "failed", "cancelled", "timeout"].includes(String(e.status)));
    await events.until((f) => names.every((n) => final(f, n) !== undefined));
    const result = Object.fromEntries(names.map((n) => [n, final(events.frames, n)!]));
    assert.equal(result["good.yml"]!.status, "success", JSON.stringify(result["good.yml"]));
    assert.equal(result["plain.yml"]!.status, "success", JSON.stringify(result["plain.yml"]));
    assert.equal(result["nul.yml"]!.status, "failed");
    assert.equal(
      result["nul.yml"]!.error,
      "secret NUL_TOKEN has a stored value that cannot be used: a value must not contain a NUL byte; replace it (removeSecret, then addSecret)",
    );
    assert.equal(result["short.yml"]!.status, "failed");
    assert.match(
      String(result["short.yml"]!.error),
      /^secret SHORT_PIN has a stored value that cannot be used: a value must be at least 4 characters long/,
    );
    // The workflow that does not refer to them ran without them, and with the good one.
    const log = (name: string) =>
      readFileSync(join(b.dir, "logs", `${workflowId(KNOT, rkey, name)}.log`), "utf8");
    assert.match(log("plain.yml"), /"content":"GOOD_TOKEN"/);
    assert.match(log("good.yml"), /"content":"g=\*\*\*"/);
    // Reported in the server log by key, once per run that left it out; never a value.
    const reports = serverLog
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === "secret left out of the run");
    for (const [key, wf, referenced] of [
      ["NUL_TOKEN", "plain.yml", false],
      ["NUL_TOKEN", "nul.yml", true],
      ["SHORT_PIN", "short.yml", true],
      ["SHORT_PIN", "good.yml", false],
    ] as const) {
      assert.ok(
        reports.some((r) => r.key === key && r.workflow === wf && r.referenced === referenced),
        `${key} in ${wf}: ${JSON.stringify(reports)}`,
      );
    }
    const everything = [events.frames.join(""), serverLog.join(""), ...names.map(log)].join("");
    for (const value of [GOOD, "hunter", SHORT]) assert.ok(!everything.includes(value), value);
    events.close();
  });
});
