/**
 * Pull requests from Jetstream (gen2 §2.2, §2.5): the two collections, their exemption from the
 * DID filter (pulls come from arbitrary users, not only members), and the handler interface.
 * Intake only routes these events; what to build is decided by the handler the server passes in
 * (`Gen2Service.pullHandler()`), so intake does not depend on Gen2.
 */
import { PULL_NSID, PULL_STATUS_NSID } from "../../protocol/nsid.ts";
import type { Outcome } from "./handlers.ts";
import type { JetstreamEvent } from "./jetstream-event.ts";

export const PULL_COLLECTIONS = [PULL_NSID, PULL_STATUS_NSID] as const;

/** Collections handled whatever the author's DID (the filter is not consulted for them). */
export const FILTER_EXEMPT_COLLECTIONS: ReadonlySet<string> = new Set(PULL_COLLECTIONS);

export type CommitEvent = JetstreamEvent & { commit: NonNullable<JetstreamEvent["commit"]> };

export interface PullEventHandler {
  /**
   * One `sh.tangled.repo.pull` or `sh.tangled.repo.pull.status` commit (any operation). Should
   * answer an outcome for bad input and remote failures rather than throw; a throw is logged by
   * the consumer, which moves on.
   */
  handle(ev: CommitEvent): Promise<Outcome>;
}
