/**
 * `createIntake` wired as the server will wire it: a repo record on Jetstream names this spindle
 * and a knot; the knot consumer follows that knot; a pipeline the knot emits reaches the intake.
 * The repo record is written through a real PDS (@atproto/dev-env, with its PLC directory) and
 * read by a real Jetstream from the PDS's firehose; the knot is a stand-in (the real knot cannot
 * run here); a real SQLite file.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { pino } from "pino";
import { guardedFetchFunction } from "../../src/net/guarded-fetch.ts";
import { IdentityResolver } from "../../src/net/identity.ts";
import { XrpcClient } from "../../src/net/xrpc-client.ts";
import { KnotCursors, openDatabase, Repos } from "../../src/spindle/db/index.ts";
import { createIntake } from "../../src/spindle/intake/index.ts";
import type { PipelineIntake } from "../../src/spindle/pipelines/intake-contract.ts";
import { Rbac } from "../../src/spindle/rbac/index.ts";
import { type AtprotoPeers, getAtprotoPeers } from "../harness/atproto-peers.ts";
import { examplePipelineEnvelope, KnotStandIn } from "../support/knot-standin.ts";
import { createAccount } from "../support/pds-client.ts";

const got = await getAtprotoPeers();
const skip = "skip" in got ? got.skip : false;
const peers = got as AtprotoPeers;
const dir = mkdtempSync(join(tmpdir(), "loom-intake-wiring-"));
after(() => rmSync(dir, { recursive: true, force: true }));

async function waitFor(cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("createIntake", { skip }, () => {
  it("Jetstream repo record → knot followed → pipeline accepted; after a restart the knot is followed from the repos table", async () => {
    const owner = await createAccount(peers.pdsUrl, "owner");
    const OWNER = owner.did;
    const knot = await KnotStandIn.start({ gen: 1 });
    const dbPath = join(dir, "spindle.db");
    const config = {
      server: {
        hostname: "spindle.example.com",
        owner: OWNER,
        jetstreamEndpoint: peers.jetstreamUrl,
        plcUrl: peers.plcUrl,
        dev: true,
      },
    } as Parameters<typeof createIntake>[0]["config"];
    const accepted: string[] = [];
    const pipelines: PipelineIntake = {
      acceptPipeline: async (k, rkey) => {
        accepted.push(`${k}/${rkey}`);
      },
    };
    const fast = { backoff: { baseMs: 20, capMs: 100, minMs: 10 } };
    const log = pino({ level: "silent" });
    // What the server builds once and passes down.
    const net = {
      identity: new IdentityResolver({ plcUrl: config.server.plcUrl, dev: config.server.dev }),
      xrpc: new XrpcClient({
        fetch: guardedFetchFunction({ allowPrivate: config.server.dev, timeoutMs: 5000 }),
      }),
    };

    let db = openDatabase(dbPath);
    new Rbac(db).setOwner(OWNER);
    let intake = createIntake({ config, db, pipelines, log, jetstream: fast, knots: fast, ...net });
    try {
      intake.start();
      // The intake chose its Jetstream cursor ("now") at start; Jetstream replays from it.
      await owner.createRecord(
        "sh.tangled.repo",
        { name: "core", knot: knot.host, spindle: "spindle.example.com", createdAt: "2026-01-01T00:00:00Z" },
        "3lcore",
      );
      await knot.waitForConnections(1);
      assert.deepEqual(new Repos(db).knots(), [knot.host]);
      const env = examplePipelineEnvelope();
      knot.emitPipeline(env.rkey, env.event);
      await waitFor(() => accepted.length === 1, "the pipeline");
      assert.deepEqual(accepted, [`${knot.host}/${env.rkey}`]);
      await waitFor(() => new KnotCursors(db).get(knot.host) !== knot.cursors[0], "knot cursor stored");
      await intake.stop();
      db.close();

      db = openDatabase(dbPath);
      intake = createIntake({ config, db, pipelines, log, jetstream: fast, knots: fast, ...net });
      intake.start();
      await knot.waitForConnections(2);
      assert.equal(
        knot.cursors[1],
        new KnotCursors(db).get(knot.host),
        "resumes from the stored knot cursor",
      );
      knot.emitPipeline("3lxyz2abcdz22", env.event);
      await waitFor(() => accepted.length === 2, "the second pipeline");
    } finally {
      await intake.stop();
      db.close();
      await knot.stop();
    }
  });
});
