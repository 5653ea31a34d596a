// Child processes of the control plane, and the guarantees that none outlives the test run.
//
// Each component runs in its own process group (detached), so stopping it also stops anything it
// forked, and so a terminal's Ctrl-C does not hit the components before the harness can stop them
// in order. Three layers make sure nothing is left behind:
//   1. stop(): SIGTERM to the group, SIGKILL after a grace period (normal teardown);
//   2. process 'exit' and SIGINT/SIGTERM/SIGHUP handlers: the same, synchronously (a test
//      crashed, or the run was interrupted);
//   3. a reaper (reaper.sh), detached from us, which kills the groups and deletes the run folder
//      once our process is gone (we were SIGKILLed, or an 'exit' handler could not run).
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const REAPER = join(import.meta.dirname, "reaper.sh");

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export class ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  readonly exited: Promise<ExitInfo>;
  #exit: ExitInfo | undefined;
  #child: ChildProcess;

  private constructor(name: string, child: ChildProcess, logPath: string) {
    this.name = name;
    this.logPath = logPath;
    this.#child = child;
    if (child.pid === undefined) throw new Error(`${name}: spawn failed`);
    this.pid = child.pid;
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.#exit = { code, signal };
        live.delete(this);
        resolve(this.#exit);
      });
    });
  }

  /** Starts `command args` in its own process group; stdout and stderr go to `<logDir>/<name>.log`. */
  static start(
    name: string,
    command: string,
    args: readonly string[],
    opts: { logDir: string; cwd?: string; env?: NodeJS.ProcessEnv },
  ): ManagedProcess {
    const logPath = join(opts.logDir, `${name}.log`);
    const fd = openSync(logPath, "a");
    let child: ChildProcess;
    try {
      child = spawn(command, args, {
        cwd: opts.cwd ?? opts.logDir,
        env: opts.env ?? process.env,
        detached: true,
        stdio: ["ignore", fd, fd],
      });
    } finally {
      closeSync(fd);
    }
    // A failed exec surfaces as an 'error' event; without a listener it would crash the process.
    const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
    const p = new ManagedProcess(name, child, logPath);
    spawnError.then((err) => {
      p.#exit ??= { code: -1, signal: null };
      live.delete(p);
      appendNote(logPath, `spawn error: ${err.message}`);
    });
    // Do not keep the event loop alive: test files must be able to finish while components run;
    // teardown is explicit (stop) or guaranteed by the exit handlers.
    child.unref();
    live.add(p);
    installExitHandlers();
    return p;
  }

  get running(): boolean {
    return this.#exit === undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  get exitInfo(): ExitInfo | undefined {
    return this.#exit;
  }

  /** Last lines of the component's log, for error messages. */
  tail(lines = 30): string {
    try {
      return readFileSync(this.logPath, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }

  /** SIGTERM the process group, SIGKILL it after `graceMs`; resolves once the leader has exited. */
  async stop(graceMs = 10_000): Promise<ExitInfo> {
    if (!this.running) return this.#exit ?? (await this.exited);
    signalGroup(this.pid, "SIGTERM");
    const timer = setTimeout(() => signalGroup(this.pid, "SIGKILL"), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
      // Anything the leader forked and left behind in its group goes too.
      signalGroup(this.pid, "SIGKILL");
    }
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

function appendNote(path: string, note: string): void {
  try {
    writeFileSync(path, `\n[harness] ${note}\n`, { flag: "a" });
  } catch {
    // The run folder may already be gone.
  }
}

// ---- last-resort cleanup -------------------------------------------------------------------------

const live = new Set<ManagedProcess>();
const runDirs = new Set<string>();
let handlersInstalled = false;

/** Registers a folder to delete if the process exits without a normal teardown. */
export function registerRunDir(dir: string): void {
  runDirs.add(dir);
  installExitHandlers();
}

export function unregisterRunDir(dir: string): void {
  runDirs.delete(dir);
}

/** Synchronous: SIGTERM every live group, wait briefly, SIGKILL the rest, delete run folders. */
export function killAllNow(graceMs = 3_000): void {
  const pids = [...live].map((p) => p.pid);
  for (const pid of pids) signalGroup(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  while (Date.now() < deadline && pids.some(groupAlive)) Atomics.wait(sleeper, 0, 0, 50);
  for (const pid of pids) signalGroup(pid, "SIGKILL");
  live.clear();
  for (const dir of runDirs) rmSync(dir, { recursive: true, force: true });
  runDirs.clear();
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

const SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.once("exit", () => killAllNow(1_000));
  for (const [sig, num] of Object.entries(SIGNALS) as [NodeJS.Signals, number][]) {
    const handler = () => {
      killAllNow();
      // If nobody else (e.g. the test runner) handles the signal, keep its usual meaning: exit.
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, handler);
        process.exit(128 + num);
      }
    };
    process.on(sig, handler);
  }
}

/**
 * Starts the reaper for `runDir`: it waits for this process to disappear, then kills the process
 * groups listed in `<runDir>/pgids` and deletes `runDir` (unless `keepRunDir`). Returns a function that stops it.
 */
export function startReaper(runDir: string, keepRunDir = false): { readonly pid: number; stop(): void } {
  const child = spawn("bash", [REAPER, String(process.pid), runDir, keepRunDir ? "keep" : "delete"], {
    detached: true,
    stdio: "ignore",
  });
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error("could not start the control-plane reaper");
  return {
    pid,
    stop: () => signalGroup(pid, "SIGKILL"),
  };
}

/** Records a component's process group for the reaper. */
export function recordGroup(runDir: string, pid: number): void {
  writeFileSync(join(runDir, "pgids"), `${pid}\n`, { flag: "a" });
}
