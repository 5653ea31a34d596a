/**
 * A workflow file resolved by src/workflow into a RunPlan, run by the local engine: the plan's
 * own clone step fetches a real repository over file://, the user steps see the checkout, the
 * secrets and HOME, and the log file comes out in Tangled's format.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { pathToFileURL } from "node:url";
import type { EngineRunPlan } from "../../src/engine/engine.ts";
import { LocalEngine } from "../../src/engine/local/engine.ts";
import type { LogLine } from "../../src/protocol/logline.ts";
import { LogFile } from "../../src/relay/logfile.ts";
import { type RunPlan, resolveWorkflow } from "../../src/workflow/resolve.ts";
import { findProcesses } from "./procs.ts";

// A RunPlan is what engines take: keep that true at compile time.
const _planFits = (p: RunPlan): EngineRunPlan => p;
void _planFits;

let base: string;
before(async () => {
  base = await mkdtemp(join(tmpdir(), "loom-plan-"));
});
after(async () => {
  await rm(base, { recursive: true, force: true });
});

it("runs a resolved workflow: clone over file://, steps, secrets masked, Tangled log file", async () => {
  const repo = join(base, "repo");
  await mkdir(repo);
  const git = (...args: string[]) =>
    execFileSync("git", ["-C", repo, "-c", "user.name=t", "-c", "user.email=t@e", ...args], {
      encoding: "utf8",
    });
  git("init", "-q", "-b", "main");
  await writeFile(join(repo, "hello.txt"), "hello from the repo\n");
  git("add", ".");
  git("commit", "-qm", "init");
  const sha = git("rev-parse", "HEAD").trim();

  const raw = [
    "engine: kubernetes",
    "image: alpine:3",
    "steps:",
    "  - name: show",
    "    command: |",
    "      cat hello.txt",
    '      echo "home=$HOME"',
    '      echo "key=$API_KEY"',
  ].join("\n");
  const trigger = {
    kind: "push" as const,
    repo: { knot: "knot.example", did: "did:plc:abc", repo: "repo", defaultBranch: "" },
    push: { ref: "refs/heads/main", oldSha: "0".repeat(40), newSha: sha },
  };
  const resolved = resolveWorkflow(
    { name: "ci.yml", engine: "kubernetes", raw, clone: { skip: false, depth: 1, submodules: false } },
    trigger,
    {
      pipeline: { knot: "knot.example", rkey: "3kabc" },
      secretKeys: ["API_KEY"],
      cloneUrl: pathToFileURL(repo).href,
      timeoutSeconds: 60,
    },
  );
  assert.ok(resolved.ok, resolved.ok ? "" : resolved.error);
  const plan = resolved.plan;

  const logDir = join(base, "logs");
  const log = await LogFile.open(logDir, plan.wid);
  const runs = join(base, "runs");
  const engine = new LocalEngine({ baseDir: runs });
  const statuses: string[] = [];
  await engine.start({
    plan,
    secrets: new Map([["API_KEY", "key-abc-123"]]),
    onStatus: (u) => statuses.push(u.status),
    log,
  });
  const outcome = await engine.wait(plan.wid);
  await engine.destroy(plan.wid);
  await log.close();

  assert.deepEqual(outcome, { status: "success", exitCode: 0, failedStep: null });
  assert.deepEqual(statuses, ["running", "success"]);
  const text = await readFile(join(logDir, `${plan.wid}.log`), "utf8");
  assert.ok(!text.includes("key-abc-123"));
  const lines = text
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as LogLine);
  const data = lines.filter((l) => l.kind === "data").map((l) => l.content);
  assert.ok(data.includes("hello from the repo"), data.join("\n"));
  assert.ok(data.includes("key=***"));
  assert.ok(data.some((d) => d.startsWith(`home=${runs}/`) && d.endsWith("/home")));
  const controls = lines.filter((l) => l.kind === "control");
  assert.deepEqual(
    controls.map((l) => [l.step_id, l.step_status, l.step_kind ?? 0]),
    [
      [0, "start", 0],
      [0, "end", 0],
      [1, "start", 1],
      [1, "end", 1],
    ],
  );
  assert.equal(controls[0]!.content, "Clone repository into workspace");
  assert.deepEqual(await readdir(runs), []);
  assert.deepEqual(findProcesses(`TANGLED_SHA=${sha}`), []);
});
