/**
 * Running `git` for workflow fetches: an isolated environment (no system or user config, no
 * prompts, only http(s) transports), a hard timeout that kills the whole process group (git
 * fetch starts `git-remote-http` and `index-pack` children), and bounded output.
 */
import { spawn } from "node:child_process";

export interface GitRunOptions {
  cwd: string;
  timeoutMs: number;
  /** Written to stdin, then stdin is closed. */
  input?: string;
  /** Allow `http://` remotes (dev mode); `https://` is always allowed, nothing else ever. */
  allowHttp?: boolean;
  /** Stdout beyond this is an error (the caller asked for something small). */
  maxStdoutBytes?: number;
  gitBinary?: string;
  /** More `name=value` settings, each passed as `-c name=value`. */
  config?: readonly string[];
}

export interface GitResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
  timedOut: boolean;
}

const MAX_STDERR = 64 * 1024;

export function runGit(args: readonly string[], opts: GitRunOptions): Promise<GitResult> {
  const config = [
    "-c",
    "protocol.allow=never",
    "-c",
    "protocol.https.allow=always",
    "-c",
    `protocol.http.allow=${opts.allowHttp === true ? "always" : "never"}`,
    "-c",
    "credential.helper=",
    "-c",
    "core.askPass=",
    ...(opts.config ?? []).flatMap((c) => ["-c", c]),
  ];
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_TERMINAL_PROMPT: "0",
    GIT_PROTOCOL_FROM_USER: "0",
    HOME: "/nonexistent",
    LC_ALL: "C",
  };
  // A proxy configured for the process applies to git too.
  for (const name of ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"]) {
    const v = process.env[name];
    if (v !== undefined) env[name] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(opts.gitBinary ?? "git", [...config, ...args], {
      cwd: opts.cwd,
      env,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true, // own process group, so a timeout kills remote-http and index-pack too
    });
    const out: Buffer[] = [];
    let outBytes = 0;
    let stderr = "";
    let timedOut = false;
    let overflow = false;
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, opts.timeoutMs);
    child.stdout.on("data", (d: Buffer) => {
      outBytes += d.byteLength;
      if (opts.maxStdoutBytes !== undefined && outBytes > opts.maxStdoutBytes) {
        overflow = true;
        killGroup();
        return;
      }
      out.push(d);
    });
    child.stderr.on("data", (d: Buffer) => {
      if (stderr.length < MAX_STDERR) stderr += d.toString("utf8");
    });
    child.stdin.on("error", () => {});
    child.stdin.end(opts.input ?? "");
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      if (overflow) {
        reject(new Error(`git ${args[0]} wrote more than ${opts.maxStdoutBytes} bytes`));
        return;
      }
      resolve({ code, stdout: Buffer.concat(out), stderr: stderr.slice(0, MAX_STDERR), timedOut });
    });
  });
}
