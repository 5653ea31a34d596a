import type { Reason } from "../v1alpha1/spindleset.ts";

/**
 * A workflow that cannot be turned into Kubernetes objects. It carries the status reason the
 * controller should report, so the workflow fails at once with a clear message instead of
 * retrying something that can never work.
 */
export class BuildError extends Error {
  override readonly name = "BuildError";
  readonly code = "BUILD_FAILED";
  readonly reason: Reason;
  constructor(reason: Reason, message: string) {
    super(message);
    this.reason = reason;
  }
}
