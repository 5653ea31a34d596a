/**
 * One workflow run of the local engine: a fresh run directory, the runner as a child process,
 * its stdout through the relay into the run's log sink, and a cleanup that always leaves no
 * process and no directory behind. The contract it serves is in ../engine.ts.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { maskSecrets } from "../../mask/masker.ts";
import { Relay } from "../../relay/relay.ts";
import { RUNNER_ENV, RUNNER_PROTOCOL_VERSION, type RunnerSpec } from "../../runner/protocol.ts";
import { RESULT_FILE_ENV } from "../../runner/result-file.ts";
import type { StatusUpdate, WorkflowOutcome, WorkflowRun } from "../engine.ts";
import { killRunProcesses } from "./procs.ts";
import { createRunDir, type RunDir, removeAllButResult, removeTree } from "./workspace.ts";

export interface LocalRunConfig {
  baseDir: string;
  runnerCommand: readonly string[];
  env: Readonly<Record<string, string>>;
  killGraceMs: number;
  timeoutGraceMs: number;
  heartbeatSeconds: number;
  prepare?: (run: WorkflowRun, dir: RunDir) => Promise<void>;
}

type Exit = { code: number | null; signal: NodeJS.Signals | null } | { error: Error };

const STDERR_TAIL = 4096;
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Missed heartbeats after which a runner counts as hung. */
const SILENT_HEARTBEATS = 4;
/** How long to wait for the runner's stdout to drain after it exited. */
const DRAIN_MS = 2000;

export class LocalRun {
  readonly done: Promise<WorkflowOutcome>;
  readonly #run: WorkflowRun;
  readonly #cfg: LocalRunConfig;
  readonly #secrets: string[];
  #child: ChildProcess | undefined;
  #root: string | undefined;
  /** Set by stop(): the final status and reason a stop imposes. */
  #stop: { status: "cancelled" | "failed"; reason: string } | undefined;
  #timedOut = false;
  #silent = false;
  #finished = false;
  #relay: Relay | undefined;
  #killTimer: NodeJS.Timeout | undefined;

  constructor(run: WorkflowRun, cfg: LocalRunConfig) {
    this.#run = run;
    this.#cfg = cfg;
    this.#secrets = [...run.secrets.values()].filter((v) => v !== "");
    this.done = this.#execute();
  }

