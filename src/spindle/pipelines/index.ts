/**
 * Pipeline processing (spec §1.6), the durable queue (§6.3) and the `/events` log (§4.1).
 * `PipelineProcessor` is the `PipelineIntake` the knot consumers call; `Scheduler` runs queued
 * pipelines on the engine; `Ledger` records every status change with its event.
 */

export { Admission, type AdmitRequest, type ResolveSettings } from "./admission.ts";
export { EventLog, type StoredEvent, wallClockNanos } from "./event-log.ts";
export type { KnotRegistry, PipelineIntake } from "./intake-contract.ts";
export { Ledger, type Transition } from "./ledger.ts";
export { createMetrics, type SpindleMetrics } from "./metrics.ts";
export { PipelineProcessor } from "./processor.ts";
export { checkPipelineRecord, MAX_RECORD_BYTES } from "./record.ts";
export { type CancelResult, Scheduler, USER_CANCELLED } from "./scheduler.ts";
export { type PipelineRow, PipelineStore, type RunRow } from "./store.ts";
