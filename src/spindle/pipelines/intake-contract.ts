/**
 * The contract between the intake consumers (Jetstream, knot event streams) and the pipeline
 * processor. The intake side depends only on these two interfaces.
 */

/**
 * Called by a knot consumer for each `sh.tangled.pipeline` envelope. Resolves once the pipeline
 * is durably recorded (or deliberately ignored); only then may the consumer advance its cursor.
 * Never throws for bad input (it records/logs a specific reason); rejects only on storage failure.
 *
 * `knot` is the host of the stream the envelope arrived on; `rkey` the envelope's rkey (a TID);
 * `record` the envelope's `event` value, unvalidated. A (knot, rkey) pair is accepted at most
 * once: replays and reconnects resolve without running anything again.
 */
export interface PipelineIntake {
  acceptPipeline(knot: string, rkey: string, record: unknown): Promise<void>;
}

/** Called by the Jetstream handler when a repo record names this spindle and a knot must be followed. */
export interface KnotRegistry {
  addKnot(knot: string): void;
}
