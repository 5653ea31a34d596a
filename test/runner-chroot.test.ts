/**
 * The runner bundle inside a root that holds nothing but Debian's busybox-static, /dev/null and
 * the bundle: no Node, no libc, no bash, no /proc. This is the "any image with /bin/sh" promise.
 *
 * Both bundles, linux/amd64 and linux/arm64, each in a root of its own architecture's busybox.
 * The other architecture's root runs under qemu-user-static through binfmt_misc (make test-deps:
 * hack/install-system-deps.sh, hack/runner-cross.sh, hack/qemu-binfmt.sh): the launcher, the
 * loader, Node and every step's busybox are that architecture's binaries.
 */
import assert from "node:assert/strict";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  ARCH_INFO,
  ARCHES,
  type BundleArch,
  buildRunnerBundle,
  hostArch,
} from "../scripts/build-runner-bundle.ts";
import { podFailure } from "../src/controller/observe.ts";
import type { RunnerSpec } from "../src/runner/protocol.ts";
import { busyboxRoot, chroot, linkTree, ofType, ROOT_SKIP, text } from "./runner/chroot.ts";

const EMPTY: RunnerSpec = { version: 1, workspace: "/w", timeoutSeconds: 0, heartbeatSeconds: 0, steps: [] };

/** The chroot shares the host's pid namespace, so the host's /proc shows if a process survived. */
async function assertGone(pid: number): Promise<void> {
  assert.ok(pid > 0, "the step printed its background pid");
  const gone = () => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
      return stat.slice(stat.lastIndexOf(")") + 2)[0] === "Z";
    } catch {
      return true;
    }
  };
  for (let i = 0; i < 100 && !gone(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(gone(), `background process ${pid} still alive`);
}

for (const arch of ARCHES) describeChroot(arch);

function describeChroot(arch: BundleArch): void {
  describe(`runner bundle linux/${arch} in a busybox-only linux/${arch} chroot`, { skip: ROOT_SKIP }, () => {
    let root = "";
    const launcher = "/opt/somewhere/loom/loom-runner";
    // NODE_OPTIONS would break the runner's own Node if the launcher passed it on.
    const env = {
      PATH: "/bin",
      LOOM_SECRET_TOKEN: "chroot-secret-42",
      IMAGE_VAR: "from-image",
      NODE_OPTIONS: "--require /image-only.js",
    };

    before(async () => {
      // busyboxRoot fails (not skips) when the other architecture cannot run: CI must prove it.
      const bundle = await buildRunnerBundle({ arch });
      root = await busyboxRoot(arch);
      linkTree(bundle.dir, join(root, "opt", "somewhere", "loom"));
      assert.deepEqual(readdirSync(root).sort(), ["bin", "dev", "opt"]);
    });
    after(() => {
      if (root !== "") rmSync(root, { recursive: true, force: true });
    });

    it("runs a real workflow: env, streams, masking, a failing step", async () => {
      const spec: RunnerSpec = {
        version: 1,
        workspace: "/tangled/workspace",
        timeoutSeconds: 30,
        heartbeatSeconds: 0,
        steps: [
          {
            id: 0,
            name: "build",
            kind: "user",
            command:
              'echo "pwd=$(pwd) image=$IMAGE_VAR mode=$MODE node=$NODE_OPTIONS"; echo to-stderr >&2; ' +
              "uname -m; " +
              // Spec §5.3: the value, base64 with and without padding, also split across writes.
              'echo "token=$TOKEN"; printf %s "$TOKEN" | base64; printf %s "$TOKEN" | base64 | tr -d =; ' +
              "printf 'split: chroot-sec'; sleep 0.1; printf 'ret-42\\n'; echo \"$TOKEN\" >&2; " +
              'echo "$TOKEN" | wc -c; ' +
              'env | grep -c "^LOOM_" || true',
            env: [
              { name: "MODE", value: "debug" },
              { name: "MODE", value: "release" },
              { name: "TOKEN", secret: "TOKEN" },
            ],
          },
          { id: 1, name: "fails", kind: "user", command: "echo failing; exit 4", env: [] },
          { id: 2, name: "never", kind: "user", command: "echo never", env: [] },
        ],
      };
      writeFileSync(join(root, "spec.json"), JSON.stringify(spec));
      const t0 = performance.now();
      const run = await chroot(root, [launcher, "/spec.json"], env);
      const ms = performance.now() - t0;
      assert.equal(run.code, 4, run.stderr);
      const hello = ofType(run.events, "hello")[0];
      assert.equal(run.events[0]?.type, "hello");
      assert.equal(hello?.shell, "/bin/sh", "no bash in the root: /bin/sh is used");
      assert.equal(
        text(run.events, 0, "stdout"),
        `pwd=/tangled/workspace image=from-image mode=release node=--require /image-only.js\n${ARCH_INFO[arch].uname}\ntoken=***\n***\n***\nsplit: ***\n17\n0\n`,
      );
      assert.equal(text(run.events, 0, "stderr"), "to-stderr\n***\n");
      assert.equal(text(run.events, 1, "stdout"), "failing\n");
      assert.deepEqual(
        ofType(run.events, "step_end").map((e) => [e.step, e.exitCode]),
        [
          [0, 0],
          [1, 4],
        ],
      );
      assert.deepEqual(ofType(run.events, "result")[0] && { ...ofType(run.events, "result")[0], time: "" }, {
        type: "result",
        time: "",
        status: "failed",
        exitCode: 4,
        failedStep: 1,
        masked: 5,
      });
      assert.ok(!JSON.stringify(run.events).includes("chroot-secret-42"));
      console.log(
        `# linux/${arch} bundle run in busybox chroot: ${ms.toFixed(0)} ms for 3 steps, with Node start-up`,
      );
    });

    it("starts through a symlink on PATH (the launcher finds its real directory)", async () => {
      const spec: RunnerSpec = {
        version: 1,
        workspace: "/w",
        timeoutSeconds: 0,
        heartbeatSeconds: 0,
        steps: [],
      };
      writeFileSync(join(root, "empty.json"), JSON.stringify(spec));
      symlinkSync("../opt/somewhere/loom/loom-runner", join(root, "bin", "loom-runner"));
      const run = await chroot(root, ["loom-runner", "/empty.json"], env);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(ofType(run.events, "result")[0]?.status, "success");
    });

    it("refuses to start a bundle of the other architecture: RunnerFailed, not a failed step", async () => {
      const other = ARCHES.find((a) => a !== arch)!;
      const bundle = await buildRunnerBundle({ arch: other });
      linkTree(bundle.dir, join(root, "opt", "other"));
      writeFileSync(join(root, "none.json"), JSON.stringify({ ...EMPTY, workspace: "/w" }));
      const run = await chroot(root, ["/opt/other/loom-runner", "/none.json"], env);
      assert.equal(run.code, 125);
      assert.deepEqual(run.events, [], "the runner never started");
      assert.equal(
        run.stderr,
        `loom-runner: cannot start: this runner bundle is for linux/${other}, the machine is ${ARCH_INFO[arch].uname}\n`,
      );
      // What the controller makes of it (the log is the termination message: FallbackToLogsOnError).
      const verdict = podFailure(
        {
          status: {
            phase: "Failed",
            containerStatuses: [
              {
                name: "runner",
                image: "img",
                imageID: "",
                ready: false,
                restartCount: 0,
                state: { terminated: { exitCode: run.code!, reason: "Error", message: run.stderr } },
              },
            ],
          },
        },
        new Date(),
      );
      assert.deepEqual(
        [verdict?.reason, verdict?.message],
        [
          "RunnerFailed",
          `the runner could not start: this runner bundle is for linux/${other}, the machine is ${ARCH_INFO[arch].uname}`,
        ],
      );
    });

    it("refuses to start when its loader cannot run (a noexec volume, a broken copy)", async () => {
      const dir = join(root, "opt", "noexec");
      mkdirSync(join(dir, "lib"), { recursive: true });
      copyFileSync(join(root, "opt", "somewhere", "loom", "loom-runner"), join(dir, "loom-runner"));
      // A copy, not a link: the bundle's own loader keeps its mode.
      copyFileSync(
        join(root, "opt", "somewhere", "loom", "lib", ARCH_INFO[arch].loader),
        join(dir, "lib", ARCH_INFO[arch].loader),
      );
      chmodSync(join(dir, "lib", ARCH_INFO[arch].loader), 0o644);
      writeFileSync(join(root, "none.json"), JSON.stringify({ ...EMPTY, workspace: "/w" }));
      const run = await chroot(root, ["/opt/noexec/loom-runner", "/none.json"], env);
      assert.equal(run.code, 125);
      assert.equal(
        run.stderr,
        `loom-runner: cannot start: /opt/noexec/lib/${ARCH_INFO[arch].loader} does not run here (linux/${arch} bundle, machine ${ARCH_INFO[arch].uname})\n`,
      );
    });

    it("times out without /proc: the step's group is killed, result timeout", async () => {
      const spec: RunnerSpec = {
        version: 1,
        workspace: "/w",
        // Room for the step to start and print its child's pid first: under emulation on a
        // loaded machine that alone can take a good part of a second.
        timeoutSeconds: arch === hostArch() ? 0.5 : 3,
        heartbeatSeconds: 0,
        steps: [{ id: 0, name: "slow", kind: "user", command: "sleep 60 & echo $!; wait", env: [] }],
      };
      writeFileSync(join(root, "timeout.json"), JSON.stringify(spec));
      const run = await chroot(root, [launcher, "/timeout.json"], env);
      assert.equal(run.code, 124, run.stderr);
      assert.equal(ofType(run.events, "result")[0]?.status, "timeout");
      assert.equal(ofType(run.events, "step_end")[0]?.timedOut, true);
      await assertGone(Number(text(run.events, 0, "stdout").trim()));
    });

    it("is cancelled by SIGTERM without /proc: the step's group dies, result cancelled", async () => {
      const spec: RunnerSpec = {
        version: 1,
        workspace: "/w",
        timeoutSeconds: 0,
        heartbeatSeconds: 0,
        steps: [{ id: 0, name: "hang", kind: "user", command: "sleep 60 & echo $!; wait", env: [] }],
      };
      writeFileSync(join(root, "cancel.json"), JSON.stringify(spec));
      let signalled = false;
      // Once the step has printed its child's pid, cancel as Kubernetes would.
      const run = await chroot(root, [launcher, "/cancel.json"], env, (pid, soFar) => {
        if (!signalled && soFar.includes('"type":"output"')) {
          signalled = true;
          process.kill(pid, "SIGTERM");
        }
      });
      assert.equal(run.code, 143, run.stderr);
      assert.equal(ofType(run.events, "result")[0]?.status, "cancelled");
      assert.equal(ofType(run.events, "step_end")[0]?.cancelled, true);
      await assertGone(Number(text(run.events, 0, "stdout").trim()));
    });
  });
}
