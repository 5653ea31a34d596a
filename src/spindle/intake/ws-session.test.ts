import assert from "node:assert/strict";
import { createServer } from "node:net";
import { describe, it } from "node:test";
import { pino } from "pino";
import { runSession, type SessionOptions } from "./ws-session.ts";

const base = (url: string): SessionOptions => ({
  url,
  log: pino({ level: "silent" }),
  signal: new AbortController().signal,
  maxPayload: 1024,
  livenessMs: 1000,
  pingMs: 500,
  handshakeTimeoutMs: 300,
  maxQueued: 10,
  onText: async () => {},
});

describe("runSession", () => {
  it("reports an unusable URL as a failed dial instead of throwing", async () => {
    const end = await runSession(base("ws://bad host name/events"));
    assert.equal(end.opened, false);
    assert.match(end.reason, /^cannot connect: /);
  });

  it("reports a server that accepts TCP but never answers the handshake", async () => {
    const srv = createServer(() => {});
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const { port } = srv.address() as { port: number };
    try {
      const end = await runSession(base(`ws://127.0.0.1:${port}/events`));
      assert.equal(end.opened, false);
      assert.match(end.reason, /handshake has timed out/);
    } finally {
      srv.close();
    }
  });

  it("resolves at once when already stopped", async () => {
    const ac = new AbortController();
    ac.abort();
    const end = await runSession({ ...base("ws://127.0.0.1:1/"), signal: ac.signal });
    assert.equal(end.reason, "stopped");
  });
});

describe("runSession under a flood", () => {
  it("yields to the event loop while a long queue is processed", async () => {
    const { WebSocketServer } = await import("ws");
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((r) => wss.once("listening", () => r()));
    const { port } = wss.address() as { port: number };
    // 1,000 small text frames in one TCP write: the client parses them all at once, so without
    // yielding they would be one uninterrupted chain of promise jobs.
    const N = 1000;
    wss.on("connection", (_ws, req) => {
      const frames = Array.from({ length: N }, (_, i) => {
        const body = Buffer.from(`{"n":${i}}`);
        return Buffer.concat([Buffer.from([0x81, body.length]), body]);
      });
      req.socket.write(Buffer.concat(frames));
    });
    const ac = new AbortController();
    let processed = 0;
    let atTimer = -1;
    try {
      await runSession({
        ...base(`ws://127.0.0.1:${port}/`),
        signal: ac.signal,
        maxQueued: 10 * N,
        livenessMs: 60_000,
        pingMs: 30_000,
        handshakeTimeoutMs: 5000,
        onText: async () => {
          if (processed === 0) setTimeout(() => (atTimer = processed), 0);
          const until = performance.now() + 0.2;
          while (performance.now() < until) {} // CPU work of one frame (validation, SQLite)
          if (++processed === N) ac.abort();
        },
      });
    } finally {
      wss.close();
    }
    assert.equal(processed, N);
    assert.ok(atTimer > 0 && atTimer < N, `a timer ran after ${atTimer} of ${N} frames`);
  });
});

describe("runSession batches", () => {
  it("calls onFlush after at most maxBatch frames, and once more when stopped mid-batch", async () => {
    const { WebSocketServer } = await import("ws");
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((r) => wss.once("listening", () => r()));
    const { port } = wss.address() as { port: number };
    const N = 95;
    wss.on("connection", (_ws, req) => {
      const frames = Array.from({ length: N }, (_, i) => {
        const body = Buffer.from(`{"n":${i}}`);
        return Buffer.concat([Buffer.from([0x81, body.length]), body]);
      });
      req.socket.write(Buffer.concat(frames));
    });
    const ac = new AbortController();
    let inBatch = 0;
    let processed = 0;
    const batches: number[] = [];
    try {
      await runSession({
        ...base(`ws://127.0.0.1:${port}/`),
        signal: ac.signal,
        maxQueued: 1000,
        maxBatch: 10,
        sliceMs: 60_000,
        livenessMs: 60_000,
        pingMs: 30_000,
        handshakeTimeoutMs: 5000,
        onText: async () => {
          inBatch++;
          // Stopped with frames still queued: the batch in hand is flushed all the same.
          if (++processed === 93) ac.abort();
        },
        onFlush: async () => {
          batches.push(inBatch);
          inBatch = 0;
        },
      });
    } finally {
      wss.close();
    }
    assert.equal(processed, 93);
    assert.equal(
      batches.reduce((a, b) => a + b, 0),
      93,
      "every frame handed to onText was flushed",
    );
    assert.ok(
      batches.every((b) => b >= 1 && b <= 10),
      `batch sizes ${batches.join(",")}`,
    );
  });
});

describe("runSession and an oversize frame", () => {
  it("calls onOversize when the frame is announced, before a peer that never answers the close", async () => {
    const { WebSocketServer } = await import("ws");
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((r) => wss.once("listening", () => r()));
    const { port } = wss.address() as { port: number };
    wss.on("connection", (ws, req) => {
      ws.send("x".repeat(2048)); // over the 1024-byte cap
      req.socket.pause(); // the client's 1009 close is never read, so never answered
    });
    const ac = new AbortController();
    let calls = 0;
    let endedBefore = false;
    let ended = false;
    try {
      const end = runSession({
        ...base(`ws://127.0.0.1:${port}/`),
        signal: ac.signal,
        livenessMs: 60_000,
        pingMs: 30_000,
        handshakeTimeoutMs: 5000,
        onOversize: () => {
          calls++;
          endedBefore = ended;
          ac.abort();
        },
      }).finally(() => (ended = true));
      const result = await end;
      assert.equal(calls, 1);
      assert.equal(endedBefore, false);
      assert.equal(result.oversize, true);
    } finally {
      for (const c of wss.clients) c.terminate();
      wss.close();
    }
  });
});
