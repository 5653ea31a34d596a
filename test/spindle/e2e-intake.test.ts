/**
 * End to end through every real part: the spindle owner writes a member record and the member a
 * repo record through a real PDS (@atproto/dev-env, with its PLC directory); a real Jetstream
 * reading the PDS's firehose delivers them; the spindle follows the repo's knot (knot stand-in,
 * Gen1 wire format: the real knot cannot run here), a pipeline envelope arrives there, the local
 * engine runs it with real runner processes, and /events and /logs show what the appview would see.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { workflowId } from "../../src/workflow/resolve.ts";
import { type AtprotoPeers, getAtprotoPeers } from "../harness/atproto-peers.ts";
import { KnotStandIn } from "../support/knot-standin.ts";
import { createAccount, type PdsAccount } from "../support/pds-client.ts";
import {
  type Booted,
  bootServer,
  Collector,
  HOSTNAME,
  pipelineRecord,
  statuses,
  waitFor,
  workflow,
} from "./server-kit.ts";

const got = await getAtprotoPeers();
const skip = "skip" in got ? got.skip : false;
const peers = got as AtprotoPeers;

describe("e2e: Jetstream member + repo → knot pipeline → local engine → /events and /logs", { skip }, () => {
  let owner: PdsAccount;
  let alice: PdsAccount;
  let knot: KnotStandIn;
  let b: Booted;

  before(async () => {
    owner = await createAccount(peers.pdsUrl, "owner");
    alice = await createAccount(peers.pdsUrl, "alice");
    knot = await KnotStandIn.start({ gen: 1 });
    b = await bootServer({
      env: {
        SPINDLE_SERVER_OWNER: owner.did,
        SPINDLE_SERVER_PLC_URL: peers.plcUrl,
        SPINDLE_SERVER_JETSTREAM_ENDPOINT: peers.jetstreamUrl,
      },
      server: {
        intake: {
          jetstream: { backoff: { baseMs: 20, capMs: 200, minMs: 10 } },
          knots: { backoff: { baseMs: 20, capMs: 200, minMs: 10 } },
        },
      },
    });
  });
  after(async () => {
    await b?.stop();
    await knot?.stop();
  });

  it("runs the pipeline and reports it exactly", async () => {
    await owner.createRecord("sh.tangled.spindle.member", {
      subject: alice.did,
      instance: HOSTNAME,
      createdAt: "2026-02-10T12:00:00Z",
    });
    // The repo record is only handled once alice passed the DID filter as a member.
    await waitFor(() => b.server.intake?.filter.has(alice.did) === true, 30_000, "member applied");
    await alice.createRecord("sh.tangled.repo", {
      name: "loom",
      knot: knot.host,
      spindle: HOSTNAME,
      createdAt: "2026-02-10T12:00:00Z",
    });
    await knot.waitForConnections(1);

    const events = new Collector(`${b.wsUrl}/events`);
    await events.opened;
    const rkey = "3lxyz2e2e0022";
    knot.emitPipeline(
      rkey,
      pipelineRecord(
        [
          workflow("build.yml", [
            { name: "greet", command: "echo building $TANGLED_REPO_NAME at $TANGLED_SHA" },
            { name: "second", command: "echo done >&2" },
          ]),
          workflow("test.yml", [{ name: "fail", command: "echo failing; exit 42" }]),
        ],
        { did: alice.did, repo: "loom", knot: knot.host },
      ),
    );
    await events.until(
      (f) => statuses(f).filter((e) => ["success", "failed"].includes(String(e.status))).length === 2,
    );
    const pipeline = `at://did:web:${knot.host}/sh.tangled.pipeline/${rkey}`;
    const seq = (wf: string) => statuses(events.frames, wf).map((e) => e.status);
    assert.deepEqual(seq("build.yml"), ["pending", "running", "success"]);
    assert.deepEqual(seq("test.yml"), ["pending", "running", "failed"]);
    for (const f of events.frames) {
      const env = JSON.parse(f);
      assert.deepEqual(Object.keys(env), ["event", "nsid", "rkey"]);
      assert.equal(env.nsid, "sh.tangled.pipeline.status");
      const ev = env.event;
      assert.equal(ev.$type, "");
      assert.equal(ev.pipeline, pipeline);
      assert.match(ev.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      const keys =
        ev.status === "failed"
          ? ["$type", "createdAt", "error", "exitCode", "pipeline", "status", "workflow"]
          : ["$type", "createdAt", "pipeline", "status", "workflow"];
      assert.deepEqual(Object.keys(ev), keys);
    }
    const failed = statuses(events.frames, "test.yml").at(-1);
    assert.equal(failed?.exitCode, 42);

    const logs = new Collector(`${b.wsUrl}/logs/${knot.host}/${rkey}/build.yml`);
    assert.deepEqual(await logs.closed, { code: 1000, reason: "log stream complete" });
    const file = readFileSync(join(b.dir, "logs", `${workflowId(knot.host, rkey, "build.yml")}.log`), "utf8");
    assert.deepEqual(logs.frames, file.trimEnd().split("\n"));
    const lines = logs.frames.map((f) => JSON.parse(f));
    assert.ok(lines.some((l) => l.kind === "data" && l.content === `building loom at ${"f".repeat(40)}`));
    assert.ok(lines.some((l) => l.kind === "data" && l.stream === "stderr" && l.content === "done"));
    assert.ok(lines.some((l) => l.kind === "control" && l.step_status === "start" && l.content === "greet"));
    events.close();

    // The knot's cursor moved past the envelope: a reconnect does not replay it.
    knot.closeAll();
    await knot.waitForConnections(1);
    await new Promise((r) => setTimeout(r, 300));
    const runs = b.server.db.prepare("SELECT count(*) AS n FROM pipelines WHERE rkey = ?").get(rkey) as {
      n: number;
    };
    assert.equal(Number(runs.n), 1);
  });
});
