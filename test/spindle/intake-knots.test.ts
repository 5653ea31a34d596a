/**
 * Knot event-stream consumers (§1.3) against the knot stand-in over real loopback WebSockets,
 * with real SQLite files for the cursors.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, describe, it } from "node:test";
import { pino } from "pino";
import { type DatabaseSync, KnotCursors, openDatabase, Repos } from "../../src/spindle/db/index.ts";
import {
  KnotConsumers,
  type KnotConsumerTuning,
  type KnotEventHandler,
  knotEventsUrl,
  pipelineHandlers,
} from "../../src/spindle/intake/index.ts";
import type { PipelineIntake } from "../../src/spindle/pipelines/intake-contract.ts";
import {
  examplePipelineEnvelope,
  examplePipelineWire,
  goJson,
  KnotStandIn,
} from "../support/knot-standin.ts";
import { freePort } from "../support/ports.ts";

const dir = mkdtempSync(join(tmpdir(), "loom-intake-knots-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let dbN = 0;

type Line = Record<string, unknown> & { msg: string };

function captureLog() {
  const lines: Line[] = [];
  const log = pino({ level: "debug" }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { log, lines };
}

interface Accepted {
  knot: string;
  rkey: string;
  record: unknown;
}

/** A PipelineIntake that records what it got and can be told to fail or to wait. */
class RecordingIntake implements PipelineIntake {
  readonly accepted: Accepted[] = [];
  failNext = 0;
  gate: Promise<void> | null = null;
  inFlight = 0;
  maxInFlight = 0;
  async acceptPipeline(knot: string, rkey: string, record: unknown): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.gate) await this.gate;
      if (this.failNext > 0) {
        this.failNext--;
        throw new Error("disk full (test)");
      }
      this.accepted.push({ knot, rkey, record });
    } finally {
      this.inFlight--;
    }
  }
  rkeys(): string[] {
    return this.accepted.map((a) => a.rkey);
  }
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const FAST: KnotConsumerTuning = {
  backoff: { baseMs: 20, capMs: 100, minMs: 10, random: () => 0.5 },
  livenessMs: 5000,
  pingMs: 1000,
};

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(opts: {
  gen: 1 | 2;
  tuning?: KnotConsumerTuning;
  db?: DatabaseSync;
  knot?: KnotStandIn;
  /** Handlers beside `sh.tangled.pipeline` (given at construction, as createIntake does). */
  handlers?: Record<string, KnotEventHandler>;
}) {
  const knot = opts.knot ?? (await KnotStandIn.start({ gen: opts.gen }));
  if (!opts.knot) cleanups.push(() => knot.stop());
  const db = opts.db ?? openDatabase(join(dir, `k${dbN++}`, "spindle.db"));
  if (!opts.db) cleanups.push(() => db.close());
  const cursors = new KnotCursors(db);
  const intake = new RecordingIntake();
  const { log, lines } = captureLog();
  const handlers = { ...pipelineHandlers(intake), ...opts.handlers };
  const consumers = new KnotConsumers({ ...FAST, ...opts.tuning, cursors, handlers, dev: true, log });
  cleanups.push(() => consumers.stop());
  return { knot, db, cursors, intake, lines, consumers };
}

const pipeline = (n: number) => {
  const env = examplePipelineEnvelope();
  return { rkey: `3lxyz2abcd${String(n).padStart(3, "2")}`, record: env.event };
};

describe("knot stand-in wire format", () => {
  it("encodes a Gen1 envelope byte for byte like the recorded knot frame", async () => {
    const env = examplePipelineEnvelope();
    assert.equal(goJson({ event: env.event, nsid: env.nsid, rkey: env.rkey }), examplePipelineWire());
    assert.match(goJson({ raw: "a<b>&c" }), /a\\u003cb\\u003e\\u0026c/);
  });
});

describe("knot event URL", () => {
  it("adds ?cursor= only for a stored cursor other than 0, ws:// in dev mode only", () => {
    assert.equal(knotEventsUrl("knot1.tangled.sh", false, null), "wss://knot1.tangled.sh/events");
    assert.equal(knotEventsUrl("knot1.tangled.sh", false, "0"), "wss://knot1.tangled.sh/events");
    assert.equal(
      knotEventsUrl("127.0.0.1:5555", true, "1800000000000000001"),
      "ws://127.0.0.1:5555/events?cursor=1800000000000000001",
    );
  });
});

