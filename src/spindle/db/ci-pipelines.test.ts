import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeTid, LexiconValidationError, type QueryPipelinesParams } from "../../protocol/index.ts";
import { ValidatedPipelines } from "../http/validated.ts";
import { CiPipelines } from "./ci-pipelines.ts";
import { type DatabaseSync, openDatabase, Repos } from "./index.ts";

const REPO = "did:plc:querytestrepo0000000000";
const ALICE = "did:plc:querytestalice";
const sha = (i: number) => i.toString(16).padStart(40, "0");
const BASE = 1_780_000_000_000;

class Store {
  readonly db: DatabaseSync = openDatabase(":memory:");
  #n = 0;
  readonly #insP = this.db.prepare(
    "INSERT INTO pipelines (knot, rkey, record, scope, state, created_at) VALUES ('k', ?, ?, 's', 'done', ?)",
  );
  readonly #insR = this.db.prepare(
    "INSERT INTO workflow_runs (wid, pipeline_id, name, plan, status, exit_code, error, updated_at) VALUES (?, ?, ?, NULL, ?, NULL, NULL, ?)",
  );
  readonly #setStatus = this.db.prepare(
    "UPDATE workflow_runs SET status = ?, error = ?, updated_at = ? WHERE wid = ?",
  );

  /** A pipeline with the given workflows (all pending); returns its id. */
  pipeline(opts: { kind?: "push" | "manual"; workflows?: string[]; repo?: string; repoDid?: string } = {}): {
    id: number;
    tid: string;
    i: number;
  } {
    const i = this.#n++;
    const kind = opts.kind ?? "push";
    const trigger =
      kind === "push"
        ? { kind, push: { ref: "refs/heads/main", oldSha: sha(i), newSha: sha(i + 1) } }
        : { kind, manual: { sha: sha(i + 1) } };
    const record = {
      $type: "",
      triggerMetadata: {
        ...trigger,
        repo: {
          knot: "k",
          did: ALICE,
          repo: opts.repo ?? "loom",
          ...(opts.repoDid !== "" && { repoDid: opts.repoDid ?? REPO }),
          defaultBranch: "main",
        },
      },
      workflows: [],
    };
    const tid = encodeTid(BigInt(BASE + i * 1000) * 1000n, 3);
    const id = Number(this.#insP.run(tid, JSON.stringify(record), BASE + i * 1000).lastInsertRowid);
    for (const name of opts.workflows ?? ["build.yml", "test.yml"]) this.run(id, name);
    return { id, tid, i };
  }

  run(id: number, name: string): void {
    this.#insR.run(`w-${id}-${name}`, id, name, "pending", BASE);
  }

  status(id: number, name: string, status: string, at: number, error: string | null = null): void {
    this.#setStatus.run(status, error, at, `w-${id}-${name}`);
  }
}

const page = (q: CiPipelines, extra: Omit<QueryPipelinesParams, "repo"> = {}) =>
  q.query({ repo: REPO, limit: 30, ...extra });

