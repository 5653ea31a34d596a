/**
 * The Jetstream consumer and its handlers (§1.2) against the Jetstream stand-in, a PDS stand-in
 * and the PLC stand-in, over real loopback sockets with a real SQLite file.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { pino } from "pino";
import {
  type DatabaseSync,
  JetstreamCursor,
  KnownDids,
  Repos,
  SpindleMembers,
} from "../../src/spindle/db/index.ts";
import type {
  DidFilter,
  JetstreamConsumer,
  JetstreamConsumerOptions,
} from "../../src/spindle/intake/index.ts";
import type { Rbac } from "../../src/spindle/rbac/index.ts";
import { commitEvent, exampleJetstreamEvents, JetstreamStandIn } from "../support/jetstream-standin.ts";
import { atprotoStandIns, cleanupsAfterEach, waitFor as pollUntil } from "./support/intake-kit.ts";
import { jetstreamIntake, spindleDb } from "./support/jetstream-intake.ts";

const OWNER = "did:plc:ownerownerownerownerowne";
const MEMBER = "did:plc:abcdefghijklmnopqrstuvwx";
const COLLAB = "did:plc:collaboratorcollaborato";
const STRANGER = "did:plc:strangerstrangerstranger";
const HOST = "spindle.example.com";
const EXAMPLE_T0 = 1739188800000000;

const dir = mkdtempSync(join(tmpdir(), "loom-intake-js-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let dbN = 0;

type Line = Record<string, unknown> & { msg: string };

/** This file's waits are short: its stand-ins answer at once. */
const waitFor = (cond: () => boolean, what: string, timeoutMs = 5000) => pollUntil(cond, what, timeoutMs);

const cleanup = cleanupsAfterEach();
const world = atprotoStandIns();

interface Harness {
  js: JetstreamStandIn;
  db: DatabaseSync;
  rbac: Rbac;
  filter: DidFilter;
  knots: string[];
  lines: Line[];
  consumer: JetstreamConsumer;
  cursor: JetstreamCursor;
  /** Log lines "jetstream event handled" so far. */
  handled(): Line[];
  /** Builds a fresh consumer on the same database (a restart). */
  restart(): JetstreamConsumer;
}

async function setup(
  opts: {
    nowUs?: () => number;
    consumer?: Partial<JetstreamConsumerOptions>;
    /** Members already on record before the consumer starts. */
    members?: string[];
  } = {},
): Promise<Harness> {
  const js = await JetstreamStandIn.start();
  cleanup(() => js.stop());
  const { db, rbac, knownDids } = spindleDb(join(dir, `j${dbN++}`, "spindle.db"), OWNER, opts.members);
  cleanup(() => db.close());
  const lines: Line[] = [];
  const log = pino({ level: "debug" }, { write: (s: string) => lines.push(JSON.parse(s)) });
  const knots: string[] = [];
  const cursor = new JetstreamCursor(db);
  const make = () => {
    const { consumer, filter } = jetstreamIntake({
      db,
      rbac,
      knownDids,
      cursor,
      log,
      endpoint: js.url,
      plcUrl: world.plc.url,
      owner: OWNER,
      hostname: HOST,
      xrpcTimeoutMs: 2000,
      addKnot: (k) => knots.push(k),
      nowUs: opts.nowUs ?? (() => EXAMPLE_T0 - 1000),
      ...(opts.consumer && { consumer: opts.consumer }),
    });
    cleanup(() => consumer.stop());
    return { consumer, filter };
  };
  const first = make();
  const h: Harness = {
    js,
    db,
    rbac,
    filter: first.filter,
    knots,
    lines,
    consumer: first.consumer,
    cursor,
    handled: () => lines.filter((l) => l.msg === "jetstream event handled"),
    restart: () => {
      const next = make();
      h.filter = next.filter;
      h.consumer = next.consumer;
      return next.consumer;
    },
  };
  return h;
}

