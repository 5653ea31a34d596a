import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { openDatabase } from "../db/index.ts";
import { toXrpcErrorResponse } from "../errors.ts";
import { Rbac } from "./rbac.ts";
import { didSlashRepo, parseRepoAtUri, repoObjectKeys, repoScopeKey } from "./repo-ref.ts";

const OWNER = "did:plc:spindleowner";
const ALICE = "did:plc:alice"; // a member who owns a repo
const BOB = "did:plc:bob"; // collaborator on alice's repo
const EVE = "did:plc:eve"; // stranger
const repo = { ownerDid: ALICE, name: "loom" };

function fresh(): Rbac {
  const rbac = new Rbac(openDatabase(":memory:"));
  rbac.setOwner(OWNER);
  rbac.addMember(ALICE);
  rbac.grantRepoOwner(ALICE, repo);
  rbac.grantCollaborator(BOB, repo);
  return rbac;
}

describe("spindle roles", () => {
  it("owner is a member and the only one who may invite", () => {
    const r = fresh();
    assert.equal(r.owner(), OWNER);
    assert.equal(r.isMember(OWNER), true);
    assert.equal(r.canInvite(OWNER), true);
    assert.equal(r.isMember(ALICE), true);
    assert.equal(r.canInvite(ALICE), false);
    assert.equal(r.isMember(BOB), false, "a collaborator is not a spindle member");
    assert.equal(r.isMember(EVE), false);
    r.removeMember(ALICE);
    assert.equal(r.isMember(ALICE), false);
  });

  it("the configured owner replaces the previous one at start-up (§5.1)", () => {
    const db = openDatabase(":memory:");
    new Rbac(db).setOwner(OWNER);
    const r = new Rbac(db);
    r.setOwner(ALICE);
    assert.equal(r.owner(), ALICE);
    assert.equal(r.isOwner(OWNER), false);
    r.setOwner(ALICE);
    assert.equal(r.owner(), ALICE);
    db.prepare("INSERT INTO rbac_server_roles (did, role) VALUES (?, 'server:owner')").run(EVE);
    assert.throws(() => r.setOwner(OWNER), /more than one spindle owner/);
  });
});

describe("repo permissions: owner vs collaborator vs stranger", () => {
  it("secrets need repo:settings, cancel needs repo:owner, ci.* needs push", () => {
    const r = fresh();
    const table = [
      [ALICE, true, true, true],
      [BOB, true, false, true],
      [EVE, false, false, false],
      [OWNER, false, false, false], // the spindle owner has no rights on other people's repos
    ] as const;
    for (const [who, secrets, cancel, push] of table) {
      assert.equal(r.canManageSecrets(who, repo), secrets, `${who} secrets`);
      assert.equal(r.canCancel(who, repo), cancel, `${who} cancel`);
      assert.equal(r.canPush(who, repo), push, `${who} push`);
    }
    assert.deepEqual(r.collaborators(repo), [BOB]);
  });

  it("rights do not leak to another repo of the same owner", () => {
    const r = fresh();
    assert.equal(r.canManageSecrets(BOB, { ownerDid: ALICE, name: "other" }), false);
  });

  it("revoking a collaborator and tearing a repo down", () => {
    const r = fresh();
    r.revokeCollaborator(BOB, repo);
    assert.equal(r.canManageSecrets(BOB, repo), false);
    r.removeRepo(repo);
    assert.equal(r.canManageSecrets(ALICE, repo), false);
  });

  it("a name-keyed repo keeps its grants when it gains a repo DID (Gen2)", () => {
    const r = fresh();
    const withDid = { ...repo, repoDid: "did:plc:repoloom" };
    assert.equal(r.canManageSecrets(BOB, withDid), true, "name key still honoured");
    const didOnly = { ownerDid: ALICE, repoDid: "did:plc:repoloom" };
    assert.equal(r.canManageSecrets(BOB, didOnly), false, "nothing was granted on the DID yet");
    r.grantCollaborator(BOB, withDid);
    assert.equal(r.canManageSecrets(BOB, didOnly), true);
  });
});

describe("repo keys", () => {
  it("builds <ownerDid>/<name> and refuses names that could alias", () => {
    assert.equal(didSlashRepo(ALICE, "loom"), "did:plc:alice/loom");
    for (const bad of ["", "..", "a/b", "a\\b", "x\n"])
      assert.throws(() => didSlashRepo(ALICE, bad), TypeError);
    assert.throws(() => didSlashRepo("alice", "loom"), TypeError);
    assert.deepEqual(repoObjectKeys({ ownerDid: ALICE, name: "loom", repoDid: "did:plc:r" }), [
      "did:plc:r",
      "did:plc:alice/loom",
    ]);
    assert.equal(repoScopeKey({ ownerDid: ALICE, name: "loom" }), "did:plc:alice/loom");
    assert.throws(() => repoObjectKeys({ ownerDid: ALICE }), TypeError);
  });
});

describe("parseRepoAtUri", () => {
  it("accepts a sh.tangled.repo record URI and refuses everything else as InvalidRepo", () => {
    assert.deepEqual(parseRepoAtUri("at://did:plc:abcdefghijklmnopqrstuvwx/sh.tangled.repo/3lxyzrepo0001"), {
      did: "did:plc:abcdefghijklmnopqrstuvwx",
      rkey: "3lxyzrepo0001",
    });
    for (const bad of [
      "",
      "did:plc:abc/sh.tangled.repo/3l",
      "at://alice.test/sh.tangled.repo/3l",
      "at://did:plc:abc/sh.tangled.pipeline/3l",
      "at://did:plc:abc/sh.tangled.repo",
      "at://did:plc:abc/sh.tangled.repo/3l/extra",
      "at://did:plc:abc/sh.tangled.repo/3l?x=1",
      "https://did:plc:abc/sh.tangled.repo/3l",
    ]) {
      assert.throws(
        () => parseRepoAtUri(bad),
        (err: unknown) => {
          const r = toXrpcErrorResponse(err);
          assert.deepEqual(
            [r.status, r.body],
            [400, { error: "InvalidRepo", message: `supplied at-uri is not a repo: ${bad}` }],
          );
          return true;
        },
        bad,
      );
    }
  });
});
