import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { constants } from "node:os";
import type { Writable } from "node:stream";
import { Masker } from "../mask/masker.ts";
import type { Clock } from "./clock.ts";
import { rfc3339Nano } from "./clock.ts";
import { baseEnv, type Env, missingSecrets, pickShell, secretsFromEnv, stepEnv } from "./env.ts";
import { EventWriter } from "./events.ts";
import { OutputPump } from "./output.ts";
import { killLeftovers, signalTree } from "./procs.ts";
import { RUNNER_PROTOCOL_VERSION, type RunnerSpec, type RunnerStep, type RunStatus } from "./protocol.ts";

export interface RunResult {
  status: RunStatus;
  exitCode: number;
  failedStep: number | null;
  error?: string;
}

export interface RunnerOptions {
  /** The runner's own environment: the image's ENV plus LOOM_* variables (secrets). */
  env: NodeJS.ProcessEnv;
  /** Where the JSON-lines events go (stdout in production). */
  out: Writable;
  clock?: Clock;
  /** After SIGTERM on cancel, how long the step gets before SIGKILL. */
  killGraceMs?: number;
  /**
   * After a step's shell exits, how long to wait for its pipes to close. A background process
   * it started may hold them open forever; its later output is dropped, not waited for.
   */
  drainGraceMs?: number;
}

interface StepOutcome {
  exitCode: number;
  timedOut: boolean;
  cancelled: boolean;
  error?: string;
}

/** Exit code for a result that no step produced (bad spec, missing secret, cancelled early). */
const NO_STEP_EXIT = 1;

/**
 * Runs a RunnerSpec's steps in order and reports RunnerEvents. One instance runs once.
 * `cancel()` (wired to SIGTERM/SIGINT by main) stops the current step and ends the run.
 */
export class Runner {
  readonly writer: EventWriter;
  readonly #base: Env;
  readonly #secrets: Map<string, string>;
  readonly #masker: Masker;
  readonly #killGraceMs: number;
  readonly #drainGraceMs: number;
  #cancelled = false;
  #current: { step: number; child: ChildProcess; onCancel: () => void } | null = null;
  /** Every step's process group, killed at the end so no process outlives the run. */
  readonly #groups: number[] = [];
  readonly #pumps: OutputPump[] = [];

  constructor(opts: RunnerOptions) {
    this.writer = new EventWriter(opts.out, opts.clock ?? (() => rfc3339Nano()), () => this.cancel());
    this.#base = baseEnv(opts.env);
    this.#secrets = secretsFromEnv(opts.env);
    this.#masker = new Masker(this.#secrets.values());
    this.#killGraceMs = opts.killGraceMs ?? 2000;
    this.#drainGraceMs = opts.drainGraceMs ?? 500;
  }

  get masker(): Masker {
    return this.#masker;
  }

