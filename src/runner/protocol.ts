/**
 * The runner protocol: how an engine tells the runner what to run (a RunnerSpec, JSON) and how
 * the runner reports back (RunnerEvents, one JSON object per line on stdout).
 *
 * The runner knows nothing of Tangled's wire format; the relay (src/relay) translates these
 * events into Tangled LogLines. Bump RUNNER_PROTOCOL_VERSION on any incompatible change: the
 * relay refuses a runner whose hello carries a version it does not know.
 */

export const RUNNER_PROTOCOL_VERSION = 1;

/** Environment variables the runner reads from its own process environment. */
export const RUNNER_ENV = {
  /** Prefix of variables that carry repo secret values: `LOOM_SECRET_<KEY>=<value>`. */
  secretPrefix: "LOOM_SECRET_",
  /** Every variable starting with this prefix is removed before steps inherit the environment. */
  internalPrefix: "LOOM_",
} as const;

/**
 * One entry of a step's environment. Entries are applied in order and a later entry wins, which
 * is how the precedence of spec §7.2 is expressed. A secret entry names the secret key; its value
 * is read from `LOOM_SECRET_<key>` in the runner's own environment, so the spec (which may be
 * stored in a Kubernetes custom resource) never holds a secret value.
 */
export type EnvEntry = { name: string; value: string } | { name: string; secret: string };

export type StepKind = "system" | "user";

export interface RunnerStep {
  /** Tangled step id: 0.. in step-list order. */
  id: number;
  name: string;
  command: string;
  kind: StepKind;
  env: EnvEntry[];
}

export interface RunnerSpec {
  version: typeof RUNNER_PROTOCOL_VERSION;
  /** Working directory of every step (created if missing). */
  workspace: string;
  /** Budget for all steps together; 0 = none. Exceeding it ends the run with `timeout`. */
  timeoutSeconds: number;
  /** Heartbeat period, so a watcher can tell a silent runner from a dead one; 0 = none. */
  heartbeatSeconds: number;
  steps: RunnerStep[];
}

export type RunStatus = "success" | "failed" | "timeout" | "cancelled";

interface EventBase {
  /** RFC 3339 time with nanosecond digits (the runner's clock). */
  time: string;
}

export type RunnerEvent =
  | (EventBase & { type: "hello"; version: number; pid: number; shell: string })
  | (EventBase & { type: "step_start"; step: number; name: string; kind: StepKind; command: string })
  | (EventBase & {
      type: "output";
      step: number;
      stream: "stdout" | "stderr";
      /** Per-run sequence number of output events (shared by both streams), from 1. */
      seq: number;
      /**
       * Already masked; invalid UTF-8 is replaced by U+FFFD. At most 16 Ki UTF-16 units, never
       * splitting a surrogate pair; one write of the step may arrive as several events, and a
       * masker may hold back the tail of a write until it knows it does not start a secret.
       */
      data: string;
    })
  | (EventBase & { type: "heartbeat"; step: number | null })
  | (EventBase & {
      type: "step_end";
      step: number;
      /** The shell's exit status; 128 + n when killed by signal n; 127 when it could not start. */
      exitCode: number;
      durationMs: number;
      timedOut: boolean;
      cancelled: boolean;
    })
  | (EventBase & {
      type: "result";
      status: RunStatus;
      /**
       * Exit code of the failing (timed-out, cancelled) step, or 0 on success; 1 when the run
       * ended without a step to blame (bad spec, missing secret, cancelled between steps).
       */
      exitCode: number;
      failedStep: number | null;
      error?: string;
      /** Secret occurrences the runner masked in the run's output (absent: none). */
      masked?: number;
    });
