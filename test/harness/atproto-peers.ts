// Real AT Protocol peers for end-to-end tests: the reference PDS and PLC directory
// (@atproto/dev-env's TestNetworkNoAppView, on Node 22) and a real Jetstream server reading the
// PDS's com.atproto.sync.subscribeRepos. Installed by hack/atproto-peers.sh (`make test-deps`)
// into ~/.cache/loom; started here like the control plane: each in its own process group, in a
// run folder deleted at stop, reaped if the test process dies.
//
//   const peers = await getAtprotoPeers();            // skip: peers.skip when not installed
//   peers.pdsUrl / peers.plcUrl / peers.jetstreamUrl   // ws://127.0.0.1:<port>/subscribe
//   await peers.restartJetstream();                    // same port, same data folder (its cursor)
//   await peers.stop();
//
// Started on first use by the files that need them (not by the global setup), so a run whose
// files do not use them pays nothing.
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "../support/ports.ts";
import { ManagedProcess, recordGroup, registerRunDir, startReaper, unregisterRunDir } from "./processes.ts";
import { get, StartupError, waitUntil } from "./wait.ts";

export interface PeersInstall {
  /** The folder with node_modules/@atproto/dev-env and start-peers.mjs. */
  readonly peersDir: string;
  /** Node 22 from the npm `node` package. */
  readonly node: string;
  readonly jetstream: string;
  /** DEVENV_VERSION, NODE22_VERSION, JETSTREAM_VERSION. */
  readonly versions: Readonly<Record<string, string>>;
}

export class MissingPeersError extends Error {
  override name = "MissingPeersError";
}

/** Reads `<cache>/atproto-peers.env` (written by hack/atproto-peers.sh) and checks each path. */
export function locatePeers(env: NodeJS.ProcessEnv = process.env): PeersInstall {
  const cache = env.LOOM_CACHE || join(env.HOME || homedir(), ".cache", "loom");
  const file = join(cache, "atproto-peers.env");
  const how = "Install them with `make test-deps` (hack/atproto-peers.sh).";
  if (!existsSync(file))
    throw new MissingPeersError(`AT Protocol peers not installed (${file} missing). ${how}`);
  const vars: Record<string, string> = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) vars[m[1] as string] = m[2] as string;
  }
  const peersDir = vars.PEERS_DIR ?? "";
  const node = vars.PEERS_NODE ?? "";
  const jetstream = vars.JETSTREAM_BIN ?? "";
  const missing = [node, jetstream, join(peersDir, "start-peers.mjs")].filter(
    (p) => p === "" || !existsSync(p),
  );
  if (missing.length > 0)
    throw new MissingPeersError(`AT Protocol peers incomplete: ${missing.join(", ")} missing. ${how}`);
  const versions = {
    DEVENV_VERSION: vars.DEVENV_VERSION ?? "",
    NODE22_VERSION: vars.NODE22_VERSION ?? "",
    JETSTREAM_VERSION: vars.JETSTREAM_VERSION ?? "",
  };
  return Object.freeze({ peersDir, node, jetstream, versions: Object.freeze(versions) });
}

export interface PeersTimings {
  /** PDS + PLC ready (ms from spawn). */
  devEnv: number;
  /** Jetstream answering (ms from spawn). */
  jetstream: number;
}

export class AtprotoPeers {
  readonly runDir: string;
  readonly pdsUrl: string;
  readonly plcUrl: string;
  /** The PDS's own service DID (did:web:localhost…). */
  readonly pdsDid: string;
  readonly timings: PeersTimings;
  readonly #install: PeersInstall;
  readonly #devEnv: ManagedProcess;
  readonly #reaper: { stop(): void };
  readonly #jsPort: number;
  readonly #jsMetricsPort: number;
  #jetstream: ManagedProcess;
  #jsStarts = 0;

  private constructor(p: {
    runDir: string;
    install: PeersInstall;
    devEnv: ManagedProcess;
    reaper: { stop(): void };
    ready: { pds: string; plc: string; pdsDid: string };
    jetstream: ManagedProcess;
    jsPort: number;
    jsMetricsPort: number;
    timings: PeersTimings;
  }) {
    this.runDir = p.runDir;
    this.#install = p.install;
    this.#devEnv = p.devEnv;
    this.#reaper = p.reaper;
    this.pdsUrl = p.ready.pds;
    this.plcUrl = p.ready.plc;
    this.pdsDid = p.ready.pdsDid;
    this.#jetstream = p.jetstream;
    this.#jsPort = p.jsPort;
    this.#jsMetricsPort = p.jsMetricsPort;
    this.timings = p.timings;
  }

  /** `ws://127.0.0.1:<port>/subscribe`: what Loom's jetstreamEndpoint is set to. */
  get jetstreamUrl(): string {
    return `ws://127.0.0.1:${this.#jsPort}/subscribe`;
  }

  /** The PDS's firehose, as Jetstream reads it. */
  get firehoseUrl(): string {
    return `${this.pdsUrl.replace(/^http/, "ws")}/xrpc/com.atproto.sync.subscribeRepos`;
  }

