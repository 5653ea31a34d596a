/**
 * The knot stand-in's Gen2 `/events` (gen2 §2.3) read with parseEnvelope: `created` above 2^53
 * arrives exact, `?cursor=` resumes after it, a missing cursor replays from the oldest, and a
 * long backlog is cut with 1013 after the drain cap.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { WebSocket } from "ws";
import { type Envelope, formatCursor, parseEnvelope } from "../../src/protocol/envelope.ts";
import { FIRST_CREATED, KnotGitServer } from "../support/knot-git-server.ts";

interface Session {
  envelopes: Envelope[];
  closed: Promise<{ code: number; reason: string }>;
  ws: WebSocket;
  waitFor(n: number): Promise<void>;
}

async function connect(url: string): Promise<Session> {
  const ws = new WebSocket(url);
  const envelopes: Envelope[] = [];
  const waiters: Array<() => void> = [];
  ws.on("message", (data) => {
    envelopes.push(parseEnvelope(String(data)));
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on("close", (code, reason) => resolve({ code, reason: String(reason) })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const waitFor = async (n: number) => {
    while (envelopes.length < n) await new Promise<void>((r) => waiters.push(r));
  };
  return { envelopes, closed, ws, waitFor };
}

describe("knot stand-in /events (Gen2)", () => {
  let knot: KnotGitServer;

  before(async () => {
    knot = await KnotGitServer.start({ drainCapBatches: 2 });
  });
  after(async () => {
    await knot.stop();
  });

  it("replays from the oldest without a cursor; created exact above 2^53", async () => {
    for (let i = 0; i < 3; i++) knot.publish("sh.tangled.git.refUpdate", { i });
    const s = await connect(`ws://${knot.host}/events`);
    await s.waitFor(3);
    assert.deepEqual(
      s.envelopes.map((e) => e.created),
      [FIRST_CREATED, FIRST_CREATED + 1n, FIRST_CREATED + 2n],
    );
    assert.ok(Number(FIRST_CREATED) === Number(FIRST_CREATED + 1n), "premise: these collide as doubles");
    assert.deepEqual(
      s.envelopes.map((e) => e.event),
      [{ i: 0 }, { i: 1 }, { i: 2 }],
    );
    // Live events follow the replay.
    knot.publish("sh.tangled.repo.collaboratorUpdate", { op: "add" });
    await s.waitFor(4);
    assert.equal(s.envelopes[3]?.nsid, "sh.tangled.repo.collaboratorUpdate");
    s.ws.close();
    assert.equal(knot.cursors[0], null);
  });

  it("resumes strictly after ?cursor=", async () => {
    const cursor = formatCursor(FIRST_CREATED + 1n);
    const s = await connect(`ws://${knot.host}/events?cursor=${cursor}`);
    await s.waitFor(2);
    assert.deepEqual(
      s.envelopes.map((e) => e.created),
      [FIRST_CREATED + 2n, FIRST_CREATED + 3n],
    );
    s.ws.close();
  });

  it("closes with 1013 after the drain cap of full 100-event batches", async () => {
    const start = knot.events.length;
    for (let i = 0; i < 250; i++) knot.publish("sh.tangled.git.refUpdate", { n: i });
    const from = knot.events[start - 1]?.created ?? 0n;
    const s = await connect(`ws://${knot.host}/events?cursor=${formatCursor(from)}`);
    const { code, reason } = await s.closed;
    assert.equal(code, 1013);
    assert.match(reason, /drain cap/);
    assert.equal(s.envelopes.length, 200, "two full batches, then the close");
    // Reconnecting from the last seen cursor continues where it stopped.
    const last = s.envelopes.at(-1)?.created ?? 0n;
    const t = await connect(`ws://${knot.host}/events?cursor=${formatCursor(last)}`);
    await t.waitFor(50);
    assert.deepEqual(t.envelopes[0]?.event, { n: 200 });
    t.ws.close();
  });
});