describe("CiPipelines: remembered pipelines", () => {
  it("a remembered page reflects a status change, rebuilding only the changed pipeline", () => {
    const s = new Store();
    const a = s.pipeline();
    const b = s.pipeline();
    const q = new CiPipelines(s.db);
    const first = page(q);
    assert.equal(q.builds, 2);
    assert.deepEqual(
      first.pipelines.map((p) => p.workflows.map((w) => w.status)),
      [
        ["pending", "pending"],
        ["pending", "pending"],
      ],
    );
    const again = page(q);
    assert.equal(q.builds, 2, "nothing changed: nothing rebuilt");
    assert.equal(again.pipelines[0], first.pipelines[0]);

    s.status(a.id, "build.yml", "running", BASE + 5000);
    const running = page(q);
    assert.equal(q.builds, 3);
    assert.equal(running.pipelines[0], first.pipelines[0], "b (newest) is unchanged");
    const wa = running.pipelines[1]?.workflows[0];
    assert.equal(wa?.status, "running");
    assert.equal(wa?.startedAt, new Date(BASE + 5000).toISOString().replace(/\.\d+Z$/, "Z"));

    s.status(a.id, "build.yml", "failed", BASE + 9000, "exit 1");
    const failed = page(q).pipelines[1]?.workflows[0];
    assert.equal(failed?.status, "failed");
    assert.equal(failed?.error, "exit 1");
    assert.ok(failed?.finishedAt);
    // get() shares the remembered pipelines.
    assert.equal(q.get(a.tid)?.workflows[0]?.status, "failed");
    assert.equal(q.get(b.tid), page(q).pipelines[0]);
  });

  it("new pipelines and new runs show up; totals and cursors follow", () => {
    const s = new Store();
    for (let i = 0; i < 3; i++) s.pipeline();
    const q = new CiPipelines(s.db);
    assert.equal(page(q, { limit: 2 }).total, 3);
    const c = s.pipeline({ kind: "manual" });
    const p = page(q, { limit: 2 });
    assert.equal(p.total, 4);
    assert.equal(p.pipelines[0]?.id, c.tid);
    assert.equal(p.pipelines[0]?.trigger.$type, "sh.tangled.ci.trigger#manual");
    s.run(c.id, "lint.yml");
    assert.deepEqual(
      page(q, { limit: 2 }).pipelines[0]?.workflows.map((w) => w.name),
      ["build.yml", "test.yml", "lint.yml"],
    );
    assert.deepEqual(
      page(q, { kinds: ["manual"] }).pipelines.map((x) => x.id),
      [c.tid],
    );
  });

  it("a pipeline whose repo gains its DID (migration 8) is built again with that DID", () => {
    const s = new Store();
    const LATER = "did:plc:querytestlater00000000";
    s.db.prepare("INSERT INTO repos (knot, owner, name) VALUES ('k', ?, 'old')").run(ALICE);
    const old = s.pipeline({ repo: "old", repoDid: "" });
    const q = new CiPipelines(s.db);
    assert.equal(q.get(old.tid)?.repo, "", "no repo DID yet");
    new Repos(s.db).upsert({ knot: "k", owner: ALICE, name: "old", repoDid: LATER });
    const p = q.query({ repo: LATER, limit: 30 });
    assert.deepEqual(
      p.pipelines.map((x) => [x.id, x.repo]),
      [[old.tid, LATER]],
    );
    assert.equal(q.get(old.tid)?.repo, LATER);
  });

  it("does not remember what it read inside a transaction that is rolled back", () => {
    const s = new Store();
    const a = s.pipeline();
    const q = new CiPipelines(s.db);
    page(q);
    s.db.exec("BEGIN");
    s.status(a.id, "build.yml", "running", BASE + 5000);
    assert.equal(page(q).pipelines[0]?.workflows[0]?.status, "running");
    s.db.exec("ROLLBACK");
    // The rolled-back runs_seq is handed out again by the next change.
    s.status(a.id, "test.yml", "running", BASE + 6000);
    assert.deepEqual(
      page(q).pipelines[0]?.workflows.map((w) => w.status),
      ["pending", "running"],
    );
  });

  it("answers exactly as a fresh query after any mix of changes, for every page shape", () => {
    const s = new Store();
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const made: Array<{ id: number; i: number }> = [];
    for (let i = 0; i < 40; i++) made.push(s.pipeline({ kind: i % 3 === 0 ? "manual" : "push" }));
    const warm = new CiPipelines(s.db, { maxBuilt: 25 });
    const statuses = ["running", "success", "failed", "cancelled", "timeout"];
    const shapes = (
      cursor: string | undefined,
    ): Array<Omit<QueryPipelinesParams, "repo"> & { limit: number }> => [
      { limit: 250 },
      { limit: 7 },
      { limit: 5, kinds: ["manual"] },
      { limit: 50, commits: [sha(3), sha(10), sha(22), sha(40)] },
      ...(cursor === undefined ? [] : [{ limit: 9, cursor }]),
    ];
    for (let round = 0; round < 30; round++) {
      for (let k = 0; k < 4; k++) {
        const target = made[rnd(made.length)];
        if (!target) continue;
        const change = rnd(10);
        if (change === 0) made.push(s.pipeline({ kind: rnd(2) === 0 ? "manual" : "push" }));
        else if (change === 1) s.run(target.id, `extra-${round}-${k}.yml`);
        else {
          const name = rnd(2) === 0 ? "build.yml" : "test.yml";
          const st = statuses[rnd(statuses.length)] as string;
          s.status(target.id, name, st, BASE + round * 100 + k, st === "failed" ? `e${round}` : null);
        }
      }
      const cursor = warm.query({ repo: REPO, limit: 11 }).cursor;
      for (const shape of shapes(cursor)) {
        const fresh = new CiPipelines(s.db).query({ repo: REPO, ...shape });
        assert.deepEqual(
          warm.query({ repo: REPO, ...shape }),
          fresh,
          `round ${round} ${JSON.stringify(shape)}`,
        );
      }
    }
  });

  it("runs_seq (migration 9) takes a new, never reused value on every change of a pipeline's runs", () => {
    const s = new Store();
    const seq = (id: number) =>
      Number(
        (
          s.db.prepare("SELECT runs_seq FROM ci_pipelines WHERE pipeline_id = ?").get(id) as {
            runs_seq: number;
          }
        ).runs_seq,
      );
    const a = s.pipeline({ workflows: [] });
    const seen = [seq(a.id)];
    s.run(a.id, "x.yml");
    seen.push(seq(a.id));
    s.status(a.id, "x.yml", "running", BASE + 1);
    seen.push(seq(a.id));
    const b = s.pipeline({ workflows: ["y.yml"] });
    seen.push(seq(b.id));
    s.db.prepare("DELETE FROM workflow_runs WHERE pipeline_id = ?").run(a.id);
    seen.push(seq(a.id));
    assert.equal(new Set(seen).size, seen.length, `all different: ${seen.join(", ")}`);
    assert.deepEqual(
      [...seen].sort((x, y) => x - y),
      seen,
      "increasing",
    );
  });
});

