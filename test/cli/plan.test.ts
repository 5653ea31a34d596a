/**
 * `loom plan` as a user runs it: the real CLI on the working tree of a real git repository, fed
 * a trigger file; only stdout, stderr and the exit code are looked at.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { lines, type Sandbox, sandbox, shown } from "./support.ts";

const CI = `when:
  - event: [push]
    branch: [main]
engine: nixery
dependencies:
  nixpkgs: [go]
environment:
  GREETING: hello
steps:
  - name: build
    command: go build ./... && echo "$GREETING"
    environment:
      CGO_ENABLED: 0
`;
const K8S = `when:
  - event: push
    branch: main
engine: kubernetes
image: golang:1.24
steps:
  - name: test
    command: go test ./...
`;
const PR = `when:
  - event: [pull_request]
    branch: [main]
engine: kubernetes
image: golang:1.24
steps:
  - command: go vet ./...
`;

/** In the environment of `loom plan`: it must show up nowhere. */
const SECRET = "plan-must-not-show-Yx7q";
const NEW_SHA = "1111111111111111111111111111111111111111";
const ZERO_SHA = "0".repeat(40);
const REPO = { defaultBranch: "", did: "did:plc:abc123", knot: "knot.example.com", repo: "demo" };

let box: Sandbox;
let pushTrigger: string;
let otherTrigger: string;
let badTrigger: string;

before(async () => {
  box = await sandbox();
  await box.commit({
    ".tangled/workflows/ci.yml": CI,
    ".tangled/workflows/k8s.yml": K8S,
    ".tangled/workflows/pr.yml": PR,
  });
  const push = (ref: string, newSha = NEW_SHA) => ({
    kind: "push",
    repo: REPO,
    push: { ref, oldSha: ZERO_SHA, newSha },
  });
  pushTrigger = join(box.root, "push.json");
  otherTrigger = join(box.root, "other.json");
  badTrigger = join(box.root, "bad.json");
  await writeFile(pushTrigger, JSON.stringify(push("refs/heads/main")));
  await writeFile(otherTrigger, JSON.stringify(push("refs/heads/other")));
  await writeFile(badTrigger, JSON.stringify(push("refs/heads/main", "HEAD")));
});
after(() => box.remove());

const SKIPPED_PR = "warning: pr.yml:1:1: workflow skipped: did not match trigger push\n";

/** The record a knot would emit for the push to main: Go's field order, `$type` "", clone defaults. */
const RECORD = {
  $type: "",
  triggerMetadata: {
    kind: "push",
    push: { newSha: NEW_SHA, oldSha: ZERO_SHA, ref: "refs/heads/main" },
    repo: REPO,
  },
  workflows: [
    { clone: { depth: 0, skip: false, submodules: false }, engine: "nixery", name: "ci.yml", raw: CI },
    { clone: { depth: 0, skip: false, submodules: false }, engine: "kubernetes", name: "k8s.yml", raw: K8S },
  ],
};

/** Every step's environment before its own (spec §7.1) for RECORD with rkey 3labc. */
const FRAMEWORK_ENV = [
  "CI=true",
  "TANGLED_PIPELINE_ID=at://did:web:knot.example.com/sh.tangled.pipeline/3labc",
  "TANGLED_REPO_KNOT=knot.example.com",
  "TANGLED_REPO_DID=did:plc:abc123",
  "TANGLED_REPO_NAME=demo",
  "TANGLED_REPO_DEFAULT_BRANCH=",
  "TANGLED_REPO_URL=https://knot.example.com/did:plc:abc123/demo",
  "TANGLED_REF=refs/heads/main",
  "TANGLED_REF_NAME=main",
  "TANGLED_REF_TYPE=branch",
  `TANGLED_SHA=${NEW_SHA}`,
  `TANGLED_COMMIT_SHA=${NEW_SHA}`,
];

