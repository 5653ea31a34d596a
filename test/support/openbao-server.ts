/**
 * Runs a real OpenBao dev server (`bao server -dev`, in-memory) on a loopback port for tests.
 * The binary comes from `hack/openbao.sh` (`${LOOM_CACHE:-~/.cache/loom}/openbao/bin/bao`, or
 * `LOOM_BAO_BIN`). `findBao()` returns null when it is not installed so suites can skip loudly.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.ts";

export function findBao(): string | null {
  const candidates = [
    process.env.LOOM_BAO_BIN,
    join(process.env.LOOM_CACHE || join(homedir(), ".cache", "loom"), "openbao", "bin", "bao"),
  ];
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {}
  }
  return null;
}

export interface OpenbaoDevServer {
  addr: string;
  rootToken: string;
  /** Calls the HTTP API as root (setup only: mounts, policies, tokens). */
  api(method: string, path: string, body?: unknown): Promise<Response>;
  stop(): Promise<void>;
}

export async function startOpenbaoDev(bin: string): Promise<OpenbaoDevServer> {
  const port = await freePort();
  const rootToken = `root-${randomBytes(8).toString("hex")}`;
  const addr = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    bin,
    [
      "server",
      "-dev",
      `-dev-root-token-id=${rootToken}`,
      `-dev-listen-address=127.0.0.1:${port}`,
      "-dev-no-store-token",
    ],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" },
    },
  );
  let output = "";
  child.stdout?.on("data", (d) => {
    output += d;
  });
  child.stderr?.on("data", (d) => {
    output += d;
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const api = (method: string, path: string, body?: unknown) =>
    fetch(`${addr}/v1/${path}`, {
      method,
      headers: { "X-Vault-Token": rootToken, "Content-Type": "application/json" },
      body: body === undefined ? null : JSON.stringify(body),
    });
  const stop = async () => {
    if (child.exitCode === null) child.kill("SIGTERM");
    await exited;
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`bao exited early:\n${output}`);
    try {
      if ((await fetch(`${addr}/v1/sys/health`)).status === 200) break;
    } catch {}
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`bao did not become healthy in 20 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { addr, rootToken, api, stop };
}
