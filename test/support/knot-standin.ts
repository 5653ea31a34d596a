/**
 * A knot stand-in: serves `/events` over WebSocket on loopback with the knot's server-side
 * cursor semantics (§1.3; gen2 §2.3), so knot consumers can be tested against real sockets.
 *
 *   const knot = await KnotStandIn.start({ gen: 1 });
 *   // the spindle follows knot.host ("127.0.0.1:<port>") in dev mode: ws://<host>/events
 *   knot.emitPipeline("3lxyz2abcde22", record);      // stored with `created`, pushed live
 *   knot.emit("sh.tangled.git.refUpdate", rkey, ev);  // any NSID
 *   await knot.waitForConnections(1); knot.cursors    // the `cursor` each connection asked for
 *
 * Rows get `created` = the stand-in's clock in nanoseconds (strictly increasing). A connection
 * first gets `created > cursor` ascending, at most 100 rows, then one more batch of ≤ 100 per new
 * event (the upstream quirk: a long backlog drains only as new events arrive).
 * - gen 1: a missing, zero or unparsable cursor means *now* (no backfill); frames are Go's
 *   map-encoded envelope `{"event","nsid","rkey"}` with sorted keys and `<>&` escaped, exactly
 *   like `spec/examples/events/knot-stream/pipeline-push.wire.txt`.
 * - gen 2: a missing or unparsable cursor means 0 (replay everything); frames are
 *   `{"rkey","nsid","event","created"}` with `created` an int64 number.
 * Bad-input helpers: `sendRaw` (any bytes, text or binary frame), `dropMidFrame` (a frame header
 * promising 1000 bytes, 10 bytes, then the TCP connection is destroyed), `closeAll`,
 * `emitOversizePipeline` (a stored row whose frame is larger than a consumer's frame cap: the
 * knot sends it like any other row, on every connection whose cursor is below it).
 * `sends(rkey)` counts how often a row was sent, so a test can tell a consumer looping on a row.
 */
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { type WebSocket, WebSocketServer } from "ws";

const EXAMPLES = new URL("../fixtures/spec/examples/events/knot-stream/", import.meta.url);

export interface ExampleEnvelope {
  event: Record<string, unknown>;
  nsid: string;
  rkey: string;
}

/** `pipeline-push.envelope.json` or `pipeline-pull_request.envelope.json` from the spec. */
export function examplePipelineEnvelope(kind: "push" | "pull_request" = "push"): ExampleEnvelope {
  return JSON.parse(readFileSync(fileURLToPath(new URL(`pipeline-${kind}.envelope.json`, EXAMPLES)), "utf8"));
}

/** The exact frame text of `pipeline-push.wire.txt` (without the file's trailing newline). */
export function examplePipelineWire(): string {
  return readFileSync(fileURLToPath(new URL("pipeline-push.wire.txt", EXAMPLES)), "utf8").replace(/\n$/, "");
}

/** Go's `encoding/json` output for a value decoded into `map[string]any`: sorted keys, HTML escaping. */
export function goJson(value: unknown): string {
  return JSON.stringify(sortKeys(value)).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === "object")
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  return v;
}

interface Row {
  created: bigint;
  nsid: string;
  rkey: string;
  event: unknown;
}

interface Conn {
  ws: WebSocket;
  socket: Socket;
  last: bigint;
  ping: NodeJS.Timeout;
}

export interface KnotStandInOptions {
  gen: 1 | 2;
  /** Nanosecond clock; default wall clock. Values are bumped to stay strictly increasing. */
  now?: () => bigint;
  /** Ping interval of an idle connection (ms); default 30 s. */
  pingMs?: number;
  /** Listen on this loopback port instead of a random one. */
  port?: number;
}

export class KnotStandIn {
  /** `127.0.0.1:<port>`: the knot name to follow in dev mode. */
  readonly host: string;
  readonly gen: 1 | 2;
  /** The raw `cursor` query value of every connection (null when absent), in order. */
  readonly cursors: (string | null)[] = [];
  readonly rows: Row[] = [];
  readonly #wss: WebSocketServer;
  readonly #conns = new Set<Conn>();
  readonly #now: () => bigint;
  readonly #pingMs: number;
  readonly #waiters: { n: number; resolve: () => void }[] = [];
  #lastCreated = 0n;
  readonly #sends = new Map<string, number>();

