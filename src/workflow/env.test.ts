import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { composeStepEnv, frameworkEnv, mergeWorkflowEnv, nixeryPath, pipelineUri, repoUrl } from "./env.ts";
import { manualTrigger, prTrigger, pushTrigger, REPO, SHA_A, SHA_F } from "./testkit.ts";

const pipeline = { knot: "knot1.tangled.sh", rkey: "3lxyz2abcde22" };
const asMap = (env: { name: string; value: string }[]) =>
  Object.fromEntries(env.map((e) => [e.name, e.value]));

describe("framework variables (spec §7.1)", () => {
  it("always CI and the pipeline AT-URI, then the repo variables", () => {
    const env = frameworkEnv(manualTrigger(), pipeline, false);
    assert.deepEqual(env.slice(0, 7), [
      { name: "CI", value: "true" },
      {
        name: "TANGLED_PIPELINE_ID",
        value: "at://did:web:knot1.tangled.sh/sh.tangled.pipeline/3lxyz2abcde22",
      },
      { name: "TANGLED_REPO_KNOT", value: REPO.knot },
      { name: "TANGLED_REPO_DID", value: REPO.did },
      { name: "TANGLED_REPO_NAME", value: "core" },
      { name: "TANGLED_REPO_DEFAULT_BRANCH", value: "" },
      { name: "TANGLED_REPO_URL", value: `https://knot1.tangled.sh/${REPO.did}/core` },
    ]);
  });

  it("push to a branch", () => {
    const env = asMap(frameworkEnv(pushTrigger("refs/heads/feature/x"), pipeline, false));
    assert.equal(env.TANGLED_REF, "refs/heads/feature/x");
    assert.equal(env.TANGLED_REF_NAME, "feature/x");
    assert.equal(env.TANGLED_REF_TYPE, "branch");
    assert.equal(env.TANGLED_SHA, SHA_F);
    assert.equal(env.TANGLED_COMMIT_SHA, SHA_F);
    assert.equal(env.TANGLED_PR_ACTION, undefined);
  });

  it("push of a tag", () => {
    const env = asMap(frameworkEnv(pushTrigger("refs/tags/v1.2.3"), pipeline, false));
    assert.deepEqual(
      [env.TANGLED_REF, env.TANGLED_REF_NAME, env.TANGLED_REF_TYPE],
      ["refs/tags/v1.2.3", "v1.2.3", "tag"],
    );
  });

  it("pull request: ref variables from the source branch, plus the PR set", () => {
    const env = asMap(frameworkEnv(prTrigger("main", "feature-x"), pipeline, false));
    assert.deepEqual(
      [env.TANGLED_REF, env.TANGLED_REF_NAME, env.TANGLED_REF_TYPE, env.TANGLED_SHA, env.TANGLED_COMMIT_SHA],
      ["refs/heads/feature-x", "feature-x", "branch", SHA_A, SHA_A],
    );
    assert.deepEqual(
      [
        env.TANGLED_PR_SOURCE_BRANCH,
        env.TANGLED_PR_TARGET_BRANCH,
        env.TANGLED_PR_SOURCE_SHA,
        env.TANGLED_PR_ACTION,
      ],
      ["feature-x", "main", SHA_A, "create"],
    );
  });

  it("manual: TANGLED_INPUT_<UPPERCASED KEY> per input, no ref variables", () => {
    const env = asMap(
      frameworkEnv(
        manualTrigger([
          { key: "target", value: "prod" },
          { key: "dryRun", value: "1" },
        ]),
        pipeline,
        false,
      ),
    );
    assert.equal(env.TANGLED_INPUT_TARGET, "prod");
    assert.equal(env.TANGLED_INPUT_DRYRUN, "1");
    assert.equal(env.TANGLED_REF, undefined);
    assert.equal(env.TANGLED_SHA, undefined);
  });

  it("dev mode: http, and a localhost knot becomes host.docker.internal", () => {
    const repo = { ...REPO, knot: "localhost:5555" };
    assert.equal(repoUrl(repo, true), `http://host.docker.internal:5555/${REPO.did}/core`);
    assert.equal(repoUrl(repo, false), `https://localhost:5555/${REPO.did}/core`);
    assert.equal(
      repoUrl({ ...REPO, knot: "mylocalhost.dev" }, true),
      `http://mylocalhost.dev/${REPO.did}/core`,
    );
    const env = asMap(frameworkEnv(pushTrigger("refs/heads/main", repo), pipeline, true));
    assert.equal(env.TANGLED_REPO_URL, `http://host.docker.internal:5555/${REPO.did}/core`);
    assert.equal(env.TANGLED_REPO_KNOT, "localhost:5555");
  });

  it("pipelineUri", () => {
    assert.equal(
      pipelineUri({ knot: "k.example", rkey: "r1" }),
      "at://did:web:k.example/sh.tangled.pipeline/r1",
    );
  });
});

