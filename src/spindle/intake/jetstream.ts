/**
 * The Jetstream consumer (spec §1.2): one WebSocket to
 * `<endpoint>?wantedCollections=sh.tangled.spindle.member&wantedCollections=sh.tangled.repo&
 * wantedCollections=sh.tangled.repo.collaborator&cursor=<µs>` in plain JSON (no zstd), the
 * client-side DID filter, and the persisted cursor. With Gen2 pulls (gen2 §2.2) the wanted
 * collections also name `sh.tangled.repo.pull` and `sh.tangled.repo.pull.status`, which are
 * exempt from the DID filter (`filterExempt`): pulls come from arbitrary users.
 *
 * Events are handled concurrently across DIDs and in order per DID (issue 12): each event goes
 * into the lane of its author's DID (lanes.ts), at most `maxConcurrent` handlers run at once,
 * and at most `maxPending` events wait (then the socket is paused), so a slow PDS holds up only
 * the events of the DID whose handler waits on it. The DID filter depends on member events: an
 * event that arrives while member events before it are unfinished waits for them, then asks the
 * filter (so a new member's first repo event is not dropped, a removed member's is).
 *
 * Cursor rules:
 * - the cursor only moves past events whose handling finished: it is the lowest `time_us` still
 *   unfinished, or `time_us + 1` of the last event when all are finished (Jetstream's time_us
 *   increase along the stream). After a crash the unfinished events, and the finished ones after
 *   them, come again (handlers are idempotent: upserts and deduplicated pipelines);
 * - it is stored after each handled event (past the DID filter, or exempt from it) that moved
 *   it, as upstream;
 * - events dropped by the filter move the cursor in memory only; it is saved every
 *   `cursorSaveMs` and on stop. DEVIATION: upstream saves *now()* on that timer, which skips
 *   events whenever the consumer lags; Loom saves the cursor above instead, which is never
 *   ahead of what was actually processed;
 * - when a connection ends, handlers already running finish, events not started are dropped
 *   (the next connection asks for them again from the cursor);
 * - on (re)connect the in-memory cursor (or, after a restart, the stored one) is sent; a missing
 *   cursor or one older than two days is replaced by now, as upstream, and that is stored at
 *   once (a crash before the first handled event resumes there, not from a later now).
 *
 * Reconnects use capped exponential back-off with full jitter (upstream reconnects at once).
 * Liveness: a ping every `pingMs`; nothing received for `livenessMs` → reconnect.
 */
import type { Logger } from "pino";
import { MEMBER_NSID } from "../../protocol/nsid.ts";
import type { JetstreamCursor } from "../db/index.ts";
import type { IntakeMetrics } from "../pipelines/metrics.ts";
import { Backoff, type BackoffOptions, sleep } from "./backoff.ts";
import type { DidFilter } from "./did-filter.ts";
import { WANTED_COLLECTIONS } from "./handlers.ts";
import { decodeJetstreamFrame, type JetstreamEvent } from "./jetstream-event.ts";
import { Lanes } from "./lanes.ts";
import type { Outcome } from "./outcome.ts";
import { runSession } from "./ws-session.ts";

const TWO_DAYS_US = 2 * 24 * 60 * 60 * 1_000_000;

export interface JetstreamEventHandler {
  handle(ev: JetstreamEvent & { commit: NonNullable<JetstreamEvent["commit"]> }): Promise<Outcome>;
}

