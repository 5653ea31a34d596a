import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { EnvEntry } from "../runner/protocol.ts";
import { compileWorkflows } from "./compile.ts";
import { planView } from "./print.ts";
import { type ResolveOptions, type RunPlan, resolveWorkflow, workflowId } from "./resolve.ts";
import { manualTrigger, prTrigger, pushTrigger, SHA_F } from "./testkit.ts";
import type { PipelineWorkflow, TriggerMetadata } from "./types.ts";

const opts: ResolveOptions = { pipeline: { knot: "knot1.tangled.sh", rkey: "3lxyz2abcde22" } };
const push = pushTrigger("refs/heads/main");

function workflow(raw: string, name = "ci.yml", trigger: TriggerMetadata = push): PipelineWorkflow {
  const r = compileWorkflows([{ name, content: raw }], trigger);
  assert.ok(r.record, JSON.stringify(r.diagnostics));
  return r.record.workflows[0]!;
}

function plan(raw: string, o: Partial<ResolveOptions> = {}, trigger: TriggerMetadata = push): RunPlan {
  const r = resolveWorkflow(workflow(raw, "ci.yml", trigger), trigger, { ...opts, ...o });
  assert.ok(r.ok, r.ok ? "" : r.error);
  return r.plan;
}

/** The value a step sees for `name`: the last entry wins. */
function seen(env: EnvEntry[], name: string): string | { secret: string } | undefined {
  const last = env.findLast((e) => e.name === name);
  if (last === undefined) return undefined;
  return "secret" in last ? { secret: last.secret } : last.value;
}

const nixery = `engine: nixery
dependencies:
  nixpkgs: [go, gcc]
  github:nixos/nixpkgs/nixpkgs-unstable: [bun]
  git+https://tangled.org/@example.com/my_pkg: [my_pkg]
environment:
  CGO_ENABLED: 1
  CI: "no"
steps:
  - name: build
    command: go build ./...
    environment:
      GOOS: darwin
  - name: test
    command: go test ./...
`;

describe("resolve: nixery (spec §2.3)", () => {
  const p = plan(nixery, { secretKeys: ["TOKEN"] });

  it("steps: Configure Nix, clone, install custom dependencies, then user steps; ids 0..", () => {
    assert.deepEqual(
      p.steps.map((s) => [s.id, s.kind, s.name]),
      [
        [0, "system", "Configure Nix"],
        [1, "system", "Clone repository into workspace"],
        [2, "system", "Install custom dependencies"],
        [3, "user", "build"],
        [4, "user", "test"],
      ],
    );
    assert.equal(p.steps[3]?.command, "go build ./...");
  });

  it("Configure Nix writes the user's nix.conf, not /etc/nix (pods run as UID 1000)", () => {
    assert.match(p.steps[0]!.command, /\$HOME\/\.config\/nix\/nix\.conf/);
    assert.match(p.steps[0]!.command, /extra-experimental-features = nix-command flakes/);
    assert.doesNotMatch(p.steps[0]!.command, /\/etc\/nix/);
  });

  it("install step: nix profile add for every non-nixpkgs registry, with NIX_* env", () => {
    const install = p.steps[2]!;
    assert.equal(
      install.command,
      "nix --extra-experimental-features nix-command --extra-experimental-features flakes profile add 'github:nixos/nixpkgs/nixpkgs-unstable#bun' 'git+https://tangled.org/@example.com/my_pkg#my_pkg'",
    );
    assert.equal(seen(install.env, "NIX_NO_COLOR"), "1");
    assert.equal(seen(install.env, "NIX_SHOW_DOWNLOAD_PROGRESS"), "0");
  });

  it("no install step when only nixpkgs is used", () => {
    const q = plan("engine: nixery\ndependencies:\n  nixpkgs: [go]\nsteps:\n  - command: x\n");
    assert.deepEqual(
      q.steps.map((s) => s.name),
      ["Configure Nix", "Clone repository into workspace", ""],
    );
  });

  it("image: nixery host / nixpkgs packages / bash/git/coreutils/nix; arm64 prefix", () => {
    assert.equal(p.image, "nixery.tangled.sh/go/gcc/bash/git/coreutils/nix");
    assert.equal(p.architecture, "amd64");
    const arm = plan(nixery, { nixeryHost: "nixery.example", defaultArchitecture: "arm64" });
    assert.equal(arm.image, "nixery.example/arm64/go/gcc/bash/git/coreutils/nix");
    assert.equal(plan("engine: nixery\n").image, "nixery.tangled.sh/bash/git/coreutils/nix");
  });

  it("every step's env: framework over workflow env, secrets, step env, HOME, PATH (spec §7.2)", () => {
    for (const step of p.steps) {
      assert.equal(seen(step.env, "CI"), "true", "framework wins over the workflow's CI");
      assert.equal(seen(step.env, "CGO_ENABLED"), "1");
      assert.equal(seen(step.env, "TANGLED_SHA"), SHA_F);
      assert.deepEqual(seen(step.env, "TOKEN"), { secret: "TOKEN" }, "secrets reach system steps too");
      assert.equal(seen(step.env, "HOME"), "/tangled/home");
      assert.match(String(seen(step.env, "PATH")), /^\/tangled\/home\/\.nix-profile\/bin:/);
      assert.deepEqual(step.env.at(-2), { name: "HOME", value: "/tangled/home" });
      assert.equal(step.env.at(-1)?.name, "PATH");
    }
    assert.equal(seen(p.steps[3]!.env, "GOOS"), "darwin");
    assert.equal(seen(p.steps[4]!.env, "GOOS"), undefined);
  });

  it("a flat dependency list is refused for nixery", () => {
    const r = resolveWorkflow(workflow("engine: nixery\ndependencies: [go]\n"), push, opts);
    assert.deepEqual(r, {
      ok: false,
      error: "engine nixery needs dependencies as a map of registry to packages, not a list",
    });
  });
});

