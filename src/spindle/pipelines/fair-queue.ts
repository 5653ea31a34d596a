/**
 * The order in which queued pipelines start (issue 12, fair share): round-robin across repo
 * owners (DIDs), and across the repos of one owner; first in, first out within a repo. One
 * owner who queues 100 pipelines therefore delays another owner's first one by at most one
 * pipeline per owner waiting, not by 100.
 *
 * Owners (and each owner's repos) sit in rotation order: a newcomer joins at the end; the one
 * that was just served moves to the end. One that was skipped (every repo at its per-repo
 * limit) keeps its place, so it is served first once it may start again. Pure and in memory:
 * the durable queue is SQLite's `pipelines.state = 'queued'`; the scheduler feeds this from it.
 */

export interface QueueEntry {
  /** The pipeline's row id. */
  id: number;
  /** The repo owner's DID. */
  owner: string;
  /** The repo's key (its DID, or `<owner>/<name>`). */
  repo: string;
}

export class FairQueue {
  /** owner → repo → entries (FIFO); Map iteration order is the rotation order. */
  readonly #owners = new Map<string, Map<string, QueueEntry[]>>();
  readonly #ids = new Set<number>();

  get size(): number {
    return this.#ids.size;
  }

  has(id: number): boolean {
    return this.#ids.has(id);
  }

  add(e: QueueEntry): void {
    if (this.#ids.has(e.id)) return;
    this.#ids.add(e.id);
    let repos = this.#owners.get(e.owner);
    if (!repos) {
      repos = new Map();
      this.#owners.set(e.owner, repos);
    }
    const list = repos.get(e.repo);
    if (list) list.push(e);
    else repos.set(e.repo, [e]);
  }

  /**
   * Takes the next entry whose repo may start now (`mayStart`), and rotates its owner and repo
   * to the end. Null when the queue is empty or every waiting repo is held back.
   */
  take(mayStart: (repo: string) => boolean = () => true): QueueEntry | null {
    for (const [owner, repos] of this.#owners) {
      for (const [repo, list] of repos) {
        if (!mayStart(repo)) continue;
        const e = list.shift() as QueueEntry;
        this.#ids.delete(e.id);
        repos.delete(repo);
        if (list.length > 0) repos.set(repo, list);
        this.#owners.delete(owner);
        if (repos.size > 0) this.#owners.set(owner, repos);
        return e;
      }
    }
    return null;
  }

  /** The first `n` entries in the order `take()` would give them if no repo were held back. */
  peek(n: number): QueueEntry[] {
    // Rotation state only (owners, repos and a read index per repo), never a copy of entries.
    // Each round serves every owner once, and an owner's repos in turn, so the first n picks
    // come from the first n owners and the first n repos of each: the cost is bounded by n²,
    // not by the length of the queue.
    const owners: { list: QueueEntry[]; at: number }[][] = [];
    for (const repos of this.#owners.values()) {
      if (owners.length >= n) break;
      const mine: { list: QueueEntry[]; at: number }[] = [];
      for (const list of repos.values()) {
        if (mine.length >= n) break;
        mine.push({ list, at: 0 });
      }
      owners.push(mine);
    }
    const out: QueueEntry[] = [];
    while (out.length < n && owners.length > 0) {
      const repos = owners.shift() as { list: QueueEntry[]; at: number }[];
      const r = repos.shift() as { list: QueueEntry[]; at: number };
      out.push(r.list[r.at++] as QueueEntry);
      if (r.at < r.list.length) repos.push(r);
      if (repos.length > 0) owners.push(repos);
    }
    return out;
  }
}