export interface JetstreamConsumerOptions {
  /** `config.server.jetstreamEndpoint`, e.g. `wss://jetstream1.us-west.bsky.network/subscribe`. */
  endpoint: string;
  filter: DidFilter;
  /** Default `WANTED_COLLECTIONS` (members, repos, collaborators). */
  wantedCollections?: readonly string[];
  /** Collections handled whatever the author (default none). */
  filterExempt?: ReadonlySet<string>;
  cursor: JetstreamCursor;
  handlers: JetstreamEventHandler;
  log: Logger;
  /** Microseconds since the epoch; default from Date.now. */
  nowUs?: () => number;
  /** Reconnect back-off; defaults: base 1 s, cap 2 min, min 250 ms, healthy after 60 s. */
  backoff?: Partial<BackoffOptions>;
  /** Default 60 s ([J]'s read deadline). */
  livenessMs?: number;
  /** Default 20 s. */
  pingMs?: number;
  /** Default 60 s (upstream's period). */
  cursorSaveMs?: number;
  /** Largest frame accepted at all; default 16 MiB. */
  maxFrameBytes?: number;
  /** Larger commit frames are skipped with a log line; default 2 MiB (atproto records are ≤ 1 MiB). */
  maxRecordBytes?: number;
  /** Default 10 s. */
  handshakeTimeoutMs?: number;
  /** Frames buffered before the socket is paused; default 1000. */
  maxQueued?: number;
  /** Open connections and event lag (source `jetstream`); absent = not measured. */
  metrics?: IntakeMetrics;
  /** Handlers running at once (different DIDs); default 16. */
  maxConcurrent?: number;
  /** Events received and not yet handled before the socket is paused; default 1000. */
  maxPending?: number;
}

/** An event between its arrival and the end of its handling (cursor bookkeeping). */
interface Tracked {
  timeUs: number;
  done: boolean;
}

export class JetstreamConsumer {
  readonly #o: JetstreamConsumerOptions;
  readonly #log: Logger;
  readonly #nowUs: () => number;
  readonly #backoff: Backoff;
  #abort: AbortController | null = null;
  #loop: Promise<void> | null = null;
  #saveTimer: NodeJS.Timeout | undefined;
  /** Next cursor: `time_us + 1` of the last processed event (null before the first). */
  #next: number | null = null;
  #saved: number | null = null;
  #connectedOnce = false;
  #lanes: Lanes;
  /** Events not yet finished and the finished ones after the first of them, in arrival order. */
  #tracked: Tracked[] = [];
  /** Member events not finished yet (the DID filter may change when they are). */
  readonly #members = new Map<Promise<void>, () => void>();
  /** Bumped when a connection ends: jobs of an older one that have not started give up. */
  #generation = 0;
  /** True while a connection is open (the status page's intake health). */
  connected = false;

