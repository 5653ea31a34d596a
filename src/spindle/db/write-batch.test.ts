import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, describe, it } from "node:test";
import { openDatabase, transaction } from "./database.ts";
import { batchedWrite, WriteBatch } from "./write-batch.ts";

const dir = mkdtempSync(join(tmpdir(), "loom-write-batch-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** A migrated database file, a table `t`, and a second connection to watch commits from. */
function setup() {
  const path = join(dir, `db${n++}`, "spindle.db");
  const db = openDatabase(path);
  db.exec("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)");
  const other = new DatabaseSync(path);
  const seen = () =>
    other
      .prepare("SELECT k FROM t ORDER BY k")
      .all()
      .map((r) => String(r.k));
  const cursor = () =>
    (other.prepare("SELECT cursor FROM cursors WHERE knot = 'k'").get()?.cursor ?? null) as string | null;
  const insert = (k: string) => () => {
    db.prepare("INSERT INTO t (k, v) VALUES (?, 'x')").run(k);
    return k;
  };
  const setCursor = (c: string) =>
    db
      .prepare(
        "INSERT INTO cursors (knot, cursor) VALUES ('k', ?) ON CONFLICT (knot) DO UPDATE SET cursor = excluded.cursor",
      )
      .run(c);
  return {
    db,
    seen,
    cursor,
    insert,
    setCursor,
    close() {
      other.close();
      db.close();
    },
  };
}

describe("WriteBatch", () => {
  it("parks each job's write, then stores all of them and the cursor in one transaction", async () => {
    const s = setup();
    try {
      const batch = new WriteBatch(s.db);
      const order: string[] = [];
      const job = (k: string) => async () => {
        await new Promise((r) => setImmediate(r)); // the plan phase may await
        const v = await batchedWrite(s.db, s.insert(k));
        order.push(`resumed ${v}`);
        return v;
      };
      const a = await batch.stage(job("a"));
      const b = await batch.stage(job("b"));
      assert.equal(a.wrote, true);
      assert.equal(b.wrote, true);
      assert.deepEqual(s.seen(), [], "nothing is written before the commit");
      assert.deepEqual(order, [], "the jobs wait for the commit");
      let failedSeen: readonly boolean[] = [];
      batch.commit((failed) => {
        failedSeen = failed;
        // Inside the same transaction: another connection sees neither the rows nor the cursor.
        assert.deepEqual(s.seen(), []);
        s.setCursor("2");
      });
      assert.deepEqual(failedSeen, [false, false]);
      assert.deepEqual(s.seen(), ["a", "b"]);
      assert.equal(s.cursor(), "2");
      assert.deepEqual(await Promise.all([a.done, b.done]), ["a", "b"]);
      assert.deepEqual(order, ["resumed a", "resumed b"]);
    } finally {
      s.close();
    }
  });

  it("a write that throws rolls back alone; the rest of the batch and the cursor are stored", async () => {
    const s = setup();
    try {
      const batch = new WriteBatch(s.db);
      const ok1 = await batch.stage(() => batchedWrite(s.db, s.insert("a")));
      let rolledBack = 0;
      const bad = await batch.stage(() =>
        batchedWrite(
          s.db,
          () => {
            s.insert("b")();
            throw new Error("constraint (test)");
          },
          () => rolledBack++,
        ),
      );
      const ok2 = await batch.stage(() => batchedWrite(s.db, s.insert("c")));
      let failedSeen: readonly boolean[] = [];
      batch.commit((failed) => {
        failedSeen = failed;
        s.setCursor("1");
      });
      assert.deepEqual(failedSeen, [false, true, false]);
      assert.equal(bad.writeFailed, true);
      assert.match(String(bad.writeError), /constraint \(test\)/);
      await assert.rejects(bad.done, /constraint \(test\)/);
      assert.equal(rolledBack, 1);
      assert.deepEqual(await Promise.all([ok1.done, ok2.done]), ["a", "c"]);
      assert.deepEqual(s.seen(), ["a", "c"], "b's insert was rolled back with its savepoint");
      assert.equal(s.cursor(), "1");
    } finally {
      s.close();
    }
  });

  it("a job that fails before writing says so and leaves nothing in the batch", async () => {
    const s = setup();
    try {
      const batch = new WriteBatch(s.db);
      const bad = await batch.stage(async () => {
        throw new Error("network (test)");
      });
      const quiet = await batch.stage(async () => "no write");
      assert.equal(bad.planFailed, true);
      assert.equal(bad.wrote, false);
      assert.match(String(bad.planError), /network \(test\)/);
      await assert.rejects(bad.done);
      assert.equal(quiet.planFailed, false);
      assert.equal(await quiet.done, "no write");
      let failedSeen: readonly boolean[] = [];
      batch.commit((failed) => {
        failedSeen = failed;
      });
      assert.deepEqual(failedSeen, [true, false]);
    } finally {
      s.close();
    }
  });

  it("when the transaction as a whole fails, nothing is stored and every parked write rejects", async () => {
    const s = setup();
    try {
      const batch = new WriteBatch(s.db);
      let rolledBack = 0;
      const a = await batch.stage(() => batchedWrite(s.db, s.insert("a"), () => rolledBack++));
      assert.throws(
        () =>
          batch.commit(() => {
            throw new Error("cursor write failed (test)");
          }),
        /cursor write failed/,
      );
      await assert.rejects(a.done, /cursor write failed/);
      assert.equal(rolledBack, 1);
      assert.deepEqual(s.seen(), []);
      assert.equal(s.db.isTransaction, false);
      // A committed batch takes no more writes; a write outside any batch is immediate.
      assert.equal(batch.open, false);
      assert.equal(await batchedWrite(s.db, s.insert("z")), "z");
      assert.deepEqual(s.seen(), ["z"]);
    } finally {
      s.close();
    }
  });

  it("a write on another connection does not join the batch", async () => {
    const s = setup();
    const path = s.db.location() as string;
    const db2 = new DatabaseSync(path);
    try {
      const batch = new WriteBatch(s.db);
      const staged = await batch.stage(() =>
        batchedWrite(db2, () => db2.prepare("INSERT INTO t (k, v) VALUES ('other', 'x')").run()),
      );
      assert.equal(staged.wrote, false);
      await staged.done;
      assert.deepEqual(s.seen(), ["other"]);
      batch.commit();
    } finally {
      db2.close();
      s.close();
    }
  });
});

describe("transaction", () => {
  it("nested in an open transaction, runs as a savepoint that rolls back alone", () => {
    const s = setup();
    try {
      transaction(s.db, () => {
        s.insert("outer")();
        assert.throws(() =>
          transaction(s.db, () => {
            s.insert("inner")();
            throw new Error("inner fails (test)");
          }),
        );
        transaction(s.db, s.insert("inner2"));
      });
      assert.deepEqual(s.seen(), ["inner2", "outer"]);
    } finally {
      s.close();
    }
  });
});
