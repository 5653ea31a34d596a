/**
 * `sh.tangled.pipeline.status` events exactly as the Go spindle encodes them (spec §4.1): keys
 * sorted, `$type` always "", `createdAt` RFC 3339 with second precision, `error`/`exitCode`
 * only when set, strings escaped as Go's encoding/json does (`<`, `>`, `&` as \u003c…).
 *
 * `createdAt` is written in UTC (`…Z`). Upstream uses the server's local zone; any RFC 3339
 * offset parses the same on the appview, and UTC keeps the output independent of the host.
 */
import { goJsonString } from "./logline.ts";
import { PIPELINE_NSID } from "./nsid.ts";
import { rfc3339Seconds } from "./time.ts";

/** A workflow's status on the wire (`sh.tangled.pipeline.status`), as every engine reports it. */
export type WorkflowStatus = "pending" | "running" | "success" | "failed" | "timeout" | "cancelled";

export const FINISHED: ReadonlySet<WorkflowStatus> = new Set(["success", "failed", "timeout", "cancelled"]);

export interface PipelineStatus {
  /** `at://did:web:<knot>/sh.tangled.pipeline/<rkey>` */
  pipeline: string;
  workflow: string;
  status: WorkflowStatus;
  createdAt: Date;
  error?: string | undefined;
  exitCode?: number | undefined;
}

/** The pipeline's AT-URI (§1.6 step 5). */
export function pipelineAtUri(knot: string, rkey: string): string {
  return `at://did:web:${knot}/${PIPELINE_NSID}/${rkey}`;
}

/** The status object's JSON text, byte for byte as upstream. */
export function encodeStatus(s: PipelineStatus): string {
  let out = `{"$type":"","createdAt":"${rfc3339Seconds(s.createdAt)}"`;
  if (s.error !== undefined && s.error !== "") out += `,"error":${goJsonString(s.error)}`;
  if (s.exitCode !== undefined) out += `,"exitCode":${Math.trunc(s.exitCode)}`;
  out += `,"pipeline":${goJsonString(s.pipeline)},"status":"${s.status}","workflow":${goJsonString(s.workflow)}}`;
  return out;
}

/** The stream envelope around an already-encoded event (§1.3: keys sorted). */
export function encodeEnvelope(eventJson: string, nsid: string, rkey: string): string {
  return `{"event":${eventJson},"nsid":${goJsonString(nsid)},"rkey":${goJsonString(rkey)}}`;
}
