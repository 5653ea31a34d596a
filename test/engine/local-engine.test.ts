/** Local-engine specifics beyond the shared suite: real git clones, bad runners, restarts. */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  DEFAULT_PATH,
  defaultRunnerCommand,
  LocalEngine,
  type LocalEngineOptions,
} from "../../src/engine/local/engine.ts";
import { createRunDir } from "../../src/engine/local/workspace.ts";
import { MAX_ENCODED_LINE_BYTES } from "../../src/protocol/logline.ts";
import { LogFile } from "../../src/relay/logfile.ts";
import { readResultFile, writeResultFile } from "../../src/runner/result-file.ts";
import { findProcesses } from "./procs.ts";
import { makeRun, type TestRun } from "./suite.ts";

const HELLO = '{"type":"hello","time":"2026-01-01T00:00:00Z","version":1,"pid":1,"shell":"sh"}';
const MARK = `LOCAL_ENGINE_TEST=${process.pid}`;

describe("local engine", () => {
  let base: string;
  let n = 0;
  before(async () => {
    base = await mkdtemp(join(tmpdir(), "loom-local-"));
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  /** An engine in a fresh directory; the runner env carries MARK so the test can find strays. */
  function engine(opts: Partial<LocalEngineOptions> = {}): { engine: LocalEngine; dir: string } {
    const dir = join(base, `e${n++}`);
    const [name, value] = MARK.split("=") as [string, string];
    return {
      dir,
      engine: new LocalEngine({
        baseDir: dir,
        killGraceMs: 500,
        env: { PATH: DEFAULT_PATH, [name]: value },
        ...opts,
      }),
    };
  }
  const fakeRunner = (script: string) => ["/bin/sh", "-c", script, "fake-runner"];
  async function clean(dir: string): Promise<void> {
    assert.deepEqual(await readdir(dir).catch(() => []), [], "run directory left behind");
    assert.deepEqual(findProcesses(MARK), [], "process left behind");
  }
  async function finish(e: LocalEngine, run: TestRun) {
    await e.start(run);
    const outcome = await e.wait(run.plan.wid);
    await e.destroy(run.plan.wid);
    return outcome;
  }

  it("clones a local repository over file:// at a commit that is not a branch tip", async () => {
    const repo = join(base, "repo");
    const git = (...args: string[]) =>
      execFileSync("git", ["-C", repo, "-c", "user.name=t", "-c", "user.email=t@e", ...args], {
        encoding: "utf8",
      });
    await mkdir(repo);
    git("init", "-q");
    await writeFile(join(repo, "README"), "version one\n");
    git("add", "README");
    git("commit", "-qm", "one");
    const first = git("rev-parse", "HEAD").trim();
    await writeFile(join(repo, "README"), "version two\n");
    git("commit", "-qam", "two");
    // The clone step of a RunPlan (spec §2.3). Protocol v2 (git's default since 2.26) lets
    // upload-pack serve any reachable commit; v0 would need uploadpack.allowReachableSHA1InWant.
    const clone = [
      "git init",
      `git remote add origin file://${repo}`,
      `git fetch --depth=1 origin ${first}`,
      "git checkout FETCH_HEAD",
    ].join("\n");
    const run = makeRun([clone, "cat README; git rev-list --count HEAD"]);
    run.plan.steps[0]!.kind = "system";
    const { engine: e, dir } = engine();
    const outcome = await finish(e, run);
    assert.equal(outcome.status, "success", outcome.error);
    const d = run.log.data();
    assert.deepEqual(d.slice(-2), ["version one", "1"]);
    await clean(dir);
  });

  it("writes the run's log to <logDir>/<wid>.log, masked", async () => {
    const logDir = join(base, "logs");
    const run = makeRun(['echo "<$PW>"'], { secrets: { PW: "pa55word" } });
    const file = await LogFile.open(logDir, run.plan.wid);
    const { engine: e } = engine();
    await finish(e, { ...run, log: file } as unknown as TestRun);
    await file.close();
    const lines = (await readFile(join(logDir, `${run.plan.wid}.log`), "utf8")).trimEnd().split("\n");
    assert.equal(lines.length, 3);
    assert.match(
      lines[1]!,
      /^\{"kind":"data","content":"\\u003c\*\*\*\\u003e","time":"[^"]+Z","step_id":0,"stream":"stdout"\}$/,
    );
  });

  it("fails a run whose runner is not a runner, with the reason, and cleans up", async () => {
    const { engine: e, dir } = engine({ runnerCommand: fakeRunner("echo garbage; echo oh no >&2; exit 7") });
    const outcome = await finish(e, makeRun(["true"]));
    assert.equal(outcome.status, "failed");
    assert.match(outcome.error ?? "", /runner exited with status 7 without reporting a result: oh no/);
    await clean(dir);
  });

  it("fails a run whose runner cannot be started", async () => {
    const { engine: e, dir } = engine({ runnerCommand: ["/nonexistent/loom-runner"] });
    const outcome = await finish(e, makeRun(["true"]));
    assert.equal(outcome.status, "failed");
    assert.match(outcome.error ?? "", /could not be started.*ENOENT/);
    await clean(dir);
  });

  it("refuses a runner speaking an unknown protocol version and stops it", async () => {
    const hello = HELLO.replace('"version":1', '"version":99');
    const { engine: e, dir } = engine({
      runnerCommand: fakeRunner(`echo '${hello}'; trap '' TERM; sleep 30`),
    });
    const t0 = Date.now();
    const outcome = await finish(e, makeRun(["true"]));
    assert.equal(outcome.status, "failed");
    assert.match(outcome.error ?? "", /protocol version 99/);
    assert.ok(Date.now() - t0 < 10_000);
    await clean(dir);
  });

  it("SIGKILLs a runner that ignores SIGTERM on cancel, with its children", async () => {
    const { engine: e, dir } = engine({
      runnerCommand: fakeRunner(`echo '${HELLO}'; trap '' TERM; sleep 31 & sleep 32`),
    });
    const run = makeRun(["true"]);
    await e.start(run);
    await new Promise((r) => setTimeout(r, 300));
    await e.cancel(run.plan.wid);
    const outcome = await e.wait(run.plan.wid);
    assert.equal(outcome.status, "cancelled");
    await e.destroy(run.plan.wid);
    await clean(dir);
  });

  it("kills a runner that misses the workflow timeout (the backstop) and reports timeout", async () => {
    const { engine: e, dir } = engine({
      runnerCommand: fakeRunner(`echo '${HELLO}'; trap '' TERM; sleep 33`),
      timeoutGraceMs: 300,
    });
    const outcome = await finish(e, makeRun(["true"], { timeoutSeconds: 1 }));
    assert.equal(outcome.status, "timeout");
    assert.match(outcome.error ?? "", /timed out after 1s/);
    await clean(dir);
  });

  it("fails a run whose runner stops sending heartbeats", async () => {
    const { engine: e, dir } = engine({
      runnerCommand: fakeRunner(`echo '${HELLO}'; sleep 37`),
      heartbeatSeconds: 0.25,
    });
    const outcome = await finish(e, makeRun(["true"], { timeoutSeconds: 0 }));
    assert.equal(outcome.status, "failed");
    assert.match(outcome.error ?? "", /runner stopped responding/);
    await clean(dir);
  });

  it("removes a workspace a step made read-only", async () => {
    const { engine: e, dir } = engine();
    const outcome = await finish(
      e,
      makeRun(["mkdir -p ro/sub && touch ro/sub/f && chmod -R a-w ro && chmod a-w ."]),
    );
    assert.equal(outcome.status, "success", outcome.error);
    await clean(dir);
  });

  it("keeps a secret that cannot travel in an environment out, without crashing", async () => {
    const { engine: e, dir } = engine();
    const run = makeRun(["echo ran"], { secrets: { BAD: "a\0b", GOOD: "fine-secret" } });
    const outcome = await finish(e, run);
    // The runner reports the secret the step needs as missing.
    assert.equal(outcome.status, "failed");
    assert.ok(!JSON.stringify(run.log.lines).includes("fine-secret"));
    await clean(dir);
  });

  it("after a restart, reports an in-flight run lost and removes what it left", async () => {
    const { engine: e, dir } = engine();
    const run = makeRun(["sleep 34"]);
    // What a previous server process left: the run directory and a step still running in it.
    const left = await createRunDir(dir, run.plan.wid);
    const [name, value] = MARK.split("=") as [string, string];
    const stray = spawn("sleep", ["35"], {
      cwd: left.workspace,
      detached: true,
      stdio: "ignore",
      env: { [name]: value },
    });
    stray.unref();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(findProcesses(MARK).length, 1);
    const res = await e.recover(run);
    assert.equal(res.state, "lost");
    assert.match(res.state === "lost" ? res.reason : "", /cannot resume/);
    await clean(dir);
    // And a run this process knows is resumed as is.
    await e.start(run);
    assert.deepEqual(await e.recover(run), { state: "resumed" });
    await e.destroy(run.plan.wid);
    await clean(dir);
  });

  it("after a restart, reports a run whose runner left its result as finished, with that outcome", async () => {
    const { engine: e, dir } = engine();
    const secret = "s3cr3t-value";
    const failed = makeRun(["exit 3"], { secrets: { PW: secret } });
    const left = await createRunDir(dir, failed.plan.wid);
    writeResultFile(
      left.result,
      { status: "failed", exitCode: 3, failedStep: 0, error: `saw ${secret}` },
      true,
    );
    assert.deepEqual(await e.recover(failed), {
      state: "finished",
      outcome: { status: "failed", exitCode: 3, failedStep: 0, error: "saw ***" },
    });
    await clean(dir);

    const ok = makeRun(["true"]);
    writeResultFile(
      (await createRunDir(dir, ok.plan.wid)).result,
      { status: "success", exitCode: 0, failedStep: null },
      false,
    );
    assert.deepEqual(await e.recover(ok), {
      state: "finished",
      outcome: { status: "success", exitCode: 0, failedStep: null },
    });
    await clean(dir);

    // Cancelled by its runner because the server's end of its stdout was gone: cut short.
    const cut = makeRun(["sleep 5"]);
    writeResultFile(
      (await createRunDir(dir, cut.plan.wid)).result,
      { status: "cancelled", exitCode: 143, failedStep: 0, error: "cancelled" },
      true,
    );
    const res = await e.recover(cut);
    assert.equal(res.state, "lost");
    assert.match(
      res.state === "lost" ? res.reason : "",
      /stopped the steps when the previous spindle process went away/,
    );
    await clean(dir);

    // A torn or foreign file is no result.
    const torn = makeRun(["true"]);
    await writeFile((await createRunDir(dir, torn.plan.wid)).result, '{"version":1,"status":"succ');
    assert.equal((await e.recover(torn)).state, "lost");
    await clean(dir);
  });

  it("a real runner leaves its result in the run directory (atomically), hidden from its steps", async () => {
    // A wrapper around the real runner copies the file out before the engine removes the run
    // directory (with the rest of the run, once the outcome is known).
    const copy = join(base, "result-copy.json");
    const { engine: e, dir } = engine({
      runnerCommand: [
        "/bin/sh",
        "-c",
        `"$0" "$@"; rc=$?; cp "$LOOM_RESULT_FILE" ${copy}; exit $rc`,
        ...defaultRunnerCommand(),
      ],
    });
    const run = makeRun(["env | grep -c '^LOOM_' || true", "exit 4"]);
    const outcome = await finish(e, run);
    assert.equal(outcome.status, "failed");
    assert.equal(outcome.exitCode, 4);
    assert.deepEqual(run.log.data().slice(-1), ["0"], "a step saw a LOOM_ variable");
    assert.deepEqual(readResultFile(copy), {
      version: 1,
      status: "failed",
      exitCode: 4,
      failedStep: 1,
      outputBroken: false,
    });
    await clean(dir);
  });

  it("relays binary output and a 1 MB line from a real step, as valid bounded log lines", async () => {
    const logDir = join(base, "binlogs");
    const run = makeRun([
      "head -c 4000000 /dev/urandom; head -c 1000000 /dev/zero | tr '\\0' x; echo; echo done",
    ]);
    const file = await LogFile.open(logDir, run.plan.wid);
    const { engine: e, dir } = engine();
    const outcome = await finish(e, { ...run, log: file } as unknown as TestRun);
    await file.close();
    assert.equal(outcome.status, "success", outcome.error);
    const lines = (await readFile(join(logDir, `${run.plan.wid}.log`), "utf8")).trimEnd().split("\n");
    let xs = 0;
    for (const text of lines) {
      // Bounded by the relay's line limit (1 MiB of content since issue 12; it was 64 Ki units).
      assert.ok(Buffer.byteLength(text) <= MAX_ENCODED_LINE_BYTES, "a log line is not bounded");
      const line = JSON.parse(text) as { content: string };
      xs += line.content.split("").filter((c) => c === "x").length;
    }
    assert.ok(xs >= 1_000_000, `the 1 MB line lost characters (${xs})`);
    assert.equal(JSON.parse(lines.at(-2)!).content, "done");
    await clean(dir);
  });

  it("runs the bundled runner (dist/runner-bundle) when it has been built", async (t) => {
    const bundle = join(import.meta.dirname, "../../dist/runner-bundle/loom-runner");
    if (!existsSync(bundle)) return t.skip("run `make build` first");
    const { engine: e, dir } = engine({ runnerCommand: [bundle] });
    const run = makeRun(["echo from-bundle $K"], { secrets: { K: "bundle-secret" } });
    const outcome = await finish(e, run);
    assert.equal(outcome.status, "success", outcome.error);
    assert.deepEqual(run.log.data(), ["from-bundle ***"]);
    await clean(dir);
  });

  it("close() stops every run, reports it failed, and refuses new runs", async () => {
    const { engine: e, dir } = engine();
    const run = makeRun(["echo up; sleep 36"]);
    await e.start(run);
    await run.log.waitFor((l) => l.content === "up");
    await e.close();
    const outcome = await e.wait(run.plan.wid);
    assert.equal(outcome.status, "failed");
    assert.match(outcome.error ?? "", /shut down/);
    await assert.rejects(e.start(makeRun(["true"])), /closed/);
    await clean(dir);
  });
});
