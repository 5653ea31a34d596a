/**
 * `engine: microvm` under `loom run`. On the host: before it runs, one warning says exactly what
 * is left out (the image, services, virtualisation, dependencies with no nix to set them up),
 * then the steps run. In containers (docker/podman): the image name mapped as a cluster without
 * microvm.images maps it, the image's /nix copied for the workflow's user by a first container
 * and mounted at /nix in the runner's; services and virtualisation said to be left out. What can
 * be checked with a docker CLI and no daemon: the exact command lines, that the real CLI parses
 * them, the copy's removal. A run inside a real container is NOT checked here (no daemon).
 */
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { containerCaveats, hostCaveats } from "../../src/cli/host.ts";
import { microvmContainerImage } from "../../src/cli/microvm.ts";
import { containerCommand } from "../../src/engine/local/container.ts";
import {
  microvmRunnerArgs,
  nixCopyCommand,
  nixStoreDir,
  removeNixDir,
} from "../../src/engine/local/microvm.ts";
import { compileWorkflows, parseWorkflow, resolveWorkflow } from "../../src/workflow/index.ts";
import { pushTrigger } from "../../src/workflow/testkit.ts";
import { type Sandbox, sandbox, shown } from "../cli/support.ts";

const hasDocker = (() => {
  try {
    execFileSync("docker", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

const COPY = {
  image: "docker.io/nixos/nix:2.28.3",
  architecture: "amd64",
  nixDir: "/tmp/loom-run-x/runs/loom-w.nix",
  uid: 1000,
  gid: 1000,
  cliEnv: { HOME: "/home/me" },
} as const;

let box: Sandbox;
before(async () => {
  box = await sandbox();
  await box.commit({
    ".tangled/workflows/services.yml": [
      "when:\n  - event: [push]\n    branch: [main]",
      "engine: microvm",
      "image: nixos",
      "services:\n  redis: true\n  postgresql: {enable: true, ensureDatabases: [app]}",
      'steps:\n  - name: where\n    command: |\n      echo "nix: $NIX_CONFIG" | head -1',
      "",
    ].join("\n"),
  });
});
after(() => box.remove());

describe("loom run of microvm workflows on the host", () => {
  it("says what it leaves out before it runs, then runs the steps", async () => {
    const r = await box.loom(["run", "--engine", "host"]);
    assert.equal(r.code, 0, shown(r));
    const warnings = r.stderr.split("\n").filter((l) => l.startsWith("warning: "));
    assert.deepEqual(warnings, [
      "warning: services.yml runs on this host, not in a container: image nixos is not used; services not started: redis, postgresql",
    ]);
    assert.match(r.stdout, /nix: experimental-features = nix-command flakes/);
    assert.match(r.stdout, /✔ services\.yml success/);
  });

  it("names the dependencies not on PATH when there is no nix for the dev shell, and only then", async () => {
    const text =
      "engine: microvm\ndependencies:\n  - git\n  - loom-test-absent-tool\n  - github:nixos/nixpkgs#hello\nsteps:\n  - command: x\n";
    const { record } = compileWorkflows(
      [{ name: "deps.yml", content: text }],
      pushTrigger("refs/heads/main"),
    );
    const wf = record!.workflows[0]!;
    const resolved = resolveWorkflow(wf, pushTrigger("refs/heads/main"), {
      pipeline: { knot: "localhost", rkey: "r" },
    });
    assert.ok(resolved.ok);
    const parsed = parseWorkflow("deps.yml", text).workflow!;
    const bin = join(box.root, "bin");
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, "git"), "", { mode: 0o755 });
    assert.equal(
      hostCaveats(resolved.plan, parsed, bin, "amd64"),
      "deps.yml runs on this host, not in a container: image nixos is not used; dependencies not on PATH (and no nix for the dev shell): loom-test-absent-tool, github:nixos/nixpkgs#hello",
    );
    // virtualisation.docker: the daemon is not provided, and its CLI (docker-client) comes from
    // the dev shell too.
    const docker = `${text.replace("steps:", "virtualisation: {docker: true}\nsteps:")}`;
    const dockerPlan = resolveWorkflow(
      compileWorkflows([{ name: "deps.yml", content: docker }], pushTrigger("refs/heads/main")).record!
        .workflows[0]!,
      pushTrigger("refs/heads/main"),
      { pipeline: { knot: "localhost", rkey: "r" } },
    );
    assert.ok(dockerPlan.ok);
    assert.equal(
      hostCaveats(dockerPlan.plan, parseWorkflow("deps.yml", docker).workflow!, bin, "amd64"),
      "deps.yml runs on this host, not in a container: image nixos is not used; dependencies not on PATH (and no nix for the dev shell): loom-test-absent-tool, github:nixos/nixpkgs#hello, docker-client; virtualisation not provided: docker",
    );
    await writeFile(join(bin, "nix"), "", { mode: 0o755 });
    assert.equal(
      hostCaveats(resolved.plan, parsed, bin, "amd64"),
      "deps.yml runs on this host, not in a container: image nixos is not used",
    );
  });
});

describe("loom run of microvm workflows in containers", () => {
  it("maps the image name as a cluster without microvm.images does; an unknown name is refused", () => {
    const plan = {
      engine: "microvm",
      image: "nixos",
      microvm: { image: "nixos", services: [], virtualisation: [] },
    };
    assert.deepEqual(microvmContainerImage(plan as never), { ok: true, image: "docker.io/nixos/nix:2.28.3" });
    assert.deepEqual(
      microvmContainerImage({
        ...plan,
        image: "alpine",
        microvm: { ...plan.microvm, image: "alpine" },
      } as never),
      {
        ok: false,
        message: 'microvm image "alpine" has no OCI image for loom run (it knows nixos)',
      },
    );
    assert.deepEqual(microvmContainerImage({ engine: "nixery", image: "nixery.tangled.sh/go" } as never), {
      ok: true,
      image: "nixery.tangled.sh/go",
    });
  });

  it("says which services and virtualisation it leaves out", () => {
    const plan = {
      workflowName: "w.yml",
      microvm: { image: "nixos", services: ["redis"], virtualisation: ["docker"] },
    };
    assert.equal(
      containerCaveats(plan as never, "docker"),
      "w.yml runs in docker: services not started: redis; virtualisation not provided: docker",
    );
    assert.equal(containerCaveats({ workflowName: "w.yml" } as never, "docker"), undefined);
  });

  it("copies the image's /nix as the workflow's user, then mounts the copy at /nix in the runner's container", () => {
    assert.equal(
      nixStoreDir("/tmp/runs", "localhost-local1-ci.yml"),
      "/tmp/runs/loom-localhost-local1-ci.yml.nix",
    );
    assert.deepEqual(nixCopyCommand({ cli: "docker", ...COPY }), [
      "env",
      "HOME=/home/me",
      "docker",
      "run",
      "--rm",
      "--platform",
      "linux/amd64",
      "--user",
      "1000:1000",
      "--volume",
      "/tmp/loom-run-x/runs/loom-w.nix:/loom/nix",
      "--entrypoint",
      "sh",
      "docker.io/nixos/nix:2.28.3",
      "-c",
      "cp -a /nix/. /loom/nix/",
    ]);
    assert.deepEqual(nixCopyCommand({ cli: "podman", ...COPY }).slice(6, 8), [
      "linux/amd64",
      "--userns=keep-id",
    ]);
    const runner = containerCommand({
      cli: "docker",
      name: "loom-w",
      image: COPY.image,
      architecture: "amd64",
      runsDir: "/tmp/loom-run-x/runs",
      bundleDir: "/opt/loom/dist/runner-bundle-amd64",
      uid: 1000,
      gid: 1000,
      secretKeys: [],
      cliEnv: {},
      extraArgs: microvmRunnerArgs(COPY.nixDir),
    });
    assert.deepEqual(runner.slice(-6), [
      "/opt/loom/dist/runner-bundle-amd64:/opt/loom-runner:ro",
      "--volume",
      "/tmp/loom-run-x/runs/loom-w.nix:/nix",
      "--entrypoint",
      "/opt/loom-runner/loom-runner",
      COPY.image,
    ]);
  });

  it("the real docker CLI parses the copy's command line (it gets as far as the missing daemon)", {
    skip: !hasDocker && "no docker CLI",
  }, async () => {
    const argv = nixCopyCommand({
      cli: "docker",
      ...COPY,
      cliEnv: { HOME: box.home, DOCKER_HOST: `unix://${join(box.root, "no-daemon.sock")}` },
    });
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile(argv[0]!, argv.slice(1), (err, _out, stderr) =>
        resolve({ code: err ? (child.exitCode ?? 1) : 0, stderr }),
      );
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Cannot connect to the Docker daemon/);
    assert.doesNotMatch(r.stderr, /unknown flag|invalid|usage/i);
  });

  it("removes the copy even though store folders are read-only", async () => {
    const nixDir = join(box.root, "copy.nix");
    const store = join(nixDir, "store", "abc-hello", "bin");
    await mkdir(store, { recursive: true });
    await writeFile(join(store, "hello"), "#!/bin/sh\n", { mode: 0o555 });
    await chmod(store, 0o555);
    await chmod(join(nixDir, "store", "abc-hello"), 0o555);
    await removeNixDir(nixDir);
    assert.equal(existsSync(nixDir), false);
  });
});
