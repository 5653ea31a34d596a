import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CLONE_STEP_NAME, cloneStep, shellWord } from "./clone.ts";
import { manualTrigger, prTrigger, pushTrigger, REPO, SHA_A, SHA_F } from "./testkit.ts";
import type { TriggerMetadata } from "./types.ts";

const clone = { skip: false, depth: 0, submodules: false };
const url = `https://knot1.tangled.sh/${REPO.did}/core`;
const lines = (command: string) => command.split("\n");

describe("clone step (spec §2.3)", () => {
  it("push: init, remote, fetch depth 1 of newSha, checkout FETCH_HEAD", () => {
    const step = cloneStep(pushTrigger("refs/heads/main"), clone, { dev: false });
    assert.equal(step.name, CLONE_STEP_NAME);
    assert.deepEqual(lines(step.command), [
      "git init",
      `git remote add origin ${url}`,
      `git fetch --depth=1 origin ${SHA_F}`,
      "git checkout FETCH_HEAD",
    ]);
  });

  it("pull request fetches the source SHA", () => {
    const step = cloneStep(prTrigger("main"), clone, { dev: false });
    assert.equal(lines(step.command)[2], `git fetch --depth=1 origin ${SHA_A}`);
  });

  it("manual fetches no SHA", () => {
    assert.equal(
      lines(cloneStep(manualTrigger(), clone, { dev: false }).command)[2],
      "git fetch --depth=1 origin",
    );
  });

  it("depth is used when above 0", () => {
    const step = cloneStep(pushTrigger("refs/heads/main"), { ...clone, depth: 50 }, { dev: false });
    assert.equal(lines(step.command)[2], `git fetch --depth=50 origin ${SHA_F}`);
    const negative = cloneStep(pushTrigger("refs/heads/main"), { ...clone, depth: -3 }, { dev: false });
    assert.equal(lines(negative.command)[2], `git fetch --depth=1 origin ${SHA_F}`);
  });

  it("submodules add --recurse-submodules=yes before origin", () => {
    const step = cloneStep(pushTrigger("refs/heads/main"), { ...clone, submodules: true }, { dev: false });
    assert.equal(lines(step.command)[2], `git fetch --depth=1 --recurse-submodules=yes origin ${SHA_F}`);
  });

  it("skip yields the empty step", () => {
    assert.deepEqual(
      cloneStep(pushTrigger("refs/heads/main"), { ...clone, skip: true, submodules: true }, { dev: false }),
      {
        name: "",
        command: "",
      },
    );
  });

  it("dev mode: http and localhost → host.docker.internal", () => {
    const t = pushTrigger("refs/heads/main", { ...REPO, knot: "localhost:5555" });
    assert.equal(
      lines(cloneStep(t, clone, { dev: true }).command)[1],
      `git remote add origin http://host.docker.internal:5555/${REPO.did}/core`,
    );
  });

  it("a clone URL override replaces the knot URL", () => {
    const step = cloneStep(pushTrigger("refs/heads/main"), clone, { dev: false, cloneUrl: "/work/repo" });
    assert.equal(lines(step.command)[1], "git remote add origin /work/repo");
    const spaced = cloneStep(pushTrigger("refs/heads/main"), clone, {
      dev: false,
      cloneUrl: "/my repo/it's",
    });
    assert.equal(lines(spaced.command)[1], `git remote add origin '/my repo/it'\\''s'`);
  });

  const errors: [string, TriggerMetadata, string][] = [
    ["push without push data", { kind: "push", repo: { ...REPO } }, "push trigger has no push data"],
    [
      "pull_request without PR data",
      { kind: "pull_request", repo: { ...REPO } },
      "pull_request trigger has no pullRequest data",
    ],
    ["unknown kind", { kind: "schedule" as "push", repo: { ...REPO } }, "unknown trigger kind schedule"],
  ];
  for (const [name, trigger, reason] of errors) {
    it(`${name}: the (error) step`, () => {
      assert.deepEqual(cloneStep(trigger, clone, { dev: false }), {
        name: "Clone repository into workspace (error)",
        command: `echo 'Failed to get clone info: ${reason}' && exit 1`,
      });
    });
  }
});

describe("shellWord", () => {
  it("leaves URL and SHA characters alone and quotes anything else", () => {
    assert.equal(
      shellWord("https://k.example/did:plc:x/repo-1.2_a"),
      "https://k.example/did:plc:x/repo-1.2_a",
    );
    assert.equal(shellWord("a;rm -rf /"), "'a;rm -rf /'");
    assert.equal(shellWord("$(id)"), "'$(id)'");
    assert.equal(shellWord(""), "''");
  });
});

describe("Gen2 clone (opt-in)", () => {
  it("clones by repo DID and fetches a manual trigger's sha", () => {
    const t: TriggerMetadata = {
      ...manualTrigger(),
      repo: { ...REPO, repoDid: "did:plc:r" },
      manual: { sha: SHA_A },
    };
    assert.deepEqual(lines(cloneStep(t, clone, { dev: false, gen2: true }).command).slice(1, 3), [
      "git remote add origin https://knot1.tangled.sh/did:plc:r",
      `git fetch --depth=1 origin ${SHA_A}`,
    ]);
    assert.equal(lines(cloneStep(t, clone, { dev: false }).command)[2], "git fetch --depth=1 origin");
  });
});
