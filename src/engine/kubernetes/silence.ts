/**
 * The runner-silence watchdog. Only the engine reads the runner's events (heartbeats included),
 * so only it can tell a runner that stopped talking: one silent for `silentSeconds` while its
 * container runs gets its Job annotated with RUNNER_SILENT_ANNOTATION (src/api/contract), and
 * the controller ends the workflow with RunnerSilent. Each run is reported once; a failed
 * report is tried again at the next check.
 */
import type { Logger } from "pino";
import { RUNNER_SILENT_ANNOTATION } from "../../api/contract/index.ts";
import { describe } from "./logs.ts";

/** What the watchdog needs to know of one run. */
export interface SilenceCandidate {
  /** Stable for the run's lifetime: the watchdog remembers whom it reported. */
  readonly key: object;
  readonly wid: string;
  /** Whether the run still waits for its final status. */
  readonly waiting: boolean;
  /** How long the runner has sent nothing while its container runs (PodLogFollower.silentMs). */
  silentMs(): number;
  /** The workflow's Job, once the controller named it in the status. */
  jobName(): string | undefined;
}

export interface SilenceWatchdogOptions {
  /** 0 = off. */
  silentSeconds: number;
  candidates(): Iterable<SilenceCandidate>;
  /** Sets one annotation on the named Job. */
  annotateJob(job: string, key: string, value: string): Promise<void>;
  log: Logger;
}

export class SilenceWatchdog {
  readonly #o: SilenceWatchdogOptions;
  readonly #reported = new WeakSet<object>();
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: SilenceWatchdogOptions) {
    this.#o = opts;
  }

  /** Starts the periodic check (a quarter of the limit, between 250 ms and 5 s); idempotent. */
  start(): void {
    this.#timer ??= setInterval(
      () => this.check(),
      Math.max(250, Math.min(5000, (this.#o.silentSeconds * 1000) / 4)),
    ).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  check(now = Date.now()): void {
    const limit = this.#o.silentSeconds * 1000;
    if (limit <= 0) return;
    for (const c of this.#o.candidates()) {
      if (!c.waiting || this.#reported.has(c.key)) continue;
      const silentMs = c.silentMs();
      if (silentMs < limit) continue;
      const job = c.jobName();
      if (!job) continue;
      this.#reported.add(c.key);
      const since = new Date(now - silentMs).toISOString().replace(/\.\d+Z$/, "Z");
      this.#o.log.warn({ wid: c.wid, job, silentMs: Math.round(silentMs) }, "runner silent");
      void this.#o
        .annotateJob(job, RUNNER_SILENT_ANNOTATION, `no runner event since ${since}`)
        .catch((err: unknown) => {
          this.#reported.delete(c.key);
          this.#o.log.error({ wid: c.wid, err: describe(err) }, "runner silence not reported");
        });
    }
  }
}
