/**
 * Jobs in lanes: in order within a lane (one key, e.g. an event's DID), lanes concurrently, at
 * most `limit` jobs running at once. A lane holds at most one running job; the others wait
 * behind it without taking a slot, so one slow lane takes one slot and never holds up another
 * lane. Lanes whose next job waits for a slot get one in the order they became ready.
 */
export class Lanes {
  readonly #limit: number;
  readonly #lanes = new Map<string, (() => Promise<void>)[]>();
  readonly #ready: string[] = [];
  #running = 0;
  #pending = 0;
  #waiters: (() => void)[] = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`lane concurrency ${limit} is not ≥ 1`);
    this.#limit = limit;
  }

  /** Jobs pushed and not finished (running or waiting). */
  get pending(): number {
    return this.#pending;
  }

  get running(): number {
    return this.#running;
  }

  /** Queues `job` at the end of lane `key`. The job must not reject (its errors are its own). */
  push(key: string, job: () => Promise<void>): void {
    this.#pending++;
    const lane = this.#lanes.get(key);
    if (lane) {
      lane.push(job);
      return;
    }
    this.#lanes.set(key, [job]);
    this.#ready.push(key);
    this.#pump();
  }

  /** Resolves once fewer than `n` jobs are pending. */
  async below(n: number): Promise<void> {
    while (this.#pending >= n) await new Promise<void>((r) => this.#waiters.push(r));
  }

  /** Drops every job not started yet; returns how many. Running jobs go on. */
  clear(): number {
    let dropped = 0;
    for (const [key, lane] of this.#lanes) {
      // A lane whose head is running keeps the head only.
      const running = !this.#ready.includes(key);
      const keep = running ? 1 : 0;
      dropped += lane.length - keep;
      if (keep === 0) this.#lanes.delete(key);
      else lane.length = keep;
    }
    this.#ready.length = 0;
    this.#pending -= dropped;
    this.#notify();
    return dropped;
  }

  /** Resolves once no job is running or waiting. */
  async idle(): Promise<void> {
    await this.below(1);
  }

  #pump(): void {
    while (this.#running < this.#limit && this.#ready.length > 0) {
      const key = this.#ready.shift() as string;
      const lane = this.#lanes.get(key);
      const job = lane?.[0];
      if (!lane || !job) continue;
      this.#running++;
      void job()
        .catch(() => {})
        .finally(() => {
          this.#running--;
          this.#pending--;
          lane.shift();
          if (lane.length > 0) this.#ready.push(key);
          else this.#lanes.delete(key);
          this.#notify();
          this.#pump();
        });
    }
  }

  #notify(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const r of w) r();
  }
}
