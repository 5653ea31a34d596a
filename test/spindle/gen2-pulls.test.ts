/**
 * Gen2 pull requests from Jetstream (gen2 §2.2, §2.5) end to end through a real server: the
 * Jetstream stand-in delivers `sh.tangled.repo.pull{,.status}` commits of authors outside the DID
 * filter; the pull author's DID document (PLC stand-in) names a PDS stand-in serving the pull
 * record and the rounds' gzip patch blobs — real `git format-patch` output of a branch of the
 * repo on the knot stand-in (real git smart HTTP), which the spindle reads the workflows from at
 * the latest round's commit; the local engine runs them; ci.* XRPC reads the result.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { pino } from "pino";
import { IdentityResolver } from "../../src/net/identity.ts";
import { XrpcClient } from "../../src/net/xrpc-client.ts";
import { validate } from "../../src/protocol/lexicons.ts";
import { PULL_NSID, PULL_STATUS_NSID } from "../../src/protocol/nsid.ts";
import { CiPipelines } from "../../src/spindle/db/ci-pipelines.ts";
import { JetstreamCursor, openDatabase, Repos } from "../../src/spindle/db/index.ts";
import { PullIntake } from "../../src/spindle/intake/pulls.ts";
import { Rbac } from "../../src/spindle/rbac/index.ts";
import { commitEvent, JetstreamStandIn, type JetstreamWireEvent } from "../support/jetstream-standin.ts";
import { KnotGitServer } from "../support/knot-git-server.ts";
import { PdsStandIn } from "../support/pds-standin.ts";
import { type PlcServer, startPlcServer } from "../support/plc-server.ts";
import { ALICE, type Booted, bootServer, HOSTNAME, waitFor } from "./server-kit.ts";

const run = promisify(execFile);
const REPO = "did:plc:pullsrepo000000000000000";
const FORK = "did:plc:pullsfork000000000000000";
const BOB = "did:plc:bobbobbobbobbobbobbobbob";
const MALLORY = "did:plc:mallorymallorymallorymal";

// opened / reopened / synchronize (the default types).
const CI = `when:
  - event: ["pull_request"]
    branch: ["main"]
engine: kubernetes
image: alpine:3
clone:
  skip: true
steps:
  - name: hello
    command: echo "pull ci"
`;
// Only when a pull is closed or merged.
const WRAPUP = `when:
  - event: ["pull_request"]
    branch: ["main"]
    types: ["closed", "merged"]
engine: kubernetes
image: alpine:3
clone:
  skip: true
steps:
  - name: bye
    command: echo "wrap up"
`;

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: "Bob",
  GIT_AUTHOR_EMAIL: "bob@example.com",
  GIT_COMMITTER_NAME: "Bob",
  GIT_COMMITTER_EMAIL: "bob@example.com",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
};

interface Wf {
  name: string;
  status: string;
}
interface CiP {
  id: string;
  commit: string;
  repo: string;
  trigger: { $type: string; action?: string; sourceSha?: string; pull?: string; sourceBranch?: string };
  workflows: Wf[];
}

/** Commits on `feature` of the knot's bare repo, one per call; returns the tip and the gzip patch. */
class FeatureBranch {
  readonly #bare: string;
  constructor(knot: KnotGitServer, repoDid: string) {
    this.#bare = join(knot.root, repoDid);
  }