  hello(): void {
    const shell = pickShell(this.#base.PATH);
    this.writer.emit("hello", { version: RUNNER_PROTOCOL_VERSION, pid: process.pid, shell });
  }

  /** End the run without running anything (the spec could not be read, or was cancelled first). */
  fail(error: string, status: "failed" | "cancelled" = "failed"): RunResult {
    return this.#result({ status, exitCode: NO_STEP_EXIT, failedStep: null, error });
  }

  cancel(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#current?.onCancel();
  }

  async run(spec: RunnerSpec): Promise<RunResult> {
    const missing = [...new Set(spec.steps.flatMap((s) => missingSecrets(s.env, this.#secrets)))];
    if (missing.length > 0) return this.fail(`secrets not provided: ${missing.join(", ")}`);
    try {
      mkdirSync(spec.workspace, { recursive: true });
    } catch (err) {
      return this.fail(`cannot create workspace ${spec.workspace}: ${(err as Error).message}`);
    }
    const deadline = spec.timeoutSeconds > 0 ? performance.now() + spec.timeoutSeconds * 1000 : Infinity;
    const heartbeat =
      spec.heartbeatSeconds > 0
        ? setInterval(
            () => this.writer.emit("heartbeat", { step: this.#current?.step ?? null }),
            // A floor, so a tiny period cannot flood the event stream.
            Math.max(100, spec.heartbeatSeconds * 1000),
          )
        : undefined;
    try {
      for (const step of spec.steps) {
        if (this.#cancelled) return this.#cancelledResult(null, NO_STEP_EXIT);
        const outcome = await this.#runStep(step, spec.workspace, deadline);
        if (outcome.cancelled) return this.#cancelledResult(step.id, outcome.exitCode);
        if (outcome.timedOut) {
          return this.#result({ status: "timeout", exitCode: outcome.exitCode, failedStep: step.id });
        }
        if (outcome.exitCode !== 0) {
          const r: RunResult = { status: "failed", exitCode: outcome.exitCode, failedStep: step.id };
          if (outcome.error !== undefined) r.error = outcome.error;
          return this.#result(r);
        }
      }
      return this.#result({ status: "success", exitCode: 0, failedStep: null });
    } finally {
      clearInterval(heartbeat);
      this.#cleanUp();
    }
  }

  #cancelledResult(step: number | null, exitCode: number): RunResult {
    return this.#result({ status: "cancelled", exitCode, failedStep: step, error: "cancelled" });
  }

  #result(r: RunResult): RunResult {
    // An error text may quote paths or commands; mask it like output, never leak a secret.
    if (r.error !== undefined) r.error = this.#masker.mask(r.error);
    const masked = this.#masker.masked;
    this.writer.emit("result", masked > 0 ? { ...r, masked } : r);
    return r;
  }

  async #runStep(step: RunnerStep, workspace: string, deadline: number): Promise<StepOutcome> {
    const started = performance.now();
    this.writer.emit("step_start", {
      step: step.id,
      name: step.name,
      kind: step.kind,
      command: step.command,
    });
    const outcome = await this.#exec(step, workspace, deadline);
    this.writer.emit("step_end", {
      step: step.id,
      exitCode: outcome.exitCode,
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      timedOut: outcome.timedOut,
      cancelled: outcome.cancelled,
    });
    return outcome;
  }

  #exec(step: RunnerStep, workspace: string, deadline: number): Promise<StepOutcome> {
    const env = stepEnv(this.#base, step.env, this.#secrets);
    const shell = pickShell(env.PATH);
    const outcome: StepOutcome = { exitCode: 0, timedOut: false, cancelled: false };
    let child: ChildProcess;
    try {
      child = spawn(shell, ["-c", step.command], {
        cwd: workspace,
        env,
        // Its own process group, so timeout and cancel reach everything the step started.
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      });
    } catch (err) {
      // Some failures throw instead of emitting 'error' (E2BIG: a command too long for exec).
      return Promise.resolve({
        ...outcome,
        exitCode: 127,
        error: `cannot start ${shell}: ${(err as Error).message}`,
      });
    }
    return new Promise((resolve) => {
      const pumps = [
        new OutputPump(child.stdout!, "stdout", step.id, this.#masker, this.writer),
        new OutputPump(child.stderr!, "stderr", step.id, this.#masker, this.writer),
      ];
      this.#pumps.push(...pumps);
      const timers: NodeJS.Timeout[] = [];
      const running = () => child.pid !== undefined && child.exitCode === null && child.signalCode === null;
      const kill = (sig: NodeJS.Signals) => {
        if (running()) signalTree(child.pid!, sig);
      };
      const remaining = deadline - performance.now();
      if (remaining !== Infinity) {
        timers.push(
          setTimeout(
            () => {
              if (!running()) return;
              outcome.timedOut = true;
              kill("SIGKILL");
            },
            Math.max(0, remaining),
          ),
        );
      }
      const onCancel = () => {
        outcome.cancelled = true;
        // Already exited (its pipes are draining): nothing to signal, no SIGKILL timer to leave.
        if (!running()) return;
        kill("SIGTERM");
        timers.push(setTimeout(() => kill("SIGKILL"), this.#killGraceMs));
      };
      if (child.pid !== undefined) this.#groups.push(child.pid);
      this.#current = { step: step.id, child, onCancel };
      if (this.#cancelled) onCancel();

      let settled = false;
      const settle = async (exitCode: number, error?: string) => {
        if (settled) return;
        settled = true;
        for (const t of timers) clearTimeout(t);
        // Wait for the pipes to drain, but not for a background process that keeps them open.
        let grace: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.all(pumps.map((p) => p.done)),
          new Promise((r) => {
            grace = setTimeout(r, this.#drainGraceMs);
          }),
        ]);
        clearTimeout(grace);
        for (const p of pumps) p.finish();
        this.#current = null;
        outcome.exitCode = exitCode;
        if (error !== undefined) outcome.error = error;
        resolve(outcome);
      };
      child.once("error", (err) => {
        // spawn failed (no such workspace, shell missing): no process, so no exit event.
        if (child.pid === undefined) void settle(127, `cannot start ${shell}: ${err.message}`);
      });
      child.once("exit", (code, signal) => {
        void settle(code ?? 128 + (signal !== null ? (constants.signals[signal] ?? 0) : 0));
      });
    });
  }

  #cleanUp(): void {
    killLeftovers(this.#groups);
    for (const p of this.#pumps) p.destroy();
  }
}
