import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseCollaboratorUpdate, parseRefUpdate } from "../protocol/ref-update.ts";
import { WireError } from "../protocol/zod-util.ts";
import { decidePush, type KnownRepo } from "./push.ts";

const OLD = "1".repeat(40);
const NEW = "2".repeat(40);
const ZERO = "0".repeat(40);

// The shape gen2 §2.4 shows the knot emitting, `$type: ""` included.
const wire = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  $type: "",
  changedFiles: ["src/a.ts", ".tangled/workflows/ci.yml"],
  committerDid: "did:plc:pusher",
  meta: {
    commitCount: { byEmail: [{ count: 2, email: "a@b" }] },
    isDefaultRef: true,
    langBreakdown: { inputs: [{ lang: "Go", size: 1234 }] },
  },
  newSha: NEW,
  oldSha: OLD,
  ownerDid: "did:plc:owner",
  pushOptions: [],
  ref: "refs/heads/main",
  repo: "did:plc:repo",
  ...over,
});

const repo: KnownRepo = {
  knot: "knot.example.com",
  ownerDid: "did:plc:owner",
  repoDid: "did:plc:repo",
  rkey: "3kabc",
  defaultBranch: "main",
};

describe("parseRefUpdate", () => {
  it("accepts what the knot emits, keeping unknown keys", () => {
    const ev = parseRefUpdate(wire({ extra: 1 }));
    assert.equal(ev.repo, "did:plc:repo");
    assert.deepEqual(ev.changedFiles, ["src/a.ts", ".tangled/workflows/ci.yml"]);
    assert.equal(ev.meta?.isDefaultRef, true);
    assert.equal((ev as Record<string, unknown>).extra, 1);
  });

  it("accepts a deletion (meta null) and omitted optional lists", () => {
    const ev = parseRefUpdate(
      wire({ newSha: ZERO, meta: null, changedFiles: undefined, pushOptions: undefined }),
    );
    assert.equal(ev.meta, null);
    assert.equal(ev.changedFiles, undefined);
  });

  it("names every bad field", () => {
    assert.throws(
      () => parseRefUpdate(wire({ newSha: "xyz", repo: "owner/name", committerDid: 3, ref: "" })),
      (err: unknown) => {
        assert.ok(err instanceof WireError);
        for (const field of ["newSha", "repo", "committerDid", "ref"]) {
          assert.match(err.message, new RegExp(`sh\\.tangled\\.git\\.refUpdate\\.${field}:`));
        }
        return true;
      },
    );
    assert.throws(() => parseRefUpdate(wire({ meta: undefined })), /meta/);
    assert.throws(() => parseRefUpdate(wire({ pushOptions: Array(51).fill("x") })), /pushOptions/);
    assert.throws(() => parseRefUpdate(wire({ $type: "sh.tangled.pipeline" })), /\$type/);
  });
});

describe("decidePush", () => {
  it("builds a Gen2 push trigger with the repo DID, owner, rkey and default branch", () => {
    const d = decidePush(parseRefUpdate(wire()), repo);
    assert.deepEqual(d, {
      build: true,
      sha: NEW,
      changedFiles: ["src/a.ts", ".tangled/workflows/ci.yml"],
      trigger: {
        kind: "push",
        push: { ref: "refs/heads/main", oldSha: OLD, newSha: NEW },
        repo: {
          knot: "knot.example.com",
          did: "did:plc:owner",
          repo: "3kabc",
          repoDid: "did:plc:repo",
          defaultBranch: "main",
        },
      },
    });
  });

  it("drops skip-ci and ci-skip pushes, but not the verbose options", () => {
    assert.deepEqual(decidePush(parseRefUpdate(wire({ pushOptions: ["skip-ci"] })), repo), {
      build: false,
      reason: "skip-ci",
    });
    assert.deepEqual(decidePush(parseRefUpdate(wire({ pushOptions: ["verbose-ci", "ci-skip"] })), repo), {
      build: false,
      reason: "skip-ci",
    });
    assert.equal(
      decidePush(parseRefUpdate(wire({ pushOptions: ["ci-verbose", "skip-ci=1"] })), repo).build,
      true,
    );
  });

  it("ignores deletions", () => {
    const d = decidePush(parseRefUpdate(wire({ newSha: ZERO, meta: null, changedFiles: undefined })), repo);
    assert.deepEqual(d, { build: false, reason: "deletion" });
  });

  it("refuses an event for another repo", () => {
    assert.deepEqual(decidePush(parseRefUpdate(wire({ repo: "did:plc:other" })), repo), {
      build: false,
      reason: "repo mismatch",
    });
  });

  it("leaves changedFiles unknown when the knot omitted it", () => {
    const d = decidePush(parseRefUpdate(wire({ changedFiles: undefined, oldSha: ZERO })), repo);
    assert.equal(d.build && d.changedFiles, undefined);
  });
});

describe("parseCollaboratorUpdate", () => {
  it("accepts add and remove", () => {
    assert.deepEqual(parseCollaboratorUpdate({ op: "add", subject: "did:plc:bob", repo: "did:plc:repo" }), {
      op: "add",
      subject: "did:plc:bob",
      repo: "did:plc:repo",
    });
    assert.equal(
      parseCollaboratorUpdate({ op: "remove", subject: "did:web:x.org", repo: "did:plc:r" }).op,
      "remove",
    );
  });

  it("refuses other ops and non-DIDs", () => {
    assert.throws(
      () => parseCollaboratorUpdate({ op: "grant", subject: "did:plc:bob", repo: "did:plc:r" }),
      /op/,
    );
    assert.throws(() => parseCollaboratorUpdate({ op: "add", subject: "bob", repo: "did:plc:r" }), /subject/);
    assert.throws(
      () => parseCollaboratorUpdate({ op: "add", subject: "did:plc:bob", repo: "at://x/y" }),
      /repo/,
    );
  });
});
