/**
 * `loom-runner <spec.json | ->`: runs a RunnerSpec and prints RunnerEvents as JSON lines on
 * stdout. Secrets come from `LOOM_SECRET_<KEY>` in its environment. Exit status: 0 on success,
 * the failing step's exit code (1-255) when a step fails, 124 on timeout, 143 when cancelled
 * (SIGTERM/SIGINT), 2 when the spec cannot be read. With `LOOM_RESULT_FILE` set, the result
 * is also written to that file (atomically) before the runner exits.
 */
import { readFileSync } from "node:fs";
import { addAbortSignal, type Readable, type Writable } from "node:stream";
import { RESULT_FILE_ENV, writeResultFile } from "./result-file.ts";
import { Runner, type RunResult } from "./runner.ts";
import { parseRunnerSpec } from "./spec.ts";

const USAGE = "usage: loom-runner <spec.json | ->";

/** Read a whole stream; a cancel (SIGTERM while the spec is still arriving) ends the wait. */
async function readAll(stream: Readable, signal: AbortSignal): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of addAbortSignal(signal, stream)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** The process exit status for a result. */
export function exitStatus(r: RunResult): number {
  switch (r.status) {
    case "success":
      return 0;
    case "timeout":
      return 124;
    case "cancelled":
      return 143;
    case "failed":
      return r.exitCode >= 1 && r.exitCode <= 255 ? r.exitCode : 1;
  }
}

export interface MainIo {
  argv: string[];
  env: NodeJS.ProcessEnv;
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

export async function main(io: MainIo): Promise<number> {
  const runner = new Runner({ env: io.env, out: io.stdout });
  const stop = new AbortController();
  const onSignal = () => {
    runner.cancel();
    stop.abort();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  try {
    runner.hello();
    const [arg, ...extra] = io.argv;
    if (arg === undefined || extra.length > 0) {
      io.stderr.write(`${USAGE}\n`);
      runner.fail(USAGE);
      return 2;
    }
    let spec: ReturnType<typeof parseRunnerSpec>;
    try {
      const text = arg === "-" ? await readAll(io.stdin, stop.signal) : readFileSync(arg, "utf8");
      spec = parseRunnerSpec(text);
    } catch (err) {
      if (stop.signal.aborted) {
        runner.fail("cancelled before the spec was read", "cancelled");
        return 143;
      }
      runner.fail((err as Error).message);
      return 2;
    }
    const result = await runner.run(spec);
    // Durable for an engine whose process died before it read the result (result-file.ts).
    const resultFile = io.env[RESULT_FILE_ENV];
    if (resultFile) writeResultFile(resultFile, result, runner.writer.broken);
    return exitStatus(result);
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
}

/** Run as the process's command: real stdio and environment, exit status via process.exitCode. */
export function runCli(): void {
  const io = {
    argv: process.argv.slice(2),
    env: process.env,
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
  };
  main(io).then(
    (code) => {
      // Set the status and let the event loop end, so stdout is flushed before the process exits.
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`loom-runner: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

// Run when executed as the program (`node src/runner/main.ts`, or the bundle), not when imported.
if (import.meta.main) runCli();
