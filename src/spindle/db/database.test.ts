import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  JetstreamCursor,
  KnotCursors,
  KnownDids,
  MIGRATIONS,
  openDatabase,
  Repos,
  SpindleMembers,
  schemaVersion,
  transaction,
} from "./index.ts";

const dir = mkdtempSync(join(tmpdir(), "loom-db-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshPath = () => join(dir, `db-${n++}`, "spindle.db");

describe("openDatabase", () => {
  it("creates the file in WAL mode with foreign keys and every migration applied", () => {
    const path = freshPath();
    const db = openDatabase(path);
    assert.equal(db.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
    assert.equal(db.prepare("PRAGMA foreign_keys").get()?.foreign_keys, 1);
    assert.equal(db.prepare("PRAGMA busy_timeout").get()?.timeout, 5000);
    assert.equal(schemaVersion(db), MIGRATIONS.length);
    const tables = db
      .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
      .all()
      .map((r) => r.name);
    for (const t of [
      "_jetstream",
      "known_dids",
      "repos",
      "spindle_members",
      "cursors",
      "secrets",
      "auth_jti",
    ]) {
      assert.ok(tables.includes(t), `missing table ${t}`);
    }
    db.close();
  });

  it("keeps data across reopen and runs only newer migrations", () => {
    const path = freshPath();
    const first = openDatabase(path, { migrations: MIGRATIONS.slice(0, 1) });
    assert.equal(schemaVersion(first), 1);
    new KnownDids(first).add("did:plc:alice");
    first.close();
    const again = openDatabase(path);
    assert.equal(schemaVersion(again), MIGRATIONS.length);
    assert.deepEqual(new KnownDids(again).all(), ["did:plc:alice"]);
    again.close();
  });

  it("refuses a database newer than the code", () => {
    const path = freshPath();
    openDatabase(path).close();
    assert.throws(
      () => openDatabase(path, { migrations: MIGRATIONS.slice(0, 2) }),
      /newer than this build knows/,
    );
  });

  it("rolls back a failing migration as a whole", () => {
    const path = freshPath();
    const bad = [
      ...MIGRATIONS,
      { version: MIGRATIONS.length + 1, name: "broken", sql: "CREATE TABLE x (a); SELEC nonsense" },
    ];
    assert.throws(() => openDatabase(path, { migrations: bad }), /migration \d+ \(broken\) failed/);
    const db = openDatabase(path);
    assert.equal(schemaVersion(db), MIGRATIONS.length);
    assert.equal(db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'x'").get(), undefined);
    db.close();
  });
});

describe("accessors", () => {
  const db = openDatabase(":memory:");

  it("known DIDs", () => {
    const k = new KnownDids(db);
    k.add("did:plc:b");
    k.add("did:plc:a");
    k.add("did:plc:a");
    assert.deepEqual(k.all(), ["did:plc:a", "did:plc:b"]);
    k.remove("did:plc:b");
    assert.equal(k.has("did:plc:b"), false);
  });

  it("cursors", () => {
    const j = new JetstreamCursor(db);
    assert.equal(j.get(), null);
    j.set(1_700_000_000_000_001);
    j.set(1_700_000_000_000_002);
    assert.equal(j.get(), 1_700_000_000_000_002);
    assert.throws(() => j.set(-1), RangeError);
    const k = new KnotCursors(db);
    assert.equal(k.get("knot.example"), null);
    k.set("knot.example", "42");
    k.set("knot.example", "43");
    assert.equal(k.get("knot.example"), "43");
  });

  it("members", () => {
    const m = new SpindleMembers(db);
    const rec = { did: "did:plc:owner", rkey: "3l1", instance: "spindle.example", subject: "did:plc:bob" };
    m.add(rec);
    m.add({ ...rec, rkey: "3l2" });
    assert.equal(m.list().length, 1, "(did, instance, subject) is unique");
    assert.equal(m.removeByRkey("did:plc:owner", "3l2"), null);
    assert.equal(m.removeByRkey("did:plc:owner", "3l1")?.subject, "did:plc:bob");
    assert.deepEqual(m.list("spindle.example"), []);
  });

  it("repos by name, by DID, and a Gen1 row gaining its DID", () => {
    const r = new Repos(db);
    r.upsert({ knot: "knot.a", owner: "did:plc:alice", name: "loom" });
    const both = r.upsert({
      knot: "knot.b",
      owner: "did:plc:alice",
      name: "loom",
      repoDid: "did:plc:repoloom",
      rkey: "3lr",
    });
    assert.equal(both.repoDid, "did:plc:repoloom");
    assert.equal(both.knot, "knot.b");
    assert.equal(r.byName("did:plc:alice", "loom")?.repoDid, "did:plc:repoloom");
    r.upsert({ knot: "knot.a", owner: "did:plc:carol", repoDid: "did:plc:onlydid" });
    assert.equal(r.byDid("did:plc:onlydid")?.name, null);
    assert.deepEqual(r.knots(), ["knot.a", "knot.b"]);
    assert.throws(
      () => r.upsert({ knot: "knot.a", owner: "did:plc:mallory", repoDid: "did:plc:onlydid" }),
      /another owner/,
    );
    assert.throws(() => r.upsert({ knot: "knot.a", owner: "did:plc:x" }), TypeError);
    assert.equal(r.remove({ repoDid: "did:plc:onlydid" }), true);
    assert.equal(r.remove({ owner: "did:plc:alice", name: "nope" }), false);
  });

  it("transaction commits or rolls back", () => {
    const k = new KnownDids(db);
    assert.throws(() =>
      transaction(db, () => {
        k.add("did:plc:tx");
        throw new Error("boom");
      }),
    );
    assert.equal(k.has("did:plc:tx"), false);
    transaction(db, () => k.add("did:plc:tx"));
    assert.equal(k.has("did:plc:tx"), true);
  });
});
