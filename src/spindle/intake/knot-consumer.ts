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
 *
 * Nothing loops on one row. Three kinds of row cannot be taken, and each is logged, counted
 * (`onSkip` → `loom_knot_rows_skipped_total{reason}`) and stepped over:
 * - `undecodable`: not an envelope. Dropped; when its `created` is readable (Gen2) the cursor
 *   moves past it, so it is not asked for again.
 * - `handler_failed`: the handler rejected for the same row `maxHandlerAttempts` times in a row
 *   (a record that makes storage throw every time). The row is given up and the cursor moves on.
 * - `oversize`: a frame over `maxFrameBytes` closes the socket with 1009 before any of it is
 *   read, so neither its rkey nor its `created` is known, and the knot sends it first again on
 *   every reconnect at the same cursor. After `oversizeRetries` such sessions at one cursor C,
 *   the consumer finds the row's `created` by probing (see `#findOversizeRow`): the knot sends
 *   `created > cursor` ascending, so with probe cursor x the first frame is the oversize row iff
 *   C ≤ x < its `created` p. An exponential then binary search over x finds p − 1 exactly; the
 *   stored cursor becomes p, which skips that one row and nothing after it (`created` is an
 *   integer, strictly increasing per knot: gen2 §2.3, and Gen1 knots serve the same rows).
 */
import type { LookupAddress } from "node:dns";
import type { Logger } from "pino";
import { checkedAddress, pinnedLookup } from "../../net/guarded-fetch.ts";
import { type KnotEnvelope, parseKnotEnvelope } from "../../protocol/envelope.ts";
import { type KnotCursors, transaction } from "../db/index.ts";
import { type Staged, WriteBatch } from "../db/write-batch.ts";
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
  /** Sessions ended by one oversize frame at the same cursor before it is skipped; default 3. */
  oversizeRetries?: number;
  /** A probe connection that got no frame for this long saw no row past its cursor; default 2 s. */
  probeWaitMs?: number;
  /** Consecutive handler failures on one row before it is given up; default 5. */
  maxHandlerAttempts?: number;
  /** Called once per row that could not be taken and was stepped over (a metric). */
  onSkip?: (reason: KnotRowSkipReason) => void;
}

export type KnotRowSkipReason = "oversize" | "undecodable" | "handler_failed";

/** A frame between its plan and its write phase. */
interface PlannedFrame {
  /** Null: an undecodable frame whose `created` was readable (only the cursor moves past it). */
  env: KnotEnvelope | null;
  created: bigint | null;
  /** The handler's run; null when no handler runs for it. */
  staged: Staged<void> | null;
  receivedAtMs?: number;
}

