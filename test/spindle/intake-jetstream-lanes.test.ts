/**
 * Jetstream events are handled concurrently across DIDs, in order per DID, with a bound
 * (issue 12), and the stored cursor never passes an event whose handling has not finished.
 * Real loopback servers: the Jetstream stand-in, the PLC stand-in, the PDS stand-in, and a
 * "slow PDS" in front of it that holds every request until the test opens its gate; real
 * SQLite; the kill test runs the intake in a child process and SIGKILLs it mid-handling.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { JetstreamCursor } from "../../src/spindle/db/index.ts";
import type { JetstreamConsumerOptions } from "../../src/spindle/intake/index.ts";
import { commitEvent, JetstreamStandIn } from "../support/jetstream-standin.ts";
import { atprotoStandIns, cleanupsAfterEach, waitFor } from "./support/intake-kit.ts";
import { jetstreamIntake, spindleDb } from "./support/jetstream-intake.ts";

const OWNER = "did:plc:ownerownerownerownerowne";
const SLOW = "did:plc:slowslowslowslowslowslow";
const SLOW2 = "did:plc:slow2slow2slow2slow2slow";
const NEWBIE = "did:plc:newbienewbienewbienewbie";
const COLLAB = "did:plc:collaboratorcollaborato";
const HOST = "spindle.example.com";

const dir = mkdtempSync(join(tmpdir(), "loom-intake-lanes-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let dbN = 0;

type Line = Record<string, unknown> & { msg: string };

const cleanup = cleanupsAfterEach();
const world = atprotoStandIns();

/** A PDS that holds every request until `open()`, then answers with the PDS stand-in's reply. */
interface SlowPds {
  url: string;
  requests: string[];
  open(): void;
  stop(): Promise<void>;
}

