/**
 * `loom run --engine docker|podman`: what can be checked on a machine with a container CLI but
 * no daemon. The exact command lines; that the real `docker` CLI parses them (it reports the
 * missing daemon, not a bad flag); the clone done before the runner starts, with real git, as
 * the pod's init container does; the fallback to the host and the refusal of an engine that
 * cannot run. A run inside a real container is NOT checked here (no daemon can run).
 */
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  cloneBeforeRun,
  containerCommand,
  containerName,
  containerPlan,
} from "../../src/engine/local/container.ts";
import { createRunDir } from "../../src/engine/local/workspace.ts";
import type { RunPlan } from "../../src/workflow/index.ts";
import { type Sandbox, sandbox, shown } from "../cli/support.ts";

const hasDocker = (() => {
  try {
    execFileSync("docker", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

const OPTS = {
  name: "loom-localhost-local1-ci.yml",
  image: "golang:1.24",
  architecture: "arm64",
  runsDir: "/tmp/loom-run-x/runs",
  bundleDir: "/opt/loom/dist/runner-bundle-arm64",
  uid: 1000,
  gid: 1000,
  secretKeys: ["TOKEN", "NPM_KEY"],
  cliEnv: { HOME: "/home/me", DOCKER_HOST: "unix:///run/user/1000/docker.sock" },
} as const;

let box: Sandbox;
before(async () => {
  box = await sandbox();
  await box.commit({
    ".tangled/workflows/ci.yml":
      "when:\n  - event: [push]\n    branch: [main]\nengine: nixery\nsteps:\n  - command: echo hi\n",
    "hello.txt": "hello from the repository\n",
  });
});
after(() => box.remove());

describe("container command lines", () => {
  it("docker: platform, user, the run folder at its own path, the bundle read-only, secret names only", () => {
    assert.deepEqual(containerCommand({ cli: "docker", ...OPTS }), [
      "env",
      "HOME=/home/me",
      "DOCKER_HOST=unix:///run/user/1000/docker.sock",
      "docker",
      "run",
      "--rm",
      "--init",
      "--name",
      "loom-localhost-local1-ci.yml",
      "--platform",
      "linux/arm64",
      "--user",
      "1000:1000",
      "--volume",
      "/tmp/loom-run-x/runs:/tmp/loom-run-x/runs",
      "--volume",
      "/opt/loom/dist/runner-bundle-arm64:/opt/loom-runner:ro",
      "--env",
      "LOOM_SECRET_TOKEN",
      "--env",
      "LOOM_SECRET_NPM_KEY",
      "--entrypoint",
      "/opt/loom-runner/loom-runner",
      "golang:1.24",
    ]);
  });

  it("podman keeps the caller's user with --userns=keep-id", () => {
    const argv = containerCommand({ cli: "podman", ...OPTS, cliEnv: {} });
    assert.deepEqual(argv.slice(0, 3), ["env", "podman", "run"]);
    assert.ok(argv.includes("--userns=keep-id"));
    assert.ok(!argv.includes("--user"));
  });

  it("names are what both CLIs accept", () => {
    assert.equal(containerName("localhost-local1-my build.yml"), "loom-localhost-local1-my-build.yml");
  });

  it("the real docker CLI parses the command line (it gets as far as the missing daemon)", {
    skip: !hasDocker && "no docker CLI",
  }, async () => {
    const argv = [
      ...containerCommand({
        cli: "docker",
        ...OPTS,
        cliEnv: { HOME: box.home, DOCKER_HOST: `unix://${join(box.root, "no-daemon.sock")}` },
      }),
      "/tmp/loom-run-x/runs/x/spec.json",
    ];
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile(argv[0]!, argv.slice(1), (err, _out, stderr) =>
        resolve({ code: err ? (child.exitCode ?? 1) : 0, stderr }),
      );
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Cannot connect to the Docker daemon/);
    assert.doesNotMatch(r.stderr, /unknown flag|invalid|usage/i);
  });
});

describe("the clone before the runner", () => {
  it("containerPlan makes the clone step print the clone's log; cloneBeforeRun clones with real git", async () => {
    const sha = (await box.git("rev-parse", "HEAD")).trim();
    const plan = {
      wid: "w",
      steps: [
        { id: 0, name: "Clone repository into workspace", command: "git init …", kind: "system", env: [] },
        { id: 1, name: "s", command: "echo hi", kind: "user", env: [] },
      ],
      clone: { url: `file://${box.repo}`, sha, depth: 1, submodules: false, stepId: 0 },
    } as unknown as RunPlan;
    const changed = containerPlan(plan);
    assert.deepEqual(
      changed.steps.map((s) => s.command),
      ["cat ../clone.log", "echo hi"],
    );
    const dir = await createRunDir(join(box.root, "runs"), "w");
    await cloneBeforeRun(plan, dir, { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: box.home });
    assert.equal(await readFile(join(dir.workspace, "hello.txt"), "utf8"), "hello from the repository\n");
    assert.match(await readFile(join(dir.root, "clone.log"), "utf8"), new RegExp(`Checked out ${sha}`));
  });
});

describe("loom run --engine", { concurrency: true }, () => {
  const noDaemon = () => ({ DOCKER_HOST: `unix://${join(box.root, "no-daemon.sock")}` });

  it("docker without a daemon: refused in one sentence, exit 1", {
    skip: !hasDocker && "no docker CLI",
  }, async () => {
    const r = await box.loom(["run", "--engine", "docker"], { env: noDaemon() });
    assert.equal(r.code, 1, shown(r));
    assert.equal(r.stdout, "");
    assert.match(
      r.stderr,
      /^loom: docker cannot run containers here: Cannot connect to the Docker daemon at unix:\/\/.*\n$/,
    );
  });

  it("the default falls back to the host when no container CLI can run", async () => {
    const r = await box.loom(["run"], { env: noDaemon() });
    assert.equal(r.code, 0, shown(r));
    assert.match(r.stdout, /^ci\.yml \(nixery, [^)]*\)$/m);
    assert.match(r.stdout, /✔ ci\.yml success/);
  });

  it("--engine takes host, docker or podman", async () => {
    const r = await box.loom(["run", "--engine", "vm"]);
    assert.equal(r.code, 2, shown(r));
    assert.ok(r.stderr.startsWith("loom: --engine must be one of host, docker, podman\n"), r.stderr);
  });
});