describe("loom plan", { concurrency: true }, () => {
  it("prints the sh.tangled.pipeline record for a push, and why a workflow was left out", async () => {
    const r = await box.loom(["plan", "--trigger", pushTrigger]);
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stderr, SKIPPED_PR);
    assert.equal(r.stdout, `${JSON.stringify(RECORD, null, 2)}\n`);
  });

  it("--json: one JSON object with the record and the diagnostics", async () => {
    const r = await box.loom(["plan", "--json", "--trigger", pushTrigger]);
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stderr, "");
    assert.equal(lines(r.stdout).length, 1);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(
      out.record.workflows.map((w: { name: string }) => w.name),
      ["ci.yml", "k8s.yml"],
    );
    assert.deepEqual(out, {
      record: RECORD,
      diagnostics: [
        {
          severity: "warning",
          kind: "workflow skipped",
          message: "did not match trigger push",
          file: "pr.yml",
          line: 1,
          column: 1,
        },
      ],
    });
  });

  it("--resolve: every workflow's steps with their environment, no secret value", async () => {
    const r = await box.loom(["plan", "--trigger", pushTrigger, "--resolve", "--rkey", "3labc"], {
      env: { TOKEN: SECRET },
    });
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stderr, SKIPPED_PR);
    assert.ok(!(r.stdout + r.stderr).includes(SECRET));
    const out = lines(r.stdout);
    assert.deepEqual(
      out.filter((l) => /^(# |step )/.test(l)),
      [
        "# ci.yml: nixery on amd64, image nixery.tangled.sh/go/bash/git/coreutils/nix",
        "step 0 (system): Configure Nix",
        "step 1 (system): Clone repository into workspace",
        "step 2 (user): build",
        "# k8s.yml: kubernetes on amd64, image golang:1.24",
        "step 0 (system): Clone repository into workspace",
        "step 1 (user): test",
      ],
    );
    const block = (header: string) => {
      const start = out.indexOf(header);
      const end = out.indexOf("", start);
      return out.slice(start, end === -1 ? undefined : end);
    };
    assert.deepEqual(block("step 2 (user): build"), [
      "step 2 (user): build",
      '  $ go build ./... && echo "$GREETING"',
      "  GREETING=hello",
      ...FRAMEWORK_ENV.map((e) => `  ${e}`),
      "  CGO_ENABLED=0",
      "  HOME=/tangled/home",
      "  PATH=/tangled/home/.nix-profile/bin:/nix/var/nix/profiles/default/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ]);
    assert.deepEqual(block("step 0 (system): Clone repository into workspace").slice(0, 5), [
      "step 0 (system): Clone repository into workspace",
      "  $ git init",
      "  $ git remote add origin https://knot.example.com/did:plc:abc123/demo",
      `  $ git fetch --depth=1 origin ${NEW_SHA}`,
      "  $ git checkout FETCH_HEAD",
    ]);
    assert.deepEqual(block("step 1 (user): test"), [
      "step 1 (user): test",
      "  $ go test ./...",
      ...FRAMEWORK_ENV.map((e) => `  ${e}`),
      "  HOME=/tangled/home",
    ]);
  });

  it("--resolve --json: the plans hold names and values only, no secret entry", async () => {
    const r = await box.loom(["plan", "--trigger", pushTrigger, "--resolve", "--json"], {
      env: { TOKEN: SECRET },
    });
    assert.equal(r.code, 0, shown(r));
    assert.ok(!(r.stdout + r.stderr).includes(SECRET));
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.planErrors, []);
    assert.deepEqual(
      out.plans.map((p: { workflowName: string; steps: { name: string }[] }) => [
        p.workflowName,
        p.steps.map((s) => s.name),
      ]),
      [
        ["ci.yml", ["Configure Nix", "Clone repository into workspace", "build"]],
        ["k8s.yml", ["Clone repository into workspace", "test"]],
      ],
    );
    for (const plan of out.plans) {
      assert.deepEqual(plan.secretKeys, []);
      for (const step of plan.steps) {
        for (const e of step.env) assert.deepEqual(Object.keys(e), ["name", "value"], JSON.stringify(e));
      }
    }
  });

  it("a trigger no workflow matches: no pipeline, exit 0", async () => {
    const r = await box.loom(["plan", "--trigger", otherTrigger]);
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stdout, "no workflow matches this trigger: a knot would emit no pipeline\n");
    assert.deepEqual(
      lines(r.stderr),
      ["ci.yml", "k8s.yml", "pr.yml"].map(
        (f) => `warning: ${f}:1:1: workflow skipped: did not match trigger push`,
      ),
    );
  });

  it("an invalid trigger file: exit 2, every bad field named", async () => {
    const r = await box.loom(["plan", "--trigger", badTrigger]);
    assert.equal(r.code, 2, shown(r));
    assert.equal(r.stdout, "");
    assert.equal(
      r.stderr,
      `error: ${badTrigger}: invalid trigger metadata:\n  triggerMetadata.push.newSha: must be a 40-character hex SHA\n`,
    );
  });

  it("without --trigger: exit 2 with the usage", async () => {
    const r = await box.loom(["plan", "--resolve"]);
    assert.equal(r.code, 2, shown(r));
    assert.equal(r.stdout, "");
    assert.ok(
      r.stderr.startsWith("loom: plan needs --trigger FILE.json\n\nusage: loom <command> [options]\n"),
    );
  });

  it("a DIR that does not exist is an error, not a repository without workflows", async () => {
    const r = await box.loom(["plan", "--trigger", pushTrigger, "no-such-dir"]);
    assert.equal(r.code, 1, shown(r));
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, "loom: no-such-dir: no such directory\n");
  });
});