  /** Asks the run to stop; the first stop wins, and a run that already has a result keeps it. */
  stop(status: "cancelled" | "failed", reason: string): void {
    if (this.#finished || this.#stop || this.#relay?.result) return;
    this.#stop = { status, reason };
    this.#terminate();
  }

  async #execute(): Promise<WorkflowOutcome> {
    // Let the constructor return (and the engine record the run) before any callback fires.
    await Promise.resolve();
    this.#status({ status: "running" });
    let outcome: WorkflowOutcome;
    let dir: RunDir | undefined;
    try {
      dir = await createRunDir(this.#cfg.baseDir, this.#run.plan.wid);
      this.#root = dir.root;
      await writeFile(dir.spec, JSON.stringify(this.#spec(dir)), { mode: 0o600 });
      if (this.#cfg.prepare !== undefined && !this.#stop) await this.#cfg.prepare(this.#run, dir);
      outcome = this.#stop ? this.#stopped(null) : await this.#runRunner(dir);
    } catch (err) {
      outcome = {
        status: "failed",
        exitCode: null,
        failedStep: null,
        error: `set-up failed: ${this.#text(err)}`,
      };
    }
    outcome = await this.#cleanup(dir, outcome);
    await this.#run.log.flush().catch(() => {});
    this.#finished = true;
    this.#status(outcome);
    return outcome;
  }

  #spec(dir: RunDir): RunnerSpec {
    return {
      version: RUNNER_PROTOCOL_VERSION,
      workspace: dir.workspace,
      timeoutSeconds: this.#run.plan.timeoutSeconds,
      heartbeatSeconds: this.#cfg.heartbeatSeconds,
      // HOME last, so it wins over a plan's container path (/tangled/home) as spec §7.2 orders.
      steps: this.#run.plan.steps.map((s) => ({ ...s, env: [...s.env, { name: "HOME", value: dir.home }] })),
    };
  }

  #env(dir: RunDir): Record<string, string> {
    // The runner leaves its result in the run directory too, for a restart to read (engine.ts).
    const env: Record<string, string> = { ...this.#cfg.env, HOME: dir.home, [RESULT_FILE_ENV]: dir.result };
    for (const [key, value] of this.#run.secrets) {
      // A NUL cannot travel in an environment; such a secret is left out and the runner
      // reports it missing, instead of spawn() throwing.
      if (key.includes("\0") || key.includes("=") || value.includes("\0")) continue;
      env[`${RUNNER_ENV.secretPrefix}${key}`] = value;
    }
    return env;
  }

  async #runRunner(dir: RunDir): Promise<WorkflowOutcome> {
    const [cmd, ...args] = this.#cfg.runnerCommand;
    if (cmd === undefined) throw new Error("no runner command configured");
    // detached: the runner leads its own process group, so a terminal's Ctrl-C reaches the
    // server alone and the server decides what happens to its runs.
    const child = spawn(cmd, [...args, dir.spec], {
      cwd: dir.root,
      env: this.#env(dir),
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    this.#child = child;
    const exited = new Promise<Exit>((resolve) => {
      child.once("exit", (code, signal) => resolve({ code, signal }));
      child.once("error", (error) => resolve({ error }));
    });
    let stderr = "";
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (s: string) => {
      stderr = (stderr + s).slice(-STDERR_TAIL);
    });
    const relay = new Relay({
      sink: this.#run.log,
      secrets: this.#secrets,
      onFatal: () => this.#terminate(),
    });
    this.#relay = relay;
    const pumped = child.stdout ? relay.pump(child.stdout).catch(() => relay.end()) : Promise.resolve();

    const timeoutSeconds = this.#run.plan.timeoutSeconds;
    const backstop =
      timeoutSeconds > 0
        ? setTimeout(
            () => {
              // The runner enforces the timeout itself; this only fires when it failed to.
              this.#timedOut = true;
              this.#terminate();
            },
            // setTimeout takes anything past 2^31-1 ms (24.8 days) as 1 ms: clamp.
            Math.min(timeoutSeconds * 1000 + this.#cfg.timeoutGraceMs, MAX_TIMER_MS),
          )
        : undefined;
    // A runner that stops talking (hung, or stopped by a debugger) misses its heartbeats.
    const silentMs = this.#cfg.heartbeatSeconds * 1000 * SILENT_HEARTBEATS;
    const watchdog =
      silentMs > 0
        ? setInterval(() => {
            if (relay.idleMs() < silentMs) return;
            this.#silent = true;
            this.#terminate();
          }, silentMs / SILENT_HEARTBEATS)
        : undefined;
    // A stop requested while spawning is acted on now that there is a child to signal.
    if (this.#stop) this.#terminate();

    const exit = await exited;
    clearTimeout(backstop);
    clearInterval(watchdog);
    clearTimeout(this.#killTimer);
    this.#child = undefined;
    // Step processes outlive the runner when it is killed; they may hold its stdout open.
    await killRunProcesses(dir.root);
    const giveUp = new AbortController();
    const drained = await Promise.race([
      pumped.then(() => true),
      sleep(DRAIN_MS, false, { signal: giveUp.signal }).catch(() => true),
    ]);
    giveUp.abort();
    if (!drained) {
      child.stdout?.destroy();
      await pumped;
    }
    child.stderr?.destroy();
    return this.#outcome(relay, exit, stderr);
  }

  #outcome(relay: Relay, exit: Exit, stderr: string): WorkflowOutcome {
    const result = relay.result;
    if (this.#stop) return this.#stopped(result?.failedStep ?? null);
    if (this.#timedOut) {
      const error = `timed out after ${this.#run.plan.timeoutSeconds}s (the runner had to be killed)`;
      return { status: "timeout", exitCode: null, failedStep: result?.failedStep ?? null, error };
    }
    if (this.#silent) {
      const error = `runner stopped responding (nothing for ${this.#cfg.heartbeatSeconds * SILENT_HEARTBEATS}s; it heartbeats every ${this.#cfg.heartbeatSeconds}s)`;
      return { status: "failed", exitCode: null, failedStep: result?.failedStep ?? null, error };
    }
    if (relay.fatal)
      return { status: "failed", exitCode: null, failedStep: null, error: relay.fatal.message };
    if (result) {
      const out: WorkflowOutcome = {
        status: result.status,
        exitCode: result.status === "success" ? 0 : result.exitCode,
        failedStep: result.failedStep,
      };
      if (result.error !== undefined) out.error = maskSecrets(result.error, this.#secrets);
      return out;
    }
    let how: string;
    if ("error" in exit) how = `could not be started: ${exit.error.message}`;
    else if (exit.signal) how = `was killed by ${exit.signal}`;
    else how = `exited with status ${exit.code}`;
    const lastLine = maskSecrets(stderr.trimEnd().split("\n").at(-1) ?? "", this.#secrets).slice(0, 300);
    const error = `runner ${how} without reporting a result${lastLine ? `: ${lastLine}` : ""}`;
    return { status: "failed", exitCode: null, failedStep: null, error };
  }

  #stopped(failedStep: number | null): WorkflowOutcome {
    const stop = this.#stop!;
    return { status: stop.status, exitCode: null, failedStep, error: stop.reason };
  }

  /** SIGTERM the runner (it cancels its step), then SIGKILL everything after the grace. */
  #terminate(): void {
    const child = this.#child;
    if (!child || this.#killTimer) return;
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    const root = this.#root;
    const pid = child.pid;
    this.#killTimer = setTimeout(() => {
      if (root) void killRunProcesses(root, pid);
    }, this.#cfg.killGraceMs);
  }

  /** Kills what is left and removes the run directory; a failure here fails the run. */
  async #cleanup(dir: RunDir | undefined, outcome: WorkflowOutcome): Promise<WorkflowOutcome> {
    if (!dir) return outcome;
    try {
      const left = await killRunProcesses(dir.root);
      if (left.length > 0) throw new Error(`processes ${left.join(", ")} would not die`);
      // The runner's result goes last: a crash while a large workspace is being removed must
      // still find it (engine.ts, recover).
      await removeAllButResult(dir.root);
      await removeTree(dir.root);
      return outcome;
    } catch (err) {
      const error = `cleanup failed: ${this.#text(err)}`;
      if (outcome.status !== "success") return outcome;
      return { status: "failed", exitCode: null, failedStep: null, error };
    }
  }

  #status(update: StatusUpdate): void {
    try {
      this.#run.onStatus(update);
    } catch {
      // The contract says onStatus does not throw; a broken callback must not break cleanup.
    }
  }

  #text(err: unknown): string {
    return maskSecrets(err instanceof Error ? err.message : String(err), this.#secrets);
  }
}
