/**
 * The peers harness itself: a Jetstream that has seen events and then none stays up (by default it
 * exits when a 15 s liveness tick finds no new event since the previous one; the harness sets a
 * longer period), and stop() ends every process and deletes the run folder.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { AtprotoPeers, locatePeers, MissingPeersError } from "../harness/atproto-peers.ts";
import { createAccount } from "../support/pds-client.ts";

let skip: string | false = false;
try {
  locatePeers();
} catch (err) {
  if (!(err instanceof MissingPeersError) || process.env.LOOM_SKIP_PEERS !== "1") throw err;
  skip = err.message;
}

describe("AtprotoPeers", { skip }, () => {
  it("keeps a quiet Jetstream running past two 15 s liveness ticks, and stop() leaves nothing behind", async () => {
    const peers = await AtprotoPeers.start();
    let stopped = false;
    try {
      const plc = await fetch(`${peers.plcUrl}/_health`);
      assert.equal(plc.status, 200);
      const pds = await fetch(`${peers.pdsUrl}/xrpc/_health`);
      assert.equal(pds.status, 200);
      // Some events (an account's identity, account and first commit), then none: with the default
      // liveness period Jetstream would exit at its second tick (30 s).
      await createAccount(peers.pdsUrl, "quiet");
      await sleep(33_000);
      assert.equal(peers.jetstreamRunning, true, `jetstream exited:\n${peers.logs()}`);
      const pids = peers.pids;
      await peers.stop();
      stopped = true;
      for (const pid of pids)
        assert.throws(() => process.kill(-pid, 0), /ESRCH/, `process group ${pid} left`);
      assert.equal(existsSync(peers.runDir), false);
    } finally {
      if (!stopped) await peers.stop();
    }
  });
});