describe("KnotConsumers", () => {
  it("follows a knot, hands the recorded pipeline to the intake, and stores a Gen1 cursor", async () => {
    const { knot, cursors, intake, consumers } = await setup({ gen: 1 });
    consumers.start();
    consumers.addKnot(knot.host);
    consumers.addKnot(knot.host); // idempotent
    await knot.waitForConnections(1);
    const initial = cursors.get(knot.host);
    assert.ok(initial !== null && BigInt(initial) > 0n, "a first-seen knot starts from now");
    assert.equal(knot.cursors[0], initial, "…and asks for exactly that cursor");

    const env = examplePipelineEnvelope();
    knot.emitPipeline(env.rkey, env.event);
    await waitFor(() => intake.accepted.length === 1, "the pipeline");
    assert.deepEqual(intake.accepted[0], { knot: knot.host, rkey: env.rkey, record: env.event });
    await waitFor(() => cursors.get(knot.host) !== initial, "cursor to move");
    assert.ok(BigInt(cursors.get(knot.host) as string) > BigInt(initial as string));
    assert.deepEqual(consumers.knots(), [knot.host]);
  });

  it("start() follows every knot in the repos table", async () => {
    const { knot, db, intake } = await setup({ gen: 2 });
    new Repos(db).upsert({ knot: knot.host, owner: "did:plc:abcdefghijklmnopqrstuvwx", name: "core" });
    const { log } = captureLog();
    const consumers = new KnotConsumers({
      ...FAST,
      cursors: new KnotCursors(db),
      repos: new Repos(db),
      handlers: pipelineHandlers(intake),
      dev: true,
      log,
    });
    cleanups.push(() => consumers.stop());
    consumers.start();
    await knot.waitForConnections(1);
    assert.deepEqual(consumers.knots(), [knot.host]);
  });

  it("outside dev mode, never dials a knot on a private address (SSRF guard), and says why", async () => {
    const knot = await KnotStandIn.start({ gen: 2 });
    cleanups.push(() => knot.stop());
    const db = openDatabase(join(dir, `k${dbN++}`, "spindle.db"));
    cleanups.push(() => db.close());
    const { log, lines } = captureLog();
    const consumers = new KnotConsumers({
      ...FAST,
      cursors: new KnotCursors(db),
      handlers: pipelineHandlers(new RecordingIntake()),
      dev: false,
      log,
    });
    cleanups.push(() => consumers.stop());
    consumers.start();
    consumers.addKnot(knot.host);
    await waitFor(
      () => lines.some((l) => /resolves to 127\.0\.0\.1, a non-public address/.test(String(l.reason))),
      "the refusal in the log",
    );
    assert.deepEqual(knot.cursors, [], "no connection reached the knot");
  });

  it("refuses knot names that are not bare hosts", async () => {
    const { consumers, lines } = await setup({ gen: 1 });
    for (const bad of ["evil.example/x?y=", "user@host", "ws://knot", "", "host:99999"])
      consumers.addKnot(bad);
    assert.deepEqual(consumers.knots(), []);
    assert.equal(lines.filter((l) => l.msg === "not following knot: not a host name").length, 5);
  });

  it("Gen2: stores the knot's created exactly, resumes from it after a reconnect without re-delivery", async () => {
    const { knot, cursors, intake, consumers } = await setup({ gen: 2 });
    consumers.start();
    consumers.addKnot(knot.host);
    await knot.waitForConnections(1);
    const created = [1, 2, 3].map((n) => knot.emitPipeline(pipeline(n).rkey, pipeline(n).record));
    await waitFor(() => intake.accepted.length === 3, "three pipelines");
    await waitFor(() => cursors.get(knot.host) === String(created[2]), "cursor = last created");

    knot.closeAll(1001, "restarting");
    await knot.waitForConnections(2);
    assert.equal(knot.cursors[1], String(created[2]));
    knot.emitPipeline(pipeline(4).rkey, pipeline(4).record);
    await waitFor(() => intake.accepted.length === 4, "the fourth pipeline");
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(
      intake.rkeys(),
      [1, 2, 3, 4].map((n) => pipeline(n).rkey),
      "nothing delivered twice",
    );
  });

  it("Gen2: after a restart (new consumers, reopened database) gets what was emitted while down, once", async () => {
    const path = join(dir, `restart-${dbN++}`, "spindle.db");
    const knot = await KnotStandIn.start({ gen: 2 });
    cleanups.push(() => knot.stop());
    const first = await setup({ gen: 2, knot, db: openDatabase(path) });
    first.consumers.start();
    first.consumers.addKnot(knot.host);
    await knot.waitForConnections(1);
    knot.emitPipeline(pipeline(1).rkey, pipeline(1).record);
    await waitFor(() => first.intake.accepted.length === 1, "first pipeline");
    await first.consumers.stop();
    first.db.close();

    knot.emitPipeline(pipeline(2).rkey, pipeline(2).record);
    knot.emitPipeline(pipeline(3).rkey, pipeline(3).record);

    const db = openDatabase(path);
    cleanups.push(() => db.close());
    const second = await setup({ gen: 2, knot, db });
    second.consumers.addKnot(knot.host);
    second.consumers.start();
    await waitFor(() => second.intake.accepted.length === 2, "pipelines emitted while down");
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(second.intake.rkeys(), [pipeline(2).rkey, pipeline(3).rkey]);
  });

  it("does not advance the cursor when the intake fails; the event comes again after reconnecting", async () => {
    const { knot, cursors, intake, consumers, lines } = await setup({ gen: 2 });
    consumers.start();
    consumers.addKnot(knot.host);
    await knot.waitForConnections(1);
    const before = cursors.get(knot.host);
    intake.failNext = 1;
    knot.emitPipeline(pipeline(1).rkey, pipeline(1).record);
    await waitFor(() => intake.accepted.length === 1, "the retried pipeline");
    assert.ok(knot.cursors.length >= 2, "reconnected");
    assert.equal(knot.cursors[1], before, "asked again from the old cursor");
    assert.ok(lines.some((l) => l.msg === "knot event could not be recorded; will reconnect and retry"));
    assert.ok(
      lines.some(
        (l) => l.msg === "knot event stream ended" && /processing failed: disk full/.test(String(l.reason)),
      ),
    );
  });

  it("Gen1: a frame sent twice reaches the intake twice, but a reconnect does not deliver it again", async () => {
    const { knot, intake, consumers } = await setup({ gen: 1 });
    consumers.start();
    consumers.addKnot(knot.host);
    await knot.waitForConnections(1);
    const env = examplePipelineEnvelope();
    knot.emitPipeline(env.rkey, env.event);
    knot.sendRaw(examplePipelineWire()); // a replayed envelope
    await waitFor(() => intake.accepted.length === 2, "both copies");
    assert.deepEqual(intake.rkeys(), [env.rkey, env.rkey], "dedupe is the intake's job");
    await new Promise((r) => setTimeout(r, 20));

    knot.closeAll();
    await knot.waitForConnections(2);
    knot.emitPipeline(pipeline(9).rkey, pipeline(9).record);
    await waitFor(() => intake.accepted.length === 3, "the next pipeline");
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(intake.rkeys(), [env.rkey, env.rkey, pipeline(9).rkey]);
  });

  it("Gen1: stores the cursor only once every received frame has been processed", async () => {
    const { knot, cursors, intake, consumers } = await setup({ gen: 1 });
    consumers.start();
    consumers.addKnot(knot.host);
    await knot.waitForConnections(1);
    const initial = cursors.get(knot.host);
    let open = () => {};
    intake.gate = new Promise((r) => {
      open = r;
    });
    knot.emitPipeline(pipeline(1).rkey, pipeline(1).record);
    knot.emitPipeline(pipeline(2).rkey, pipeline(2).record);
    await waitFor(() => intake.inFlight === 1, "first pipeline in hand");
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(cursors.get(knot.host), initial, "nothing stored while frames are outstanding");
    intake.gate = null;
    open();
    await waitFor(() => intake.accepted.length === 2, "both pipelines");
    await waitFor(() => cursors.get(knot.host) !== initial, "cursor stored when idle");
    assert.equal(intake.maxInFlight, 1, "one knot's events are processed one at a time, in order");
  });

  it("logs garbage frames with a specific reason and keeps the connection", async () => {
    const { knot, intake, consumers, lines } = await setup({ gen: 2 });
    consumers.start();
    consumers.addKnot(knot.host);
    await knot.waitForConnections(1);
    knot.sendRaw("this is not json");
    knot.sendRaw('{"rkey":"3l2","nsid":7,"event":{}}');
    knot.sendRaw('{"rkey":"3l2","nsid":"sh.tangled.pipeline","event":{},"created":-5}');
    knot.sendRaw('{"rkey":"3l2","nsid":"sh.tangled.pipeline"}');
    knot.sendRaw(Buffer.from([1, 2, 3]), { binary: true });
    knot.emit("sh.tangled.knot.memberUpdate", "3lmem", { op: "add", subject: "did:plc:x" });
    knot.emitPipeline(pipeline(1).rkey, pipeline(1).record);
    await waitFor(() => intake.accepted.length === 1, "the valid pipeline");
    const reasons = lines.filter((l) => l.msg === "knot frame dropped").map((l) => String(l.reason));
    assert.equal(reasons.length, 4);
    assert.match(reasons[0] as string, /frame is not JSON/);
    assert.match(reasons[1] as string, /nsid is missing or not an NSID: 7/);
    assert.match(reasons[2] as string, /created is not a non-negative int64/);
    assert.match(reasons[3] as string, /event of sh.tangled.pipeline\/3l2 is missing/);
    assert.ok(lines.some((l) => l.msg === "binary frame ignored"));
    assert.ok(lines.some((l) => l.msg === "knot event ignored (no handler for nsid)"));
    assert.equal(knot.cursors.length, 1, "no reconnect for bad envelopes");
  });

  it("a text frame with invalid UTF-8 ends the session with that reason; the consumer reconnects", async () => {
    const { knot, intake, consumers, lines } = await setup({ gen: 2 });
    consumers.start();
    consumers.addKnot(knot.host);
    await knot.waitForConnections(1);
    knot.sendRaw(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]));
    await knot.waitForConnections(2);
    knot.emitPipeline(pipeline(1).rkey, pipeline(1).record);
    await waitFor(() => intake.accepted.length === 1, "pipeline after reconnect");
    assert.ok(
      lines.some((l) => l.msg === "knot event stream ended" && /not valid UTF-8/.test(String(l.reason))),
    );
  });

  it("an oversized frame ends the session with that reason; later events still arrive", async () => {
    const { knot, intake, consumers, lines } = await setup({ gen: 2, tuning: { maxFrameBytes: 64 * 1024 } });
    consumers.start();
    consumers.addKnot(knot.host);
    await knot.waitForConnections(1);
    knot.sendRaw(`{"pad":"${"x".repeat(100 * 1024)}"}`);
    await knot.waitForConnections(2);
    knot.emitPipeline(pipeline(1).rkey, pipeline(1).record);
    await waitFor(() => intake.accepted.length === 1, "pipeline after reconnect");
    assert.ok(
      lines.some(
        (l) => l.msg === "knot event stream ended" && /larger than the 65536-byte cap/.test(String(l.reason)),
      ),
    );
  });

  it("a 10 MB pipeline record (under the 16 MiB frame cap) is delivered whole", async () => {
    const { knot, intake, consumers } = await setup({ gen: 2 });
    consumers.start();
    consumers.addKnot(knot.host);
    await knot.waitForConnections(1);
    const env = examplePipelineEnvelope();
    const big = structuredClone(env.event) as { workflows: { raw: string }[] };
    (big.workflows[0] as { raw: string }).raw = "#".repeat(10 * 1024 * 1024);
    knot.emitPipeline(env.rkey, big);
    await waitFor(() => intake.accepted.length === 1, "the big pipeline", 15_000);
    const got = intake.accepted[0]?.record as { workflows: { raw: string }[] };
    assert.equal(got.workflows[0]?.raw.length, 10 * 1024 * 1024);
  });

  it("a connection cut mid-frame is logged as such; the event sent afterwards is not lost", async () => {
    const { knot, intake, consumers, lines } = await setup({ gen: 2 });
    consumers.start();
    consumers.addKnot(knot.host);
    await knot.waitForConnections(1);
    knot.dropMidFrame();
    knot.emitPipeline(pipeline(1).rkey, pipeline(1).record); // stored while the consumer is away
    await knot.waitForConnections(2);
    await waitFor(() => intake.accepted.length === 1, "pipeline after reconnect");
    assert.ok(lines.some((l) => l.msg === "knot event stream ended" && /1006/.test(String(l.reason))));
  });

  it("a peer that stops answering pings is dropped after the liveness timeout", async () => {
    const { knot, consumers, lines } = await setup({ gen: 2, tuning: { livenessMs: 300, pingMs: 100 } });
    consumers.start();
    consumers.addKnot(knot.host);
    await knot.waitForConnections(1);
    knot.freeze();
    await knot.waitForConnections(2);
    assert.ok(lines.some((l) => /no message, ping or pong for 300 ms/.test(String(l.reason))));
  });

  it("backs off between failed dials with growing delays, then connects when the knot comes up", async () => {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const { consumers, lines, intake } = await setup({
      gen: 2,
      tuning: { backoff: { baseMs: 20, capMs: 80, minMs: 0, random: () => 0.999 } },
    });
    consumers.start();
    consumers.addKnot(host);
    await waitFor(
      () => lines.filter((l) => l.msg === "knot event stream connection failed").length >= 4,
      "four failed dials",
    );
    const delays = lines.filter((l) => l.msg === "knot event stream connection failed").map((l) => l.delayMs);
    assert.deepEqual(delays.slice(0, 4), [19, 39, 79, 79], "doubling up to the cap");
    assert.match(
      String(lines.find((l) => l.msg === "knot event stream connection failed")?.reason),
      /cannot connect/,
    );

    const knot = await KnotStandIn.start({ gen: 2, port });
    cleanups.push(() => knot.stop());
    await knot.waitForConnections(1);
    knot.emitPipeline(pipeline(1).rkey, pipeline(1).record);
    await waitFor(() => intake.accepted.length === 1, "pipeline once up");
  });

  it("bounds work in flight: a burst of 250 events is processed one at a time, in order", async () => {
    const { knot, intake, consumers } = await setup({ gen: 2, tuning: { maxQueued: 10 } });
    consumers.start();
    consumers.addKnot(knot.host);
    await knot.waitForConnections(1);
    const rkeys: string[] = [];
    for (let i = 0; i < 250; i++) {
      const rkey = `3lburst${String(i).padStart(5, "0")}`;
      rkeys.push(rkey);
      knot.emitPipeline(rkey, pipeline(1).record);
    }
    await waitFor(() => intake.accepted.length === 250, "the burst", 15_000);
    assert.deepEqual(intake.rkeys(), rkeys);
    assert.equal(intake.maxInFlight, 1);
  });

  it("routes other NSIDs to the handlers given for them (refUpdate)", async () => {
    const seen: string[] = [];
    const { knot, consumers } = await setup({
      gen: 2,
      handlers: {
        "sh.tangled.git.refUpdate": async (k, env) => {
          seen.push(`${k} ${env.rkey} ${env.created}`);
        },
      },
    });
    consumers.start();
    consumers.addKnot(knot.host);
    await knot.waitForConnections(1);
    const created = knot.emit("sh.tangled.git.refUpdate", "3lref", { ref: "refs/heads/main" });
    await waitFor(() => seen.length === 1, "the refUpdate");
    assert.deepEqual(seen, [`${knot.host} 3lref ${created}`]);
  });
});

describe("knot stand-in server cursor semantics", () => {
  it("Gen1: no cursor = now; Gen2: no cursor = replay from the oldest row; both in batches of 100", async () => {
    const { default: WebSocket } = await import("ws");
    const collect = async (url: string, ms: number) => {
      const got: string[] = [];
      const ws = new WebSocket(url);
      ws.on("message", (d) => got.push(String(d)));
      await new Promise((r) => setTimeout(r, ms));
      ws.terminate();
      return got;
    };
    for (const gen of [1, 2] as const) {
      const knot = await KnotStandIn.start({ gen });
      cleanups.push(() => knot.stop());
      for (let i = 0; i < 150; i++) knot.emit("a.b.c", `3l${String(i).padStart(4, "0")}`, { i });
      const fresh = await collect(`ws://${knot.host}/events`, 150);
      assert.equal(fresh.length, gen === 1 ? 0 : 100, `gen ${gen} without cursor`);
      const mid = String(knot.rows[119]?.created);
      const resumed = await collect(`ws://${knot.host}/events?cursor=${mid}`, 150);
      assert.equal(resumed.length, 30, `gen ${gen} created > cursor`);
    }
  });
});
