/**
 * The client-side Jetstream DID filter of §1.2: events are handled only when their author is the
 * spindle owner or in `known_dids` (members). Upstream filters in the client rather than with
 * Jetstream's `wantedDids`, so membership changes apply without reconnecting; Loom does the same.
 *
 * The in-memory set mirrors the table; the handlers change both inside one transaction-then-set
 * step. The owner can never be removed.
 */
import type { KnownDids } from "../db/index.ts";

export class DidFilter {
  readonly #owner: string;
  readonly #dids: Set<string>;

  constructor(owner: string, known: KnownDids) {
    this.#owner = owner;
    this.#dids = new Set(known.all());
  }

  has(did: string): boolean {
    return did === this.#owner || this.#dids.has(did);
  }

  add(did: string): void {
    this.#dids.add(did);
  }

  remove(did: string): void {
    this.#dids.delete(did);
  }

  /** Owner first, then the rest sorted (for logs and tests). */
  list(): string[] {
    return [this.#owner, ...[...this.#dids].filter((d) => d !== this.#owner).sort()];
  }
}
