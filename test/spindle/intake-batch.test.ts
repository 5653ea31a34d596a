/**
 * Knot frames are admitted in batches (issue 12): each handler's write is parked and the
 * batch's writes and the knot cursor are stored in one transaction, a savepoint per write. Real
 * knot stand-in over loopback WebSocket, real SQLite file, and a second connection that watches
 * what is committed.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, it } from "node:test";
import { pino } from "pino";
import { KnotCursors, openDatabase } from "../../src/spindle/db/index.ts";
import { batchedWrite } from "../../src/spindle/db/write-batch.ts";
import { KnotConsumers, type KnotEventHandler } from "../../src/spindle/intake/index.ts";
import { KnotStandIn } from "../support/knot-standin.ts";
import { cleanupsAfterEach, waitFor } from "./support/intake-kit.ts";

const fast = { backoff: { baseMs: 20, capMs: 100, minMs: 10, random: () => 0.5 }, livenessMs: 5000 };

const cleanup = cleanupsAfterEach();

async function setup(handler: (db: DatabaseSync, other: DatabaseSync) => KnotEventHandler) {
  const knot = await KnotStandIn.start({ gen: 2 });
  cleanup(() => knot.stop());
  const dir = mkdtempSync(join(tmpdir(), "loom-intake-batch-"));
  cleanup(() => rmSync(dir, { recursive: true, force: true }));
  const db = openDatabase(join(dir, "spindle.db"));
  db.exec("CREATE TABLE admitted (rkey TEXT PRIMARY KEY, created TEXT NOT NULL)");
  const other = new DatabaseSync(join(dir, "spindle.db"));
  cleanup(() => {
    other.close();
    db.close();
  });
  const cursors = new KnotCursors(db);
  cursors.set(knot.host, "0");
  const skips: string[] = [];
  const consumers = new KnotConsumers({
    ...fast,
    cursors,
    handlers: { "sh.tangled.pipeline": handler(db, other) },
    dev: true,
    log: pino({ level: "silent" }),
    onSkip: (r) => skips.push(r),
  });
  cleanup(() => consumers.stop());
  const stored = () =>
    other
      .prepare("SELECT rkey FROM admitted ORDER BY created")
      .all()
      .map((r) => String(r.rkey));
  return { knot, db, other, cursors, consumers, skips, stored };
}

const rkey = (i: number) => `3lbatch${String(i).padStart(6, "0")}`;

describe("knot frames admitted in batches", () => {
  it("share a transaction with the cursor, which never covers a row not yet committed", async () => {
    let shared = 0;
    const violations: string[] = [];
    const s = await setup((db, other) => async (_knot, env) => {
      await new Promise((r) => setImmediate(r)); // a plan phase that awaits
      await batchedWrite(db, () => {
        // What another connection sees now: committed rows and the committed cursor.
        const seen = new Set(
          other
            .prepare("SELECT rkey FROM admitted")
            .all()
            .map((r) => String(r.rkey)),
        );
        const mine = db
          .prepare("SELECT rkey, created FROM admitted")
          .all()
          .map((r) => ({ rkey: String(r.rkey), created: BigInt(String(r.created)) }));
        const cursor = BigInt(String(other.prepare("SELECT cursor FROM cursors").get()?.cursor ?? "0"));
        // Rows written earlier in this same transaction are not committed yet.
        if (mine.some((r) => !seen.has(r.rkey))) shared++;
        for (const r of mine) {
          if (r.created <= cursor && !seen.has(r.rkey)) violations.push(`${r.rkey} ≤ cursor ${cursor}`);
        }
        db.prepare("INSERT INTO admitted (rkey, created) VALUES (?, ?)").run(env.rkey, String(env.created));
      });
    });
    const N = 300;
    let last = 0n;
    for (let i = 0; i < N; i++) last = s.knot.emitPipeline(rkey(i), {});
    s.consumers.addKnot(s.knot.host);
    s.consumers.start();
    // The stand-in sends a backlog one batch of 100 per new row: keep it moving.
    const nudge = setInterval(() => s.knot.emit("sh.tangled.knot.memberUpdate", "3lnudge", {}), 50);
    cleanup(() => clearInterval(nudge));
    await waitFor(() => s.stored().length === N, "every row stored");
    await waitFor(() => BigInt(s.cursors.get(s.knot.host) ?? "0") >= last, "the cursor past the last row");
    assert.deepEqual(
      s.stored(),
      Array.from({ length: N }, (_, i) => rkey(i)),
    );
    assert.deepEqual(violations, []);
    assert.ok(shared > 0, "no write ever shared a transaction with the one before it");
  });

  it("a write that always fails rolls back alone, is retried, then stepped over; the rest stay stored once", async () => {
    let attempts = 0;
    const s = await setup((db) => async (_knot, env) => {
      await batchedWrite(db, () => {
        // Idempotent, as the pipeline admission is ((knot, rkey) is unique).
        db.prepare("INSERT OR IGNORE INTO admitted (rkey, created) VALUES (?, ?)").run(
          env.rkey,
          String(env.created),
        );
        if (env.rkey === rkey(5)) {
          attempts++;
          throw new Error("SQLITE_CONSTRAINT (test): always");
        }
      });
    });
    let last = 0n;
    for (let i = 0; i < 10; i++) last = s.knot.emitPipeline(rkey(i), {});
    s.consumers.addKnot(s.knot.host);
    s.consumers.start();
    await waitFor(() => s.skips.length === 1, "the failing row stepped over");
    await waitFor(() => BigInt(s.cursors.get(s.knot.host) ?? "0") >= last, "the cursor past the last row");
    assert.equal(attempts, 5);
    assert.deepEqual(s.skips, ["handler_failed"]);
    // The rows after the failing one were stored in its batch and deduplicated when re-sent.
    assert.deepEqual(s.stored(), [0, 1, 2, 3, 4, 6, 7, 8, 9].map(rkey));
  });
});