describe("ValidatedPipelines", () => {
  it("validates a frozen pipeline once and answers it by identity afterwards", () => {
    const s = new Store();
    s.pipeline();
    const q = new CiPipelines(s.db);
    const v = new ValidatedPipelines();
    const [p] = page(q).pipelines;
    assert.ok(p && Object.isFrozen(p) && Object.isFrozen(p.workflows[0]));
    const text = v.json(p);
    assert.equal(v.validations, 1);
    assert.deepEqual(JSON.parse(text), p);
    assert.equal(v.json(p), text);
    assert.equal(v.validations, 1);
  });

  it("validates a changed or unfrozen object again and refuses one that fails the lexicon", () => {
    const s = new Store();
    s.pipeline();
    const v = new ValidatedPipelines();
    const [frozen] = page(new CiPipelines(s.db)).pipelines;
    assert.ok(frozen);
    const copy = structuredClone(frozen);
    v.json(copy);
    assert.equal(v.validations, 1);
    v.json(copy);
    assert.equal(v.validations, 1, "same JSON text: remembered by text");
    (copy.workflows[0] as { status: string }).status = "bogus";
    assert.throws(() => v.json(copy), LexiconValidationError);
    const badFrozen = Object.freeze({ ...frozen, createdAt: "yesterday" });
    assert.throws(() => v.json(badFrozen), LexiconValidationError);
    assert.throws(() => v.json(badFrozen), LexiconValidationError, "a failure is never remembered");
  });
});
