/**
 * Follows the runner container's log of one workflow's pod through the pod log API and hands
 * each runner line, exactly once and in order, to the caller (which feeds a Relay).
 *
 *   wait for a kick (the workflow runs) ─▶ find the pod by label in the engine's shared pod
 *   cache (pods.ts; a pod change wakes the wait) ─▶ runner container running?
 *        └── follow=true, timestamps=true, sinceTime=cursor ──▶ lines ─▶ LogCursor ─▶ EventDeduper
 *   stream ended: container still running → reconnect (the API closes follows early: apiserver
 *   restarts, timeouts, kubelet log rotation); terminated → one last read to EOF → "drained".
 *
 * Stream errors never escape: client-node's Log pipes the response into our Writable and gives
 * no handle on the source stream, so its errors are caught through the Writable's `pipe` event.
 */
import { Writable } from "node:stream";
import { ApiException, type KubeConfig, Log, type V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { EventDeduper, LogCursor, parsePodLogLine } from "./cursor.ts";
import type { PodCache } from "./pods.ts";

export type FollowEnd =
  /** The runner container terminated and its log was read to the end. */
  | "drained"
  /** The pod finished without the runner container ever starting (init failure, eviction). */
  | "not_started"
  /** No pod was found after the workflow was reported finished. */
  | "no_pod"
  /** The pod disappeared while it was being followed. */
  | "pod_gone"
  | "stopped";

export interface FollowerOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** The labels of the workflow's pod (the Job's pod template labels). */
  labels: Readonly<Record<string, string>>;
  /** The engine's shared pod cache (its selector must keep this workflow's pod). */
  pods: PodCache;
  container: string;
  /** New runner lines, in order; may return a promise to slow the reader down. */
  onLines(lines: string[]): void | Promise<void>;
  logger: Logger;
  /** Pause between pod lookups in the cache while waiting, if no pod change wakes it sooner (default 1 s). */
  pollMs?: number;
  /** How long to wait for the first line of a terminated container before calling it empty (default 5 s). */
  emptyGraceMs?: number;
  /** How long to look for a pod after finalSeen() (default 1 s: the controller has seen the end, so a pod that is not there is gone). */
  noPodGraceMs?: number;
}

type ContainerState = "waiting" | "running" | "terminated";

export class PodLogFollower {
  readonly #o: Required<Omit<FollowerOptions, "logger" | "onLines">> & Pick<FollowerOptions, "onLines">;
  readonly #log: Logger;
  readonly #cursor = new LogCursor();
  readonly #dedupe = new EventDeduper();
  #stopped = false;
  #kicked = false;
  #finalAt: number | undefined;
  #current: AbortController | undefined;
  #wake: (() => void) | undefined;
  #lines = 0;
  #lastLineAt = performance.now();
  #runningSince: number | undefined;
  #pod: string | undefined;
  #lastConnectedAt = Number.NEGATIVE_INFINITY;
  #ended = false;

