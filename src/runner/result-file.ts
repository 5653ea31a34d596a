/**
 * The runner's result, kept on disk where an engine can read it back after the process that
 * started the runner died (issue 12: a crash must not turn finished work into failures).
 *
 * When `LOOM_RESULT_FILE` names a path, the runner writes its result there before it exits:
 * to a temporary file beside it, then renamed over it, so a reader sees the whole result or
 * nothing. `outputBroken` says the runner's stdout had already failed (its reader, the engine,
 * was gone) when the result was written: a `cancelled` result is then the runner's own reaction
 * to losing its reader, not a user's cancel. The variable starts with `LOOM_`, so steps never
 * inherit it. The error text is masked like every other runner output.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import type { RunResult } from "./runner.ts";

export const RESULT_FILE_ENV = "LOOM_RESULT_FILE";

export interface StoredResult {
  version: 1;
  status: RunResult["status"];
  exitCode: number;
  failedStep: number | null;
  error?: string;
  outputBroken: boolean;
}

const STATUSES = new Set(["success", "failed", "timeout", "cancelled"]);

/** Writes the result atomically (temporary file + rename). Never throws: the run's result stands. */
export function writeResultFile(path: string, r: RunResult, outputBroken: boolean): boolean {
  const stored: StoredResult = {
    version: 1,
    status: r.status,
    exitCode: r.exitCode,
    failedStep: r.failedStep,
    ...(r.error !== undefined && { error: r.error }),
    outputBroken,
  };
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify(stored), { mode: 0o600 });
    renameSync(tmp, path);
    return true;
  } catch {
    return false;
  }
}

/** The stored result at `path`, or null when there is none or it is not one. */
export function readResultFile(path: string): StoredResult | null {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return null;
  }
  if (v === null || typeof v !== "object") return null;
  const r = v as Record<string, unknown>;
  if (r.version !== 1 || !STATUSES.has(String(r.status))) return null;
  if (!Number.isInteger(r.exitCode)) return null;
  if (r.failedStep !== null && !Number.isInteger(r.failedStep)) return null;
  if (r.error !== undefined && typeof r.error !== "string") return null;
  return {
    version: 1,
    status: r.status as StoredResult["status"],
    exitCode: r.exitCode as number,
    failedStep: r.failedStep as number | null,
    ...(typeof r.error === "string" && { error: r.error }),
    outputBroken: r.outputBroken === true,
  };
}
