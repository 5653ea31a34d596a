/**
 * A flood of knot envelopes does not stall the server and loses nothing (issue 12): the real
 * server (SQLite, knot consumer) follows a knot stand-in that emits 20,000 pipelines as fast as
 * it can; `/healthz` is asked while the flood is under way and must answer (a generous deadline,
 * no timing assertion), and every pipeline is stored exactly once.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { openDatabase, Repos } from "../../src/spindle/db/index.ts";
import { KnotStandIn } from "../support/knot-standin.ts";
import { ALICE, bootServer, pipelineRecord, waitFor, workflow } from "./server-kit.ts";

const N = 20_000;

describe("a 20,000-envelope flood from one knot", () => {
  it("leaves /healthz answering mid-flood and stores every pipeline once", async () => {
    const knot = await KnotStandIn.start({ gen: 2 });
    const dir = mkdtempSync(join(tmpdir(), "loom-flood-"));
    const db = openDatabase(join(dir, "spindle.db"));
    new Repos(db).upsert({ knot: knot.host, owner: ALICE, name: "loom", rkey: "3lrepo0000001" });
    db.close();
    const b = await bootServer({
      dir,
      server: { intake: { knots: { backoff: { baseMs: 20, capMs: 100, minMs: 10 } } } },
    });
    let nudge: NodeJS.Timeout | undefined;
    try {
      await knot.waitForConnections(1);
      const count = b.server.db.prepare("SELECT count(*) AS n, count(DISTINCT rkey) AS d FROM pipelines");
      const stored = () => count.get() as { n: number; d: number };
      // An engine no workflow names: each pipeline is stored with its workflow failed at
      // admission, so the test measures intake, not execution.
      const rec = pipelineRecord([workflow("w.yml", [{ name: "w", command: "true" }], "none")], {
        did: ALICE,
        repo: "loom",
        knot: knot.host,
      });
      const emitting = (async () => {
        for (let i = 0; i < N; i++) {
          knot.emitPipeline(`3lflood${i.toString(36).padStart(6, "0")}`, rec);
          if (i % 500 === 499) await new Promise((r) => setImmediate(r));
        }
      })();
      await waitFor(() => stored().n > 0, 60_000, "the flood to start");
      // Mid-flood: /healthz must answer at all (the deadline is generous, not a target).
      const before = stored().n;
      const res = await fetch(`${b.url}/healthz`, { signal: AbortSignal.timeout(60_000) });
      assert.equal(res.status, 200);
      const after = stored().n;
      assert.ok(after < N, `/healthz answered only after the flood (${before} → ${after} stored)`);
      await emitting;
      // The stand-in sends a backlog one batch per new row (after a reconnect): keep it moving.
      nudge = setInterval(() => knot.emit("sh.tangled.knot.memberUpdate", "3lnudge", {}), 50);
      await waitFor(() => stored().n >= N, 600_000, "all pipelines stored");
      assert.deepEqual({ ...stored() }, { n: N, d: N });
    } finally {
      clearInterval(nudge);
      await b.stop();
      await knot.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
