import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import {
  GuardedFetchError,
  guardedFetch,
  guardedFetchFunction,
  isForbiddenAddress,
} from "./guarded-fetch.ts";

describe("isForbiddenAddress", () => {
  it("refuses internal ranges and accepts public ones", () => {
    const forbidden = [
      "127.0.0.1",
      "10.1.2.3",
      "172.16.0.1",
      "172.31.255.255",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "224.0.0.1",
      "255.255.255.255",
      "::1",
      "::",
      "fe80::1",
      "fc00::1",
      "fd12:3456::1",
      "::ffff:127.0.0.1",
      "::ffff:8.8.8.8",
      "64:ff9b::a00:1",
      "2002:a00:1::1",
      "ff02::1",
      "not-an-ip",
    ];
    for (const a of forbidden) assert.equal(isForbiddenAddress(a), true, a);
    for (const a of ["8.8.8.8", "1.1.1.1", "172.32.0.1", "2606:4700:4700::1111", "2a01:4f8::1"]) {
      assert.equal(isForbiddenAddress(a), false, a);
    }
  });
});

describe("guardedFetch", () => {
  let server: Server;
  let base: string;
  let port: number;

  before(async () => {
    server = createServer((req, res) => {
      if (req.url === "/ok") res.end("hello");
      else if (req.url === "/big") res.end("x".repeat(5000));
      else if (req.url === "/chunked") {
        res.write("y".repeat(3000));
        res.end("y".repeat(3000));
      } else if (req.url === "/redirect") res.writeHead(302, { location: "/ok" }).end();
      else if (req.url === "/to-metadata")
        res.writeHead(302, { location: "http://169.254.169.254/latest/meta-data/" }).end();
      else if (req.url === "/loop") res.writeHead(302, { location: "/loop" }).end();
      else if (req.url === "/slow") setTimeout(() => res.end("late"), 2000);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const code = (c: string) => (err: unknown) => err instanceof GuardedFetchError && err.code === c;

  it("refuses loopback literals and names that resolve to them", async () => {
    await assert.rejects(guardedFetch(`${base}/ok`), code("ForbiddenAddress"));
    await assert.rejects(guardedFetch(`http://localhost:${port}/ok`), code("ForbiddenAddress"));
    await assert.rejects(guardedFetch(`http://[::1]:${port}/ok`), code("ForbiddenAddress"));
    // A name with one public and one internal answer is refused too.
    const resolve = async () => [
      { address: "8.8.8.8", family: 4 },
      { address: "10.0.0.1", family: 4 },
    ];
    await assert.rejects(guardedFetch("http://pds.example/ok", { resolve }), code("ForbiddenAddress"));
  });

  it("connects to the address it checked (pinned lookup), when private targets are allowed", async () => {
    // `pds.invalid` cannot resolve through system DNS: the answer can only come from our lookup.
    const resolve = async () => [{ address: "127.0.0.1", family: 4 }];
    const res = await guardedFetch(`http://pds.invalid:${port}/ok`, { allowPrivate: true, resolve });
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), "hello");
  });

  it("follows a few redirects, and no more", async () => {
    const res = await guardedFetch(`${base}/redirect`, { allowPrivate: true });
    assert.equal(res.body.toString(), "hello");
    assert.equal(res.url, `${base}/ok`);
    await assert.rejects(guardedFetch(`${base}/loop`, { allowPrivate: true }), code("TooManyRedirects"));
  });

  it("re-checks every redirect target", async () => {
    const only = { allowAddresses: ["127.0.0.1"] };
    assert.equal((await guardedFetch(`${base}/redirect`, only)).body.toString(), "hello");
    await assert.rejects(guardedFetch(`${base}/to-metadata`, only), code("ForbiddenAddress"));
  });

  it("caps the body, declared or streamed", async () => {
    await assert.rejects(
      guardedFetch(`${base}/big`, { allowPrivate: true, maxBytes: 1000 }),
      code("TooLarge"),
    );
    await assert.rejects(
      guardedFetch(`${base}/chunked`, { allowPrivate: true, maxBytes: 4000 }),
      code("TooLarge"),
    );
  });

  it("times out", async () => {
    await assert.rejects(
      guardedFetch(`${base}/slow`, { allowPrivate: true, timeoutMs: 200 }),
      code("Timeout"),
    );
  });

  it("refuses other schemes, credentials and junk", async () => {
    await assert.rejects(guardedFetch("file:///etc/passwd"), code("InvalidUrl"));
    await assert.rejects(guardedFetch("http://u:p@example.com/"), code("InvalidUrl"));
    await assert.rejects(guardedFetch("not a url"), code("InvalidUrl"));
  });
  it("guardedFetchFunction: the guard behind fetch's signature (for XrpcClient)", async () => {
    const f = guardedFetchFunction({ allowPrivate: true });
    const res = await f(`${base}/redirect`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "hello");
    assert.equal((await f(new URL(`${base}/nope`))).status, 404);
    await assert.rejects(
      guardedFetchFunction()(`${base}/ok`),
      (e: unknown) => e instanceof GuardedFetchError && e.code === "ForbiddenAddress",
    );
    await assert.rejects(f(`${base}/ok`, { method: "POST" }), /only GET/);
  });
});
