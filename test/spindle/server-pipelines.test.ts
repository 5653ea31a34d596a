/**
 * Pipeline processing end to end inside one process: a real server (SQLite file, local engine,
 * real runner children) fed through `acceptPipeline`, observed through real /events and /logs
 * WebSockets.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { isValidTid } from "@atproto/syntax";
import { workflowId } from "../../src/workflow/resolve.ts";
import {
  ALICE,
  addRepo,
  type Booted,
  bootServer,
  Collector,
  KNOT,
  pipelineRecord,
  statuses,
  waitFor,
  workflow,
} from "./server-kit.ts";

const NOW = new Date("2026-02-10T12:00:00.500Z");
const PIPE = (rkey: string) => `at://did:web:${KNOT}/sh.tangled.pipeline/${rkey}`;

function frame(rkey: string, wf: string, status: string, extra = ""): string {
  return `{"$type":"","createdAt":"2026-02-10T12:00:00Z"${extra},"pipeline":"${PIPE(rkey)}","status":"${status}","workflow":"${wf}"}`;
}

describe("spindle server: pipelines", () => {
  let b: Booted;
  before(async () => {
    b = await bootServer({ server: { now: () => NOW } });
    addRepo(b.server, ALICE, "loom");
  });
  after(() => b.stop());

  it("runs a pipeline: pending → running → success / failed with the real exit code, exact shapes", async () => {
    const events = new Collector(`${b.wsUrl}/events`);
    await events.opened;
    const rkey = "3lxyz2abcde22";
    await b.server.pipelines.acceptPipeline(
      KNOT,
      rkey,
      pipelineRecord([
        workflow("ok.yml", [{ name: "hi", command: "echo hello from loom" }]),
        workflow("bad.yml", [{ name: "boom", command: "echo about to fail; exit 3" }]),
      ]),
    );
    await events.until(
      (f) => statuses(f).filter((e) => ["success", "failed"].includes(String(e.status))).length === 2,
    );
    const byWf = (wf: string) =>
      events.frames.filter((f) => JSON.parse(f).event.workflow === wf).map((f) => JSON.parse(f));
    for (const env of [...byWf("ok.yml"), ...byWf("bad.yml")]) {
      assert.equal(env.nsid, "sh.tangled.pipeline.status");
      assert.ok(isValidTid(env.rkey), env.rkey);
      assert.deepEqual(Object.keys(env), ["event", "nsid", "rkey"]);
    }
    const exact = (wf: string) =>
      events.frames
        .filter((f) => JSON.parse(f).event.workflow === wf)
        .map((f) => {
          const env = JSON.parse(f);
          return f.replace(`"rkey":"${env.rkey}"`, `"rkey":"R"`);
        });
    const env = (ev: string) => `{"event":${ev},"nsid":"sh.tangled.pipeline.status","rkey":"R"}`;
    assert.deepEqual(exact("ok.yml"), [
      env(frame(rkey, "ok.yml", "pending")),
      env(frame(rkey, "ok.yml", "running")),
      env(frame(rkey, "ok.yml", "success")),
    ]);
    const bad = exact("bad.yml");
    assert.equal(bad.length, 3);
    assert.equal(bad[0], env(frame(rkey, "bad.yml", "pending")));
    assert.equal(bad[1], env(frame(rkey, "bad.yml", "running")));
    const final = JSON.parse(bad[2] as string).event;
    assert.equal(final.status, "failed");
    assert.equal(final.exitCode, 3);
    assert.equal(typeof final.error, "string");
    events.close();

    // /logs: the exact lines of the log file, then a normal close.
    const logs = new Collector(`${b.wsUrl}/logs/${KNOT}/${rkey}/ok.yml`);
    const closed = await logs.closed;
    assert.deepEqual(closed, { code: 1000, reason: "log stream complete" });
    const file = readFileSync(join(b.dir, "logs", `${workflowId(KNOT, rkey, "ok.yml")}.log`), "utf8");
    assert.deepEqual(logs.frames, file.trimEnd().split("\n"));
    assert.ok(logs.frames.some((f) => JSON.parse(f).content === "hello from loom"));
    assert.ok(logs.frames.every((f) => ["data", "control"].includes(JSON.parse(f).kind)));
  });

  it("never runs a (knot, rkey) twice: replays resolve without new events or runs", async () => {
    const marker = join(b.dir, "ran-once");
    const rec = pipelineRecord([workflow("once.yml", [{ name: "mark", command: `echo x >> ${marker}` }])]);
    const events = new Collector(`${b.wsUrl}/events`);
    await events.opened;
    await b.server.pipelines.acceptPipeline(KNOT, "3lxyz2dedupe2", rec);
    await b.server.pipelines.acceptPipeline(KNOT, "3lxyz2dedupe2", rec);
    await events.until((f) => statuses(f, "once.yml").some((e) => e.status === "success"));
    await b.server.pipelines.acceptPipeline(KNOT, "3lxyz2dedupe2", rec);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(
      statuses(events.frames, "once.yml").map((e) => e.status),
      ["pending", "running", "success"],
    );
    assert.equal(readFileSync(marker, "utf8"), "x\n");
    events.close();
  });

  it("unknown engine → failed with upstream's text and -1; other workflows still run", async () => {
    const events = new Collector(`${b.wsUrl}/events`);
    await events.opened;
    const rkey = "3lxyz2engine2";
    await b.server.pipelines.acceptPipeline(
      KNOT,
      rkey,
      pipelineRecord([
        workflow("docker.yml", [{ name: "x", command: "true" }], "docker"),
        workflow("fine.yml", [{ name: "x", command: "true" }]),
      ]),
    );
    await events.until((f) => statuses(f, "fine.yml").some((e) => e.status === "success"));
    const docker = events.frames.filter((f) => JSON.parse(f).event.workflow === "docker.yml");
    assert.equal(docker.length, 1);
    assert.equal(JSON.parse(docker[0] as string).event.error, 'unknown engine "docker"');
    assert.ok((docker[0] as string).includes(`"error":"unknown engine \\"docker\\"","exitCode":-1,`));
    // /logs of a failed workflow without a log file: the two synthetic lines, then close.
    const logs = new Collector(`${b.wsUrl}/logs/${KNOT}/${rkey}/docker.yml`);
    assert.equal((await logs.closed).code, 1000);
    assert.deepEqual(logs.frames, [
      '{"kind":"control","content":"","time":"0001-01-01T00:00:00Z","step_id":0,"step_kind":1}',
      '{"kind":"data","content":"unknown engine \\"docker\\"","time":"0001-01-01T00:00:00Z","step_id":0}',
    ]);
    events.close();
  });

  it("ignores bad input with a specific reason, records an attributable refused record as failed, and keeps serving", async () => {
    const events = new Collector(`${b.wsUrl}/events`);
    await events.opened;
    const ok = workflow("x.yml", [{ name: "x", command: "true" }]);
    const cases: [string, string, unknown][] = [
      ["not_an_object", "3lxyz2bad0001", "just a string"],
      ["not_an_object", "3lxyz2bad0002", null],
      ["missing_trigger", "3lxyz2bad0003", { workflows: [ok] }],
      ["invalid_trigger", "3lxyz2bad0004", { ...pipelineRecord([ok]), triggerMetadata: { kind: 7 } }],
      [
        "knot_mismatch",
        "3lxyz2bad0007",
        pipelineRecord([ok], { did: ALICE, repo: "loom", knot: "evil.test" }),
      ],
      ["unknown_repo", "3lxyz2bad0008", pipelineRecord([ok], { did: ALICE, repo: "other" })],
      ["invalid_rkey", "../../etc", pipelineRecord([ok])],
    ];
    // Attributable (the trigger names this spindle's repo on this knot) but not runnable: recorded
    // as a pipeline whose workflows failed with the reason, so the repo's owner sees why.
    const refused: [string, string, unknown, string, RegExp][] = [
      [
        "invalid_workflows",
        "3lxyz2bad0005",
        { ...pipelineRecord([ok]), workflows: "nope" },
        "pipeline",
        /workflows/,
      ],
      [
        "invalid_workflows",
        "3lxyz2bad0006",
        { ...pipelineRecord([ok]), workflows: [{ name: 5 }] },
        "pipeline",
        /workflows\.0\.name/,
      ],
      [
        "too_large",
        "3lxyz2bad0009",
        pipelineRecord([{ ...ok, raw: "a".repeat(10 * 1024 * 1024) }]),
        "x.yml",
        /larger than 4194304 bytes/,
      ],
    ];
    for (const [, rkey, rec] of refused) await b.server.pipelines.acceptPipeline(KNOT, rkey, rec);
    for (const [, rkey, rec] of cases) await b.server.pipelines.acceptPipeline(KNOT, rkey, rec);
    await b.server.pipelines.acceptPipeline("bad knot/", "3lxyz2bad0010", pipelineRecord([ok]));
    const metrics = await b.server.metrics.registry.getSingleMetricAsString("loom_pipelines_total");
    for (const reason of new Set(cases.map((c) => c[0]))) {
      assert.match(metrics, new RegExp(`result="ignored",reason="${reason}"`), reason);
    }
    assert.match(metrics, /reason="invalid_knot"/);
    for (const [reason, rkey, , name, detail] of refused) {
      assert.match(metrics, new RegExp(`result="refused",reason="${reason}"`), reason);
      const run = b.server.store.runByName(KNOT, rkey, name);
      assert.equal(run?.status, "failed", rkey);
      assert.match(run?.error ?? "", /^the pipeline record was refused: /);
      assert.match(run?.error ?? "", detail);
    }
    await events.until((f) => f.length >= refused.length);
    await new Promise((r) => setTimeout(r, 200));
    // Nothing of the ignored records; one `failed` event per refused record.
    assert.deepEqual(
      events.json.map((e) => [
        (e.event as { pipeline: string }).pipeline.split("/").pop(),
        (e.event as { status: string }).status,
      ]),
      refused.map((c) => [c[1], "failed"]),
    );
    const res = await fetch(`${b.url}/healthz`);
    assert.equal(res.status, 200);
    events.close();
  });

  it("odd but valid text (lone surrogates, NUL, <>&) is accepted and encoded without breaking the stream", async () => {
    const events = new Collector(`${b.wsUrl}/events`);
    await events.opened;
    const name = "we\ud800ird<&>.yml";
    await b.server.pipelines.acceptPipeline(
      KNOT,
      "3lxyz2weird02",
      pipelineRecord([
        { ...workflow(name, [{ name: "x", command: "true" }]), raw: "engine: kubernetes\u0000\n" },
      ]),
    );
    await events.until((f) => f.length >= 1);
    const first = events.frames[0] as string;
    assert.ok(first.includes("\\u003c\\u0026\\u003e"), first);
    assert.doesNotThrow(() => JSON.parse(first));
    const res = await fetch(`${b.url}/healthz`);
    assert.equal(res.status, 200);
    events.close();
  });

  it("a workflow whose YAML does not resolve fails alone with the parse error", async () => {
    const events = new Collector(`${b.wsUrl}/events`);
    await events.opened;
    await b.server.pipelines.acceptPipeline(
      KNOT,
      "3lxyz2yaml002",
      pipelineRecord([{ ...workflow("y.yml", []), raw: "engine: kubernetes\nsteps: [\n" }]),
    );
    await events.until((f) => statuses(f, "y.yml").length === 1);
    const [ev] = statuses(events.frames, "y.yml");
    assert.equal(ev?.status, "failed");
    assert.match(String(ev?.error), /^y\.yml:\d+:\d+: /);
    events.close();
  });

  it("/events backfills from a cursor in order, and without one sends only new events", async () => {
    const all = new Collector(`${b.wsUrl}/events?cursor=1`);
    await all.opened;
    await waitFor(() => all.frames.length > 0, 5000, "backfill");
    const total = b.server.db.prepare("SELECT count(*) AS n FROM events").get() as { n: number };
    await all.until((f) => f.length === Number(total.n));
    const created = b.server.db
      .prepare("SELECT rkey FROM events ORDER BY created")
      .all()
      .map((r) => String(r.rkey));
    assert.deepEqual(
      all.frames.map((f) => JSON.parse(f).rkey),
      created,
    );
    for (const bad of ["", "0", "abc", "99999999999999999999999"]) {
      const live = new Collector(`${b.wsUrl}/events?cursor=${bad}`);
      await live.opened;
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(live.frames, [], `cursor=${bad}`);
      live.close();
    }
    all.close();
  });

  it("/logs of an unknown workflow closes at once; plain GETs are refused", async () => {
    const logs = new Collector(`${b.wsUrl}/logs/${KNOT}/3lxyz2nothing/none.yml`);
    assert.deepEqual(await logs.closed, { code: 1000, reason: "log stream complete" });
    assert.equal((await fetch(`${b.url}/events`)).status, 400);
    assert.equal((await fetch(`${b.url}/nope`)).status, 404);
    const root = await fetch(`${b.url}/`);
    assert.match(await root.text(), /This is a spindle server/);
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    assert.match(metrics, /loom_workflow_status_total\{status="success"\}/);
    assert.equal((await fetch(`${b.url}/readyz`)).status, 200);
  });
});