describe("resolve: kubernetes (Loom)", () => {
  const k = plan(
    "engine: kubernetes\nimage: golang:1.23\narchitecture: arm64\nsteps:\n  - name: t\n    command: go test\n",
  );

  it("clone then user steps; image and architecture from the workflow", () => {
    assert.deepEqual(
      k.steps.map((s) => [s.id, s.kind, s.name]),
      [
        [0, "system", "Clone repository into workspace"],
        [1, "user", "t"],
      ],
    );
    assert.equal(k.image, "golang:1.23");
    assert.equal(k.architecture, "arm64");
    assert.equal(k.engine, "kubernetes");
  });

  it("does not set PATH: the image's own PATH is inherited", () => {
    for (const s of k.steps) assert.equal(seen(s.env, "PATH"), undefined);
    assert.deepEqual(k.steps[1]!.env.at(-1), { name: "HOME", value: "/tangled/home" });
  });

  it("architecture defaults to amd64 (or the configured default)", () => {
    assert.equal(plan("engine: kubernetes\nimage: alpine\n").architecture, "amd64");
    assert.equal(
      plan("engine: kubernetes\nimage: alpine\n", { defaultArchitecture: "arm64" }).architecture,
      "arm64",
    );
  });

  it("refuses a missing image and an unknown architecture", () => {
    assert.deepEqual(resolveWorkflow(workflow("engine: kubernetes\n"), push, opts), {
      ok: false,
      error: 'engine "kubernetes" requires "image"',
    });
    assert.deepEqual(
      resolveWorkflow(workflow("engine: kubernetes\nimage: a\narchitecture: x86\n"), push, opts),
      {
        ok: false,
        error: 'architecture must be amd64 or arm64, not "x86"',
      },
    );
  });
});