/** Owner's PDS-side state for the example repo: the repo record and two collaborator records. */
function seedExampleRecords(): void {
  for (const did of [OWNER, MEMBER, COLLAB])
    world.pds.registerIdentity(world.plc, did, `${did.slice(8, 14)}.test`);
  world.pds.putRecord(MEMBER, "sh.tangled.repo", "3lxyzrepo0001", {
    $type: "sh.tangled.repo",
    name: "core",
    knot: "knot1.tangled.sh",
    spindle: HOST,
    createdAt: "2025-06-01T00:00:00Z",
  });
  world.pds.putRecord(MEMBER, "sh.tangled.repo.collaborator", "3lxyzcol00001", {
    subject: COLLAB,
    repo: `at://${MEMBER}/sh.tangled.repo/3lxyzrepo0001`,
    createdAt: "2026-02-10T12:00:00Z",
  });
  // A collaborator on a *different* repo of the same owner: upstream would grant it here too.
  world.pds.putRecord(MEMBER, "sh.tangled.repo.collaborator", "3lxyzcol00002", {
    subject: STRANGER,
    repo: `at://${MEMBER}/sh.tangled.repo/3lotherrepo01`,
    createdAt: "2026-02-10T12:00:00Z",
  });
}

const CORE = { ownerDid: MEMBER, name: "core" };