  /** One more commit on `feature` (from main the first time), pushed; `git format-patch main..feature`. */
  async commit(file: string, content: string): Promise<{ tip: string; patch: Buffer }> {
    const work = await mkdtemp(join(tmpdir(), "pull-work-"));
    const git = (...args: string[]) =>
      run("git", args, { cwd: work, env: GIT_ENV }).then((r) => r.stdout.trim());
    try {
      await git("clone", "-q", this.#bare, ".");
      const hasFeature = (await git("branch", "-r", "--list", "origin/feature")) !== "";
      await git("checkout", "-q", "-b", "feature", hasFeature ? "origin/feature" : "origin/main");
      await writeFile(join(work, file), content);
      await git("add", "-A");
      await git("commit", "-q", "-m", `change ${file}`);
      await git("push", "-q", "origin", "feature");
      const tip = await git("rev-parse", "HEAD");
      const patch = await git("format-patch", "--stdout", "origin/main..HEAD");
      return { tip, patch: gzipSync(`${patch}\n`) };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
}

describe("spindle gen2: pull requests from Jetstream", () => {
  let knot: KnotGitServer;
  let plc: PlcServer;
  let pds: PdsStandIn;
  let js: JetstreamStandIn;
  let b: Booted;
  let branch: FeatureBranch;
  const PULL_RKEY = "3lpullbob0001";
  const pullUri = `at://${BOB}/${PULL_NSID}/${PULL_RKEY}`;
  const rounds: ReturnType<PdsStandIn["putBlob"]>[] = [];
  const tips: string[] = [];
  const patches: Buffer[] = [];
  let statusN = 0;

  const xrpc = async (method: string, query = "") => {
    const res = await fetch(`${b.url}/xrpc/${method}${query ? `?${query}` : ""}`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const pulls = async () => {
    const r = await xrpc("sh.tangled.ci.queryPipelines", `repo=${REPO}&kinds=pull_request`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as { pipelines: CiP[]; total: number };
  };
  /** Waits until the consumer has handled `ev` (its cursor is saved past it). */
  const handled = async (ev: JetstreamWireEvent) => {
    const cursor = new JetstreamCursor(b.server.db);
    await waitFor(() => (cursor.get() ?? 0) > ev.time_us, 20_000, `event at ${ev.time_us} handled`);
  };
  const waitTotal = async (n: number) => {
    let page = await pulls();
    await waitFor(
      () => page.total >= n,
      30_000,
      `${n} pull pipelines`,
      async () => {
        page = await pulls();
      },
    );
    assert.equal(page.total, n, JSON.stringify(page.pipelines.map((p) => p.trigger)));
    return page.pipelines;
  };
  const pullRecord = (extra: Record<string, unknown> = {}) => ({
    target: { repo: REPO, branch: "main" },
    title: "Feature",
    rounds: rounds.map((patchBlob, i) => ({ patchBlob, createdAt: `2026-08-0${i + 1}T00:00:00Z` })),
    source: { branch: "feature" },
    createdAt: "2026-08-01T00:00:00Z",
    ...extra,
  });
  const pullEvent = (operation: "create" | "update", record: unknown, did = BOB, rkey = PULL_RKEY) =>
    js.push(commitEvent({ did, collection: PULL_NSID, rkey, operation, record }))[0] as JetstreamWireEvent;
  /** A pull for a repo not served here: handled (ignored) after everything pushed before it. */
  const marker = (rkey: string) =>
    pullEvent(
      "create",
      pullRecord({ target: { repo: "did:plc:notservedhere000000000000", branch: "main" } }),
      BOB,
      rkey,
    );
  const statusEvent = (did: string, status: string, pull = pullUri) =>
    js.push(
      commitEvent({
        did,
        collection: PULL_STATUS_NSID,
        rkey: `3lstatus${String(statusN++).padStart(5, "0")}`,
        record: { pull, status: `sh.tangled.repo.pull.status.${status}` },
      }),
    )[0] as JetstreamWireEvent;

  before(async () => {
    knot = await KnotGitServer.start();
    await knot.createRepo(REPO, {
      ".tangled/workflows/ci.yml": CI,
      ".tangled/workflows/wrapup.yml": WRAPUP,
      "README.md": "hi\n",
    });
    branch = new FeatureBranch(knot, REPO);
    plc = await startPlcServer();
    pds = await PdsStandIn.start();
    for (const did of [ALICE, BOB, MALLORY]) pds.registerIdentity(plc, did);
    js = await JetstreamStandIn.start();
    b = await bootServer({
      env: { SPINDLE_SERVER_PLC_URL: plc.url, SPINDLE_SERVER_JETSTREAM_ENDPOINT: js.url },
      server: {
        intake: {
          jetstream: { backoff: { baseMs: 50, capMs: 200, minMs: 20 } },
          knots: { backoff: { baseMs: 50, capMs: 200, minMs: 20 } },
        },
        builds: { fetchRetryDelaysMs: [] },
      },
    });
    const db = b.server.db;
    new Repos(db).upsert({
      knot: knot.host,
      owner: ALICE,
      name: "pulls",
      rkey: "3repopulls00a",
      repoDid: REPO,
    });
    const rbac = new Rbac(db);
    rbac.grantRepoOwner(ALICE, { ownerDid: ALICE, repoDid: REPO });
    rbac.grantCollaborator(BOB, { ownerDid: ALICE, repoDid: REPO });
    await js.waitForConnections(1);
  });
  after(async () => {
    await b?.stop();
    await js?.stop();
    await pds?.stop();
    await plc?.stop();
    await knot?.stop();
  });

  it("wants the pull collections; authors outside the DID filter are not in it", () => {
    const q = new URLSearchParams(js.queries[0]);
    assert.deepEqual(q.getAll("wantedCollections"), [
      "sh.tangled.spindle.member",
      "sh.tangled.repo",
      "sh.tangled.repo.collaborator",
      PULL_NSID,
      PULL_STATUS_NSID,
    ]);
    const filter = b.server.intake?.filter;
    assert.ok(filter && !filter.has(BOB) && !filter.has(ALICE));
  });

  it("a collaborator's same-repo pull with two rounds → one pipeline, opened, at the latest round's tip", async () => {
    for (const n of [1, 2]) {
      const { tip, patch } = await branch.commit(`f${n}.txt`, `${n}\n`);
      tips.push(tip);
      patches.push(patch);
      rounds.push(pds.putBlob(BOB, patch));
    }
    pds.putRecord(BOB, PULL_NSID, PULL_RKEY, pullRecord());
    pullEvent("create", pullRecord());
    const [p] = await waitTotal(1);
    assert.ok(p);
    assert.equal(p.commit, tips[1]);
    assert.notEqual(tips[0], tips[1]);
    assert.deepEqual(p.trigger, {
      $type: "sh.tangled.ci.trigger#pullRequest",
      action: "opened",
      sourceBranch: "feature",
      sourceSha: tips[1],
      targetBranch: "main",
      pull: pullUri,
    });
    assert.deepEqual(
      p.workflows.map((w) => w.name),
      ["ci.yml"],
    );
    const got = await xrpc("sh.tangled.ci.getPipeline", `pipeline=${p.id}`);
    assert.equal(got.status, 200);
    validate.pipeline(got.body);
    assert.equal((got.body as unknown as CiP).trigger.action, "opened");
    assert.equal(b.server.intake?.filter.has(BOB), false, "pull authors are not added to the filter");
  });

  it("the same event delivered twice builds once", async () => {
    const first = js.events.find((e) => e.commit?.collection === PULL_NSID) as JetstreamWireEvent;
    js.push(structuredClone(first));
    await handled(first);
    // A later event makes sure the duplicate was looked at.
    const later = marker("3lpullother01");
    await handled(later);
    assert.equal((await pulls()).total, 1);
  });

  it("an update with a new round → synchronize at the new tip; an edit without one builds nothing", async () => {
    const { tip, patch } = await branch.commit("f3.txt", "3\n");
    tips.push(tip);
    patches.push(patch);
    rounds.push(pds.putBlob(BOB, patch));
    pds.putRecord(BOB, PULL_NSID, PULL_RKEY, pullRecord());
    pullEvent("update", pullRecord());
    const [p] = await waitTotal(2);
    assert.equal(p?.trigger.action, "synchronize");
    assert.equal(p?.commit, tip);
    const edit = pullEvent("update", pullRecord({ title: "Feature, renamed" }));
    await handled(edit);
    assert.equal((await pulls()).total, 2);
  });

  it("pull.status closed / open / merged → closed / reopened / merged, selected by when[].types", async () => {
    statusEvent(ALICE, "closed");
    let [p] = await waitTotal(3);
    assert.equal(p?.trigger.action, "closed");
    assert.equal(p?.commit, tips[2]);
    assert.deepEqual(
      p?.workflows.map((w) => w.name),
      ["wrapup.yml"],
    );
    statusEvent(BOB, "open");
    [p] = await waitTotal(4);
    assert.equal(p?.trigger.action, "reopened");
    assert.deepEqual(
      p?.workflows.map((w) => w.name),
      ["ci.yml"],
    );
    statusEvent(ALICE, "merged");
    [p] = await waitTotal(5);
    assert.equal(p?.trigger.action, "merged");
    assert.equal(p?.trigger.pull, pullUri);
  });

  it("no push rights, fork-based and patch-only pulls build nothing; a repo record from outside the filter is filtered", async () => {
    const requestsBefore = pds.requests.length;
    const mallorys = await branch.commit("m.txt", "evil\n");
    const malloryRecord = {
      ...pullRecord(),
      rounds: [{ patchBlob: pds.putBlob(MALLORY, mallorys.patch), createdAt: "2026-08-09T00:00:00Z" }],
    };
    pds.putRecord(MALLORY, PULL_NSID, "3lpullmal0001", malloryRecord);
    pullEvent("create", malloryRecord, MALLORY, "3lpullmal0001");
    // Mallory closing Bob's pull: the actor needs push rights too.
    statusEvent(MALLORY, "closed");
    pullEvent("create", pullRecord({ source: { branch: "feature", repo: FORK } }), BOB, "3lpullfork001");
    const patchOnly = pullRecord();
    delete (patchOnly as Record<string, unknown>).source;
    pullEvent("create", patchOnly, BOB, "3lpullpatch01");
    js.push(
      commitEvent({
        did: ALICE,
        collection: "sh.tangled.repo",
        rkey: "3lsneaky00001",
        record: {
          name: "sneaky",
          knot: knot.host,
          spindle: HOSTNAME,
          repoDid: "did:plc:sneakysneakysneakysneaky",
        },
      }),
    );
    const last = marker("3lpullother02");
    await handled(last);
    assert.equal((await pulls()).total, 5);
    assert.equal(new Repos(b.server.db).byName(ALICE, "sneaky"), null, "sh.tangled.repo stays filtered");
    // Mallory's pull was not even downloaded: authorization comes first.
    assert.ok(
      !pds.requests.some((r) => r.includes(`did=${encodeURIComponent(MALLORY)}`)),
      pds.requests.join("\n"),
    );
    // Nor was Bob's pull read for Mallory's status: she can push nowhere here.
    const getRecords = pds.requests.slice(requestsBefore).filter((r) => r.includes("getRecord"));
    assert.deepEqual(getRecords, []);
  });

  it("a repo whose knot is unreachable gets a failed pipeline saying why (as refUpdate does)", async () => {
    const DOWN = "did:plc:knotdownknotdownknotdownk";
    new Repos(b.server.db).upsert({
      knot: "127.0.0.1:9",
      owner: ALICE,
      name: "down",
      rkey: "3repodown000a",
      repoDid: DOWN,
    });
    new Rbac(b.server.db).grantRepoOwner(ALICE, { ownerDid: ALICE, repoDid: DOWN });
    const patchBlob = pds.putBlob(ALICE, patches.at(-1) as Buffer);
    const record = { ...pullRecord(), target: { repo: DOWN, branch: "main" }, rounds: [{ patchBlob }] };
    pullEvent("create", record, ALICE, "3lpulldown001");
    let page = { pipelines: [] as CiP[] };
    await waitFor(
      () => page.pipelines.length === 1,
      30_000,
      "failed pipeline",
      async () => {
        page = (await xrpc("sh.tangled.ci.queryPipelines", `repo=${DOWN}`)).body as unknown as typeof page;
      },
    );
    const p = page.pipelines[0] as CiP & { workflows: Array<Wf & { error?: string }> };
    assert.equal(p.trigger.action, "opened");
    assert.deepEqual(
      p.workflows.map((w) => [w.name, w.status]),
      [["fetch-workflows", "failed"]],
    );
    assert.match(p.workflows[0]?.error ?? "", /could not read \.tangled\/workflows/);
  });

  it("a restart from an older cursor replays everything and builds nothing new", async () => {
    const intake = b.server.intake;
    assert.ok(intake);
    await intake.jetstream.stop();
    const first = js.events[0] as JetstreamWireEvent;
    new JetstreamCursor(b.server.db).set(first.time_us);
    intake.jetstream.start();
    await js.waitForConnections(2);
    await handled(js.events.at(-1) as JetstreamWireEvent);
    const page = await pulls();
    assert.equal(page.total, 5);
    assert.deepEqual(
      page.pipelines.map((p) => p.trigger.action),
      ["merged", "reopened", "closed", "synchronize", "opened"],
    );
  });
});

describe("PullIntake failures: logged, rejected, nothing built", () => {
  let dir: string;
  let plc: PlcServer;
  let pds: PdsStandIn;
  let db: ReturnType<typeof openDatabase>;
  const builds: unknown[] = [];
  const GONE = "did:plc:gonegonegonegonegonegone";
  const DEAD_PDS = "did:plc:deadpdsdeadpdsdeadpdsdea";

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "loom-pulls-"));
    plc = await startPlcServer();
    pds = await PdsStandIn.start();
    db = openDatabase(join(dir, "spindle.db"));
    pds.registerIdentity(plc, BOB);
    plc.setDocument(DEAD_PDS, {
      ...pds.didDocument(DEAD_PDS),
      service: [
        { id: "#atproto_pds", type: "AtprotoPersonalDataServer", serviceEndpoint: "http://127.0.0.1:9" },
      ],
    });
    new Repos(db).upsert({ knot: "knot.example.com", owner: ALICE, name: "r", rkey: "3repo", repoDid: REPO });
    const rbac = new Rbac(db);
    for (const did of [BOB, GONE, DEAD_PDS]) rbac.grantRepoOwner(did, { ownerDid: ALICE, repoDid: REPO });
  });
  after(async () => {
    db.close();
    await pds.stop();
    await plc.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const intake = (dev: boolean) =>
    new PullIntake({
      ciPipelines: new CiPipelines(db),
      repos: new Repos(db),
      rbac: new Rbac(db),
      identity: new IdentityResolver({ plcUrl: plc.url, timeoutMs: 5000 }),
      xrpc: new XrpcClient({ timeoutMs: 5000 }),
      blobFetch: { allowPrivate: dev, timeoutMs: 5000 },
      hostname: HOSTNAME,
      builder: {
        knownRepo: async () => {
          throw new Error("not reached");
        },
        buildTrusted: async (x) => {
          builds.push(x);
          return { built: false, reason: "test" };
        },
      },
      log: pino({ level: "silent" }),
    });
  const handle = (i: PullIntake, did: string, collection: string, record: unknown) =>
    i.handle({
      did,
      timeUs: Date.now() * 1000,
      kind: "commit",
      commit: {
        operation: "create",
        collection,
        rkey: "3lpull",
        record: record as Record<string, unknown>,
        cid: null,
        rev: null,
      },
    });
  const pullWith = (patchBlob: unknown) => ({
    target: { repo: REPO, branch: "main" },
    source: { branch: "feature" },
    rounds: [{ patchBlob, createdAt: "2026-08-01T00:00:00Z" }],
  });

  it("outside dev mode a loopback PDS is refused before any request reaches it", async () => {
    const out = await handle(intake(false), BOB, PULL_NSID, pullWith(pds.putBlob(BOB, gzipSync("From x\n"))));
    assert.equal(out.result, "rejected");
    assert.match(out.reason, /non-public address/);
    assert.ok(!pds.requests.some((r) => r.includes("getBlob")), "no request reached the PDS");
  });

  it("blob not found, not a patch, unreachable PDS, unresolvable author, unreadable pull", async () => {
    const dev = intake(true);
    const missing = {
      ...pds.putBlob(BOB, Buffer.from("x")),
      ref: { $link: "bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
    };
    const cases: Array<[string, unknown, RegExp, string?, string?]> = [
      ["missing blob", pullWith(missing), /not found/],
      ["plain diff", pullWith(pds.putBlob(BOB, gzipSync("diff --git a/x b/x\n"))), /no `From <sha>` line/],
      ["bad gzip", pullWith(pds.putBlob(BOB, Buffer.from([0x1f, 0x8b, 1, 2]))), /not valid gzip/],
      ["dead PDS", pullWith(pds.putBlob(BOB, gzipSync("x"))), /ECONNREFUSED|connecting/, DEAD_PDS],
      ["unknown DID", pullWith(pds.putBlob(BOB, gzipSync("x"))), /not found|cannot resolve/, GONE],
      [
        "status of an unreadable pull",
        { pull: `at://${BOB}/${PULL_NSID}/3lnosuchpull`, status: "sh.tangled.repo.pull.status.closed" },
        /could not be read.*RecordNotFound/,
        BOB,
        PULL_STATUS_NSID,
      ],
      [
        "status of a pull on a dead PDS",
        { pull: `at://${DEAD_PDS}/${PULL_NSID}/3lpull`, status: "sh.tangled.repo.pull.status.merged" },
        /could not be read/,
        BOB,
        PULL_STATUS_NSID,
      ],
    ];
    for (const [what, record, reason, did = BOB, collection = PULL_NSID] of cases) {
      const out = await handle(dev, did, collection, record);
      assert.equal(out.result, "rejected", what);
      assert.match(out.reason, reason, what);
    }
    assert.deepEqual(builds, []);
  });
});
