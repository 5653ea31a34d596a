/**
 * Shared pieces of the spindle server tests: a real server on port 0 with a real SQLite file,
 * the local engine and a loopback PLC; a WebSocket collector for /events and /logs; pipeline
 * records that the local engine can run (clone skipped, `kubernetes` engine whose image the
 * local engine ignores).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { WebSocket } from "ws";
import { loadConfig } from "../../src/spindle/config/index.ts";
import { Repos } from "../../src/spindle/db/index.ts";
import { Rbac } from "../../src/spindle/rbac/index.ts";
import { SpindleServer, type SpindleServerOptions } from "../../src/spindle/server.ts";

export const OWNER = "did:plc:spindleowner";
export const ALICE = "did:plc:alicealicealice";
export const KNOT = "knot.test";
export const HOSTNAME = "spindle.test";
export const KEY_HEX = "11".repeat(32);

export function testEnv(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    SPINDLE_SERVER_HOSTNAME: HOSTNAME,
    SPINDLE_SERVER_OWNER: OWNER,
    SPINDLE_SERVER_LISTEN_ADDR: "127.0.0.1:0",
    SPINDLE_SERVER_DB_PATH: join(dir, "spindle.db"),
    SPINDLE_SERVER_LOG_DIR: join(dir, "logs"),
    SPINDLE_SERVER_REPO_DIR: join(dir, "repos"),
    SPINDLE_SERVER_SECRETS_KEY: KEY_HEX,
    SPINDLE_SERVER_ENGINE: "local",
    SPINDLE_SERVER_DEV: "true",
    SPINDLE_SERVER_PLC_URL: "http://127.0.0.1:9",
    SPINDLE_SERVER_JETSTREAM_ENDPOINT: "ws://127.0.0.1:9/subscribe",
    LOOM_CONFIG: "",
    ...extra,
  };
}

export interface Booted {
  server: SpindleServer;
  url: string;
  wsUrl: string;
  dir: string;
  stop(): Promise<void>;
}

export async function bootServer(
  opts: { dir?: string; env?: Record<string, string>; server?: Partial<SpindleServerOptions> } = {},
): Promise<Booted> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "loom-server-"));
  const config = loadConfig(testEnv(dir, opts.env), { defaultConfigPath: join(dir, "absent.yaml") });
  const server = await SpindleServer.create({
    config,
    logger: pino({ level: process.env.LOOM_TEST_LOG ?? "silent" }),
    intake: false,
    ...opts.server,
  });
  const url = await server.start();
  return {
    server,
    url,
    wsUrl: url.replace(/^http/, "ws"),
    dir,
    async stop() {
      await server.stop();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Registers a repo the way the Jetstream handler does (repos row + owner grants). */
export function addRepo(
  server: SpindleServer,
  owner: string,
  name: string,
  rkey = "3repo0000000a",
  knot = KNOT,
) {
  new Repos(server.db).upsert({ knot, owner, name, rkey });
  new Rbac(server.db).grantRepoOwner(owner, { ownerDid: owner, name });
}

export function workflow(name: string, steps: { name: string; command: string }[], engine = "kubernetes") {
  const raw = [
    `engine: ${engine}`,
    "image: alpine:3",
    "steps:",
    ...steps.flatMap((s) => [
      `  - name: ${JSON.stringify(s.name)}`,
      `    command: ${JSON.stringify(s.command)}`,
    ]),
    "",
  ].join("\n");
  return { clone: { depth: 0, skip: true, submodules: false }, engine, name, raw };
}

export function pipelineRecord(
  workflows: ReturnType<typeof workflow>[],
  repo: { did: string; repo: string; knot?: string } = { did: ALICE, repo: "loom" },
) {
  return {
    $type: "",
    triggerMetadata: {
      kind: "push",
      push: { newSha: "f".repeat(40), oldSha: "0".repeat(40), ref: "refs/heads/main" },
      repo: { defaultBranch: "", did: repo.did, knot: repo.knot ?? KNOT, repo: repo.repo },
    },
    workflows,
  };
}

/** Collects text frames of a WebSocket; `until` waits for a predicate over them. */
export class Collector {
  readonly frames: string[] = [];
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: (() => void)[] = [];

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.opened = new Promise((res, rej) => {
      this.ws.once("open", () => res());
      this.ws.once("error", rej);
    });
    this.closed = new Promise((res) =>
      this.ws.once("close", (code, reason) => {
        res({ code, reason: reason.toString() });
        for (const w of this.#waiters) w();
      }),
    );
    this.ws.on("message", (data, isBinary) => {
      if (!isBinary) this.frames.push(data.toString());
      for (const w of this.#waiters) w();
    });
  }

  get json(): Record<string, unknown>[] {
    return this.frames.map((f) => JSON.parse(f));
  }

  async until(pred: (frames: string[]) => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.frames)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; frames so far:\n${this.frames.join("\n")}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, Math.min(left, 200));
        this.#waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
      this.#waiters = [];
    }
  }

  close(): void {
    this.ws.close();
  }
}

/** Status events (the `event` objects) for one workflow, in stream order. */
export function statuses(frames: string[], workflowName?: string): Record<string, unknown>[] {
  return frames
    .map((f) => JSON.parse(f).event as Record<string, unknown>)
    .filter((e) => workflowName === undefined || e.workflow === workflowName);
}

export async function waitFor(
  pred: () => boolean,
  timeoutMs = 20_000,
  what = "condition",
  refresh?: () => Promise<void>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await refresh?.();
    if (pred()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
