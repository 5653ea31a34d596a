/**
 * The local engine: every workflow runs as the runner, a child process of this server, in a
 * fresh directory on this machine. No isolation beyond the user account — for development,
 * `loom run`, and trusted single-user spindles. Contract: ../engine.ts.
 */
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { maskSecrets } from "../../mask/masker.ts";
import { readResultFile, type StoredResult } from "../../runner/result-file.ts";
import {
  type Engine,
  EngineError,
  type RecoverResult,
  type WorkflowOutcome,
  type WorkflowRun,
} from "../engine.ts";
import { killRunProcesses } from "./procs.ts";
import { LocalRun } from "./run.ts";
import { findRunDirs, RESULT_NAME, type RunDir, removeTree } from "./workspace.ts";

export interface LocalEngineOptions {
  /** Where run directories are created (one mkdtemp per run). */
  baseDir: string;
  /**
   * The runner command; the spec file path is appended. Default: this Node running the
   * runner's source (or compiled) entry beside this module. The bundle works too:
   * `[process.execPath, "dist/runner-bundle/loom-runner"]`.
   */
  runnerCommand?: readonly string[];
  /**
   * The runner's environment, which steps inherit (HOME and the LOOM_SECRET_* variables are
   * added per run). Deliberately not the server's environment: that holds the server's own
   * credentials. Default: a standard PATH only.
   */
  env?: Readonly<Record<string, string>>;
  /** Between SIGTERM and SIGKILL on cancel (default 10 s). */
  killGraceMs?: number;
  /** Added to a workflow's timeout before the engine kills a runner that missed it (default 30 s). */
  timeoutGraceMs?: number;
  /**
   * Runs after a run's directory and spec exist and before the runner starts (a container
   * engine clones there, as a pod's init container does). A throw fails the run's set-up.
   */
  prepare?: (run: WorkflowRun, dir: RunDir) => Promise<void>;
  /**
   * Runner heartbeat period (default 15 s). A runner silent for four periods counts as hung:
   * it is killed and the run fails. 0 turns the watchdog off.
   */
  heartbeatSeconds?: number;
}

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The runner entry beside this module: main.ts when running from source, main.js when built. */
export function defaultRunnerCommand(): string[] {
  const ext = extname(fileURLToPath(import.meta.url)) === ".ts" ? ".ts" : ".js";
  return [process.execPath, fileURLToPath(new URL(`../../runner/main${ext}`, import.meta.url))];
}

const LOST_REASON =
  "the local engine cannot resume a workflow after a restart: its runner was a child of the previous spindle process";
const CUT_REASON =
  "the local engine cannot resume a workflow after a restart: its runner stopped the steps when the previous spindle process went away";

export class LocalEngine implements Engine {
  readonly name = "local";
  readonly #opts: Required<Omit<LocalEngineOptions, "prepare">> & Pick<LocalEngineOptions, "prepare">;
  readonly #runs = new Map<string, LocalRun>();
  #closed = false;

  constructor(opts: LocalEngineOptions) {
    this.#opts = {
      baseDir: opts.baseDir,
      runnerCommand: opts.runnerCommand ?? defaultRunnerCommand(),
      env: opts.env ?? { PATH: DEFAULT_PATH },
      killGraceMs: opts.killGraceMs ?? 10_000,
      timeoutGraceMs: opts.timeoutGraceMs ?? 30_000,
      heartbeatSeconds: opts.heartbeatSeconds ?? 15,
      ...(opts.prepare !== undefined ? { prepare: opts.prepare } : {}),
    };
  }

  async start(run: WorkflowRun): Promise<void> {
    if (this.#closed) throw new EngineError("closed", "the local engine is closed");
    const plan = run.plan;
    if (typeof plan?.wid !== "string" || plan.wid === "" || !Array.isArray(plan.steps)) {
      throw new EngineError("invalid", "a run needs a workflow id and a list of steps");
    }
    if (!Number.isFinite(plan.timeoutSeconds) || plan.timeoutSeconds < 0) {
      throw new EngineError("invalid", `invalid timeout: ${plan.timeoutSeconds}`);
    }
    if (this.#runs.has(plan.wid)) throw new EngineError("duplicate", `workflow ${plan.wid} is already known`);
    this.#runs.set(plan.wid, new LocalRun(run, this.#opts));
  }

  wait(wid: string): Promise<WorkflowOutcome> {
    const run = this.#runs.get(wid);
    if (!run) return Promise.reject(new EngineError("not_found", `no workflow ${wid}`));
    return run.done;
  }

  async cancel(wid: string, reason = "cancelled"): Promise<void> {
    this.#runs.get(wid)?.stop("cancelled", reason);
  }

  async destroy(wid: string): Promise<void> {
    const run = this.#runs.get(wid);
    if (!run) {
      // Unknown here, but an earlier process may have left the run's directory and processes.
      await this.#removeLeftovers(wid);
      return;
    }
    run.stop("cancelled", "destroyed");
    await run.done;
    if (this.#runs.get(wid) === run) this.#runs.delete(wid);
  }

  /**
   * A run of a previous process cannot be re-attached (its runner's stdout went with that
   * process). What its runner left decides: a result file (workspace.ts) written before the
   * process died is the run's real outcome (`finished`); otherwise the run was cut short
   * (`lost`). Either way its processes are killed first, so no runner writes a result after
   * this looked, and its directory is removed.
   */
  async recover(run: WorkflowRun): Promise<RecoverResult> {
    if (this.#runs.has(run.plan.wid)) return { state: "resumed" };
    let stored: StoredResult | null = null;
    for (const root of await findRunDirs(this.#opts.baseDir, run.plan.wid)) {
      await killRunProcesses(root);
      stored ??= readResultFile(join(root, RESULT_NAME));
      await removeTree(root);
    }
    if (stored === null) return { state: "lost", reason: LOST_REASON };
    // Cancelled because its reader vanished: the runner's reaction to the crash, not an outcome.
    if (stored.status === "cancelled" && stored.outputBroken) return { state: "lost", reason: CUT_REASON };
    const secrets = [...run.secrets.values()].filter((v) => v !== "");
    return {
      state: "finished",
      outcome: {
        status: stored.status,
        exitCode: stored.status === "success" ? 0 : stored.exitCode,
        failedStep: stored.failedStep,
        ...(stored.error !== undefined && { error: maskSecrets(stored.error, secrets) }),
      },
    };
  }

  /** Stops every run (reported failed: local runs cannot outlive the server) and waits. */
  async close(): Promise<void> {
    this.#closed = true;
    const runs = [...this.#runs.values()];
    for (const run of runs) run.stop("failed", "the spindle shut down while the workflow was running");
    await Promise.allSettled(runs.map((r) => r.done));
  }

  async #removeLeftovers(wid: string): Promise<void> {
    for (const root of await findRunDirs(this.#opts.baseDir, wid)) {
      await killRunProcesses(root);
      await removeTree(root);
    }
  }
}
