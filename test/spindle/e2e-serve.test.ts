/**
 * `loom serve` with no configuration at all (what `make run` does): dev defaults under
 * ./.loom/ of the working directory, a generated secrets key, the placeholder owner, and a
 * clean exit on SIGINT.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { DEV_OWNER_PLACEHOLDER } from "../../src/spindle/config/index.ts";

const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;

it("loom serve with nothing configured uses ./.loom/ and the local engine", async () => {
  const cwd = mkdtempSync(join(tmpdir(), "loom-serve-"));
  try {
    const proc = spawn(process.execPath, [MAIN, "serve"], {
      cwd,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        SPINDLE_SERVER_LISTEN_ADDR: "127.0.0.1:0",
        LOOM_LOG_LEVEL: "warn",
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const exited = new Promise<number | null>((res) => proc.once("exit", (code) => res(code)));
    let err = "";
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner:\n${err}`)), 20_000);
      proc.stderr.on("data", (d: Buffer) => {
        err += d.toString();
        const m = /listening on (http:\/\/[0-9.:]+)/.exec(err);
        if (m && err.includes("SPINDLE_SERVER_DEV=true")) {
          clearTimeout(timer);
          resolve(m[1] as string);
        }
      });
    });
    assert.match(err, /DID {12}did:web:localhost:6555/);
    assert.match(err, /placeholder: set SPINDLE_SERVER_OWNER/);
    assert.match(err, /engine {9}local/);
    const owner = await (await fetch(`${url}/xrpc/sh.tangled.owner`)).json();
    assert.deepEqual(owner, { owner: DEV_OWNER_PLACEHOLDER });
    assert.ok(existsSync(join(cwd, ".loom", "spindle.db")));
    assert.equal(statSync(join(cwd, ".loom", "secrets.key")).mode & 0o777, 0o600);
    proc.kill("SIGINT");
    assert.equal(await exited, 0);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});
