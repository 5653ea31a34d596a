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
