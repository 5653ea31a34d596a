/**
 * A Gen2 knot stand-in on loopback with real git underneath:
 *
 * - `/<repoDid>/…` runs the real `git http-backend` (smart HTTP, CGI) over bare repos kept at
 *   `<root>/<repoDid>`, with `uploadpack.allowFilter` and `allowAnySHA1InWant` on, as a knot
 *   serving sparse clones must;
 * - `GET /xrpc/sh.tangled.repo.getDefaultBranch?repo=<did>` answers from the bare repo's HEAD
 *   (lexicon `sh.tangled.repo.getDefaultBranch`);
 * - `/events` is a WebSocket with the Gen2 `eventstream` semantics (gen2 §2.3): `?cursor=<ns>`,
 *   missing or unparsable = from the oldest; `created > cursor` ascending in batches of 100;
 *   after `drainCapBatches` full batches without catching up, close 1013; then live events.
 *   `created` values start above 2^53 and grow by 1 ns, so a consumer that parses them as
 *   doubles collides.
 *
 *   const knot = await KnotGitServer.start();
 *   const sha = await knot.createRepo("did:plc:repo1", { ".tangled/workflows/ci.yml": "…" });
 *   knot.publish("sh.tangled.git.refUpdate", event);     // stored + pushed to live sockets
 *   fetch(`${knot.url}/xrpc/sh.tangled.repo.getDefaultBranch?repo=did:plc:repo1`)
 */
import { execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { type WebSocket, WebSocketServer } from "ws";
import { encodeKnotEnvelope, parseCursorParam } from "../../src/protocol/envelope.ts";

const run = promisify(execFile);

/** 2^53 + 1000: the first `created`; every later event is one nanosecond newer. */
export const FIRST_CREATED = (1n << 53n) + 1000n;
const BATCH = 100;

export interface StoredEvent {
  rkey: string;
  nsid: string;
  event: unknown;
  created: bigint;
}

export interface KnotGitServerOptions {
  /** Full batches a connection may drain before it is closed with 1013 (upstream: 1000). */
  drainCapBatches?: number;
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: "Knot Test",
  GIT_AUTHOR_EMAIL: "knot@example.com",
  GIT_COMMITTER_NAME: "Knot Test",
  GIT_COMMITTER_EMAIL: "knot@example.com",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
};

export class KnotGitServer {
  readonly root: string;
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #events: StoredEvent[] = [];
  readonly #live = new Set<WebSocket>();
  readonly #drainCap: number;
  readonly #sockets = new Set<Socket>();
  #nextCreated = FIRST_CREATED;
  #rkeySeq = 0;
  /** Every request line seen (method + path), for tests that check what a client asked for. */
  readonly requests: string[] = [];
  /** The raw `cursor` query value of each `/events` connection (null when absent). */
  readonly cursors: Array<string | null> = [];

  private constructor(root: string, server: Server, opts: KnotGitServerOptions) {
    this.root = root;
    this.#server = server;
    this.#drainCap = opts.drainCapBatches ?? 1000;
    this.#wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  }

  static async start(opts: KnotGitServerOptions = {}): Promise<KnotGitServer> {
    const root = await mkdtemp(join(tmpdir(), "knot-git-"));
    const server = createServer();
    const knot = new KnotGitServer(root, server, opts);
    server.on("request", (req, res) => knot.#onRequest(req, res));
    server.on("upgrade", (req, socket, head) => knot.#onUpgrade(req, socket as Socket, head));
    server.on("connection", (s) => {
      knot.#sockets.add(s);
      s.on("close", () => knot.#sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return knot;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }
  /** `127.0.0.1:<port>`: the knot "hostname" a dev-mode spindle would be given. */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }
  get url(): string {
    return `http://${this.host}`;
  }

  /**
   * Creates `<root>/<repoDid>` (bare) with one commit per entry of `commits` (each a map of path
   * → content; `null` deletes), on `branch`. Returns the commit SHAs, oldest first.
   */
  async createRepo(repoDid: string, ...commits: Array<Record<string, string | null>>): Promise<string[]> {
    const bare = join(this.root, repoDid);
    const work = await mkdtemp(join(tmpdir(), "knot-work-"));
    try {
      await git(work, "init", "-q", "-b", "main");
      const shas: string[] = [];
      for (const [i, files] of commits.entries()) {
        for (const [path, content] of Object.entries(files)) {
          const full = join(work, path);
          if (content === null) {
            await rm(full, { force: true });
          } else {
            await mkdir(dirname(full), { recursive: true });
            await writeFile(full, content);
          }
        }
        await git(work, "add", "-A");
        await git(work, "commit", "-q", "--allow-empty", "-m", `commit ${i + 1}`);
        shas.push((await git(work, "rev-parse", "HEAD")).trim());
      }
      await mkdir(dirname(bare), { recursive: true });
      await git(work, "clone", "-q", "--bare", work, bare);
      return shas;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /** Adds a commit on top of `main` in an existing repo; returns its SHA. */
  async pushCommit(repoDid: string, files: Record<string, string | null>): Promise<string> {
    const bare = join(this.root, repoDid);
    const work = await mkdtemp(join(tmpdir(), "knot-work-"));
    try {
      await git(work, "clone", "-q", bare, ".");
      for (const [path, content] of Object.entries(files)) {
        const full = join(work, path);
        if (content === null) await rm(full, { force: true });
        else {
          await mkdir(dirname(full), { recursive: true });
          await writeFile(full, content);
        }
      }
      await git(work, "add", "-A");
      await git(work, "commit", "-q", "--allow-empty", "-m", "pushed");
      await git(work, "push", "-q", "origin", "HEAD:main");
      return (await git(work, "rev-parse", "HEAD")).trim();
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /** Stores an event (next `created`) and sends it to every live connection. */
  publish(nsid: string, event: unknown, rkey?: string): StoredEvent {
    const stored: StoredEvent = {
      rkey: rkey ?? `3m${String(this.#rkeySeq++).padStart(11, "2")}`,
      nsid,
      event,
      created: this.#nextCreated++,
    };
    this.#events.push(stored);
    for (const ws of this.#live) ws.send(encodeKnotEnvelope(stored));
    return stored;
  }

  get events(): readonly StoredEvent[] {
    return this.#events;
  }

  /** Closes every socket, HTTP and WebSocket (e.g. to simulate the knot going away). */
  dropConnections(): void {
    for (const ws of this.#wss.clients) ws.terminate();
    for (const s of this.#sockets) s.destroy();
  }

  async stop(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#wss.close();
    await rm(this.root, { recursive: true, force: true });
  }

  // ---- HTTP ----

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://knot");
    this.requests.push(`${req.method} ${url.pathname}`);
    if (url.pathname === "/xrpc/sh.tangled.repo.getDefaultBranch") {
      this.#defaultBranch(url, res).catch((err: unknown) =>
        xrpcError(res, 500, "InternalServerError", String(err)),
      );
      return;
    }
    if (url.pathname.startsWith("/did:")) {
      this.#gitBackend(req, res, url);
      return;
    }
    xrpcError(res, 404, "NotFound", "no such route");
  }

  async #defaultBranch(url: URL, res: ServerResponse): Promise<void> {
    const repo = url.searchParams.get("repo");
    if (repo === null || repo === "") return xrpcError(res, 400, "InvalidRequest", "repo is required");
    if (!/^did:[a-z]+:[a-zA-Z0-9._:%-]+$/.test(repo))
      return xrpcError(res, 400, "InvalidRequest", "bad repo");
    const bare = join(this.root, repo);
    let name: string;
    let log: string;
    try {
      name = (await git(bare, "symbolic-ref", "--short", "HEAD")).trim();
      log = await git(bare, "log", "-1", "--format=%H%n%h%n%cI%n%an%n%ae%n%aI%n%s", "HEAD");
    } catch {
      return xrpcError(res, 400, "RepoNotFound", "Repository not found or access denied");
    }
    const [hash, shortHash, when, author, email, authorWhen, message] = log.split("\n");
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        name,
        hash,
        shortHash,
        when,
        message,
        author: { name: author, email, when: authorWhen },
      }),
    );
  }

  /** CGI: request headers → HTTP_* variables; body streamed in; CGI headers parsed; body streamed out. */
  #gitBackend(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      GIT_PROJECT_ROOT: this.root,
      GIT_HTTP_EXPORT_ALL: "1",
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.replace(/^\?/, ""),
      REQUEST_METHOD: req.method ?? "GET",
      CONTENT_TYPE: req.headers["content-type"] ?? "",
      REMOTE_ADDR: req.socket.remoteAddress ?? "127.0.0.1",
      SERVER_PROTOCOL: "HTTP/1.1",
      // What a knot serving sparse, shallow fetches of arbitrary SHAs has to allow.
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
      GIT_CONFIG_COUNT: "3",
      GIT_CONFIG_KEY_0: "uploadpack.allowFilter",
      GIT_CONFIG_VALUE_0: "true",
      GIT_CONFIG_KEY_1: "uploadpack.allowAnySHA1InWant",
      GIT_CONFIG_VALUE_1: "true",
      GIT_CONFIG_KEY_2: "uploadpack.allowReachableSHA1InWant",
      GIT_CONFIG_VALUE_2: "true",
    };
    if (req.headers["content-length"] !== undefined) env.CONTENT_LENGTH = req.headers["content-length"];
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined) continue;
      env[`HTTP_${name.toUpperCase().replace(/-/g, "_")}`] = Array.isArray(value) ? value.join(", ") : value;
    }
    const child = spawn("git", ["http-backend"], { env, stdio: ["pipe", "pipe", "pipe"] });
    req.pipe(child.stdin);
    child.stdin.on("error", () => {});
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    let head = Buffer.alloc(0);
    let headersDone = false;
    child.stdout.on("data", (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = findHeaderEnd(head);
      if (end === undefined) return;
      headersDone = true;
      const { status, headers } = parseCgiHeaders(head.subarray(0, end.at).toString("latin1"));
      res.writeHead(status, headers);
      const rest = head.subarray(end.at + end.length);
      if (rest.byteLength > 0) res.write(rest);
    });
    child.on("close", (code) => {
      if (!headersDone) {
        if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
        res.end(`git http-backend exited ${code}: ${stderr}`);
        return;
      }
      res.end();
    });
    res.on("close", () => {
      if (child.exitCode === null) child.kill("SIGKILL");
    });
  }

  // ---- /events ----

  #onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const url = new URL(req.url ?? "/", "http://knot");
    if (url.pathname !== "/events") {
      socket.destroy();
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const raw = url.searchParams.get("cursor");
      this.cursors.push(raw);
      this.#serve(ws, parseCursorParam(raw));
    });
  }

  /**
   * Replays `created > cursor` in batches of 100; a connection that drains `drainCap` full
   * batches without catching up is closed with 1013 (upstream "drain cap reached"). Once caught
   * up it joins the live set. Sends are synchronous here, so no event is missed between the
   * last batch and joining.
   */
  #serve(ws: WebSocket, cursor: bigint): void {
    let after = cursor;
    let fullBatches = 0;
    for (;;) {
      const batch = this.#events.filter((e) => e.created > after).slice(0, BATCH);
      for (const e of batch) ws.send(encodeKnotEnvelope(e));
      if (batch.length > 0) after = batch[batch.length - 1]?.created ?? after;
      if (batch.length < BATCH) break;
      fullBatches++;
      if (fullBatches >= this.#drainCap) {
        ws.close(1013, "drain cap reached, reconnect to continue");
        return;
      }
    }
    this.#live.add(ws);
    ws.on("close", () => this.#live.delete(ws));
  }
}

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run("git", args, { cwd, env: { ...process.env, ...GIT_ENV } });
  return stdout;
}

function xrpcError(res: ServerResponse, status: number, error: string, message: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ error, message }));
}

function findHeaderEnd(buf: Buffer): { at: number; length: number } | undefined {
  const crlf = buf.indexOf("\r\n\r\n");
  const lf = buf.indexOf("\n\n");
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { at: crlf, length: 4 };
  if (lf >= 0) return { at: lf, length: 2 };
  return undefined;
}

function parseCgiHeaders(text: string): { status: number; headers: Record<string, string> } {
  let status = 200;
  const headers: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i <= 0) continue;
    const name = line.slice(0, i).trim();
    const value = line.slice(i + 1).trim();
    if (name.toLowerCase() === "status") status = Number.parseInt(value, 10) || 200;
    else headers[name] = value;
  }
  return { status, headers };
}
