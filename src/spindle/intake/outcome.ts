/**
 * What a Jetstream commit handler answers (handlers.ts for members, repos and collaborators;
 * pulls.ts for pull requests): applied, ignored or rejected, with a specific reason the consumer
 * logs. Its own module so the handlers and the pull intake share it without importing each other.
 */
import type { JetstreamEvent } from "./jetstream-event.ts";

export interface Outcome {
  result: "applied" | "ignored" | "rejected";
  reason: string;
}

export const applied = (reason: string): Outcome => ({ result: "applied", reason });
export const ignored = (reason: string): Outcome => ({ result: "ignored", reason });
export const rejected = (reason: string): Outcome => ({ result: "rejected", reason });

/** A Jetstream event that carries a commit. */
export type CommitEvent = JetstreamEvent & { commit: NonNullable<JetstreamEvent["commit"]> };
