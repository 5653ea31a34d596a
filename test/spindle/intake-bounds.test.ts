/**
 * Work per workflow is bounded (issue 12): a workflow with more than 1,000 steps fails at
 * admission with the count in its error; a file of 50,000 YAML documents is read as its first
 * document (the rest is not parsed) and runs. The real server: SQLite, local engine.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { MAX_STEPS } from "../../src/spindle/pipelines/admission.ts";
import {
  ALICE,
  addRepo,
  type Booted,
  bootServer,
  KNOT,
  pipelineRecord,
  waitFor,
  workflow,
} from "./server-kit.ts";

describe("bounds on one workflow", () => {
  let b: Booted;
  before(async () => {
    b = await bootServer();
    addRepo(b.server, ALICE, "loom");
  });
  after(async () => {
    await b?.stop();
  });

  it(`fails a workflow of more than ${MAX_STEPS} steps with a clear error; its sibling runs`, async () => {
    const many = Array.from({ length: MAX_STEPS + 1 }, (_, i) => ({ name: `s${i}`, command: "true" }));
    await b.server.pipelines.acceptPipeline(
      KNOT,
      "3lbounds00001",
      pipelineRecord([workflow("many.yml", many), workflow("few.yml", [{ name: "a", command: "true" }])]),
    );
    const run = b.server.store.runByName(KNOT, "3lbounds00001", "many.yml");
    assert.equal(run?.status, "failed");
    assert.equal(run?.error, `the workflow has ${MAX_STEPS + 1} steps; the limit is ${MAX_STEPS}`);
    assert.notEqual(b.server.store.runByName(KNOT, "3lbounds00001", "few.yml")?.status, "failed");
  });

  it("reads a 50,000-document workflow file as its first document", async () => {
    const wf = workflow("docs.yml", [{ name: "first", command: "true" }]);
    // 50,000 documents in 450 KB (as in the issue); the last one would change the steps.
    const raw = `${wf.raw}${"---\na: 1\n".repeat(49_999)}---\nsteps: [{ name: x, command: "false" }]\n`;
    await b.server.pipelines.acceptPipeline(KNOT, "3lbounds00002", pipelineRecord([{ ...wf, raw }]));
    await waitFor(
      () => b.server.store.runByName(KNOT, "3lbounds00002", "docs.yml")?.status === "success",
      60_000,
      "the workflow to succeed",
    );
    const plan = b.server.store.runByName(KNOT, "3lbounds00002", "docs.yml")?.plan;
    assert.deepEqual(
      plan?.steps.filter((s) => s.kind === "user").map((s) => s.command),
      ["true"],
    );
  });
});