describe("composition order (spec §7.2)", () => {
  it("workflow env with framework copied over it → secrets → step env → HOME → PATH", () => {
    const workflowEnv = mergeWorkflowEnv(
      [
        { name: "CI", value: "false" },
        { name: "GOOS", value: "linux" },
        { name: "TANGLED_SHA", value: "mine" },
      ],
      [
        { name: "CI", value: "true" },
        { name: "TANGLED_SHA", value: SHA_F },
      ],
    );
    assert.deepEqual(workflowEnv, [
      { name: "CI", value: "true" },
      { name: "GOOS", value: "linux" },
      { name: "TANGLED_SHA", value: SHA_F },
    ]);
    const env = composeStepEnv({
      workflowEnv,
      secretKeys: ["TOKEN"],
      stepEnv: [
        { name: "GOOS", value: "darwin" },
        { name: "TOKEN", value: "shadow" },
      ],
      homeDir: "/tangled/home",
      path: nixeryPath("/tangled/home"),
    });
    assert.deepEqual(env, [
      { name: "CI", value: "true" },
      { name: "GOOS", value: "linux" },
      { name: "TANGLED_SHA", value: SHA_F },
      { name: "TOKEN", secret: "TOKEN" },
      { name: "GOOS", value: "darwin" },
      { name: "TOKEN", value: "shadow" },
      { name: "HOME", value: "/tangled/home" },
      {
        name: "PATH",
        value:
          "/tangled/home/.nix-profile/bin:/nix/var/nix/profiles/default/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      },
    ]);
  });

  it("no PATH entry when none is given (kubernetes images keep their own)", () => {
    const env = composeStepEnv({
      workflowEnv: [],
      secretKeys: [],
      stepEnv: [],
      homeDir: "/h",
      path: undefined,
    });
    assert.deepEqual(env, [{ name: "HOME", value: "/h" }]);
  });
});

describe("Gen2 variables (spec §9), behind an explicit option", () => {
  const repo = { ...REPO, repoDid: "did:plc:repo" };
  it("off by default", () => {
    const env = asMap(frameworkEnv(pushTrigger("refs/heads/main", repo), pipeline, false));
    assert.equal(env.TANGLED_PIPELINE_KIND, undefined);
    assert.equal(env.TANGLED_REPO_URL, `https://knot1.tangled.sh/${REPO.did}/core`);
  });
  it("kind, repo DID and the repo-DID URL (dev: http, no localhost rewrite)", () => {
    const env = asMap(frameworkEnv(pushTrigger("refs/heads/main", repo), pipeline, false, true));
    assert.equal(env.TANGLED_PIPELINE_KIND, "push");
    assert.equal(env.TANGLED_REPO_REPO_DID, "did:plc:repo");
    assert.equal(env.TANGLED_REPO_URL, "https://knot1.tangled.sh/did:plc:repo");
    const dev = asMap(
      frameworkEnv(pushTrigger("refs/heads/main", { ...repo, knot: "localhost:1" }), pipeline, true, true),
    );
    assert.equal(dev.TANGLED_REPO_URL, "http://localhost:1/did:plc:repo");
  });
  it("a Gen1 trigger without repo DID keeps the Gen1 URL", () => {
    const env = asMap(frameworkEnv(pushTrigger("refs/heads/main"), pipeline, false, true));
    assert.equal(env.TANGLED_REPO_URL, `https://knot1.tangled.sh/${REPO.did}/core`);
    assert.equal(env.TANGLED_REPO_REPO_DID, undefined);
  });
  it("manual runs get SHA variables, and ref variables when a ref is given", () => {
    const t = { ...manualTrigger(), manual: { sha: SHA_A, ref: "refs/tags/v2" } };
    const env = asMap(frameworkEnv(t, pipeline, false, true));
    assert.deepEqual(
      [env.TANGLED_SHA, env.TANGLED_COMMIT_SHA, env.TANGLED_REF, env.TANGLED_REF_NAME, env.TANGLED_REF_TYPE],
      [SHA_A, SHA_A, "refs/tags/v2", "v2", "tag"],
    );
    assert.equal(asMap(frameworkEnv(t, pipeline, false)).TANGLED_SHA, undefined);
  });
});
