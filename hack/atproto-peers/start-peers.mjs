// Starts the reference PDS and PLC directory of @atproto/dev-env (TestNetworkNoAppView: PDS + PLC,
// no appview) on loopback and prints one line the test harness waits for:
//
//   LOOM_PEERS_READY {"pds":"http://localhost:<port>","plc":"http://localhost:<port>","pdsDid":"did:web:…"}
//
// Run by Node 22 from the cache folder hack/atproto-peers.sh installs (dev-env's better-sqlite3
// aborts under Node 24.19+), never by the project's Node. Stops cleanly on SIGTERM/SIGINT. Set
// TMPDIR to a folder the caller deletes: dev-env keeps the PDS's data and blobs under it.
//
// Environment: LOOM_PEERS_PDS_PORT, LOOM_PEERS_PLC_PORT (default: free ports).
import { TestNetworkNoAppView } from "@atproto/dev-env";

const port = (name) => {
  const v = process.env[name];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${name} must be a port, got ${v}`);
  return n;
};

const network = await TestNetworkNoAppView.create({
  pds: { ...(port("LOOM_PEERS_PDS_PORT") && { port: port("LOOM_PEERS_PDS_PORT") }) },
  plc: { ...(port("LOOM_PEERS_PLC_PORT") && { port: port("LOOM_PEERS_PLC_PORT") }) },
});

let stopping = false;
const stop = async (signal) => {
  if (stopping) return;
  stopping = true;
  try {
    await network.close();
  } catch (err) {
    process.stderr.write(`[start-peers] close after ${signal}: ${err?.stack ?? err}\n`);
  }
  process.exit(0);
};
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));

process.stdout.write(
  `LOOM_PEERS_READY ${JSON.stringify({
    pds: network.pds.url,
    plc: network.plc.url,
    pdsDid: network.pds.ctx.cfg.service.did,
    node: process.version,
  })}\n`,
);
