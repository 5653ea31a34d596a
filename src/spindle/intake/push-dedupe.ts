/**
 * ONE PUSH, TWO EVENTS. A Generation 2 knot emits, per pushed ref, a `sh.tangled.git.refUpdate`
 * and then still a Generation 1 `sh.tangled.pipeline` (gen2 §1, backward compatibility).
 * Both would run. The rule: the refUpdate wins. The key is (repo DID, commit, ref) of a push:
 *  - every refUpdate handled (built, skipped by skip-ci, or no workflow matched) marks its key
 *    as decided in memory for DEDUPE_WINDOW_MS, and is itself skipped when a push pipeline with
 *    that key was stored within the window (a replay, or the Gen1 event came first);
 *  - a Gen1 push pipeline whose key was decided by a refUpdate, or built by this spindle within
 *    the window, is dropped (logged, counted as `duplicate`).
 * The knot sends the refUpdate first and a knot's events are handled one at a time, so the
 * in-memory mark is set before the Gen1 event is looked at; the database check covers restarts.
 * GUESS: the window (1 h) — long enough for any replay, short enough that a deliberate re-push
 * of the same commit to the same ref later runs again.
 */
import type { CiPipelines } from "../db/ci-pipelines.ts";

export const DEDUPE_WINDOW_MS = 60 * 60 * 1000;

/** Marks kept before expired ones are dropped (oldest first). */
const MAX_MARKS = 10_000;

export interface PushKey {
  repoDid: string;
  sha: string;
  ref: string;
}

export class PushDedupe {
  readonly #ci: CiPipelines;
  readonly #hostname: string;
  /** key → ms when a refUpdate decided it. */
  readonly #decided = new Map<string, number>();

  /** @param hostname the spindle's own: the `knot` column of the pipelines it builds. */
  constructor(ci: CiPipelines, hostname: string) {
    this.#ci = ci;
    this.#hostname = hostname;
  }

  /**
   * A refUpdate for `k` arrived. True when a push pipeline with this key was already stored
   * within the window (skip it); either way the key is now decided.
   */
  refUpdateSeen(k: PushKey): boolean {
    const stored = this.#ci.hasRecentPush({ ...k, sinceNs: sinceNs() });
    if (stored) this.#decided.set(keyOf(k), Date.now());
    else this.#mark(keyOf(k));
    return stored;
  }

  /** A Gen1 push pipeline for `k` arrived: true when the refUpdate path already decided it. */
  gen1Duplicate(k: PushKey): boolean {
    const at = this.#decided.get(keyOf(k));
    if (at !== undefined && Date.now() - at < DEDUPE_WINDOW_MS) return true;
    return this.#ci.hasRecentPush({ ...k, sinceNs: sinceNs(), knot: this.#hostname });
  }

  #mark(key: string): void {
    const now = Date.now();
    this.#decided.set(key, now);
    // Bounded: drop expired marks once the map grows (oldest first; Map keeps insertion order).
    if (this.#decided.size > MAX_MARKS) {
      for (const [k, at] of this.#decided) {
        if (now - at < DEDUPE_WINDOW_MS && this.#decided.size <= MAX_MARKS) break;
        this.#decided.delete(k);
      }
    }
  }
}

function keyOf(k: PushKey): string {
  return `${k.repoDid} ${k.sha} ${k.ref}`;
}

function sinceNs(): bigint {
  return BigInt(Date.now() - DEDUPE_WINDOW_MS) * 1_000_000n;
}
