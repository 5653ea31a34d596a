/**
 * `maxConcurrentJobs`, counted from the cluster: the unfinished Jobs with Loom's labels in the
 * informer's cache, so a restarted controller (or a new leader) counts what is really running.
 *
 * The cache trails our own creates by a watch event, and reconciles of different runs overlap,
 * so a create is reserved first: `tryReserve` checks and reserves in one synchronous step (the
 * event loop makes it atomic), and the reservation lasts until the cache shows the Job or a
 * minute has passed (the expectations pattern of Kubernetes' own controllers): the Job informer
 * reports every event it sees (`observed`). Reservations are
 * never a count of their own: they only cover the gap between a create and its watch event.
 */
import type { V1Job } from "@kubernetes/client-node";
import { jobActive } from "./observe.ts";

const RESERVATION_MS = 60_000;

export class Capacity {
  readonly #max: number;
  readonly #jobs: () => Iterable<V1Job>;
  readonly #now: () => number;
  readonly #reserved = new Map<string, number>();

  constructor(max: number, jobs: () => Iterable<V1Job>, now: () => number = Date.now) {
    this.#max = max;
    this.#jobs = jobs;
    this.#now = now;
  }

  /** Names of the unfinished Jobs the cache knows. */
  activeNames(): Set<string> {
    const names = new Set<string>();
    for (const job of this.#jobs()) if (jobActive(job)) names.add(job.metadata!.name!);
    return names;
  }

  /** How many Jobs count against the limit now (active + reserved). */
  inUse(): number {
    return this.#prune(this.#known()).size + this.activeNames().size;
  }

  /** True if `jobName` may be created; it then counts until the cache has caught up. */
  tryReserve(jobName: string): boolean {
    const active = this.activeNames();
    if (active.has(jobName)) return true;
    const reserved = this.#prune(this.#known());
    if (reserved.has(jobName)) return true;
    if (active.size + reserved.size >= this.#max) return false;
    this.#reserved.set(jobName, this.#now());
    return true;
  }

  /**
   * The Job informer delivered an event for `jobName` (added, changed or deleted): the cache has
   * caught up with the create, so from now on the cache alone counts it. Without this, a Job
   * created and deleted between two capacity checks (a cancel right after the create) would
   * keep its reservation, and a slot, for a minute.
   */
  observed(jobName: string): void {
    this.#reserved.delete(jobName);
  }

  /** A create that failed frees its reservation. */
  release(jobName: string): void {
    this.#reserved.delete(jobName);
  }

  /** Every Job name the cache has, finished or not. */
  #known(): Set<string> {
    const names = new Set<string>();
    for (const job of this.#jobs()) names.add(job.metadata!.name!);
    return names;
  }

  #prune(known: Set<string>): Map<string, number> {
    const now = this.#now();
    for (const [name, at] of this.#reserved) {
      if (known.has(name) || now - at > RESERVATION_MS) this.#reserved.delete(name);
    }
    return this.#reserved;
  }
}
