/**
 * Generation 2 figures (targets printed, never asserted):
 *
 * 1. queryPipelines over HTTP with 10,000 stored pipelines of one repo (2 workflows each):
 *    p50/p99 of the appview's calls — the pipelines page (limit 30), a kinds filter, a commit
 *    list of 20 SHAs, a deep cursor page and the lexicon's largest page (limit 250). Output
 *    validation included. Target: p99 < 20 ms. Built pipelines are remembered until their runs
 *    change (spindle/gen2/query.ts), so two more lines show what a change costs: the first page
 *    with 3 of its pipelines changing status before every call, and limit 250 with every
 *    pipeline of the page changed (as on the first view after a restart; 30 calls, no target).
 * 2. refUpdate → pending visible: a push on the Gen2 knot stand-in (real git smart HTTP, real
 *    knot consumer), timed from `publish` to the first queryPipelines answer that lists the
 *    pipeline (polled every 2 ms); the workflow fetch inside that path is timed on its own
 *    (cold cache for the first push, then incremental fetches).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import {
  type FetchedWorkflows,
  type FetchRequest,
  WorkflowFetcher,
} from "../src/net/knot/workflow-fetcher.ts";
import { encodeTid } from "../src/protocol/tid.ts";
import { KnotCursors, Repos } from "../src/spindle/db/index.ts";
import { SpindleServer } from "../src/spindle/server.ts";
import { KnotGitServer } from "../test/support/knot-git-server.ts";
import { benchConfig } from "./bench-server.ts";
import { HoldingEngine } from "./holding-engine.ts";

const ALICE = "did:plc:benchalice";
const REPO = "did:plc:benchrepo000000000000";

/** Times every fetch the server makes. */
class TimedFetcher extends WorkflowFetcher {
  readonly times: number[] = [];
  override async fetchWorkflows(req: FetchRequest): Promise<FetchedWorkflows> {
    const t0 = performance.now();
    try {
      return await super.fetchWorkflows(req);
    } finally {
      this.times.push(performance.now() - t0);
    }
  }
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};
const ms = (x: number) => `${x.toFixed(2)} ms`;
const sha = (i: number) => i.toString(16).padStart(40, "0");

