/**
 * `createIntake` wired as the server will wire it: a repo record on Jetstream names this spindle
 * and a knot; the knot consumer follows that knot; a pipeline the knot emits reaches the intake.
 * Everything is real: Jetstream, knot, PDS and PLC stand-ins on loopback, a SQLite file.
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
import { commitEvent, JetstreamStandIn } from "../support/jetstream-standin.ts";
import { examplePipelineEnvelope, KnotStandIn } from "../support/knot-standin.ts";
import { PdsStandIn } from "../support/pds-standin.ts";
import { startPlcServer } from "../support/plc-server.ts";

const OWNER = "did:plc:ownerownerownerownerowne";
const dir = mkdtempSync(join(tmpdir(), "loom-intake-wiring-"));
after(() => rmSync(dir, { recursive: true, force: true }));

async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("createIntake", () => {
  it("Jetstream repo record → knot followed → pipeline accepted; after a restart the knot is followed from the repos table", async () => {
    const plc = await startPlcServer();
    const pds = await PdsStandIn.start();
    const js = await JetstreamStandIn.start();
    const knot = await KnotStandIn.start({ gen: 1 });
    pds.registerIdentity(plc, OWNER, "owner.test");
    const dbPath = join(dir, "spindle.db");
    const config = {
      server: {
        hostname: "spindle.example.com",
        owner: OWNER,
        jetstreamEndpoint: js.url,
        plcUrl: plc.url,
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
      await js.waitForConnections(1);
      js.push(
        commitEvent({
          did: OWNER,
          collection: "sh.tangled.repo",
          rkey: "3lcore",
          record: {
            name: "core",
            knot: knot.host,
            spindle: "spindle.example.com",
            createdAt: "2026-01-01T00:00:00Z",
          },
        }),
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
      await Promise.all([knot.stop(), js.stop(), pds.stop(), plc.stop()]);
    }
  });
});
