/**
 * One behaviour suite, run against both secrets providers: `sqlite` on a real SQLite file and
 * `openbao` against a real OpenBao dev server (`bao server -dev`, installed by hack/openbao.sh).
 * Provider-specific checks (encryption at rest, path sanitizing) follow the shared suite.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openDatabase } from "../../src/spindle/db/index.ts";
import { SecretsError, type SecretsErrorCode, toXrpcErrorResponse } from "../../src/spindle/errors.ts";
import {
  moveSecrets,
  OpenbaoSecretsProvider,
  type SecretsProvider,
  SqliteSecretsProvider,
} from "../../src/spindle/secrets/index.ts";
import { findBao, type OpenbaoDevServer, startOpenbaoDev } from "../support/openbao-server.ts";

const NOW = new Date("2026-02-10T12:00:00.789Z");
const now = () => NOW;
const ALICE = "did:plc:alice";
const REPO = "did:plc:alice/loom";
const OTHER = "did:plc:repoother";
const VALUE = "s3cr3t-Value-do-not-leak";

/** Every message in an error's cause chain, to prove no value appears anywhere in it. */
function chainText(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error; e = e.cause) parts.push(e.message, e.stack ?? "");
  return parts.join("\n");
}

async function rejectsWith(p: Promise<unknown>, code: SecretsErrorCode, secretValue?: string) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof SecretsError, `expected SecretsError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (secretValue) {
      assert.ok(!chainText(err).includes(secretValue), "a secret value leaked into an error");
      assert.ok(!JSON.stringify(toXrpcErrorResponse(err)).includes(secretValue));
    }
    return true;
  });
}

function behaviourSuite(make: () => SecretsProvider) {
  let p: SecretsProvider;
  before(() => {
    p = make();
  });

  it("adds, lists without values, lists with values", async () => {
    await p.add({ repo: REPO, key: "DEPLOY_TOKEN", value: VALUE, createdBy: ALICE });
    assert.deepEqual(await p.listLocked(REPO), [
      { repo: REPO, key: "DEPLOY_TOKEN", createdAt: "2026-02-10T12:00:00Z", createdBy: ALICE },
    ]);
    assert.deepEqual(await p.listUnlocked(REPO), [
      { repo: REPO, key: "DEPLOY_TOKEN", createdAt: "2026-02-10T12:00:00Z", createdBy: ALICE, value: VALUE },
    ]);
  });

  it("refuses a duplicate key and keeps the first value", async () => {
    await rejectsWith(
      p.add({ repo: REPO, key: "DEPLOY_TOKEN", value: "other", createdBy: ALICE }),
      "KeyAlreadyPresent",
    );
    assert.equal((await p.listUnlocked(REPO))[0]?.value, VALUE);
    const r = toXrpcErrorResponse(
      await p.add({ repo: REPO, key: "DEPLOY_TOKEN", value: "x", createdBy: ALICE }).catch((e) => e),
    );
    assert.deepEqual(r.body, { error: "Generic", message: "key already present" });
    assert.equal(r.status, 500);
  });

  it("removes, and a second remove is KeyNotFound", async () => {
    await p.add({ repo: REPO, key: "TEMP", value: "t", createdBy: ALICE });
    await p.remove(REPO, "TEMP");
    assert.deepEqual(
      (await p.listLocked(REPO)).map((s) => s.key),
      ["DEPLOY_TOKEN"],
    );
    await rejectsWith(p.remove(REPO, "TEMP"), "KeyNotFound");
    await rejectsWith(p.remove(OTHER, "DEPLOY_TOKEN"), "KeyNotFound");
  });

  it("enforces the key rule and the lexicon's key length", async () => {
    for (const key of ["", "1ABC", "A-B", "A B", "é", "../X", "A".repeat(51)]) {
      await rejectsWith(p.add({ repo: REPO, key, value: VALUE, createdBy: ALICE }), "InvalidKey", VALUE);
    }
    await p.add({ repo: REPO, key: `_${"a".repeat(49)}`, value: "ok", createdBy: ALICE });
    await rejectsWith(p.remove(REPO, "bad-key"), "InvalidKey");
    const r = toXrpcErrorResponse(new SecretsError("InvalidKey"));
    assert.deepEqual(
      [r.status, r.body],
      [400, { error: "Generic", message: "key is not a valid identifier" }],
    );
  });

  it("enforces the lexicon's value length in UTF-8 bytes and never echoes the value", async () => {
    for (const value of ["", "x".repeat(201), "é".repeat(101)]) {
      await rejectsWith(
        p.add({ repo: REPO, key: "V", value, createdBy: ALICE }),
        "InvalidValue",
        value || undefined,
      );
    }
    const max = `${"é".repeat(99)}xx`; // 200 bytes
    await p.add({ repo: REPO, key: "UNICODE", value: max, createdBy: ALICE });
    assert.equal((await p.listUnlocked(REPO)).find((s) => s.key === "UNICODE")?.value, max);
  });

  it("keeps repos apart and sorts by key", async () => {
    assert.deepEqual(await p.listLocked(OTHER), []);
    await p.add({ repo: OTHER, key: "B", value: "b", createdBy: ALICE });
    await p.add({ repo: OTHER, key: "A", value: "a", createdBy: ALICE });
    await p.add({ repo: OTHER, key: "DEPLOY_TOKEN", value: "other-repo", createdBy: ALICE });
    assert.deepEqual(
      (await p.listUnlocked(OTHER)).map((s) => [s.key, s.value]),
      [
        ["A", "a"],
        ["B", "b"],
        ["DEPLOY_TOKEN", "other-repo"],
      ],
    );
    assert.equal((await p.listUnlocked(REPO)).find((s) => s.key === "DEPLOY_TOKEN")?.value, VALUE);
  });

  it("moves name-keyed secrets to the repo DID, keeping metadata; the DID's own copy wins", async () => {
    const legacy = "did:plc:alice/moved";
    const repoDid = "did:plc:repomoved";
    await p.add({
      repo: legacy,
      key: "A",
      value: "from-name",
      createdBy: ALICE,
      createdAt: "2025-01-01T00:00:00Z",
    });
    await p.add({ repo: legacy, key: "B", value: "old-b", createdBy: ALICE });
    await p.add({ repo: repoDid, key: "B", value: "new-b", createdBy: ALICE });
    assert.deepEqual(await moveSecrets(p, legacy, repoDid), ["A"]);
    assert.deepEqual(await p.listLocked(legacy), []);
    assert.deepEqual(
      (await p.listUnlocked(repoDid)).map((s) => [s.key, s.value, s.createdAt]),
      [
        ["A", "from-name", "2025-01-01T00:00:00Z"],
        ["B", "new-b", "2026-02-10T12:00:00Z"],
      ],
    );
    assert.deepEqual(await moveSecrets(p, legacy, repoDid), [], "re-running is harmless");
  });
}

const dir = mkdtempSync(join(tmpdir(), "loom-secrets-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const KEY = new Uint8Array(32).fill(9);

describe("secrets provider: sqlite", () => {
  const db = openDatabase(join(dir, "spindle.db"));
  after(() => db.close());
  behaviourSuite(() => new SqliteSecretsProvider({ db, key: KEY, now }));

  it("stores ciphertext only, bound to its repo and key", async () => {
    const p = new SqliteSecretsProvider({ db, key: KEY, now });
    await p.add({ repo: "did:plc:enc/a", key: "K", value: VALUE, createdBy: ALICE });
    const row = db.prepare("SELECT * FROM secrets WHERE repo = 'did:plc:enc/a'").get() as Record<
      string,
      Uint8Array
    >;
    assert.ok(!Buffer.from(row.ciphertext as Uint8Array).includes(Buffer.from(VALUE)));
    assert.equal((row.nonce as Uint8Array).length, 12);
    // A row copied into another repo does not decrypt there.
    db.prepare(
      "INSERT INTO secrets (repo, key, nonce, ciphertext, created_by) SELECT 'did:plc:enc/b', key, nonce, ciphertext, created_by FROM secrets WHERE repo = 'did:plc:enc/a'",
    ).run();
    await rejectsWith(p.listUnlocked("did:plc:enc/b"), "BackendFailure", VALUE);
    // Another key cannot read it either.
    const wrongKey = new SqliteSecretsProvider({ db, key: new Uint8Array(32).fill(1), now });
    await rejectsWith(wrongKey.listUnlocked("did:plc:enc/a"), "BackendFailure", VALUE);
    assert.equal((await p.listUnlocked("did:plc:enc/a"))[0]?.value, VALUE);
  });

  it("two nonces for one value", async () => {
    const p = new SqliteSecretsProvider({ db, key: KEY, now });
    await p.add({ repo: "did:plc:n/a", key: "K1", value: "same", createdBy: ALICE });
    await p.add({ repo: "did:plc:n/a", key: "K2", value: "same", createdBy: ALICE });
    const rows = db.prepare("SELECT nonce, ciphertext FROM secrets WHERE repo = 'did:plc:n/a'").all();
    assert.notDeepEqual(rows[0]?.nonce, rows[1]?.nonce);
  });
});

const bao = findBao();
describe("secrets provider: openbao (real `bao server -dev`)", {
  skip: bao ? false : "bao not installed: run hack/openbao.sh",
}, () => {
  let server: OpenbaoDevServer;
  before(async () => {
    server = await startOpenbaoDev(bao as string);
    const res = await server.api("POST", "sys/mounts/spindle", { type: "kv", options: { version: "2" } });
    assert.equal(res.status, 204, await res.text());
  });
  after(() => server?.stop());

  behaviourSuite(
    () => new OpenbaoSecretsProvider({ addr: server.addr, mount: "spindle", token: server.rootToken, now }),
  );

  it("stores upstream's layout and fields", async () => {
    const p = new OpenbaoSecretsProvider({
      addr: server.addr,
      mount: "spindle",
      token: server.rootToken,
      now,
    });
    await p.add({ repo: "did:plc:lay/out.x", key: "K", value: "v", createdBy: ALICE });
    const res = await server.api("GET", "spindle/data/repos/did_plc_lay_out_x/K");
    const body = (await res.json()) as { data: { data: Record<string, string> } };
    assert.deepEqual(body.data.data, {
      value: "v",
      repo: "did:plc:lay/out.x",
      key: "K",
      created_at: "2026-02-10T12:00:00Z",
      created_by: ALICE,
    });
  });

  it("repos that sanitize to one path neither see nor delete each other's secrets", async () => {
    const p = new OpenbaoSecretsProvider({
      addr: server.addr,
      mount: "spindle",
      token: server.rootToken,
      now,
    });
    await p.add({ repo: "did:plc:c/a.b", key: "K", value: "dot", createdBy: ALICE });
    assert.deepEqual(await p.listLocked("did:plc:c/a_b"), []);
    await rejectsWith(p.remove("did:plc:c/a_b", "K"), "KeyNotFound");
    assert.equal((await p.listUnlocked("did:plc:c/a.b"))[0]?.value, "dot");
  });

  it("start-up check: a bad token or no server stops start-up", async () => {
    await rejectsWith(
      OpenbaoSecretsProvider.create({ addr: server.addr, mount: "spindle", token: "nope" }),
      "BackendFailure",
    );
    await OpenbaoSecretsProvider.create({ addr: server.addr, mount: "spindle", token: server.rootToken });
    await rejectsWith(
      OpenbaoSecretsProvider.create({
        addr: "http://127.0.0.1:9",
        mount: "spindle",
        token: "t",
        timeoutMs: 2000,
      }),
      "BackendFailure",
    );
  });

  it("a backend failure on add does not leak the value", async () => {
    const p = new OpenbaoSecretsProvider({
      addr: server.addr,
      mount: "not-mounted",
      token: server.rootToken,
      now,
    });
    await rejectsWith(
      p.add({ repo: REPO, key: "K", value: VALUE, createdBy: ALICE }),
      "BackendFailure",
      VALUE,
    );
  });
});
