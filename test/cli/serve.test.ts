/**
 * `loom serve --dev` as `make run` starts it: the banner names the address it really listens on
 * (SPINDLE_SERVER_LISTEN_ADDR, not the default's 6555), and the logs on stdout are pino's JSON
 * lines unless `--log-format pretty` (the default on a terminal) asks for human lines.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { LOOM_MAIN } from "./support.ts";

/** A port nothing listens on right now (the kernel's pick for port 0). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function serve(args: string[]): Promise<{ banner: string; stdout: string; code: number | null }> {
  const cwd = await mkdtemp(join(tmpdir(), "loom-serve-cli-"));
  try {
    const port = await freePort();
    const proc = spawn(process.execPath, [LOOM_MAIN, "serve", "--dev", ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SPINDLE_SERVER_LISTEN_ADDR: `127.0.0.1:${port}` },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
    let stdout = "";
    let stderr = "";
    proc.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    await new Promise<void>((resolve, reject) => {
      proc.stderr.setEncoding("utf8").on("data", (d: string) => {
        stderr += d;
        if (stderr.includes("SPINDLE_SERVER_DEV=true")) resolve();
      });
      proc.once("exit", () => reject(new Error(`loom serve exited:\n${stderr}`)));
    });
    while (!stdout.includes("spindle listening")) await new Promise((r) => setTimeout(r, 20));
    proc.kill("SIGTERM");
    const code = await exited;
    assert.ok(stderr.includes(`listening on http://127.0.0.1:${port}\n`), stderr);
    assert.ok(stderr.includes(`did:web:localhost:${port}\n`), stderr);
    assert.ok(stderr.includes(`ws://localhost:${port}/events`), stderr);
    assert.ok(!stderr.includes("6555"), stderr);
    return { banner: stderr, stdout, code };
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
}

it("the banner shows the real listen address; logs are JSON on a pipe", async () => {
  const r = await serve([]);
  assert.equal(r.code, 0);
  const records = r.stdout
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as { msg: string });
  assert.ok(
    records.some((l) => l.msg === "spindle listening"),
    r.stdout,
  );
});

it("--log-format pretty: one human line per record, no colour on a pipe", async () => {
  const r = await serve(["--log-format", "pretty"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^\d\d:\d\d:\d\d\.\d{3} INFO {2}spindle listening url=http:\/\/127\.0\.0\.1:\d+ /m);
  assert.ok(!/^\{/m.test(r.stdout), r.stdout);
  assert.ok(!r.stdout.includes("\u001b["), r.stdout);
});

it("on a terminal the default is human lines, in colour", {
  skip: !existsSync("/usr/bin/script") && "no script(1) to give loom serve a terminal",
}, async () => {
  const cwd = await mkdtemp(join(tmpdir(), "loom-serve-tty-"));
  try {
    const port = await freePort();
    // script(1) runs the command on a pseudo-terminal and copies what it writes to our pipe.
    const command = `exec '${process.execPath}' '${LOOM_MAIN}' serve --dev`;
    const proc = spawn("/usr/bin/script", ["-qefc", command, "/dev/null"], {
      cwd,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SPINDLE_SERVER_LISTEN_ADDR: `127.0.0.1:${port}` },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
    let out = "";
    proc.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    proc.stderr.resume();
    while (!out.includes("spindle listening") || !out.includes("SPINDLE_SERVER_DEV=true")) {
      if (proc.exitCode !== null) assert.fail(`loom serve exited:\n${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    proc.kill("SIGTERM");
    await exited;
    const plain = out.replaceAll(/\u001b\[[0-9;]*m/g, "");
    assert.match(plain, /^\d\d:\d\d:\d\d\.\d{3} INFO {2}spindle listening url=http:\/\/127\.0\.0\.1:\d+ /m);
    assert.ok(out.includes("\u001b[32mINFO"), "the level is coloured on a terminal");
    assert.ok(!/^\{/m.test(plain), plain);
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
});