/** What a probe connection saw first: the oversize frame, a readable frame, or nothing. */
type Probe = "oversize" | "frame" | "none" | "error";

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
  /** The cursor the last oversize-ended sessions started from, and how many in a row. */
  #oversize: { cursor: string | null; count: number } = { cursor: null, count: 0 };
  /** The row whose handler failed last, and how many times in a row. */
  #failing: { key: string; count: number } = { key: "", count: 0 };
  /** Frames planned since the last flush, in order, and the batch their writes are parked in. */
  #frames: PlannedFrame[] = [];
  #wb: WriteBatch | null = null;
  /** True while the event stream is open (the status page's intake health). */
  connected = false;

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
      // Frames planned when the session ended are still written (their handlers wait for it).
      try {
        await this.#flush();
      } catch {
        // Their cursor was not stored: the next session asks for them again.
      }
      this.connected = false;
      if (end.opened) this.#o.metrics?.intakeConnections.dec({ source: "knot" });
      if (signal.aborted) break;
      if (end.oversize === true && (await this.#onOversize(signal))) continue;
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
  async #session(
    url: string,
    signal: AbortSignal,
    probe?: { onOpen: () => void; onText: (text: string) => Promise<void>; onOversize: () => void },
  ): Promise<SessionEnd> {
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
      maxPayload: this.#maxFrame(),
      livenessMs: this.#o.livenessMs ?? 90_000,
      pingMs: this.#o.pingMs ?? 30_000,
      handshakeTimeoutMs: this.#o.handshakeTimeoutMs ?? 10_000,
      maxQueued: this.#o.maxQueued ?? 100,
      headers: { "user-agent": "loom-spindle (knot consumer)" },
      ...(this.#o.nowMs ? { now: this.#o.nowMs } : {}),
      ...(probe ?? {
        onOpen: () => {
          this.#o.metrics?.intakeConnections.inc({ source: "knot" });
          this.connected = true;
          this.#backoff.connected();
          this.#log.info("connected to knot event stream");
        },
        onText: (text: string, receivedAt: number) => this.#onFrame(text, receivedAt),
        onFlush: () => this.#flush(),
        onIdle: () => this.#storeGen1(),
      }),
    });
  }

  /**
   * The plan phase of one frame: decode, then the handler runs until it resolves or parks its
   * write in the current batch (`WriteBatch.stage`). A handler that failed before writing ends
   * the batch here: the frames before it are committed with their cursor, then it is retried
   * (reconnect) or, after `maxHandlerAttempts`, stepped over.
   */
  async #onFrame(text: string, receivedAtMs: number): Promise<void> {
    const d = parseKnotEnvelope(text);
    if (!d.ok) {
      this.#log.warn(
        { reason: d.reason, bytes: Buffer.byteLength(text), created: d.created },
        "knot frame dropped",
      );
      this.#o.onSkip?.("undecodable");
      // Past it when its `created` is readable; else the generation is unknown and the cursor
      // stays (a Gen2 stream must not get a receive-time cursor).
      if (d.created !== undefined) this.#frames.push({ env: null, created: BigInt(d.created), staged: null });
      return;
    }
    const env = d.envelope;
    const created = env.created !== null ? BigInt(env.created) : null;
    const handler = this.#o.handlers.get(env.nsid);
    if (!handler) {
      this.#log.debug({ nsid: env.nsid, rkey: env.rkey }, "knot event ignored (no handler for nsid)");
      this.#frames.push({ env, created, staged: null, receivedAtMs });
      return;
    }
    const staged = await this.#batch().stage(() => handler(this.knot, env));
    if (staged.planFailed) {
      await this.#flush();
      this.#failed(env, staged.planError);
      // Given up: past it.
      if (created !== null) this.#advance(created);
      return;
    }
    this.#frames.push({ env, created, staged, receivedAtMs });
  }

  /**
   * The write phase of the frames planned since the last flush: their parked writes and the
   * cursor past the last of them that succeeded, in one transaction (write-batch.ts). A frame
   * whose write failed rolled back alone; the cursor stops before it, and it is retried
   * (reconnect; the frames after it that were stored are deduplicated when they come again) or,
   * after `maxHandlerAttempts`, stepped over.
   */
  async #flush(): Promise<void> {
    const frames = this.#frames;
    const batch = this.#wb;
    this.#frames = [];
    this.#wb = null;
    if (frames.length === 0 && batch === null) return;
    let firstFailed = -1;
    const finish = () => {
      let cursor: bigint | null = null;
      for (const [i, f] of frames.entries()) {
        if (f.staged?.writeFailed) {
          firstFailed = i;
          break;
        }
        if (f.created !== null) cursor = f.created;
      }
      if (cursor !== null) this.#advance(cursor);
    };
    if (batch) batch.commit(finish);
    else transaction(this.#o.cursors.db, finish);
    // The parked handlers finish (publish, log) now that their rows are stored.
    await Promise.allSettled(frames.map((f) => f.staged?.done));
    if (firstFailed === -1) {
      if (frames.some((f) => f.env !== null && f.staged !== null)) this.#failing = { key: "", count: 0 };
      const last = frames.at(-1);
      if (last?.env && last.created === null && last.receivedAtMs !== undefined) {
        this.#pendingGen1 = BigInt(Math.floor(last.receivedAtMs)) * 1_000_000n;
      }
      for (const f of frames) {
        if (f.env && f.staged) {
          this.#log.debug(
            { nsid: f.env.nsid, rkey: f.env.rkey, created: f.env.created },
            "knot event handled",
          );
        }
      }
      return;
    }
    const bad = frames[firstFailed] as PlannedFrame;
    this.#failed(bad.env as KnotEnvelope, bad.staged?.writeError);
    // Given up: past it and every frame after it that was stored.
    let cursor: bigint | null = null;
    for (const f of frames.slice(firstFailed + 1)) {
      if (f.staged?.writeFailed) throw new Error("another knot event of the batch could not be recorded");
      if (f.created !== null) cursor = f.created;
    }
    if (bad.created !== null) this.#advance(bad.created);
    if (cursor !== null) this.#advance(cursor);
  }

  /** Counts a failure of this row; throws (reconnect and retry) until it failed too often. */
  #failed(env: KnotEnvelope, err: unknown): void {
    const key = `${env.nsid} ${env.rkey} ${env.created ?? ""}`;
    const count = this.#failing.key === key ? this.#failing.count + 1 : 1;
    this.#failing = { key, count };
    const max = this.#o.maxHandlerAttempts ?? 5;
    const message = err instanceof Error ? err.message : String(err);
    if (count < max) {
      this.#log.error(
        { nsid: env.nsid, rkey: env.rkey, err: message, attempt: count, of: max },
        "knot event could not be recorded; will reconnect and retry",
      );
      throw err instanceof Error ? err : new Error(message);
    }
    this.#failing = { key: "", count: 0 };
    this.#o.onSkip?.("handler_failed");
    this.#log.error(
      { nsid: env.nsid, rkey: env.rkey, created: env.created, err: message, attempts: count },
      "knot event skipped: it failed every attempt",
    );
  }

  #batch(): WriteBatch {
    this.#wb ??= new WriteBatch(this.#o.cursors.db);
    return this.#wb;
  }

  /**
   * After a session ended with 1009. Counts identical failures at the stored cursor; at
   * `oversizeRetries` it finds the row and moves the cursor past it. True when the cursor moved
   * (reconnect at once), false to reconnect after the usual back-off.
   */
  async #onOversize(signal: AbortSignal): Promise<boolean> {
    const cursor = this.#o.cursors.get(this.knot);
    const count = this.#oversize.cursor === cursor ? this.#oversize.count + 1 : 1;
    this.#oversize = { cursor, count };
    const retries = this.#o.oversizeRetries ?? 3;
    if (count < retries || cursor === null || !/^[0-9]{1,19}$/.test(cursor)) return false;
    const from = BigInt(cursor);
    const row = await this.#findOversizeRow(from, signal);
    if (row === null) {
      this.#log.warn({ cursor }, "oversize knot row not located (probe failed); will retry");
      return false;
    }
    this.#oversize = { cursor: null, count: 0 };
    this.#o.onSkip?.("oversize");
    this.#log.error(
      { cursor, created: row.toString(), maxFrameBytes: this.#maxFrame() },
      "knot row skipped: its frame is larger than the frame cap",
    );
    this.#advance(row);
    return true;
  }

  /**
   * The `created` of the first row after `from`, known to arrive as an oversize frame. With
   * probe cursor x the knot's first frame is that row exactly when from ≤ x < created; so double
   * the step until a probe sees something else, then halve the gap. Null when a probe could not
   * connect or the knot stopped behaving as described (the caller retries later).
   */
  async #findOversizeRow(from: bigint, signal: AbortSignal): Promise<bigint | null> {
    const LIMIT = 9223372036854775807n;
    let lo = from;
    let step = 1n;
    let hi: bigint;
    for (;;) {
      hi = from + step;
      if (hi > LIMIT) return null;
      const p = await this.#probe(hi, signal);
      if (p === "error") return null;
      if (p !== "oversize") break;
      lo = hi;
      step *= 2n;
    }
    while (hi - lo > 1n) {
      const mid = lo + (hi - lo) / 2n;
      const p = await this.#probe(mid, signal);
      if (p === "error") return null;
      if (p === "oversize") lo = mid;
      else hi = mid;
    }
    return hi;
  }

  /**
   * One short connection at `cursor`: what comes first. The answer is whichever is seen first —
   * a readable frame, the oversize frame's header (1009), or `probeWaitMs` of silence — and the
   * connection is dropped at once: the 1009 session would otherwise end only after the knot has
   * sent the rest of the oversize frame and answered the close, and a wait that ran out
   * meanwhile must not be taken for silence (that located the row too early, skipped nothing,
   * and counted the same row again at the next search).
   */
  async #probe(cursor: bigint, signal: AbortSignal): Promise<Probe> {
    if (signal.aborted) return "error";
    const url = knotEventsUrl(this.knot, this.#o.dev, cursor.toString());
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    let seen: Probe | null = null;
    const saw = (what: Probe) => {
      seen ??= what;
      stop.abort();
    };
    let timer: NodeJS.Timeout | undefined;
    const end = await this.#session(url, stop.signal, {
      onOpen: () => {
        // On a busy event loop the wait can run out while the knot's first frame is already
        // received: read pending I/O (the poll phase runs before setImmediate) before deciding.
        timer = setTimeout(() => setImmediate(() => saw("none")), this.#o.probeWaitMs ?? 2000);
      },
      onText: async (text) => {
        // Frames that are not envelopes are dropped by the real session too; look past them.
        if (parseKnotEnvelope(text).ok) saw("frame");
      },
      onOversize: () => saw("oversize"),
    });
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
    if (signal.aborted) return "error";
    if (seen !== null) return seen;
    return end.oversize === true ? "oversize" : "error";
  }

  #maxFrame(): number {
    return this.#o.maxFrameBytes ?? 16 * 1024 * 1024;
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
