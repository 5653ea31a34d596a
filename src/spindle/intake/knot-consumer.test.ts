import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { pino } from "pino";
import { WebSocketServer } from "ws";
import { KnotCursors, openDatabase } from "../db/index.ts";
import { KnotConsumer, type KnotRowSkipReason } from "./knot-consumer.ts";

async function waitFor(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A Gen2 knot on loopback: rows with `created` 100 (its frame is over the consumer's 1 KiB cap),
 * 101 and 102, sent `created > cursor` ascending on each connection. Like a knot still sending
 * the rest of a 17 MiB frame, every connection after the first stops reading once it was sent
 * the oversize frame, so it never answers the consumer's 1009 close.
 */
async function slowClosingKnot() {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, path: "/events" });
  await new Promise<void>((r) => wss.once("listening", () => r()));
  const { port } = wss.address() as { port: number };
  const rows = [
    { created: 100n, rkey: "3lrow00000100", big: true },
    { created: 101n, rkey: "3lrow00000101", big: false },
    { created: 102n, rkey: "3lrow00000102", big: false },
  ];
  const cursors: string[] = [];
  const sockets: Socket[] = [];
  wss.on("connection", (ws, req) => {
    const cursor = BigInt(new URL(req.url ?? "/", "ws://x").searchParams.get("cursor") ?? "0");
    cursors.push(cursor.toString());
    sockets.push(req.socket);
    for (const r of rows.filter((r) => r.created > cursor)) {
      const event = r.big ? { pad: "x".repeat(2048) } : {};
      ws.send(
        JSON.stringify({ rkey: r.rkey, nsid: "sh.tangled.pipeline", event, created: Number(r.created) }),
      );
      if (r.big && cursors.length > 1) req.socket.pause();
    }
  });
  return {
    host: `127.0.0.1:${port}`,
    cursors,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}

describe("KnotConsumer: an oversize row", () => {
  it("is located by probes that take the 1009 as soon as it is announced, not after the close", async () => {
    const knot = await slowClosingKnot();
    const dir = mkdtempSync(join(tmpdir(), "loom-knot-consumer-"));
    const db = openDatabase(join(dir, "spindle.db"));
    const cursors = new KnotCursors(db);
    cursors.set(knot.host, "1");
    const handled: string[] = [];
    const skips: KnotRowSkipReason[] = [];
    // The cursor right after the skip (the consumer moves it synchronously after onSkip, then
    // reconnects and goes on past 101 and 102, so reading it later would race with that).
    let cursorAtSkip: string | null = null;
    const consumer = new KnotConsumer({
      knot: knot.host,
      dev: true,
      cursors,
      handlers: new Map([
        ["sh.tangled.pipeline", async (_k: string, env: { rkey: string }) => void handled.push(env.rkey)],
      ]),
      log: pino({ level: "silent" }),
      maxFrameBytes: 1024,
      oversizeRetries: 1,
      // Far shorter than any close: before the fix every probe below the row answered "none".
      probeWaitMs: 100,
      backoff: { baseMs: 10, capMs: 50, minMs: 10 },
      onSkip: (reason) => {
        skips.push(reason);
        queueMicrotask(() => {
          cursorAtSkip = cursors.get(knot.host);
        });
      },
    });
    try {
      consumer.start();
      await waitFor(() => skips.length > 0, "the oversize row to be skipped");
      // Located exactly: the cursor stands on the oversize row, not short of it (which would
      // have it sent first again, and skipped and counted a second time).
      await waitFor(() => cursorAtSkip !== null, "the cursor after the skip");
      assert.equal(cursorAtSkip, "100");
      await waitFor(() => handled.length >= 2, "the rows after it");
      assert.deepEqual(handled, ["3lrow00000101", "3lrow00000102"]);
      assert.deepEqual(skips, ["oversize"]);
      // The probes: doubling from cursor 1 (2, 3, 5, …, 129), then halving down to 99 and 100.
      assert.equal(knot.cursors[0], "1");
      assert.ok(knot.cursors.includes("99") && knot.cursors.includes("100"));
    } finally {
      await consumer.stop();
      await knot.stop();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
