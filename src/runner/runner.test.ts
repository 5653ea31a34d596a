import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, describe, it } from "node:test";
import { MAX_OUTPUT_UNITS } from "./events.ts";
import type { EnvEntry, RunnerEvent, RunnerSpec, RunnerStep } from "./protocol.ts";
import { Runner, type RunResult } from "./runner.ts";

const tmp = mkdtempSync(join(tmpdir(), "loom-runner-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A sink that parses the JSON lines back, optionally slow to show backpressure. */
class Collector extends Writable {
  events: RunnerEvent[] = [];
  #partial = "";
  readonly #slow: boolean;
  constructor(opts: { slow?: boolean; highWaterMark?: number } = {}) {
    super({ highWaterMark: opts.highWaterMark ?? 16384, decodeStrings: false });
    this.#slow = opts.slow ?? false;
  }
  override _write(chunk: string, _enc: string, cb: () => void): void {
    const lines = (this.#partial + chunk).split("\n");
    this.#partial = lines.pop()!;
    for (const l of lines) this.events.push(JSON.parse(l) as RunnerEvent);
    if (this.#slow) setImmediate(cb);
    else cb();
  }
  of<T extends RunnerEvent["type"]>(type: T): Extract<RunnerEvent, { type: T }>[] {
    return this.events.filter((e): e is Extract<RunnerEvent, { type: T }> => e.type === type);
  }
  text(stream: "stdout" | "stderr", step = 0): string {
    return this.of("output")
      .filter((e) => e.stream === stream && e.step === step)
      .map((e) => e.data)
      .join("");
  }
}

function step(command: string, env: EnvEntry[] = [], id = 0): RunnerStep {
  return { id, name: `step ${id}`, command, kind: "user", env };
}

function spec(steps: RunnerStep[], extra: Partial<RunnerSpec> = {}): RunnerSpec {
  return { version: 1, workspace: join(tmp, "ws"), timeoutSeconds: 0, heartbeatSeconds: 0, steps, ...extra };
}

const baseRunnerEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin" };

async function run(
  s: RunnerSpec,
  env: NodeJS.ProcessEnv = baseRunnerEnv,
  sink = new Collector(),
  during?: (r: Runner) => void,
): Promise<{ result: RunResult; sink: Collector }> {
  const runner = new Runner({ env, out: sink, killGraceMs: 300, drainGraceMs: 200 });
  const done = runner.run(s);
  during?.(runner);
  const result = await done;
  await new Promise<void>((r) => sink.end(r));
  return { result, sink };
}

/** Alive = listed in /proc and not a zombie (a zombie is dead, waiting to be reaped). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("Runner", () => {
  it("runs steps in order in the workspace and reports events in protocol order", async () => {
    const { result, sink } = await run(spec([step("pwd", [], 0), step("echo two", [], 1)]));
    assert.deepEqual(result, { status: "success", exitCode: 0, failedStep: null });
    assert.deepEqual(
      sink.events.map((e) => e.type),
      ["step_start", "output", "step_end", "step_start", "output", "step_end", "result"],
    );
    assert.equal(sink.text("stdout", 0), `${join(tmp, "ws")}\n`);
    assert.equal(sink.text("stdout", 1), "two\n");
    for (const e of sink.events) assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
  });

  it("applies env precedence: image env, minus LOOM_*, then entries in order", async () => {
    const env = {
      ...baseRunnerEnv,
      FROM_IMAGE: "image",
      OVERRIDDEN: "image",
      LOOM_INTERNAL: "hidden",
      LOOM_SECRET_TOKEN: "tok-123456",
      LOOM_IMAGE_NODE_OPTIONS: "--max-old-space-size=64",
    };
    const entries: EnvEntry[] = [
      { name: "OVERRIDDEN", value: "first" },
      { name: "OVERRIDDEN", value: "second" },
      { name: "TOKEN", secret: "TOKEN" },
      { name: "FROM_SECRET_THEN_VALUE", secret: "TOKEN" },
      { name: "FROM_SECRET_THEN_VALUE", value: "plain" },
    ];
    const cmd =
      'echo "$FROM_IMAGE $OVERRIDDEN $FROM_SECRET_THEN_VALUE $NODE_OPTIONS"; ' +
      '[ "$TOKEN" = tok-123456 ] && echo token-ok; env | grep -c "^LOOM_" || true';
    const { result, sink } = await run(spec([step(cmd, entries)]), env);
    assert.equal(result.status, "success");
    assert.equal(sink.text("stdout"), "image second plain --max-old-space-size=64\ntoken-ok\n0\n");
  });

  it("keeps stdout and stderr apart, with one seq across both", async () => {
    const cmd = "echo out1; sleep 0.05; echo err1 >&2; sleep 0.05; echo out2";
    const { sink } = await run(spec([step(cmd)]));
    assert.equal(sink.text("stdout"), "out1\nout2\n");
    assert.equal(sink.text("stderr"), "err1\n");
    const seqs = sink.of("output").map((e) => e.seq);
    assert.deepEqual(
      seqs,
      seqs.map((_, i) => i + 1),
    );
  });

  it("stops at a failing step and reports its exit code", async () => {
    const { result, sink } = await run(spec([step("exit 7", [], 0), step("echo never", [], 1)]));
    assert.deepEqual(result, { status: "failed", exitCode: 7, failedStep: 0 });
    assert.equal(sink.of("step_start").length, 1);
    assert.equal(sink.of("step_end")[0]!.exitCode, 7);
  });

  it("reports a step killed by a signal as 128 + signal", async () => {
    const { result } = await run(spec([step("kill -9 $$")]));
    assert.equal(result.exitCode, 137);
  });

  it("uses bash when the step's PATH has it, else /bin/sh", async () => {
    const probe = 'if [ -n "$BASH_VERSION" ]; then echo bash; else echo sh; fi';
    const withBash = await run(spec([step(probe)]));
    const without = await run(spec([step(probe, [{ name: "PATH", value: "/nonexistent" }])]));
    assert.equal(withBash.sink.text("stdout"), "bash\n");
    assert.equal(without.sink.text("stdout"), "sh\n");
  });

  it("times out: kills the step's process group and reports timeout", async () => {
    const pidFile = join(tmp, "timeout.pids");
    const cmd = `sleep 30 & echo $! > ${pidFile}; sleep 30`;
    const t0 = Date.now();
    const { result, sink } = await run(
      spec([step(cmd, [], 0), step("echo never", [], 1)], { timeoutSeconds: 0.5 }),
    );
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(result.status, "timeout");
    assert.equal(result.failedStep, 0);
    const end = sink.of("step_end")[0]!;
    assert.equal(end.timedOut, true);
    assert.equal(sink.of("step_start").length, 1);
    const pid = Number(readFileSync(pidFile, "utf8"));
    await waitFor(() => !alive(pid));
  });

  it("cancel: SIGTERMs the whole tree, grandchildren and escaped sessions included", async () => {
    const pidFile = join(tmp, "cancel.pids");
    const ready = join(tmp, "cancel.ready");
    const cmd =
      `sh -c 'sleep 60' & echo $! > ${pidFile}; ` +
      `setsid sleep 60 & echo $! >> ${pidFile}; ` +
      `trap '' TERM; touch ${ready}; while :; do sleep 1; done`;
    const { result, sink } = await run(spec([step(cmd)]), baseRunnerEnv, new Collector(), (runner) => {
      void waitFor(() => {
        try {
          readFileSync(ready);
          return true;
        } catch {
          return false;
        }
      }).then(() => runner.cancel());
    });
    assert.equal(result.status, "cancelled");
    assert.equal(sink.of("step_end")[0]!.cancelled, true);
    const pids = readFileSync(pidFile, "utf8").trim().split("\n").map(Number);
    assert.equal(pids.length, 2);
    // The shell ignores SIGTERM, so it is the SIGKILL after the grace that ends it.
    for (const pid of pids) await waitFor(() => !alive(pid));
  });

  it("masks secrets split across writes, base64 forms and multi-line values", async () => {
    const multi = "line-one-of-key\nline-two-of-key";
    const env = { ...baseRunnerEnv, LOOM_SECRET_TOKEN: "secret-split-value", LOOM_SECRET_KEY: multi };
    const b64 = Buffer.from("secret-split-value").toString("base64");
    const cmd =
      "printf 'a secret-sp'; sleep 0.1; printf 'lit-value b\\n'; " +
      `printf '${b64.slice(0, 6)}'; sleep 0.1; printf '${b64.slice(6)}\\n'; ` +
      "printf 'line-one-of-key\\nline-'; sleep 0.1; printf 'two-of-key\\n'; echo \"$LOOM_SECRET_TOKEN\" >&2";
    const { sink } = await run(spec([step(cmd)]), env);
    assert.ok(sink.of("output").length >= 3, "the pieces arrived as separate reads");
    assert.equal(sink.text("stdout"), "a *** b\n***\n***\n");
    assert.equal(sink.text("stderr"), "\n", "LOOM_* is not passed to steps");
    for (const e of sink.of("output")) assert.ok(!e.data.includes("secret"), e.data);
  });

  it("masks a secret printed base64-encoded with a user name, one line of a key, and as JSON", async () => {
    const key = "-----BEGIN KEY-----\nQyNTUxOQAAACBnJXH3Lx0dUEdwoNiTRbN5c1a7\n-----END KEY-----\n";
    const env = {
      ...baseRunnerEnv,
      LOOM_SECRET_TOKEN: "tok_8Hq2xZ1pL0vR",
      LOOM_SECRET_KEY: key,
      LOOM_SECRET_PW: 'p"w\\d!',
    };
    const steps = [
      // As curl -u and HTTP clients print it: base64 of user:token, three user name lengths.
      step(
        'for u in a ab abc; do printf "%s:%s" "$u" "$TOKEN" | base64; done',
        [{ name: "TOKEN", secret: "TOKEN" }],
        0,
      ),
      step('printf "%s\\n" "$KEY" | sed -n 2p', [{ name: "KEY", secret: "KEY" }], 1),
      step(
        `node -e 'console.log(JSON.stringify({ pw: process.env.PW }))'`,
        [{ name: "PW", secret: "PW" }],
        2,
      ),
    ];
    const { result, sink } = await run(spec(steps), env);
    assert.equal(result.status, "success", JSON.stringify(result));
    const out = [0, 1, 2].map((id) => sink.text("stdout", id));
    for (const line of out[0]!.trimEnd().split("\n")) {
      assert.match(line, /\*\*\*/, line);
      assert.ok(!Buffer.from(line.replace("***", ""), "base64").toString("latin1").includes("tok_"), line);
    }
    assert.equal(out[1], "***\n");
    assert.equal(out[2], '{"pw":"***"}\n');
  });

  it("relays binary and invalid UTF-8 as replacement characters", async () => {
    const { result, sink } = await run(
      spec([step("printf '\\357\\273\\277ok \\377\\376 \\000\\001 \\303'")]),
    );
    assert.equal(result.status, "success");
    assert.equal(sink.text("stdout"), "\uFEFFok \uFFFD\uFFFD \u0000\u0001 \uFFFD");
  });

  it("streams a 1 MB line in bounded events", async () => {
    const { sink } = await run(spec([step("head -c 1048576 /dev/zero | tr '\\0' a")]));
    const outs = sink.of("output");
    assert.ok(outs.every((e) => e.data.length <= MAX_OUTPUT_UNITS));
    assert.equal(sink.text("stdout").length, 1048576);
  });

  it("respects backpressure from a slow sink without losing or reordering output", async () => {
    const sink = new Collector({ slow: true, highWaterMark: 1024 });
    const { sink: s } = await run(spec([step("seq 1 200000")]), baseRunnerEnv, sink);
    const text = s.text("stdout");
    assert.equal(text.split("\n").length, 200001);
    assert.ok(text.startsWith("1\n2\n3\n") && text.endsWith("199999\n200000\n"));
  });

  it("relays 200 MB with bounded memory", async (t) => {
    let bytes = 0;
    const counting = new Collector();
    counting._write = (chunk: string, _e, cb) => {
      bytes += chunk.length;
      cb();
    };
    const before = process.memoryUsage().rss;
    let peak = before;
    const timer = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    const { result } = await run(
      spec([step("yes 'a log line, with some words in it: 0123456789abcdef' | head -c 209715200")]),
      baseRunnerEnv,
      counting,
    );
    clearInterval(timer);
    assert.equal(result.status, "success");
    assert.ok(bytes >= 209715200, `relayed ${bytes} bytes`);
    const grew = `RSS grew by ${((peak - before) / 1e6).toFixed(0)} MB while relaying ${(bytes / 1e6).toFixed(0)} MB`;
    t.diagnostic(grew);
    assert.ok(peak - before < 150e6, grew);
  });

  it("sends heartbeats naming the running step", async () => {
    const { sink } = await run(spec([step("sleep 0.35")], { heartbeatSeconds: 0.1 }));
    const beats = sink.of("heartbeat");
    assert.ok(beats.length >= 2, `${beats.length} heartbeats`);
    assert.ok(beats.every((b) => b.step === 0));
  });

  it("fails before running anything when a secret is not provided", async () => {
    const { result, sink } = await run(spec([step("true", [{ name: "X", secret: "MISSING" }])]));
    assert.equal(result.status, "failed");
    assert.match(result.error ?? "", /MISSING/);
    assert.equal(sink.of("step_start").length, 0);
  });

  it("fails cleanly when the workspace cannot be created", async () => {
    const file = join(tmp, "a-file");
    writeFileSync(file, "");
    const { result } = await run(spec([step("true")], { workspace: join(file, "ws") }));
    assert.equal(result.status, "failed");
    assert.match(result.error ?? "", /workspace/);
  });

  it("fails a step whose command is too long to exec, without crashing", async () => {
    const { result, sink } = await run(spec([step(`echo ${"x".repeat(300_000)}`)]));
    assert.equal(result.status, "failed");
    assert.equal(result.exitCode, 127);
    assert.match(result.error ?? "", /E2BIG|too long/i);
    assert.equal(sink.of("step_end").length, 1);
  });

  it("does not wait for a background process that keeps the pipes open", async () => {
    const t0 = Date.now();
    const { result, sink } = await run(
      spec([step("sleep 30 & echo started", [], 0), step("echo next", [], 1)]),
    );
    assert.equal(result.status, "success");
    assert.equal(sink.text("stdout", 1), "next\n");
    assert.ok(Date.now() - t0 < 3000);
  });
});