describe("resolve: general rules", () => {
  it('an unknown engine is exactly `unknown engine "<x>"`', () => {
    assert.deepEqual(resolveWorkflow(workflow("engine: docker\nimage: nixos\n"), push, opts), {
      ok: false,
      error: 'unknown engine "docker"',
    });
  });

  it("engine-only errors the knot let through fail here, with location", () => {
    const r = resolveWorkflow(workflow("engine: nixery\nsteps:\n  run: x\n"), push, opts);
    assert.deepEqual(r, { ok: false, error: "ci.yml:3:3: steps: expected a list of steps, found a mapping" });
  });

  it("wid = normalize(knot)-rkey-normalize(name) (spec §4.3)", () => {
    assert.equal(workflowId("localhost:5555", "3abc", "my build.yml"), "localhost-5555-3abc-my-build.yml");
    assert.equal(workflowId("k.example", "r", "a_b-c.d/é"), "k.example-r-a_b-c.d--");
    const p = plan("engine: nixery\n");
    assert.equal(p.wid, "knot1.tangled.sh-3lxyz2abcde22-ci.yml");
    assert.deepEqual(p.pipeline, opts.pipeline);
    assert.equal(p.workflowName, "ci.yml");
  });

  it("timeout defaults to 300 s; options override it and HOME", () => {
    assert.equal(plan("engine: nixery\n").timeoutSeconds, 300);
    const p = plan("engine: kubernetes\nimage: a\n", { timeoutSeconds: 60, homeDir: "/home/runner" });
    assert.equal(p.timeoutSeconds, 60);
    assert.equal(seen(p.steps[0]!.env, "HOME"), "/home/runner");
  });

  it("clone options come from the record, and skip leaves the empty step in place", () => {
    const p = plan("engine: kubernetes\nimage: a\nclone:\n  skip: true\nsteps:\n  - command: ls\n");
    assert.deepEqual(
      p.steps.map((s) => [s.id, s.name, s.command]),
      [
        [0, "", ""],
        [1, "", "ls"],
      ],
    );
  });

  it("opts.cloneUrl and dev mode reach the clone step", () => {
    const p = plan("engine: kubernetes\nimage: a\n", { cloneUrl: "/src/repo" });
    assert.match(p.steps[0]!.command, /^git remote add origin \/src\/repo$/m);
  });

  it("the clone step runs upstream's commands with git's hints silenced, on a real repo", () => {
    const dir = mkdtempSync(join(tmpdir(), "loom-clone-quiet-"));
    try {
      const git = (cwd: string, ...args: string[]) =>
        execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], {
          cwd,
          encoding: "utf8",
        });
      mkdirSync(join(dir, "src"));
      git(join(dir, "src"), "init", "-q");
      writeFileSync(join(dir, "src", "f"), "x");
      git(join(dir, "src"), "add", "f");
      git(join(dir, "src"), "commit", "-qm", "c");
      const sha = git(join(dir, "src"), "rev-parse", "HEAD").trim();
      const p = plan(
        "engine: kubernetes\nimage: a\n",
        { cloneUrl: join(dir, "src") },
        { ...push, push: { ...push.push!, newSha: sha } },
      );
      const clone = p.steps[0]!;
      assert.equal(clone.command.split("\n")[0], "git init", "the commands stay upstream's");
      mkdirSync(join(dir, "ws"));
      const env = Object.fromEntries(clone.env.flatMap((e) => ("value" in e ? [[e.name, e.value]] : [])));
      const run = spawnSync("sh", ["-c", clone.command], {
        cwd: join(dir, "ws"),
        env: { PATH: process.env.PATH, HOME: dir, GIT_CONFIG_NOSYSTEM: "1", ...env },
        encoding: "utf8",
      });
      assert.equal(run.status, 0, run.stderr);
      const out = run.stdout + run.stderr;
      assert.doesNotMatch(out, /hint:|detached HEAD/);
      assert.match(out, /HEAD is now at/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("PR and manual triggers resolve with their variables", () => {
    const pr = plan("engine: kubernetes\nimage: a\n", {}, prTrigger("main"));
    assert.equal(seen(pr.steps[0]!.env, "TANGLED_PR_TARGET_BRANCH"), "main");
    const manual = plan("engine: kubernetes\nimage: a\n", {}, manualTrigger([{ key: "env", value: "prod" }]));
    assert.equal(seen(manual.steps[0]!.env, "TANGLED_INPUT_ENV"), "prod");
  });

  it("the same inputs give the same plan (frozen, pure)", () => {
    assert.deepEqual(plan(nixery, { secretKeys: ["A"] }), plan(nixery, { secretKeys: ["A"] }));
  });
});

describe("planView", () => {
  it("shows secret entries as *** with the key name, and keeps plain values", () => {
    const view = planView(plan(nixery, { secretKeys: ["TOKEN"] }));
    const token = view.steps[0]!.env.find((e) => e.name === "TOKEN");
    assert.deepEqual(token, { name: "TOKEN", secret: "TOKEN", value: "***" });
    assert.deepEqual(
      view.steps[0]!.env.find((e) => e.name === "CI"),
      { name: "CI", value: "true" },
    );
    assert.deepEqual(view.secretKeys, ["TOKEN"]);
    JSON.stringify(view); // JSON-able
  });
});

describe("resolve with gen2", () => {
  it("passes the option to the environment and the clone step", () => {
    const trigger: TriggerMetadata = { ...push, repo: { ...push.repo, repoDid: "did:plc:r" } };
    const p = plan("engine: kubernetes\nimage: a\n", { gen2: true }, trigger);
    assert.equal(seen(p.steps[0]!.env, "TANGLED_PIPELINE_KIND"), "push");
    assert.match(p.steps[0]!.command, /^git remote add origin https:\/\/knot1\.tangled\.sh\/did:plc:r$/m);
  });
});

describe("clone data in the plan", () => {
  const k8s =
    "engine: kubernetes\nimage: alpine:3\nclone:\n  depth: 3\n  submodules: true\nsteps:\n  - name: t\n    command: true\n";
  it("records what the clone step fetches, with its step id", () => {
    const p = plan(k8s);
    const step = p.steps.find((s) => s.id === p.clone?.stepId);
    assert.equal(step?.name, "Clone repository into workspace");
    assert.deepEqual(p.clone, {
      url: "https://knot1.tangled.sh/did:plc:abcdefghijklmnopqrstuvwx/core",
      sha: SHA_F,
      depth: 3,
      submodules: true,
      stepId: 0,
    });
    assert.ok(step?.command.includes(`--depth=3 --recurse-submodules=yes origin ${SHA_F}`));
  });
  it("has none when the workflow skips cloning or the clone step is the error step", () => {
    assert.equal(plan("engine: kubernetes\nimage: alpine:3\nclone:\n  skip: true\n").clone, undefined);
    const broken = { ...push, push: undefined } as TriggerMetadata;
    const r = resolveWorkflow(workflow(k8s), broken, opts);
    assert.ok(r.ok);
    assert.equal(r.plan.clone, undefined);
  });
  it("puts the nixery clone after Configure Nix", () => {
    const p = plan(nixery);
    assert.equal(p.clone?.stepId, 1);
  });
});
