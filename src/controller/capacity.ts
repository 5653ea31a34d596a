/**
 * `maxConcurrentJobs`, counted from the cluster: the unfinished Jobs with Loom's labels that the
 * Job informer has reported (`observe` on every add/update, `forget` on delete), so a restarted
 * controller (or a new leader) counts what is really running. The count is kept as events arrive,
 * never by a scan of the cache: a capacity check costs the same with 10 or 10,000 Jobs.
 *
 * The cache trails our own creates by a watch event, and reconciles of different runs overlap,
 * so a create is reserved first: `tryReserve` checks and reserves in one synchronous step (the
 * event loop makes it atomic), and the reservation lasts until the informer reports the Job or a
 * minute has passed (the expectations pattern of Kubernetes' own controllers). Reservations are
 * never a count of their own: they only cover the gap between a create and its watch event.
 *
 * Runs that found no slot wait in a queue (`wait`), oldest first. When slots free, `wake` hands
 * out as many waiting runs as there are free slots (not every waiting run: with 200 waiting and
 * one slot free, one run is reconciled, not 200). A woken run that is reconciled again either
 * gets its slot (`done`) or goes back to waiting in its old place.
 */
import type { V1Job } from "@kubernetes/client-node";
import { jobActive } from "./observe.ts";

const RESERVATION_MS = 60_000;

export class Capacity {
  readonly #max: number;
  readonly #now: () => number;
  /** Unfinished Jobs the informer has reported. */
  readonly #active = new Set<string>();
  /** Reservations by Job name: when made, and for which run (its uid). */
  readonly #reserved = new Map<string, { at: number; owner: string | undefined }>();
  /** Runs (SpindleSet keys) waiting for a slot, in arrival order; true once woken. */
  readonly #waiting = new Map<string, boolean>();

  constructor(max: number, now: () => number = Date.now) {
    this.#max = max;
    this.#now = now;
  }

  /** Unfinished Jobs the cache knows. */
  get active(): number {
    return this.#active.size;
  }

  /** Runs waiting for a slot. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /** How many Jobs count against the limit now (active + reserved). */
  inUse(): number {
    return this.#active.size + this.#prune().size;
  }

  /** True if `jobName` could be created now (cheap: checked before a Job is built). */
  hasRoom(jobName: string): boolean {
    if (this.#active.has(jobName) || this.#reserved.has(jobName)) return true;
    return this.inUse() < this.#max;
  }

  /**
   * True if `jobName` may be created (for the run `owner`, its uid); it then counts until the
   * informer has reported it.
   */
  tryReserve(jobName: string, owner?: string): boolean {
    if (!this.hasRoom(jobName)) return false;
    if (!this.#active.has(jobName) && !this.#reserved.has(jobName))
      this.#reserved.set(jobName, { at: this.#now(), owner });
    return true;
  }

  /**
   * True while the run `owner` holds the reservation of `jobName`: its create went through (a
   * failed one releases it) and the informer has not reported the Job yet. A reconcile of that
   * run in the meantime must not POST the Job again (the API server would answer 409).
   */
  createdFor(jobName: string, owner: string): boolean {
    this.#prune();
    return this.#reserved.get(jobName)?.owner === owner;
  }

  /**
   * The Job informer delivered `job` (added or changed): from now on its state alone counts it.
   * Without dropping the reservation here, a Job created and deleted between two capacity checks
   * (a cancel right after the create) would keep its reservation, and a slot, for a minute.
   */
  observe(job: V1Job): void {
    const name = job.metadata!.name!;
    this.#reserved.delete(name);
    if (jobActive(job)) this.#active.add(name);
    else this.#active.delete(name);
  }

  /** The Job informer reported `jobName` deleted. */
  forget(jobName: string): void {
    this.#reserved.delete(jobName);
    this.#active.delete(jobName);
  }

  /** A create that failed frees its reservation. */
  release(jobName: string): void {
    this.#reserved.delete(jobName);
  }

  /** Run `key` found no slot: it waits (keeping its place if it waited before) until woken. */
  wait(key: string): void {
    this.#waiting.set(key, false);
  }

  /** Run `key` waits no more (it got its slots, finished, or is gone). */
  done(key: string): void {
    this.#waiting.delete(key);
  }

  /**
   * The waiting runs to reconcile now, oldest first: one per free slot, less those woken before
   * that have not been reconciled yet (they will take those slots).
   */
  wake(): string[] {
    let free = this.#max - this.inUse();
    for (const woken of this.#waiting.values()) if (woken) free--;
    const out: string[] = [];
    for (const [key, woken] of this.#waiting) {
      if (free <= 0) break;
      if (woken) continue;
      this.#waiting.set(key, true);
      out.push(key);
      free--;
    }
    return out;
  }

  #prune(): Map<string, unknown> {
    const now = this.#now();
    for (const [name, r] of this.#reserved) if (now - r.at > RESERVATION_MS) this.#reserved.delete(name);
    return this.#reserved;
  }
}