  constructor(opts: FollowerOptions) {
    this.#o = {
      kubeConfig: opts.kubeConfig,
      namespace: opts.namespace,
      labels: opts.labels,
      pods: opts.pods,
      container: opts.container,
      onLines: opts.onLines,
      pollMs: opts.pollMs ?? 1000,
      emptyGraceMs: opts.emptyGraceMs ?? 5000,
      noPodGraceMs: opts.noPodGraceMs ?? 1000,
    };
    this.#log = opts.logger;
  }

  /** Runner lines relayed so far. */
  get lines(): number {
    return this.#lines;
  }

  /** The pod being followed, once found. */
  get pod(): string | undefined {
    return this.#pod;
  }

  /**
   * Milliseconds the runner has been silent while its container runs, for the heartbeat
   * watchdog: 0 before the container runs, after it ended, and when the log could not be read
   * for the last 10 s (a broken API is not a silent runner).
   */
  silentMs(now = performance.now()): number {
    if (this.#runningSince === undefined || this.#ended) return 0;
    const connected = this.#current !== undefined || now - this.#lastConnectedAt < 10_000;
    if (!connected) return 0;
    return now - Math.max(this.#lastLineAt, this.#runningSince);
  }

  /** The workflow runs (or ran): start looking for its pod now. */
  kick(): void {
    this.#kicked = true;
    this.#wake?.();
  }

  /** The workflow has a final status: a pod that is not there by now will not come. */
  finalSeen(): void {
    this.#finalAt ??= performance.now();
    this.kick();
  }

  /** Breaks the current connection; the follower reconnects as after any broken stream. */
  interrupt(): void {
    this.#current?.abort();
  }

  stop(): void {
    this.#stopped = true;
    this.#current?.abort();
    this.#wake?.();
  }

  async run(): Promise<FollowEnd> {
    // A pod change ends a wait at once; the pause between looks is only a fallback.
    const off = this.#o.pods.onChange(this.#o.labels, () => this.#wake?.());
    try {
      return await this.#follow();
    } finally {
      off();
    }
  }

  async #follow(): Promise<FollowEnd> {
    let failures = 0;
    let seenPod = false;
    let emptySince: number | undefined;
    while (!this.#stopped) {
      if (!this.#kicked) {
        await this.#sleep(10 * this.#o.pollMs);
        this.#kicked = true; // a missed status update must not stall the log forever
        continue;
      }
      let pod: V1Pod | undefined;
      try {
        pod = await this.#findPod();
      } catch (err) {
        failures++;
        this.#log.warn({ err: describe(err) }, "pod lookup failed");
        await this.#sleep(backoff(failures, this.#o.pollMs));
        continue;
      }
      if (!pod) {
        if (seenPod) return "pod_gone";
        if (this.#finalAt !== undefined && performance.now() - this.#finalAt > this.#o.noPodGraceMs)
          return "no_pod";
        await this.#sleep(this.#o.pollMs);
        continue;
      }
      seenPod = true;
      this.#pod = pod.metadata?.name;
      const state = this.#containerState(pod);
      if (state === "waiting") {
        const phase = pod.status?.phase;
        if (phase === "Succeeded" || phase === "Failed") return "not_started";
        await this.#sleep(this.#o.pollMs);
        continue;
      }
      this.#runningSince ??= performance.now();
      const terminated = state === "terminated";
      const before = this.#lines;
      try {
        await this.#read(pod.metadata!.name!, !terminated);
        failures = 0;
      } catch (err) {
        if (this.#stopped) break;
        failures++;
        this.#log.debug({ err: describe(err), pod: pod.metadata?.name }, "pod log stream broke");
        // Short cap: a log that is not there yet (container starting, runtime late) usually
        // comes within seconds, and the final status waits on it.
        await this.#sleep(backoff(failures, 250, 3000));
        continue;
      }
      if (terminated) {
        this.#ended = true;
        // A runner always writes its hello first: an empty log of a finished container means the
        // runtime has not published it yet (or lost it). Retry a little, then accept it.
        if (this.#lines === 0) {
          emptySince ??= performance.now();
          if (performance.now() - emptySince < this.#o.emptyGraceMs) {
            await this.#sleep(Math.min(500, this.#o.pollMs));
            continue;
          }
        }
        return "drained";
      }
      // The follow ended while the container runs: reconnect, at once if it was productive.
      if (this.#lines === before) await this.#sleep(Math.min(1000, this.#o.pollMs));
    }
    return "stopped";
  }

  async #findPod(): Promise<V1Pod | undefined> {
    const found = await this.#o.pods.find(this.#o.labels);
    // backoffLimit 0: one pod per Job. Should there be more, the one whose runner started has
    // the log: the one already followed, else a started one, else the newest.
    const pods = found.sort((a, b) =>
      String(b.metadata?.creationTimestamp ?? "").localeCompare(String(a.metadata?.creationTimestamp ?? "")),
    );
    const started = pods.filter((p) => this.#containerState(p) !== "waiting");
    return started.find((p) => p.metadata?.name === this.#pod) ?? started[0] ?? pods[0];
  }

  #containerState(pod: V1Pod): ContainerState {
    const st = pod.status?.containerStatuses?.find((c) => c.name === this.#o.container)?.state;
    if (st?.terminated) return "terminated";
    if (st?.running) return "running";
    return "waiting";
  }

  /** One connection: resolves when the response ends, rejects when it breaks or is refused. */
  #read(pod: string, follow: boolean): Promise<void> {
    this.#cursor.reconnect();
    const sinceTime = this.#cursor.sinceTime();
    let partial = "";
    const handle = (text: string): string[] => {
      const out: string[] = [];
      const lines = (partial + text).split("\n");
      partial = lines.pop() ?? "";
      for (const raw of lines) {
        const line = parsePodLogLine(raw.endsWith("\r") ? raw.slice(0, -1) : raw);
        if (!this.#cursor.accept(line)) continue;
        if (!this.#dedupe.accept(line.text)) continue;
        out.push(line.text);
      }
      return out;
    };
    const deliver = (lines: string[], cb: (err?: Error | null) => void) => {
      if (lines.length === 0) return cb();
      this.#lines += lines.length;
      this.#lastLineAt = performance.now();
      let pending: void | Promise<void>;
      try {
        pending = this.#o.onLines(lines);
      } catch (err) {
        return cb(err as Error);
      }
      if (pending) pending.then(() => cb(), cb);
      else cb();
    };
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      // A follow does not always end when its container does (a deleted pod's stream can stay
      // open until a server timeout): look at the pod now and then, and hang up when the
      // container is gone or finished; the caller reconnects or drains from the cursor.
      const check = follow ? setInterval(() => void this.#checkAlive(pod), 5 * this.#o.pollMs) : undefined;
      const done = (err?: unknown) => {
        if (settled) return;
        settled = true;
        clearInterval(check);
        if (this.#current) this.#lastConnectedAt = performance.now();
        this.#current = undefined;
        if (err) reject(err);
        else resolve();
      };
      const sink = new Writable({
        decodeStrings: false,
        write(chunk: Buffer | string, _enc, cb) {
          deliver(handle(typeof chunk === "string" ? chunk : chunk.toString("utf8")), cb);
        },
        // A last line without its newline is complete only when the log really ended.
        final(cb) {
          const rest = partial;
          partial = "";
          deliver(rest === "" ? [] : handle(`${rest}\n`), cb);
        },
      });
      sink.on("pipe", (src) =>
        src.once("error", (err: unknown) => done(err ?? new Error("log stream broke"))),
      );
      sink.once("finish", () => done());
      sink.once("error", (err) => done(err));
      new Log(this.#o.kubeConfig)
        .log(this.#o.namespace, pod, this.#o.container, sink, {
          follow,
          timestamps: true,
          ...(sinceTime !== undefined && { sinceTime }),
        })
        .then(
          (ctl) => {
            if (settled) return;
            this.#current = ctl;
            this.#lastConnectedAt = performance.now();
            if (this.#stopped) ctl.abort();
          },
          (err: unknown) => done(err),
        );
    });
  }

  async #checkAlive(pod: string): Promise<void> {
    try {
      const found = await this.#findPod();
      if (!found || found.metadata?.name !== pod || this.#containerState(found) === "terminated") {
        this.#current?.abort();
      }
    } catch {
      // The API is unreachable: the stream will tell.
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(finish, ms);
      function finish() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        finish();
      };
    });
  }
}

function backoff(failures: number, base: number, max = 10_000): number {
  const ms = Math.min(max, base * 2 ** Math.min(failures, 6));
  return ms / 2 + Math.random() * (ms / 2);
}

/** An error for a log line: status code and message, never a response body. */
export function describe(err: unknown): string {
  if (err instanceof ApiException) return `HTTP ${err.code}`;
  return err instanceof Error ? `${err.name}: ${err.message}`.slice(0, 300) : String(err).slice(0, 300);
}
