/**
 * Rows a knot stores that the spindle cannot take never wedge the knot's stream (issue 12): a
 * frame over the 16 MiB frame cap (the socket closes with 1009 before any of it is read), a row
 * that is not an envelope. The real server (SQLite, local engine) follows a knot stand-in that
 * speaks the public protocol; later pipelines from the same knot still arrive, the bad row is
 * counted on /metrics, and the knot sent it a bounded number of times.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, it } from "node:test";
import { pino } from "pino";
import { KnotCursors, openDatabase, Repos } from "../../src/spindle/db/index.ts";
import { KnotConsumers } from "../../src/spindle/intake/index.ts";
import { KnotStandIn } from "../support/knot-standin.ts";
import { ALICE, type Booted, bootServer, pipelineRecord, waitFor, workflow } from "./server-kit.ts";

const fast = { backoff: { baseMs: 20, capMs: 100, minMs: 10 }, probeWaitMs: 300 };

function record(knot: KnotStandIn, name: string) {
  return pipelineRecord([workflow(`${name}.yml`, [{ name, command: "true" }])], {
    did: ALICE,
    repo: "loom",
    knot: knot.host,
  });
}

async function skipped(b: Booted, reason: string): Promise<number> {
  const text = await b.server.metrics.registry.getSingleMetricAsString("loom_knot_rows_skipped_total");
  const m = new RegExp(`loom_knot_rows_skipped_total\\{reason="${reason}"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

describe("a knot row that cannot be taken", () => {
  let dir: string;
  let knot: KnotStandIn | undefined;
  let b: Booted | undefined;

  /** A server whose database already follows `knot` from `cursor`. */
  async function boot(k: KnotStandIn, cursor: string): Promise<Booted> {
    dir = mkdtempSync(join(tmpdir(), "loom-poison-"));
    const db = openDatabase(join(dir, "spindle.db"));
    new Repos(db).upsert({ knot: k.host, owner: ALICE, name: "loom", rkey: "3lrepo0000001" });
    new KnotCursors(db).set(k.host, cursor);
    db.close();
    return bootServer({ dir, server: { intake: { knots: fast } } });
  }

  afterEach(async () => {
    await b?.stop();
    await knot?.stop();
    rmSync(dir, { recursive: true, force: true });
    b = undefined;
    knot = undefined;
  });

  it("gen 2: a stored envelope over 16 MiB is skipped after a few 1009s; later pipelines arrive", async () => {
    knot = await KnotStandIn.start({ gen: 2, now: () => 0n }); // created = 1, 2, 3, …
    const k = knot;
    k.emitPipeline("3lpoison00001", record(k, "before"));
    const poisoned = k.emitOversizePipeline("3lpoison00002", record(k, "huge"));
    k.emitPipeline("3lpoison00003", record(k, "after"));
    b = await boot(k, "0");
    const server = b.server;
    const stored = (rkey: string) => server.store.pipelineExists(k.host, rkey);
    await waitFor(() => stored("3lpoison00003"), 60_000, "the pipeline after the oversize row");
    assert.ok(stored("3lpoison00001"));
    assert.ok(!stored("3lpoison00002"), "the oversize row was never read");
    // The cursor stands exactly on the skipped row: nothing after it was passed over.
    assert.ok(BigInt(new KnotCursors(server.db).get(k.host) ?? "0") > poisoned);
    assert.equal(await skipped(b, "oversize"), 1);

    // The stream goes on: a pipeline emitted now arrives too, and the oversize row is not sent again.
    const sent = k.sends("3lpoison00002");
    k.emitPipeline("3lpoison00004", record(k, "later"));
    await waitFor(() => stored("3lpoison00004"), 20_000, "a pipeline emitted after the skip");
    assert.equal(k.sends("3lpoison00002"), sent);
    // 3 sessions at the same cursor, then a probe or two: bounded, not a loop.
    assert.ok(sent <= 6, `the oversize row was sent ${sent} times`);
  });

  it("gen 1: the oversize row first on every connection (no cursor movement) is skipped too", async () => {
    knot = await KnotStandIn.start({ gen: 1, now: () => 1000n }); // created = 1000, 1001, …
    const k = knot;
    k.emitOversizePipeline("3lpoison00011", record(k, "huge"));
    k.emitPipeline("3lpoison00012", record(k, "after"));
    k.emitPipeline("3lpoison00013", record(k, "after2"));
    b = await boot(k, "1");
    const server = b.server;
    const stored = (rkey: string) => server.store.pipelineExists(k.host, rkey);
    await waitFor(
      () => stored("3lpoison00012") && stored("3lpoison00013"),
      60_000,
      "the pipelines after the oversize row",
    );
    assert.ok(!stored("3lpoison00011"));
    assert.equal(await skipped(b, "oversize"), 1);
    // From cursor 1 to the row's `created` (1000): about 2·log2(1000) probes, each refused.
    assert.ok(k.sends("3lpoison00011") <= 30, `the oversize row was sent ${k.sends("3lpoison00011")} times`);
  });

  it("gen 2: a stored row that is not an envelope moves the cursor past it", async () => {
    knot = await KnotStandIn.start({ gen: 2, now: () => 0n });
    const k = knot;
    k.emitPipeline("3lpoison00021", record(k, "before"));
    const bad = k.emit("not an nsid", "3lpoison00022", {});
    b = await boot(k, "0");
    const server = b.server;
    const cursors = new KnotCursors(server.db);
    await waitFor(() => cursors.get(k.host) === bad.toString(), 20_000, "the cursor past the bad row");
    assert.ok(server.store.pipelineExists(k.host, "3lpoison00021"));
    assert.equal(await skipped(b, "undecodable"), 1);
  });
});

describe("a knot row whose handling always fails", () => {
  it("is given up after 5 attempts (counted), and the rows after it are handled", async () => {
    const knot = await KnotStandIn.start({ gen: 2, now: () => 0n });
    const dir = mkdtempSync(join(tmpdir(), "loom-poison-"));
    const db = openDatabase(join(dir, "spindle.db"));
    const cursors = new KnotCursors(db);
    cursors.set(knot.host, "0");
    const handled: string[] = [];
    const skips: string[] = [];
    let attempts = 0;
    // A record that makes storage throw every time (e.g. a constraint the record always breaks).
    const handler = async (_knot: string, env: { rkey: string }) => {
      if (env.rkey === "3lpoison00032") {
        attempts++;
        throw new Error("SQLITE_CONSTRAINT: always");
      }
      handled.push(env.rkey);
    };
    const consumers = new KnotConsumers({
      ...fast,
      cursors,
      handlers: { "sh.tangled.pipeline": handler },
      dev: true,
      log: pino({ level: "silent" }),
      onSkip: (reason) => skips.push(reason),
    });
    try {
      knot.emitPipeline("3lpoison00031", {});
      const bad = knot.emitPipeline("3lpoison00032", {});
      knot.emitPipeline("3lpoison00033", {});
      consumers.addKnot(knot.host);
      consumers.start();
      await waitFor(() => handled.includes("3lpoison00033"), 20_000, "the row after the failing one");
      assert.deepEqual(handled, ["3lpoison00031", "3lpoison00033"]);
      assert.equal(attempts, 5);
      assert.deepEqual(skips, ["handler_failed"]);
      assert.ok(BigInt(cursors.get(knot.host) ?? "0") > bad);
    } finally {
      await consumers.stop();
      await knot.stop();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