async function startSlowPds(): Promise<SlowPds> {
  let open = () => {};
  const gate = new Promise<void>((r) => {
    open = r;
  });
  const requests: string[] = [];
  const server: Server = createServer(async (req, res) => {
    requests.push(req.url ?? "/");
    await gate;
    try {
      const r = await fetch(`${world.pds.url}${req.url ?? "/"}`);
      res.writeHead(r.status, { "content-type": r.headers.get("content-type") ?? "application/json" });
      res.end(Buffer.from(await r.arrayBuffer()));
    } catch {
      res.destroy();
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    open,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** `did`'s DID document names `url` as its PDS. */
function identityAt(did: string, url: string): void {
  world.plc.setDocument(did, {
    ...world.pds.didDocument(did),
    service: [{ id: "#atproto_pds", type: "AtprotoPersonalDataServer", serviceEndpoint: url }],
  });
}

/** A repo record of `did` on this spindle, with one collaborator record about it on the PDS. */
function repoWithCollaborator(did: string, rkey: string, name: string) {
  world.pds.putRecord(did, "sh.tangled.repo.collaborator", `${rkey}c`, {
    subject: COLLAB,
    repo: `at://${did}/sh.tangled.repo/${rkey}`,
    createdAt: "2026-02-10T12:00:00Z",
  });
  return commitEvent({
    did,
    collection: "sh.tangled.repo",
    rkey,
    record: { name, knot: "k.example", spindle: HOST },
  });
}

const memberEvent = (subject: string, rkey: string) =>
  commitEvent({
    did: OWNER,
    collection: "sh.tangled.spindle.member",
    rkey,
    record: { subject, instance: HOST, createdAt: "2026-02-10T12:00:00Z" },
  });

async function setup(consumer: Partial<JetstreamConsumerOptions> = {}) {
  const { plc, pds } = world;
  const js = await JetstreamStandIn.start();
  cleanup(() => js.stop());
  const slow = await startSlowPds();
  cleanup(() => slow.stop());
  const { db, rbac, knownDids } = spindleDb(join(dir, `l${dbN++}`, "spindle.db"), OWNER, [SLOW, SLOW2]);
  cleanup(() => db.close());
  for (const did of [OWNER, NEWBIE, COLLAB]) pds.registerIdentity(plc, did);
  for (const did of [SLOW, SLOW2]) identityAt(did, slow.url);
  const lines: Line[] = [];
  const log = pino({ level: "debug" }, { write: (s: string) => lines.push(JSON.parse(s)) });
  const cursor = new JetstreamCursor(db);
  const { consumer: c } = jetstreamIntake({
    db,
    rbac,
    knownDids,
    cursor,
    log,
    endpoint: js.url,
    plcUrl: plc.url,
    owner: OWNER,
    hostname: HOST,
    xrpcTimeoutMs: 60_000,
    nowUs: () => Date.now() * 1000,
    consumer,
  });
  cleanup(async () => {
    slow.open();
    await c.stop();
  });
  const handled = () => lines.filter((l) => l.msg === "jetstream event handled");
  const handledOf = (did: string) => handled().filter((l) => l.did === did);
  return { js, slow, db, rbac, cursor, consumer: c, lines, handled, handledOf };
}

describe("Jetstream events across DIDs", () => {
  it("a slow PDS for one DID does not hold up another DID's member event; the cursor waits for the slow one", async () => {
    const h = await setup();
    h.consumer.start();
    await h.js.waitForConnections(1);
    const [slowRepo] = h.js.push(repoWithCollaborator(SLOW, "3lslowrepo01", "slow"));
    await waitFor(() => h.slow.requests.length > 0, "the slow DID's handler waiting on its PDS");
    const [member] = h.js.push(memberEvent(NEWBIE, "3lmember0001"));
    await waitFor(() => h.rbac.isMember(NEWBIE), "the member event applied while the slow PDS holds");
    assert.deepEqual(h.handledOf(SLOW), [], "the slow DID's event is still in hand");
    const stored = h.cursor.get();
    assert.ok(
      stored !== null && stored <= (slowRepo?.time_us as number),
      `the stored cursor ${stored} passed the unfinished event at ${slowRepo?.time_us}`,
    );
    h.slow.open();
    await waitFor(() => h.handledOf(SLOW).length === 1, "the slow DID's event");
    assert.equal(h.rbac.hasRepoPermission(COLLAB, { ownerDid: SLOW, name: "slow" }, "repo:push"), true);
    await waitFor(() => h.cursor.get() === (member?.time_us as number) + 1, "the cursor past both");
  });

  it("keeps each DID's events in order: a fast event waits behind its DID's slow one", async () => {
    const h = await setup();
    h.consumer.start();
    await h.js.waitForConnections(1);
    h.js.push(repoWithCollaborator(SLOW, "3lslowrepo02", "first"));
    h.js.push(
      commitEvent({
        did: SLOW,
        collection: "sh.tangled.repo",
        rkey: "3lslowrepo03",
        record: { name: "second", knot: "k.example", spindle: "other.example.com" },
      }),
    );
    h.js.push(memberEvent(NEWBIE, "3lmember0002"));
    await waitFor(() => h.rbac.isMember(NEWBIE), "another DID's event");
    assert.deepEqual(h.handledOf(SLOW), [], "the fast second event waited behind the slow first");
    h.slow.open();
    await waitFor(() => h.handledOf(SLOW).length === 2, "both of the slow DID's events");
    assert.deepEqual(
      h.handledOf(SLOW).map((l) => l.rkey),
      ["3lslowrepo02", "3lslowrepo03"],
    );
  });

  it("a new member's first event right behind its member event is handled, not filtered out", async () => {
    const h = await setup();
    h.consumer.start();
    await h.js.waitForConnections(1);
    h.js.push(repoWithCollaborator(SLOW, "3lslowrepo04", "held"));
    await waitFor(() => h.slow.requests.length > 0, "the slow DID's handler waiting");
    world.pds.putRecord(NEWBIE, "sh.tangled.repo", "3lnewrepo001", { name: "fresh" });
    h.js.push(
      memberEvent(NEWBIE, "3lmember0003"),
      commitEvent({
        did: NEWBIE,
        collection: "sh.tangled.repo",
        rkey: "3lnewrepo001",
        record: { name: "fresh", knot: "k.example", spindle: HOST },
      }),
    );
    await waitFor(() => h.handledOf(NEWBIE).length === 1, "the new member's repo event");
    assert.equal(h.rbac.hasRepoPermission(NEWBIE, { ownerDid: NEWBIE, name: "fresh" }, "repo:owner"), true);
  });

  it("runs at most maxConcurrent handlers at once", async () => {
    const h = await setup({ maxConcurrent: 1 });
    h.consumer.start();
    await h.js.waitForConnections(1);
    h.js.push(
      repoWithCollaborator(SLOW, "3lslowrepo05", "one"),
      repoWithCollaborator(SLOW2, "3lslowrepo06", "two"),
    );
    await waitFor(() => h.slow.requests.length > 0, "the first handler waiting");
    // The second DID's event has arrived but waits for the one slot.
    await waitFor(() => h.consumer.pending === 2, "both events received");
    assert.equal(h.slow.requests.length, 1, "only one handler reached its PDS");
    h.slow.open();
    await waitFor(() => h.handledOf(SLOW2).length === 1, "the second DID's event after the first");
    assert.equal(h.handledOf(SLOW).length, 1);
  });
});

describe("the Jetstream cursor across a crash", () => {
  it("SIGKILL while one DID's event is in hand: after a restart it is handled, nothing lost", async () => {
    const js = await JetstreamStandIn.start();
    cleanup(() => js.stop());
    const slow = await startSlowPds();
    cleanup(() => slow.stop());
    const dbPath = join(dir, `l${dbN++}`, "spindle.db");
    const { db, rbac } = spindleDb(dbPath, OWNER, [SLOW]);
    cleanup(() => db.close());
    for (const did of [OWNER, NEWBIE, COLLAB]) world.pds.registerIdentity(world.plc, did);
    identityAt(SLOW, slow.url);
    const child = (): Promise<ChildProcess> =>
      new Promise((resolve, reject) => {
        const p = spawn(
          process.execPath,
          [fileURLToPath(new URL("support/jetstream-child.ts", import.meta.url))],
          {
            env: {
              ...process.env,
              LOOM_JS_URL: js.url,
              LOOM_PLC_URL: world.plc.url,
              LOOM_DB: dbPath,
              LOOM_OWNER: OWNER,
              LOOM_HOST: HOST,
            },
            stdio: ["ignore", "pipe", "ignore"],
          },
        );
        cleanup(() => {
          p.kill("SIGKILL");
        });
        p.once("error", reject);
        p.stdout?.once("data", () => resolve(p));
      });
    const first = await child();
    await js.waitForConnections(1);
    const [slowRepo] = js.push(repoWithCollaborator(SLOW, "3lslowrepo07", "crash"));
    await waitFor(() => slow.requests.length > 0, "the slow DID's handler waiting on its PDS");
    const [member] = js.push(memberEvent(NEWBIE, "3lmember0004"));
    await waitFor(() => rbac.isMember(NEWBIE), "the member event applied");
    const cursor = new JetstreamCursor(db);
    const stored = cursor.get();
    assert.ok(
      stored !== null && stored <= (slowRepo?.time_us as number),
      `the stored cursor ${stored} passed the unfinished event at ${slowRepo?.time_us}`,
    );
    first.kill("SIGKILL");
    await new Promise((r) => first.once("exit", r));
    // The collaborator listing was in hand when the process died: not granted.
    assert.equal(rbac.hasRepoPermission(COLLAB, { ownerDid: SLOW, name: "crash" }, "repo:push"), false);
    slow.open();
    // Restart: the stored cursor asks for the slow event again; the member event after it is
    // handled again too (an upsert).
    await child();
    await js.waitForConnections(2);
    await waitFor(
      () => rbac.hasRepoPermission(COLLAB, { ownerDid: SLOW, name: "crash" }, "repo:push"),
      "the collaborator granted after the restart",
    );
    assert.equal(rbac.isMember(NEWBIE), true);
    await waitFor(() => cursor.get() === (member?.time_us as number) + 1, "the cursor past both");
  });
});