  static async start(opts: { install?: PeersInstall; timeoutMs?: number } = {}): Promise<AtprotoPeers> {
    const install = opts.install ?? locatePeers();
    const timeoutMs = opts.timeoutMs ?? 120_000;
    const runDir = await mkdtemp(join(tmpdir(), "loom-peers-"));
    registerRunDir(runDir);
    const reaper = startReaper(runDir, false);
    const started: ManagedProcess[] = [];
    try {
      const tmp = join(runDir, "tmp");
      await mkdir(tmp);
      let t = Date.now();
      const devEnv = ManagedProcess.start(
        "dev-env",
        install.node,
        [join(install.peersDir, "start-peers.mjs")],
        {
          logDir: runDir,
          cwd: install.peersDir,
          // dev-env keeps the PDS's data and blobs under os.tmpdir(): inside the run folder.
          env: { ...process.env, TMPDIR: tmp, NODE_ENV: "development" },
        },
      );
      started.push(devEnv);
      recordGroup(runDir, devEnv.pid);
      let ready: { pds: string; plc: string; pdsDid: string } | undefined;
      await waitUntil(
        "the PDS and PLC (LOOM_PEERS_READY)",
        async () => {
          const line = readFileSync(devEnv.logPath, "utf8")
            .split("\n")
            .find((l) => l.startsWith("LOOM_PEERS_READY "));
          if (line === undefined) return false;
          ready = JSON.parse(line.slice("LOOM_PEERS_READY ".length));
          return true;
        },
        { timeoutMs, process: devEnv, intervalMs: 100 },
      );
      if (ready === undefined) throw new StartupError("dev-env printed no URLs");
      const devEnvMs = Date.now() - t;
      t = Date.now();
      const jsPort = await freePort();
      const jsMetricsPort = await freePort();
      const self = { runDir, install, jsPort, jsMetricsPort };
      const jetstream = await startJetstream(self, ready.pds, 1, timeoutMs);
      started.push(jetstream);
      const peers = new AtprotoPeers({
        runDir,
        install,
        devEnv,
        reaper,
        ready,
        jetstream,
        jsPort,
        jsMetricsPort,
        timings: { devEnv: devEnvMs, jetstream: Date.now() - t },
      });
      peers.#jsStarts = 1;
      return peers;
    } catch (err) {
      for (const p of started) await p.stop(3_000);
      reaper.stop();
      unregisterRunDir(runDir);
      await rm(runDir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Process group ids of dev-env and the current Jetstream. */
  get pids(): number[] {
    return [this.#devEnv.pid, this.#jetstream.pid];
  }

  get jetstreamRunning(): boolean {
    return this.#jetstream.running;
  }

  /** Stops Jetstream (SIGTERM); its data folder (events and its firehose cursor) stays. */
  async stopJetstream(): Promise<void> {
    await this.#jetstream.stop(10_000);
  }

  /** Starts Jetstream again on the same port with the same data folder. */
  async startJetstream(timeoutMs = 60_000): Promise<void> {
    if (this.#jetstream.running) return;
    this.#jsStarts++;
    this.#jetstream = await startJetstream(
      {
        runDir: this.runDir,
        install: this.#install,
        jsPort: this.#jsPort,
        jsMetricsPort: this.#jsMetricsPort,
      },
      this.pdsUrl,
      this.#jsStarts,
      timeoutMs,
    );
  }

  async restartJetstream(): Promise<void> {
    await this.stopJetstream();
    await this.startJetstream();
  }

  /** Log tails of both, for failure messages. */
  logs(lines = 40): string {
    return `--- dev-env ---\n${this.#devEnv.tail(lines)}\n--- jetstream ---\n${this.#jetstream.tail(lines)}`;
  }

  async stop(): Promise<void> {
    await this.#jetstream.stop(5_000);
    await this.#devEnv.stop(10_000);
    this.#reaper.stop();
    unregisterRunDir(this.runDir);
    await rm(this.runDir, { recursive: true, force: true });
  }
}

async function startJetstream(
  p: { runDir: string; install: PeersInstall; jsPort: number; jsMetricsPort: number },
  pdsUrl: string,
  n: number,
  timeoutMs: number,
): Promise<ManagedProcess> {
  const firehose = `${pdsUrl.replace(/^http/, "ws")}/xrpc/com.atproto.sync.subscribeRepos`;
  const js = ManagedProcess.start(`jetstream-${n}`, p.install.jetstream, [], {
    logDir: p.runDir,
    env: {
      ...process.env,
      JETSTREAM_WS_URL: firehose,
      JETSTREAM_LISTEN_ADDR: `127.0.0.1:${p.jsPort}`,
      JETSTREAM_METRICS_LISTEN_ADDR: `127.0.0.1:${p.jsMetricsPort}`,
      JETSTREAM_DATA_DIR: join(p.runDir, "jetstream-data"),
      // Once it has seen events, a liveness tick (default every 15 s) that finds none new since the
      // previous tick makes it exit on purpose; a quiet test PDS is normal.
      JETSTREAM_LIVENESS_TTL: "24h",
      JETSTREAM_WORKER_COUNT: "4",
    },
  });
  recordGroup(p.runDir, js.pid);
  // Its metrics listener comes up with the server; / on the main port answers once it serves.
  await waitUntil(
    `jetstream on 127.0.0.1:${p.jsPort}`,
    async () => {
      const r = await get(`http://127.0.0.1:${p.jsPort}/`, {}, 2_000);
      return r.status > 0 || `HTTP ${r.status}`;
    },
    { timeoutMs, process: js, intervalMs: 100 },
  );
  // Give it a moment to connect to the firehose before events are written.
  await sleep(200);
  return js;
}

let shared: Promise<AtprotoPeers> | undefined;

/**
 * The peers for this test process, started on first call and stopped at process exit (the exit
 * handlers of processes.ts). `{ skip }` (a reason) when they are not installed and
 * LOOM_SKIP_PEERS=1; otherwise a missing install fails the calling test with how to install.
 */
export async function getAtprotoPeers(): Promise<AtprotoPeers | { skip: string }> {
  let install: PeersInstall;
  try {
    install = locatePeers();
  } catch (err) {
    if (err instanceof MissingPeersError && process.env.LOOM_SKIP_PEERS === "1") return { skip: err.message };
    throw err;
  }
  shared ??= AtprotoPeers.start({ install });
  return shared;
}
