/**
 * Log retention (`SPINDLE_SERVER_LOG_RETENTION`): removes workflow log files (`<logDir>/*.log`)
 * not written for longer than the retention, at start and then every hour. Upstream keeps logs
 * forever; on a busy spindle they are what fills the disk, so operators may bound them.
 *
 * - Age is the file's mtime: the relay appends to a running workflow's file, so a file older
 *   than the retention (at least an hour) belongs to a finished run, or to none at all (a file
 *   left by a database that was reset). A run still unfinished is skipped whatever its age.
 * - Only the log file goes. The pipeline, its statuses and its `/events` history stay in the
 *   database (small), so the appview still lists the run; `/logs` and `subscribePipelineLogs`
 *   then replay nothing (a failed run without a log still shows its error, as always).
 */
import { readdir, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Counter } from "prom-client";

export interface LogRetentionOptions {
  logDir: string;
  /** Files not modified for this long are removed (> 0). */
  retentionMs: number;
  /** True while the workflow of this wid has not finished (its file is never removed). */
  isUnfinished: (wid: string) => boolean;
  removed: Counter;
  logger: Logger;
  /** Default one hour. */
  periodMs?: number;
  now?: () => number;
}

export interface SweepResult {
  removed: number;
  bytes: number;
}

export class LogRetention {
  readonly #o: LogRetentionOptions;
  #timer: NodeJS.Timeout | undefined;
  #sweeping: Promise<SweepResult> | undefined;

  constructor(o: LogRetentionOptions) {
    if (!(o.retentionMs > 0)) throw new Error("log retention must be positive");
    this.#o = o;
  }

  start(): void {
    if (this.#timer) return;
    void this.sweep();
    this.#timer = setInterval(() => void this.sweep(), this.#o.periodMs ?? 3_600_000);
    this.#timer.unref();
  }

  /** Stops the timer and waits for a sweep in progress. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#sweeping;
  }

  /** One pass now (or the one in progress). Never throws: problems are logged. */
  sweep(): Promise<SweepResult> {
    this.#sweeping ??= this.#sweepOnce().finally(() => {
      this.#sweeping = undefined;
    });
    return this.#sweeping;
  }

  async #sweepOnce(): Promise<SweepResult> {
    const { logDir, retentionMs, logger } = this.#o;
    const result: SweepResult = { removed: 0, bytes: 0 };
    let names: string[];
    try {
      names = await readdir(logDir);
    } catch (err) {
      // No log written yet: nothing to remove.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT")
        logger.warn({ err: (err as Error).message, logDir }, "log retention: cannot list the log directory");
      return result;
    }
    const cutoff = (this.#o.now?.() ?? Date.now()) - retentionMs;
    for (const name of names) {
      if (!name.endsWith(".log")) continue;
      const path = join(logDir, name);
      try {
        const st = await stat(path);
        if (!st.isFile() || st.mtimeMs >= cutoff) continue;
        if (this.#o.isUnfinished(name.slice(0, -".log".length))) continue;
        await unlink(path);
        result.removed++;
        result.bytes += st.size;
      } catch (err) {
        // Gone meanwhile, or unreadable: the next pass tries again.
        if ((err as NodeJS.ErrnoException).code !== "ENOENT")
          logger.warn({ err: (err as Error).message, file: name }, "log retention: cannot remove a log file");
      }
    }
    if (result.removed > 0) {
      this.#o.removed.inc(result.removed);
      logger.info({ ...result, retentionHours: retentionMs / 3_600_000 }, "old workflow logs removed");
    }
    return result;
  }
}
