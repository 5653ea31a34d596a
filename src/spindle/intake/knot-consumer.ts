/**
 * The consumer of one knot's event stream (§1.3): `wss://<knot>/events[?cursor=<n>]`
 * (`ws://` in dev mode), one envelope per text frame, dispatched by NSID.
 *
 * Cursor (stored per knot host in `cursors`), never moved backwards:
 * - Gen2 envelopes carry the knot's `created`: that value is stored (a decimal string) once the
 *   envelope is processed. The knot sends `created > cursor` ascending and frames are processed
 *   in order, so nothing processed is asked for again and nothing unprocessed is skipped.
 * - Gen1 envelopes have no `created`: as upstream, the spindle's own clock in nanoseconds is
 *   stored — but the *receive* time of the last frame, and only when every received frame has
 *   been processed (upstream stores the dequeue time of each). A Gen1 cursor is a guess at the
 *   knot's clock; a later frame of the same batch may have been created before an earlier frame
 *   was received, so storing mid-batch could skip it after a crash. Re-delivery is harmless (the
 *   pipeline intake dedupes by (knot, rkey)); loss is not.
 * The cursor only advances after the handler resolved; a rejecting handler (storage failure)
 * ends the session, and the reconnect asks for the same events again.
 */
import type { LookupAddress } from "node:dns";
import type { Logger } from "pino";
import { checkedAddress, pinnedLookup } from "../../net/guarded-fetch.ts";
import { type KnotEnvelope, parseKnotEnvelope } from "../../protocol/envelope.ts";
import type { KnotCursors } from "../db/index.ts";
import type { IntakeMetrics } from "../pipelines/metrics.ts";
import { Backoff, type BackoffOptions, sleep } from "./backoff.ts";
import { knotEventsUrl } from "./knot-host.ts";
import { runSession, type SessionEnd } from "./ws-session.ts";

/** Handles one envelope of a given NSID. Rejects only when it must be retried (storage failure). */
export type KnotEventHandler = (knot: string, envelope: KnotEnvelope) => Promise<void>;

export interface KnotConsumerTuning {
  /** Reconnect back-off; defaults: base 2 s, cap 10 min (Gen2's cap), min 500 ms, healthy after 60 s. */
  backoff?: Partial<BackoffOptions>;
  /** Default 90 s (Gen2 upstream; knots ping after 30 s of silence). */
  livenessMs?: number;
  /** Default 30 s. */
  pingMs?: number;
  /** Default 16 MiB. */
  maxFrameBytes?: number;
  /** Frames buffered before the socket is paused; default 100 (upstream's queue size). */
  maxQueued?: number;
  /** Default 10 s (upstream's dial timeout). */
  handshakeTimeoutMs?: number;
  /** Milliseconds clock for Gen1 cursors; default Date.now. */
  nowMs?: () => number;
  /** Open connections (source `knot`); absent = not counted. */
  metrics?: IntakeMetrics;
}

export interface KnotConsumerOptions extends KnotConsumerTuning {
  knot: string;
  dev: boolean;
  cursors: KnotCursors;
  handlers: ReadonlyMap<string, KnotEventHandler>;
  log: Logger;
}

export class KnotConsumer {
  readonly knot: string;
  readonly #o: KnotConsumerOptions;
  readonly #log: Logger;
  readonly #backoff: Backoff;
  #abort: AbortController | null = null;
  #loop: Promise<void> | null = null;
  /** Gen1: receive time (ns) of the last processed frame, stored when the queue is empty. */
  #pendingGen1: bigint | null = null;

