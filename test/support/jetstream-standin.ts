/**
 * A Jetstream stand-in: a `ws` server on loopback speaking Jetstream's plain-JSON wire format
 * (one event object per text frame, as `bluesky-social/jetstream` sends without zstd).
 *
 *   const js = await JetstreamStandIn.start();
 *   // config.server.jetstreamEndpoint = js.url   (ws://127.0.0.1:<port>/subscribe)
 *   js.push(commitEvent({ did, collection: "sh.tangled.repo", rkey: "3l…", record: {…} }));
 *   js.push(...exampleJetstreamEvents());          // the spec's recorded inputs, verbatim
 *   await js.waitForConnections(1);
 *   js.queries[0]                                  // the query string the client opened with
 *
 * Behaviour, like the real service: `wantedCollections` filters what a connection gets;
 * `cursor=<µs>` first replays every stored event with `time_us >= cursor`, then goes live;
 * without a cursor only live events are sent. `sendRaw` and `dropConnections` exist for
 * bad-input tests.
 */
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { type WebSocket, WebSocketServer } from "ws";

export interface JetstreamWireEvent {
  did: string;
  time_us: number;
  kind: "commit" | "account" | "identity";
  commit?: {
    rev: string;
    operation: "create" | "update" | "delete";
    collection: string;
    rkey: string;
    record?: unknown;
    cid?: string;
  };
  [k: string]: unknown;
}

export interface CommitInput {
  did: string;
  collection: string;
  rkey: string;
  operation?: "create" | "update" | "delete";
  /** Omitted for deletes. */
  record?: unknown;
  /** Assigned by `push` when absent. */
  timeUs?: number;
}

/** A commit event in Jetstream's shape (time_us 0 = let `push` assign one). */
export function commitEvent(input: CommitInput): JetstreamWireEvent {
  const operation = input.operation ?? "create";
  const commit: NonNullable<JetstreamWireEvent["commit"]> = {
    rev: `3lrev${input.rkey}`,
    operation,
    collection: input.collection,
    rkey: input.rkey,
  };
  if (operation !== "delete") {
    commit.record = { $type: input.collection, ...(input.record as object) };
    commit.cid = "bafyreistandincid";
  }
  return { did: input.did, time_us: input.timeUs ?? 0, kind: "commit", commit };
}

const EXAMPLES = fileURLToPath(
  new URL("../fixtures/spec/examples/events/jetstream/spindle-inputs.jsonl", import.meta.url),
);

/**
 * The recorded inputs of `spec/examples/events/jetstream/spindle-inputs.jsonl`: member create
 * (owner → did:plc:abcdefghijklmnopqrstuvwx on spindle.example.com), repo update (`core` on
 * knot1.tangled.sh), collaborator create, member delete. `rewrite` may adjust each (e.g. to
 * point the knot at a stand-in).
 */
export function exampleJetstreamEvents(rewrite?: (text: string) => string): JetstreamWireEvent[] {
  return readFileSync(EXAMPLES, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(rewrite ? rewrite(l) : l) as JetstreamWireEvent);
}

interface Conn {
  ws: WebSocket;
  wanted: Set<string>;
}

export class JetstreamStandIn {
  /** `ws://127.0.0.1:<port>/subscribe` */
  readonly url: string;
  /** The query string (without `?`) of every connection, in order. */
  readonly queries: string[] = [];
  /** Everything pushed, in time order. */
  readonly events: JetstreamWireEvent[] = [];
  readonly #wss: WebSocketServer;
  readonly #conns = new Set<Conn>();
  readonly #waiters: { n: number; resolve: () => void }[] = [];
  #lastUs = 0;

  private constructor(wss: WebSocketServer, url: string) {
    this.#wss = wss;
    this.url = url;
    wss.on("connection", (ws, req) => this.#connected(ws, req));
  }

  static async start(): Promise<JetstreamStandIn> {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, path: "/subscribe" });
    await new Promise<void>((resolve) => wss.once("listening", resolve));
    const { port } = wss.address() as AddressInfo;
    return new JetstreamStandIn(wss, `ws://127.0.0.1:${port}/subscribe`);
  }

  /** Connections currently open. */
  get connectionCount(): number {
    return this.#conns.size;
  }

  /** Stores and broadcasts events; a `time_us` of 0 gets the next microsecond. Returns them. */
  push(...events: JetstreamWireEvent[]): JetstreamWireEvent[] {
    for (const ev of events) {
      if (!ev.time_us) ev.time_us = Math.max(this.#lastUs + 1, Date.now() * 1000);
      this.#lastUs = Math.max(this.#lastUs, ev.time_us);
      this.events.push(ev);
      for (const c of this.#conns) if (this.#wants(c, ev)) c.ws.send(JSON.stringify(ev));
    }
    return events;
  }

  /** Sends bytes as they are to every open connection (text frame unless `binary`). */
  sendRaw(data: string | Buffer, opts: { binary?: boolean } = {}): void {
    for (const c of this.#conns) c.ws.send(data, { binary: opts.binary ?? false });
  }

  /** Cuts every connection without a close frame. */
  dropConnections(): void {
    for (const c of this.#conns) c.ws.terminate();
  }

  /** Resolves once `n` connections have been opened in total. */
  waitForConnections(n: number): Promise<void> {
    if (this.queries.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ n, resolve }));
  }

  async stop(): Promise<void> {
    for (const c of this.#conns) c.ws.terminate();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }

  #wants(c: Conn, ev: JetstreamWireEvent): boolean {
    if (c.wanted.size === 0 || ev.kind !== "commit") return true;
    return ev.commit !== undefined && c.wanted.has(ev.commit.collection);
  }

  #connected(ws: WebSocket, req: IncomingMessage): void {
    const u = new URL(req.url ?? "/", "ws://x");
    this.queries.push(u.search.slice(1));
    const conn: Conn = { ws, wanted: new Set(u.searchParams.getAll("wantedCollections")) };
    this.#conns.add(conn);
    ws.on("close", () => this.#conns.delete(conn));
    ws.on("error", () => {});
    const cursor = u.searchParams.get("cursor");
    if (cursor !== null && /^[0-9]+$/.test(cursor)) {
      for (const ev of this.events)
        if (ev.time_us >= Number(cursor) && this.#wants(conn, ev)) ws.send(JSON.stringify(ev));
    }
    for (const w of this.#waiters.filter((w) => this.queries.length >= w.n)) {
      this.#waiters.splice(this.#waiters.indexOf(w), 1);
      w.resolve();
    }
  }
}