async function queryLatency(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "loom-bench-gen2-"));
  const server = await SpindleServer.create({
    config: benchConfig(dir),
    logger: pino({ level: "silent" }),
    engine: new HoldingEngine(),
    intake: false,
  });
  try {
    const N = 10_000;
    const db = server.db;
    const insP = db.prepare(
      "INSERT INTO pipelines (knot, rkey, record, scope, state, created_at) VALUES (?, ?, ?, ?, 'done', ?)",
    );
    const insR = db.prepare(
      "INSERT INTO workflow_runs (wid, pipeline_id, name, plan, status, exit_code, error, updated_at) VALUES (?, ?, ?, NULL, ?, NULL, NULL, ?)",
    );
    const t0 = performance.now();
    db.exec("BEGIN");
    const base = Date.now() - N * 1000;
    for (let i = 0; i < N; i++) {
      const kind = i % 10 === 0 ? "manual" : "push";
      const trigger =
        kind === "push"
          ? { kind, push: { ref: "refs/heads/main", oldSha: sha(i), newSha: sha(i + 1) } }
          : { kind, manual: { sha: sha(i + 1) } };
      const record = {
        $type: "",
        triggerMetadata: {
          ...trigger,
          repo: { knot: "knot.bench", did: ALICE, repo: "loom", repoDid: REPO, defaultBranch: "main" },
        },
        workflows: [],
      };
      const rkey = encodeTid(BigInt(base + i * 1000) * 1000n, 7);
      const id = Number(
        insP.run("spindle.bench", rkey, JSON.stringify(record), REPO, base + i * 1000).lastInsertRowid,
      );
      insR.run(`w-${i}-a`, id, "build.yml", "success", base + i * 1000 + 500);
      insR.run(`w-${i}-b`, id, "test.yml", i % 7 === 0 ? "failed" : "success", base + i * 1000 + 700);
    }
    db.exec("COMMIT");
    console.log(`  stored ${N} pipelines (2 workflows each) in ${ms(performance.now() - t0)}`);
    const url = await server.start();
    const q = `${url}/xrpc/sh.tangled.ci.queryPipelines?repo=${REPO}`;
    const commits = Array.from({ length: 20 }, (_, i) => `commits=${sha(5000 + i * 37)}`).join("&");
    const page = (await (await fetch(`${q}&limit=30`)).json()) as { cursor: string; total: number };
    // A cursor about 200 pages deep.
    let deep = page.cursor;
    for (let i = 0; i < 5; i++) {
      const r = (await (await fetch(`${q}&limit=250&cursor=${deep}`)).json()) as { cursor: string };
      deep = r.cursor;
    }
    const cases: Array<[string, string]> = [
      ["pipelines page (limit=30)", `${q}&limit=30`],
      ["kinds=manual limit=30", `${q}&limit=30&kinds=manual`],
      ["20 commits", `${q}&${commits}`],
      ["deep cursor page (limit=30)", `${q}&limit=30&cursor=${deep}`],
      ["limit=250 (lexicon maximum)", `${q}&limit=250`],
    ];
    const time = async (name: string, u: string, n: number, before?: (i: number) => void) => {
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        before?.(i);
        const t = performance.now();
        const res = await fetch(u);
        await res.arrayBuffer();
        times.push(performance.now() - t);
        if (res.status !== 200) throw new Error(`${name}: HTTP ${res.status}`);
      }
      return times;
    };
    for (const [name, u] of cases) {
      for (let i = 0; i < 20; i++) await (await fetch(u)).arrayBuffer();
      const times = await time(name, u, 300);
      console.log(
        `  queryPipelines ${name.padEnd(28)} p50 ${ms(pct(times, 50))}  p99 ${ms(pct(times, 99))}  (target p99 < 20 ms)`,
      );
    }
    // Status changes as the engine writes them (one UPDATE per workflow run).
    const setStatus = db.prepare("UPDATE workflow_runs SET status = ?, updated_at = ? WHERE wid = ?");
    const churn = await time("churn", `${q}&limit=30`, 300, (i) => {
      for (let k = 0; k < 3; k++) {
        const n = N - 1 - ((i * 3 + k) % 30);
        setStatus.run(i % 2 === 0 ? "running" : "success", base + n * 1000 + 900 + i, `w-${n}-a`);
      }
    });
    console.log(
      `  queryPipelines ${"limit=30, 3 changed per call".padEnd(28)} p50 ${ms(pct(churn, 50))}  p99 ${ms(pct(churn, 99))}  (target p99 < 20 ms)`,
    );
    const touchAll = db.prepare(
      "UPDATE workflow_runs SET updated_at = updated_at + 1 WHERE pipeline_id IN (SELECT pipeline_id FROM ci_pipelines ORDER BY created_ns DESC LIMIT 250)",
    );
    const cold = await time("cold", `${q}&limit=250`, 30, () => touchAll.run());
    console.log(
      `  queryPipelines ${"limit=250, all 250 changed".padEnd(28)} p50 ${ms(pct(cold, 50))}  max ${ms(Math.max(...cold))}  (every pipeline built and validated again)`,
    );
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function refUpdateToPending(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "loom-bench-gen2-"));
  const knot = await KnotGitServer.start();
  const wf =
    "when:\n  - event: [push]\n    branch: [main]\nengine: kubernetes\nimage: alpine:3\nsteps:\n  - name: t\n    command: 'true'\n";
  const [first] = await knot.createRepo(REPO, { ".tangled/workflows/ci.yml": wf, "README.md": "x\n" });
  const cfg = benchConfig(dir);
  const fetcher = new TimedFetcher({ cacheDir: join(dir, "repos", "gen2"), guard: { allowPrivate: true } });
  const server = await SpindleServer.create({
    config: cfg,
    logger: pino({ level: process.env.GEN2_BENCH_LOG ?? "silent" }),
    engine: new HoldingEngine(),
    intake: { knots: { backoff: { baseMs: 20, capMs: 200, minMs: 10 } } },
    builds: { fetcher, fetchRetryDelaysMs: [] },
  });
  try {
    new Repos(server.db).upsert({ knot: knot.host, owner: ALICE, rkey: "3lrepo0000001", repoDid: REPO });
    new KnotCursors(server.db).set(knot.host, "0");
    const url = await server.start();
    server.intake?.knots.addKnot(knot.host);
    const q = `${url}/xrpc/sh.tangled.ci.queryPipelines?repo=${REPO}&limit=1`;
    const e2e: number[] = [];
    let prev = first as string;
    for (let i = 0; i < 15; i++) {
      const next = await knot.pushCommit(REPO, { "README.md": `push ${i}\n` });
      const t0 = performance.now();
      knot.publish("sh.tangled.git.refUpdate", {
        $type: "",
        committerDid: ALICE,
        changedFiles: ["README.md"],
        meta: { isDefaultRef: true },
        newSha: next,
        oldSha: prev,
        ownerDid: ALICE,
        ref: "refs/heads/main",
        repo: REPO,
      });
      for (;;) {
        const r = (await (await fetch(q)).json()) as { pipelines: Array<{ commit: string }> };
        if (r.pipelines[0]?.commit === next) break;
        await new Promise((res) => setTimeout(res, 2));
      }
      e2e.push(performance.now() - t0);
      prev = next;
    }
    const [cold, ...warm] = fetcher.times;
    const [coldE2e, ...warmE2e] = e2e;
    console.log(
      `  refUpdate → pending in queryPipelines: first push ${ms(coldE2e ?? Number.NaN)} (git fetch ${ms(cold ?? Number.NaN)}, cold cache)`,
    );
    console.log(
      `  refUpdate → pending, next ${warmE2e.length} pushes: p50 ${ms(pct(warmE2e, 50))}  max ${ms(Math.max(...warmE2e))}; git fetch alone p50 ${ms(pct(warm, 50))}  max ${ms(Math.max(...warm))}`,
    );
    console.log(
      `  → spindle-side work (e2e minus fetch, p50): ${ms(pct(warmE2e, 50) - pct(warm, 50))} incl. getDefaultBranch, compile, store, 2 ms polling`,
    );
  } finally {
    await server.stop();
    await knot.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function main(): Promise<void> {
  console.log(`  (${cpus().length} CPUs; server, knot stand-in and client in one process)`);
  if (process.env.GEN2_BENCH_SKIP_QUERY !== "1") await queryLatency();
  await refUpdateToPending();
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