describe("JetstreamConsumer", () => {
  it("subscribes to the three collections with a cursor, and applies the recorded example events", async () => {
    seedExampleRecords();
    const h = await setup();
    h.consumer.start();
    await h.js.waitForConnections(1);
    const q = new URLSearchParams(h.js.queries[0]);
    assert.deepEqual(q.getAll("wantedCollections"), [
      "sh.tangled.spindle.member",
      "sh.tangled.repo",
      "sh.tangled.repo.collaborator",
    ]);
    assert.equal(q.get("cursor"), String(EXAMPLE_T0 - 1000), "no stored cursor: now");

    const [memberCreate, repoUpdate, collabCreate, memberDelete] = exampleJetstreamEvents();
    h.js.push(memberCreate!);
    await waitFor(() => h.handled().length === 1, "member create");
    assert.equal(h.rbac.isMember(MEMBER), true);
    assert.equal(new KnownDids(h.db).has(MEMBER), true);
    assert.equal(h.filter.has(MEMBER), true);
    assert.equal(new SpindleMembers(h.db).list(HOST)[0]?.subject, MEMBER);
    assert.equal(h.cursor.get(), EXAMPLE_T0 + 1, "time_us + 1 stored after a handled event");

    h.js.push(repoUpdate!);
    await waitFor(() => h.handled().length === 2, "repo update");
    assert.equal(new Repos(h.db).byName(MEMBER, "core")?.knot, "knot1.tangled.sh");
    assert.equal(h.rbac.hasRepoPermission(MEMBER, CORE, "repo:invite"), true);
    assert.deepEqual(h.knots, ["knot1.tangled.sh"]);
    assert.deepEqual(h.rbac.collaborators(CORE), [COLLAB], "only collaborator records about this repo");
    assert.equal(h.rbac.hasRepoPermission(STRANGER, CORE, "repo:push"), false);

    // Collaborator create: COLLAB was already granted via listRecords; revoke to see it granted again.
    h.rbac.revokeCollaborator(COLLAB, CORE);
    h.js.push(collabCreate!);
    await waitFor(() => h.handled().length === 3, "collaborator create");
    assert.equal(h.rbac.hasRepoPermission(COLLAB, CORE, "repo:push"), true);
    assert.equal(h.handled()[2]?.result, "applied");

    h.js.push(memberDelete!);
    await waitFor(() => h.handled().length === 4, "member delete");
    assert.equal(h.rbac.isMember(MEMBER), false);
    assert.equal(h.filter.has(MEMBER), false);
    assert.equal(new KnownDids(h.db).has(MEMBER), false);
    assert.equal(h.cursor.get(), (memberDelete?.time_us ?? 0) + 1);

    // The member is out of the filter: their repo events are no longer seen.
    h.js.push(
      commitEvent({
        did: MEMBER,
        collection: "sh.tangled.repo",
        rkey: "3lnewrepo0001",
        record: { name: "later", knot: "knot2.example", spindle: HOST },
      }),
    );
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(new Repos(h.db).byName(MEMBER, "later"), null);
    assert.equal(h.handled().length, 4);
  });

  it("drops events from DIDs outside owner ∪ known_dids, and non-commit kinds", async () => {
    const h = await setup({ nowUs: () => Date.now() * 1000 });
    h.consumer.start();
    await h.js.waitForConnections(1);
    h.js.push(
      commitEvent({
        did: STRANGER,
        collection: "sh.tangled.repo",
        rkey: "3lsr",
        record: { name: "x", knot: "k.example", spindle: HOST },
      }),
      commitEvent({
        did: STRANGER,
        collection: "sh.tangled.repo.collaborator",
        rkey: "3lsc",
        record: { subject: STRANGER, repo: `at://${OWNER}/sh.tangled.repo/3lor` },
      }),
      { did: OWNER, time_us: 0, kind: "identity", identity: { did: OWNER, handle: "owner.test" } },
      commitEvent({
        did: OWNER,
        collection: "sh.tangled.repo",
        rkey: "3lor",
        record: { name: "mine", knot: "k.example", spindle: HOST },
      }),
    );
    await waitFor(() => h.handled().length === 1, "the owner's repo");
    assert.equal(new Repos(h.db).byName(STRANGER, "x"), null);
    assert.equal(new Repos(h.db).byName(OWNER, "mine")?.knot, "k.example");
    assert.equal(h.handled()[0]?.did, OWNER);
    assert.equal(h.handled().length, 1, "the stranger's collaborator record was never handled");
    assert.equal(h.rbac.hasRepoPermission(STRANGER, { ownerDid: OWNER, name: "mine" }, "repo:push"), false);
  });

  const rejections: [string, () => ReturnType<typeof commitEvent>, RegExp, (h: Harness) => void][] = [
    [
      "member record for another spindle instance",
      () =>
        commitEvent({
          did: OWNER,
          collection: "sh.tangled.spindle.member",
          rkey: "3lm1",
          record: { subject: STRANGER, instance: "other.example", createdAt: "2026-01-01T00:00:00Z" },
        }),
      /another spindle instance/,
      (h) => assert.equal(h.rbac.isMember(STRANGER), false),
    ],
    [
      "member invited by a non-owner",
      () =>
        commitEvent({
          did: MEMBER,
          collection: "sh.tangled.spindle.member",
          rkey: "3lm2",
          record: { subject: STRANGER, instance: HOST, createdAt: "2026-01-01T00:00:00Z" },
        }),
      /may not invite members/,
      (h) => {
        assert.equal(h.rbac.isMember(STRANGER), false);
        assert.equal(h.filter.has(STRANGER), false);
      },
    ],
    [
      "member record whose subject is not a DID",
      () =>
        commitEvent({
          did: OWNER,
          collection: "sh.tangled.spindle.member",
          rkey: "3lm3",
          record: { subject: 42, instance: HOST },
        }),
      /subject is not a DID/,
      () => {},
    ],
    [
      "repo for another spindle",
      () =>
        commitEvent({
          did: OWNER,
          collection: "sh.tangled.repo",
          rkey: "3lr1",
          record: { name: "elsewhere", knot: "k.example", spindle: "other.example" },
        }),
      /another spindle/,
      (h) => {
        assert.equal(new Repos(h.db).byName(OWNER, "elsewhere"), null);
        assert.deepEqual(h.knots, []);
      },
    ],
    [
      "repo without a spindle",
      () =>
        commitEvent({
          did: OWNER,
          collection: "sh.tangled.repo",
          rkey: "3lr2",
          record: { name: "nospindle", knot: "k.example" },
        }),
      /names no spindle/,
      (h) => assert.equal(new Repos(h.db).byName(OWNER, "nospindle"), null),
    ],
    [
      "repo with a knot that is not a host",
      () =>
        commitEvent({
          did: OWNER,
          collection: "sh.tangled.repo",
          rkey: "3lr3",
          record: { name: "r", knot: "evil.example/x?", spindle: HOST },
        }),
      /is not a host name/,
      (h) => assert.deepEqual(h.knots, []),
    ],
    [
      "repo whose name escapes the key space",
      () =>
        commitEvent({
          did: OWNER,
          collection: "sh.tangled.repo",
          rkey: "3lr4",
          record: { name: "../x", knot: "k.example", spindle: HOST },
        }),
      /not a valid repo name/,
      (h) => assert.deepEqual(h.knots, []),
    ],
    [
      "collaborator record written by someone other than the repo owner",
      () =>
        commitEvent({
          did: OWNER,
          collection: "sh.tangled.repo.collaborator",
          rkey: "3lc1",
          record: {
            subject: STRANGER,
            repo: `at://${MEMBER}/sh.tangled.repo/3lxyzrepo0001`,
            createdAt: "2026-01-01T00:00:00Z",
          },
        }),
      /collaborator record by did:plc:owner\S* for a repo owned by did:plc:abcdef/,
      (h) => assert.equal(h.rbac.hasRepoPermission(STRANGER, CORE, "repo:push"), false),
    ],
    [
      "collaborator on a repo that is not on this spindle",
      () =>
        commitEvent({
          did: OWNER,
          collection: "sh.tangled.repo.collaborator",
          rkey: "3lc2",
          record: {
            subject: COLLAB,
            repo: `at://${OWNER}/sh.tangled.repo/3lownerrepo1`,
            createdAt: "2026-01-01T00:00:00Z",
          },
        }),
      /is not on this spindle/,
      (h) =>
        assert.equal(
          h.rbac.hasRepoPermission(COLLAB, { ownerDid: OWNER, name: "unlisted" }, "repo:push"),
          false,
        ),
    ],
    [
      "collaborator whose subject does not resolve",
      () =>
        commitEvent({
          did: OWNER,
          collection: "sh.tangled.repo.collaborator",
          rkey: "3lc3",
          record: {
            subject: "did:plc:nobodynobodynobodynobody",
            repo: `at://${OWNER}/sh.tangled.repo/3lownerrepo1`,
          },
        }),
      /subject unresolved/,
      () => {},
    ],
    [
      "collaborator naming a repo record that does not exist",
      () =>
        commitEvent({
          did: OWNER,
          collection: "sh.tangled.repo.collaborator",
          rkey: "3lc4",
          record: { subject: COLLAB, repo: `at://${OWNER}/sh.tangled.repo/3lmissing001` },
        }),
      /could not be read: .*RecordNotFound/,
      () => {},
    ],
    [
      "collaborator with a repo that is not an at-uri",
      () =>
        commitEvent({
          did: OWNER,
          collection: "sh.tangled.repo.collaborator",
          rkey: "3lc5",
          record: { subject: COLLAB, repo: "https://example.com/x" },
        }),
      /not a sh.tangled.repo at-uri/,
      () => {},
    ],
  ];
  for (const [name, event, reason, check] of rejections) {
    it(`rejects or ignores: ${name}`, async () => {
      seedExampleRecords();
      world.pds.putRecord(OWNER, "sh.tangled.repo", "3lownerrepo1", {
        name: "unlisted",
        knot: "k.example",
        spindle: "other.example",
      });
      const h = await setup({ nowUs: () => Date.now() * 1000, members: [MEMBER] });
      h.consumer.start();
      await h.js.waitForConnections(1);
      h.js.push(event());
      await waitFor(() => h.handled().length === 1, name);
      const line = h.handled()[0] as Line;
      assert.notEqual(line.result, "applied");
      assert.match(String(line.reason), reason);
      check(h);
    });
  }

  it("registers the repo and follows its knot even when the owner's PDS hangs", async () => {
    seedExampleRecords();
    const h = await setup({ nowUs: () => Date.now() * 1000 });
    h.consumer.start();
    await h.js.waitForConnections(1);
    world.pds.behaviour = { hang: true };
    cleanup(() => {
      world.pds.behaviour = {};
    });
    h.js.push(
      commitEvent({
        did: OWNER,
        collection: "sh.tangled.repo",
        rkey: "3lhang",
        record: { name: "hung", knot: "k.example", spindle: HOST },
      }),
    );
    await waitFor(() => h.handled().length === 1, "the repo", 8000);
    assert.deepEqual(h.knots, ["k.example"]);
    assert.equal(h.rbac.hasRepoPermission(OWNER, { ownerDid: OWNER, name: "hung" }, "repo:owner"), true);
    assert.match(String(h.handled()[0]?.reason), /collaborators not read/);
    assert.ok(
      h.lines.some(
        (l) =>
          l.msg === "listing collaborator records failed" && /took longer than 2000 ms/.test(String(l.err)),
      ),
    );
  });

  it("an unreachable Jetstream: one log line per back-off step, not two per attempt", async () => {
    const h = await setup({ consumer: { endpoint: "ws://127.0.0.1:1/subscribe" } });
    h.consumer.start();
    const failed = () => h.lines.filter((l) => l.msg === "jetstream connection failed");
    await waitFor(() => failed().length >= 3, "three failed attempts");
    await h.consumer.stop();
    const about = h.lines.filter((l) => /connect/.test(l.msg));
    // The first attempt announces itself; every later one is only its failure, with the delay.
    assert.equal(about[0]?.msg, "connecting to jetstream");
    assert.deepEqual(
      about.slice(1).map((l) => l.msg),
      failed().map(() => "jetstream connection failed"),
    );
    for (const l of failed()) assert.equal(typeof l.delayMs, "number");
  });

  it("resumes from time_us + 1 after a reconnect; replayed events are not handled twice", async () => {
    seedExampleRecords();
    const h = await setup();
    h.consumer.start();
    await h.js.waitForConnections(1);
    const [memberCreate, repoUpdate] = exampleJetstreamEvents();
    h.js.push(memberCreate!, repoUpdate!);
    await waitFor(() => h.handled().length === 2, "two events");
    h.js.dropConnections();
    await h.js.waitForConnections(2);
    assert.equal(new URLSearchParams(h.js.queries[1]).get("cursor"), String((repoUpdate?.time_us ?? 0) + 1));
    const more = commitEvent({
      did: OWNER,
      collection: "sh.tangled.repo",
      rkey: "3lmore",
      record: { name: "more", knot: "k.example", spindle: HOST },
      timeUs: EXAMPLE_T0 + 500_000,
    });
    h.js.push(more);
    await waitFor(() => h.handled().length === 3, "the next event");
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(
      h.handled().map((l) => l.rkey),
      ["3lxyzmem00001", "3lxyzrepo0001", "3lmore"],
    );
    assert.ok(h.lines.some((l) => l.msg === "jetstream connection ended" && /1006/.test(String(l.reason))));
  });

  it("keeps its cursor across a restart and receives what was pushed while it was down", async () => {
    seedExampleRecords();
    const h = await setup();
    h.consumer.start();
    await h.js.waitForConnections(1);
    const [memberCreate, repoUpdate] = exampleJetstreamEvents();
    h.js.push(memberCreate!);
    // A filtered event moves the cursor in memory; stop() saves it.
    const stray = commitEvent({
      did: STRANGER,
      collection: "sh.tangled.repo",
      rkey: "3lstray",
      record: { name: "s", knot: "k.example", spindle: HOST },
      timeUs: EXAMPLE_T0 + 50,
    });
    h.js.push(stray);
    await waitFor(() => h.handled().length === 1, "member create");
    await new Promise((r) => setTimeout(r, 50));
    await h.consumer.stop();
    assert.equal(h.cursor.get(), EXAMPLE_T0 + 51, "stop saves the last processed time_us + 1");

    h.js.push(repoUpdate!); // while down
    const restarted = h.restart();
    assert.equal(h.filter.has(MEMBER), true, "the DID filter is rebuilt from known_dids");
    restarted.start();
    await h.js.waitForConnections(2);
    assert.equal(new URLSearchParams(h.js.queries[1]).get("cursor"), String(EXAMPLE_T0 + 51));
    await waitFor(() => h.handled().length === 2, "the event pushed while down");
    assert.equal(h.handled()[1]?.rkey, "3lxyzrepo0001");
  });

  it("replaces a cursor older than two days by now", async () => {
    const now = EXAMPLE_T0 + 10 * 86_400_000_000;
    const h = await setup({ nowUs: () => now });
    h.cursor.set(now - 3 * 86_400_000_000);
    h.consumer.start();
    await h.js.waitForConnections(1);
    assert.equal(new URLSearchParams(h.js.queries[0]).get("cursor"), String(now));
    assert.ok(h.lines.some((l) => l.msg === "jetstream cursor older than two days; starting from now"));
  });

  it("saves the in-memory cursor periodically", async () => {
    const h = await setup({ consumer: { cursorSaveMs: 50 } });
    h.consumer.start();
    await h.js.waitForConnections(1);
    h.js.push(
      commitEvent({
        did: STRANGER,
        collection: "sh.tangled.repo",
        rkey: "3lp",
        record: {},
        timeUs: EXAMPLE_T0 + 7,
      }),
    );
    await waitFor(() => h.cursor.get() === EXAMPLE_T0 + 8, "periodic save");
  });

  it("survives garbage, invalid UTF-8 and a 10 MB record; each gets a specific log line", async () => {
    const h = await setup({ nowUs: () => Date.now() * 1000 });
    h.consumer.start();
    await h.js.waitForConnections(1);
    h.js.sendRaw("garbage{");
    h.js.sendRaw('{"did":"did:plc:x","kind":"commit"}');
    h.js.sendRaw(
      JSON.stringify({
        did: OWNER,
        time_us: 5,
        kind: "commit",
        commit: { operation: "explode", collection: "sh.tangled.repo", rkey: "x" },
      }),
    );
    h.js.sendRaw(
      JSON.stringify({
        did: OWNER,
        time_us: 6,
        kind: "commit",
        commit: { operation: "create", collection: "sh.tangled.repo", rkey: "x", record: "nope" },
      }),
    );
    h.js.sendRaw(Buffer.from([0, 1, 2]), { binary: true });
    h.js.push(
      commitEvent({
        did: OWNER,
        collection: "sh.tangled.repo",
        rkey: "3lbig",
        record: { name: "big", knot: "k.example", spindle: HOST, description: "x".repeat(10 * 1024 * 1024) },
      }),
    );
    h.js.push(
      commitEvent({
        did: OWNER,
        collection: "sh.tangled.repo",
        rkey: "3lok1",
        record: { name: "ok1", knot: "k.example", spindle: HOST },
      }),
    );
    await waitFor(() => h.handled().length === 1, "the good event", 10_000);
    const dropped = h.lines.filter((l) => l.msg === "jetstream frame dropped").map((l) => String(l.reason));
    assert.match(dropped[0] as string, /frame is not JSON/);
    assert.match(dropped[1] as string, /time_us is missing/);
    assert.match(dropped[2] as string, /unknown commit operation "explode"/);
    assert.match(dropped[3] as string, /commit create without a record object/);
    assert.ok(h.lines.some((l) => l.msg === "binary frame ignored"));
    assert.ok(
      h.lines.some((l) => l.msg === "jetstream event dropped: record too large" && l.rkey === "3lbig"),
    );
    assert.equal(new Repos(h.db).byName(OWNER, "big"), null);

    h.js.sendRaw(Buffer.from([0x7b, 0xc3, 0x28, 0x7d]));
    await h.js.waitForConnections(2);
    assert.ok(
      h.lines.some((l) => l.msg === "jetstream connection ended" && /not valid UTF-8/.test(String(l.reason))),
    );
    h.js.push(
      commitEvent({
        did: OWNER,
        collection: "sh.tangled.repo",
        rkey: "3lok2",
        record: { name: "ok2", knot: "k.example", spindle: HOST },
      }),
    );
    await waitFor(() => h.handled().length === 2, "an event after the reconnect");
    assert.equal(new Repos(h.db).byName(OWNER, "ok2")?.knot, "k.example");
  });
});
