import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { RunnerEvent, RunnerSpec } from "./protocol.ts";

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "loom-runner-main-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Cli {
  code: number | null;
  events: RunnerEvent[];
  stderr: string;
}

/** Run `node main.ts args` with `input` on stdin; `onEvent` sees events as they arrive. */
function cli(args: string[], input: string, onEvent?: (e: RunnerEvent, pid: number) => void): Promise<Cli> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      env: { PATH: process.env.PATH, LOOM_SECRET_TOK: "cli-secret-xyz" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const events: RunnerEvent[] = [];
    let partial = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      const lines = (partial + d).split("\n");
      partial = lines.pop()!;
      for (const l of lines) {
        const e = JSON.parse(l) as RunnerEvent;
        events.push(e);
        onEvent?.(e, child.pid!);
      }
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, events, stderr }));
    child.stdin.end(input);
  });
}

function spec(command: string, extra: Partial<RunnerSpec> = {}): string {
  return JSON.stringify({
    version: 1,
    workspace: join(tmp, "ws"),
    timeoutSeconds: 0,
    heartbeatSeconds: 0,
    steps: [{ id: 0, name: "s", kind: "user", command, env: [{ name: "T", secret: "TOK" }] }],
    ...extra,
  });
}

const result = (c: Cli) =>
  c.events.find((e) => e.type === "result") as Extract<RunnerEvent, { type: "result" }>;

describe("loom-runner CLI", { concurrency: true }, () => {
  it("reads the spec from stdin with `-` and exits 0 on success", async () => {
    const c = await cli(["-"], spec('echo "$T"'));
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.events[0]?.type, "hello");
    assert.equal(result(c).status, "success");
    assert.ok(c.events.some((e) => e.type === "output" && e.data === "***\n"));
  });

  it("exits with the failing step's code", async () => {
    const c = await cli(["-"], spec("exit 5"));
    assert.equal(c.code, 5);
  });

  it("exits 124 on timeout", async () => {
    const c = await cli(["-"], spec("sleep 20", { timeoutSeconds: 0.3 }));
    assert.equal(c.code, 124);
    assert.equal(result(c).status, "timeout");
  });

  it("answers a bad spec with hello, a failed result and exit 2", async () => {
    const c = await cli(["-"], '{"version": 1, "steps": "nope"}');
    assert.equal(c.code, 2);
    assert.deepEqual(
      c.events.map((e) => e.type),
      ["hello", "result"],
    );
    assert.match(result(c).error ?? "", /invalid spec/);
  });

  it("exits 2 with usage when the arguments are wrong", async () => {
    const c = await cli([], "");
    assert.equal(c.code, 2);
    assert.match(c.stderr, /usage/);
  });

  it("is cancelled by SIGTERM: exit 143, result cancelled", async () => {
    const c = await cli(["-"], spec("echo up; sleep 30"), (e, pid) => {
      if (e.type === "output") process.kill(pid, "SIGTERM");
    });
    assert.equal(c.code, 143);
    assert.equal(result(c).status, "cancelled");
  });

  it("is cancelled by SIGTERM while still waiting for the spec on stdin", async () => {
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [MAIN, "-"], { stdio: ["pipe", "pipe", "ignore"] });
      let out = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => {
        if (out === "") child.kill("SIGTERM"); // after hello: the handlers are installed
        out += d;
      });
      child.on("close", (c) => {
        assert.match(out, /"status":"cancelled"/);
        resolve(c);
      });
    });
    assert.equal(code, 143);
  });

  // The timeout is the assertion: a runner that ignored EPIPE would spam forever.
  it("stops when nobody reads its events any more (EPIPE)", { timeout: 30_000 }, async () => {
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [MAIN, "-"], {
        env: { PATH: process.env.PATH, LOOM_SECRET_TOK: "x" },
        stdio: ["pipe", "pipe", "ignore"],
      });
      child.stdout.once("data", () => child.stdout.destroy());
      child.on("close", resolve);
      child.stdin.end(spec("while :; do echo spam; sleep 0.01; done"));
    });
    assert.equal(code, 143);
  });
});