  constructor(opts: JetstreamConsumerOptions) {
    this.#o = opts;
    this.#log = opts.log.child({ component: "jetstream" });
    this.#nowUs = opts.nowUs ?? (() => Date.now() * 1000);
    this.#backoff = new Backoff({
      baseMs: 1000,
      capMs: 120_000,
      minMs: 250,
      healthyAfterMs: 60_000,
      ...opts.backoff,
    });
    this.#lanes = new Lanes(opts.maxConcurrent ?? 16);
  }

  /** Events received and not yet handled (for tests and metrics). */
  get pending(): number {
    return this.#lanes.pending;
  }

  /** The cursor in memory (µs), else the stored one; null before any (the status page). */
  get cursorUs(): number | null {
    return this.#next ?? this.#o.cursor.get();
  }

  /** The URL the next connection will use (cursor chosen by the rules above). */
  url(): string {
    const u = new URL(this.#o.endpoint);
    for (const c of this.#o.wantedCollections ?? WANTED_COLLECTIONS)
      u.searchParams.append("wantedCollections", c);
    u.searchParams.set("cursor", String(this.#chooseCursor()));
    return u.toString();
  }

  start(): void {
    if (this.#loop) return;
    this.#abort = new AbortController();
    this.#next = null;
    this.#saved = this.#o.cursor.get();
    this.#saveTimer = setInterval(() => this.#save("periodic"), this.#o.cursorSaveMs ?? 60_000);
    this.#saveTimer.unref();
    this.#loop = this.#run(this.#abort.signal);
  }

  /** Closes the connection, waits for the event in hand, saves the cursor. */
  async stop(): Promise<void> {
    if (!this.#loop) return;
    this.#abort?.abort();
    await this.#loop;
    clearInterval(this.#saveTimer);
    this.#save("stop");
    this.#loop = null;
  }

  #chooseCursor(): number {
    const now = this.#nowUs();
    const c = this.#next ?? this.#o.cursor.get();
    if (c === null) {
      this.#log.info({ cursor: now }, "no jetstream cursor stored; starting from now");
      return now;
    }
    if (now - c > TWO_DAYS_US) {
      this.#log.warn({ stored: c, cursor: now }, "jetstream cursor older than two days; starting from now");
      return now;
    }
    return c;
  }

  #save(why: string): void {
    if (this.#next === null || this.#next === this.#saved) return;
    try {
      this.#o.cursor.set(this.#next);
      this.#saved = this.#next;
      this.#log.debug({ cursor: this.#next, why }, "jetstream cursor saved");
    } catch (err) {
      this.#log.error({ err: (err as Error).message, why }, "saving the jetstream cursor failed");
    }
  }

  async #run(signal: AbortSignal): Promise<void> {
    // After an attempt that never opened, its warning already said when the next one comes:
    // an unreachable Jetstream gets one line per back-off step, not two.
    let retrying = false;
    while (!signal.aborted) {
      const url = this.url();
      // A reconnect resumes exactly where processing stopped, even if nothing was handled yet.
      if (this.#next === null) {
        this.#next = Number(new URL(url).searchParams.get("cursor"));
        // Stored at once: a crash before the first handled event must not restart from a later now.
        this.#save("start");
      }
      if (!retrying) {
        this.#log.info(
          { url },
          this.#connectedOnce ? "reconnecting to jetstream" : "connecting to jetstream",
        );
      }
      const end = await runSession({
        url,
        log: this.#log,
        signal,
        maxPayload: this.#o.maxFrameBytes ?? 16 * 1024 * 1024,
        livenessMs: this.#o.livenessMs ?? 60_000,
        pingMs: this.#o.pingMs ?? 20_000,
        handshakeTimeoutMs: this.#o.handshakeTimeoutMs ?? 10_000,
        maxQueued: this.#o.maxQueued ?? 1000,
        headers: { "user-agent": "loom-spindle (jetstream consumer)" },
        onOpen: () => {
          this.#o.metrics?.intakeConnections.inc({ source: "jetstream" });
          this.#connectedOnce = true;
          this.connected = true;
          this.#backoff.connected();
          this.#log.info("connected to jetstream");
        },
        onText: (text) => this.#onFrame(text),
      });
      await this.#endOfConnection();
      this.connected = false;
      if (end.opened) this.#o.metrics?.intakeConnections.dec({ source: "jetstream" });
      if (signal.aborted) break;
      const delayMs = this.#backoff.next();
      this.#log.warn(
        { reason: end.reason, code: end.code, opened: end.opened, delayMs, attempt: this.#backoff.attempt },
        end.opened ? "jetstream connection ended" : "jetstream connection failed",
      );
      retrying = !end.opened;
      await sleep(delayMs, signal);
    }
  }

  async #onFrame(text: string): Promise<void> {
    const d = decodeJetstreamFrame(text);
    if (!d.ok) {
      this.#log.warn({ reason: d.reason, bytes: Buffer.byteLength(text) }, "jetstream frame dropped");
      if (d.timeUs !== null) this.#finished(d.timeUs);
      return;
    }
    const ev = d.event;
    this.#o.metrics?.intakeLag.observe(
      { source: "jetstream" },
      Math.max(0, this.#nowUs() - ev.timeUs) / 1_000_000,
    );
    const commit = ev.commit;
    const exempt = commit !== null && this.#o.filterExempt?.has(commit.collection) === true;
    // Member events before this one may still change the filter: decide after them.
    const membersBefore = exempt ? [] : [...this.#members.keys()];
    if (commit === null || (!exempt && membersBefore.length === 0 && !this.#o.filter.has(ev.did))) {
      this.#finished(ev.timeUs);
      return;
    }
    const bytes = Buffer.byteLength(text);
    const fields = {
      did: ev.did,
      collection: commit.collection,
      operation: commit.operation,
      rkey: commit.rkey,
    };
    const maxPending = this.#o.maxPending ?? 1000;
    if (this.#lanes.pending >= maxPending) await this.#lanes.below(maxPending);
    const tracked: Tracked = { timeUs: ev.timeUs, done: false };
    this.#tracked.push(tracked);
    const generation = this.#generation;
    let memberDone: (() => void) | undefined;
    if (commit.collection === MEMBER_NSID) {
      let resolve = () => {};
      const p = new Promise<void>((r) => {
        resolve = r;
      });
      memberDone = () => {
        this.#members.delete(p);
        resolve();
      };
      this.#members.set(p, memberDone);
    }
    this.#lanes.push(ev.did, async () => {
      try {
        if (membersBefore.length > 0) {
          await Promise.all(membersBefore);
          if (generation !== this.#generation) return; // not started before the connection ended
          if (!this.#o.filter.has(ev.did)) {
            tracked.done = true;
            return;
          }
        }
        await this.#handle({ ...ev, commit }, fields, bytes);
        tracked.done = true;
      } finally {
        memberDone?.();
        this.#settle(true);
      }
    });
  }

  async #handle(
    ev: JetstreamEvent & { commit: NonNullable<JetstreamEvent["commit"]> },
    fields: Record<string, string>,
    bytes: number,
  ): Promise<void> {
    if (bytes > (this.#o.maxRecordBytes ?? 2 * 1024 * 1024)) {
      this.#log.warn({ ...fields, bytes }, "jetstream event dropped: record too large");
      return;
    }
    try {
      const outcome = await this.#o.handlers.handle(ev);
      const level = outcome.result === "rejected" ? "warn" : "info";
      this.#log[level](
        { ...fields, result: outcome.result, reason: outcome.reason },
        "jetstream event handled",
      );
    } catch (err) {
      // As upstream: a failed handler is logged and the stream moves on.
      this.#log.error({ ...fields, err: (err as Error).message }, "jetstream event handler failed");
    }
  }

  /** An event needing no handling: past it now, or once the events before it finished. */
  #finished(timeUs: number): void {
    const last = this.#tracked.at(-1);
    if (last === undefined) {
      this.#advance(timeUs);
    } else if (last.done) {
      // Consecutive finished events collapse into one entry: the list stays short.
      last.timeUs = Math.max(last.timeUs, timeUs);
    } else {
      this.#tracked.push({ timeUs, done: true });
    }
  }

  /** Moves the cursor past the finished events at the front; saves it when `save`. */
  #settle(save: boolean): void {
    let i = 0;
    while (i < this.#tracked.length && (this.#tracked[i] as Tracked).done) i++;
    if (i === 0) return;
    const past = (this.#tracked[i - 1] as Tracked).timeUs;
    this.#tracked.splice(0, i);
    const first = this.#tracked[0];
    // Never past an unfinished event (equal time_us included).
    const next = first === undefined ? past + 1 : Math.min(past + 1, first.timeUs);
    if (this.#next === null || next > this.#next) this.#next = next;
    if (save) this.#save("handled");
  }

  /**
   * A connection ended: events not started are dropped (asked for again from the cursor, which
   * stops at the first of them), the running handlers finish, and tracking starts afresh.
   */
  async #endOfConnection(): Promise<void> {
    this.#generation++;
    const dropped = this.#lanes.clear();
    // Member events dropped never finish: release the jobs waiting on them (they give up too).
    for (const release of [...this.#members.values()]) release();
    await this.#lanes.idle();
    this.#settle(false);
    if (dropped > 0)
      this.#log.info({ dropped, cursor: this.#next }, "jetstream events not started are asked for again");
    this.#tracked = [];
    this.#save("connection ended");
  }

  #advance(timeUs: number): void {
    if (this.#next === null || timeUs + 1 > this.#next) this.#next = timeUs + 1;
  }
}