  private constructor(wss: WebSocketServer, host: string, opts: KnotStandInOptions) {
    this.#wss = wss;
    this.host = host;
    this.gen = opts.gen;
    this.#now = opts.now ?? (() => BigInt(Date.now()) * 1_000_000n);
    this.#pingMs = opts.pingMs ?? 30_000;
    wss.on("connection", (ws, req) => this.#connected(ws, req));
  }

  static async start(opts: KnotStandInOptions): Promise<KnotStandIn> {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: opts.port ?? 0, path: "/events" });
    await new Promise<void>((resolve) => wss.once("listening", resolve));
    const { port } = wss.address() as AddressInfo;
    return new KnotStandIn(wss, `127.0.0.1:${port}`, opts);
  }

  get connectionCount(): number {
    return this.#conns.size;
  }

  /** Stores an event and sends each connection its next batch. Returns the row's `created`. */
  emit(nsid: string, rkey: string, event: unknown): bigint {
    let created = this.#now();
    if (created <= this.#lastCreated) created = this.#lastCreated + 1n;
    this.#lastCreated = created;
    this.rows.push({ created, nsid, rkey, event });
    for (const c of this.#conns) this.#sendBatch(c);
    return created;
  }

  emitPipeline(rkey: string, record: unknown): bigint {
    return this.emit("sh.tangled.pipeline", rkey, record);
  }

  /**
   * A pipeline row whose frame is at least `bytes` long (the record's one workflow carries a
   * comment of that size): over the spindle's 16 MiB frame cap with the default of 17 MiB.
   */
  emitOversizePipeline(
    rkey: string,
    record: { workflows: { raw: string }[] },
    bytes = 17 * 1024 * 1024,
  ): bigint {
    const [first, ...rest] = record.workflows;
    const padded = { ...first, raw: `${first?.raw ?? ""}\n#${"x".repeat(bytes)}\n` };
    return this.emitPipeline(rkey, { ...record, workflows: [padded, ...rest] });
  }

  /** How many times the row with this rkey was sent, over all connections. */
  sends(rkey: string): number {
    return this.#sends.get(rkey) ?? 0;
  }

  /** The frame text a row is sent as. */
  frame(row: Row): string {
    if (this.gen === 1) return goJson({ event: row.event, nsid: row.nsid, rkey: row.rkey });
    return `{"rkey":${JSON.stringify(row.rkey)},"nsid":${JSON.stringify(row.nsid)},"event":${JSON.stringify(row.event)},"created":${row.created}}`;
  }

  sendRaw(data: string | Buffer, opts: { binary?: boolean } = {}): void {
    for (const c of this.#conns) c.ws.send(data, { binary: opts.binary ?? false });
  }

  /** Starts a 1000-byte text frame, sends 10 bytes of it, and destroys every TCP connection. */
  dropMidFrame(): void {
    for (const c of this.#conns) {
      c.socket.write(Buffer.concat([Buffer.from([0x81, 126, 0x03, 0xe8]), Buffer.from('{"event":{')]));
      c.socket.destroy();
    }
  }

  /** Stops reading from every connection (no pongs, no close handshake): a hung peer. */
  freeze(): void {
    for (const c of this.#conns) {
      clearInterval(c.ping);
      c.socket.pause();
    }
  }

  closeAll(code = 1001, reason = "going away"): void {
    for (const c of this.#conns) c.ws.close(code, reason);
  }

  /** Resolves once `n` connections have been opened in total. */
  waitForConnections(n: number): Promise<void> {
    if (this.cursors.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ n, resolve }));
  }

  async stop(): Promise<void> {
    for (const c of this.#conns) {
      clearInterval(c.ping);
      c.ws.terminate();
    }
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }

  #connected(ws: WebSocket, req: IncomingMessage): void {
    const raw = new URL(req.url ?? "/", "ws://x").searchParams.get("cursor");
    this.cursors.push(raw);
    const parsed = raw !== null && /^[0-9]{1,19}$/.test(raw) ? BigInt(raw) : 0n;
    // Gen1: missing/zero/unparsable = now; Gen2: = 0, replay from the oldest row.
    const last = this.gen === 1 && parsed === 0n ? this.#now() : parsed;
    const conn: Conn = {
      ws,
      socket: req.socket,
      last,
      ping: setInterval(() => ws.ping(), this.#pingMs),
    };
    conn.ping.unref();
    this.#conns.add(conn);
    ws.on("close", () => {
      clearInterval(conn.ping);
      this.#conns.delete(conn);
    });
    ws.on("error", () => {});
    this.#sendBatch(conn);
    for (const w of this.#waiters.filter((w) => this.cursors.length >= w.n)) {
      this.#waiters.splice(this.#waiters.indexOf(w), 1);
      w.resolve();
    }
  }

  #sendBatch(c: Conn): void {
    if (c.ws.readyState !== c.ws.OPEN) return;
    // Rows are in `created` order: find the first one past the connection's cursor.
    let lo = 0;
    let hi = this.rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.rows[mid] as Row).created > c.last) hi = mid;
      else lo = mid + 1;
    }
    const batch = this.rows.slice(lo, lo + 100);
    for (const r of batch) {
      this.#sends.set(r.rkey, (this.#sends.get(r.rkey) ?? 0) + 1);
      c.ws.send(this.frame(r));
    }
    const tail = batch[batch.length - 1];
    if (tail) c.last = tail.created;
  }
}