  constructor(opts: KnotConsumerOptions) {
    this.knot = opts.knot;
    this.#o = opts;
    this.#log = opts.log.child({ component: "knot-consumer", knot: opts.knot });
    this.#backoff = new Backoff({
      baseMs: 2000,
      capMs: 600_000,
      minMs: 500,
      healthyAfterMs: 60_000,
      ...opts.backoff,
    });
  }

  url(): string {
    return knotEventsUrl(this.knot, this.#o.dev, this.#o.cursors.get(this.knot));
  }

  start(): void {
    if (this.#loop) return;
    this.#abort = new AbortController();
    this.#loop = this.#run(this.#abort.signal);
  }

  async stop(): Promise<void> {
    if (!this.#loop) return;
    this.#abort?.abort();
    await this.#loop;
    this.#loop = null;
  }

  async #run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const url = this.url();
      this.#pendingGen1 = null;
      this.#log.info({ url }, "connecting to knot event stream");
      const end = await this.#session(url, signal);
      if (end.opened) this.#o.metrics?.intakeConnections.dec({ source: "knot" });
      if (signal.aborted) break;
      const delayMs = this.#backoff.next();
      this.#log.warn(
        { reason: end.reason, code: end.code, opened: end.opened, delayMs, attempt: this.#backoff.attempt },
        end.opened ? "knot event stream ended" : "knot event stream connection failed",
      );
      await sleep(delayMs, signal);
    }
  }

  /**
   * One connection. The knot host comes from a member's repo record: outside dev mode it must
   * resolve to a public address (SSRF guard), and the dial is pinned to the address checked.
   */
  async #session(url: string, signal: AbortSignal): Promise<SessionEnd> {
    let picked: LookupAddress;
    try {
      picked = await checkedAddress(new URL(url).hostname, { allowPrivate: this.#o.dev });
    } catch (err) {
      return {
        opened: false,
        reason: `cannot connect: ${(err as Error).message}`,
        code: null,
        handlerFailed: false,
      };
    }
    return runSession({
      lookup: pinnedLookup(picked),
      url,
      log: this.#log,
      signal,
      maxPayload: this.#o.maxFrameBytes ?? 16 * 1024 * 1024,
      livenessMs: this.#o.livenessMs ?? 90_000,
      pingMs: this.#o.pingMs ?? 30_000,
      handshakeTimeoutMs: this.#o.handshakeTimeoutMs ?? 10_000,
      maxQueued: this.#o.maxQueued ?? 100,
      headers: { "user-agent": "loom-spindle (knot consumer)" },
      ...(this.#o.nowMs ? { now: this.#o.nowMs } : {}),
      onOpen: () => {
        this.#o.metrics?.intakeConnections.inc({ source: "knot" });
        this.#backoff.connected();
        this.#log.info("connected to knot event stream");
      },
      onText: (text, receivedAt) => this.#onFrame(text, receivedAt),
      onIdle: () => this.#storeGen1(),
    });
  }

  async #onFrame(text: string, receivedAtMs: number): Promise<void> {
    const d = parseKnotEnvelope(text);
    if (!d.ok) {
      this.#log.warn({ reason: d.reason, bytes: Buffer.byteLength(text) }, "knot frame dropped");
      return;
    }
    const env = d.envelope;
    const handler = this.#o.handlers.get(env.nsid);
    if (handler) {
      try {
        await handler(this.knot, env);
      } catch (err) {
        this.#log.error(
          { nsid: env.nsid, rkey: env.rkey, err: (err as Error).message },
          "knot event could not be recorded; will reconnect and retry",
        );
        throw err;
      }
      this.#log.debug({ nsid: env.nsid, rkey: env.rkey, created: env.created }, "knot event handled");
    } else {
      this.#log.debug({ nsid: env.nsid, rkey: env.rkey }, "knot event ignored (no handler for nsid)");
    }
    if (env.created !== null) this.#advance(BigInt(env.created));
    else this.#pendingGen1 = BigInt(Math.floor(receivedAtMs)) * 1_000_000n;
  }

  #storeGen1(): void {
    if (this.#pendingGen1 === null) return;
    this.#advance(this.#pendingGen1);
    this.#pendingGen1 = null;
  }

  #advance(cursor: bigint): void {
    const stored = this.#o.cursors.get(this.knot);
    if (stored !== null && /^[0-9]+$/.test(stored) && BigInt(stored) >= cursor) return;
    this.#o.cursors.set(this.knot, cursor.toString());
  }
}
