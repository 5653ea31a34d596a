import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { getDefaultBranch } from "../../src/net/knot/default-branch.ts";
import { KnotError } from "../../src/net/knot/errors.ts";
import { KnotGitServer } from "../support/knot-git-server.ts";

describe("getDefaultBranch against the knot stand-in", () => {
  let knot: KnotGitServer;
  let tip: string;

  before(async () => {
    knot = await KnotGitServer.start();
    const shas = await knot.createRepo("did:plc:db", { a: "1" }, { a: "2" });
    tip = shas[1] ?? "";
  });
  after(async () => {
    await knot.stop();
  });

  it("returns the branch and tip, validated against the lexicon", async () => {
    const got = await getDefaultBranch(knot.host, "did:plc:db", { dev: true });
    assert.equal(got.name, "main");
    assert.equal(got.hash, tip);
    assert.equal(got.shortHash, tip.slice(0, 7));
    assert.match(got.when, /^\d{4}-\d\d-\d\dT/);
  });

  it("says RepoNotFound for an unknown repo", async () => {
    await assert.rejects(
      getDefaultBranch(knot.host, "did:plc:nope", { dev: true }),
      (e: unknown) => e instanceof KnotError && e.code === "RepoNotFound",
    );
  });

  it("refuses a loopback knot outside dev mode, and junk hosts", async () => {
    await assert.rejects(
      getDefaultBranch(knot.host, "did:plc:db"),
      (e: unknown) => e instanceof KnotError && e.code === "InvalidInput" && /non-public/.test(e.message),
    );
    for (const host of ["evil.com/x?", "a@b", "x y"]) {
      await assert.rejects(
        getDefaultBranch(host, "did:plc:db", { dev: true }),
        (e: unknown) => e instanceof KnotError && e.code === "InvalidInput",
        host,
      );
    }
  });

  it("says KnotUnreachable when the knot is gone", async () => {
    const gone = await KnotGitServer.start();
    const host = gone.host;
    await gone.stop();
    await assert.rejects(
      getDefaultBranch(host, "did:plc:db", { dev: true }),
      (e: unknown) => e instanceof KnotError && e.code === "KnotUnreachable",
    );
  });
});
