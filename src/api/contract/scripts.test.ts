/**
 * Runs the real init-container scripts with `sh` (and busybox's ash, the default images' shell,
 * when installed) against a local git repository, in a temporary folder.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { cloneScript, type ScriptPaths, setupScript } from "./scripts.ts";

const has = (cmd: string, ...args: string[]) => spawnSync(cmd, args, { stdio: "ignore" }).status === 0;
const shells: string[][] = [["sh"], ...(has("busybox", "true") ? [["busybox", "sh"]] : [])];
const skip = has("git", "--version") ? false : "git is not installed";

const root = mkdtempSync(join(tmpdir(), "loom-scripts-"));
after(() => rmSync(root, { recursive: true, force: true }));

const gitEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: "t",
  GIT_AUTHOR_EMAIL: "t@example.com",
  GIT_COMMITTER_NAME: "t",
  GIT_COMMITTER_EMAIL: "t@example.com",
  GIT_CONFIG_NOSYSTEM: "1",
  HOME: root,
};
const git = (cwd: string, ...args: string[]) =>
  execFileSync("git", args, { cwd, env: gitEnv, encoding: "utf8" }).trim();

/** A source repository with two commits on main. */
function sourceRepo(name: string): { url: string; first: string; second: string } {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  git(dir, "-c", "init.defaultBranch=main", "init", "-q");
  git(dir, "commit", "-q", "--allow-empty", "-m", "first");
  const first = git(dir, "rev-parse", "HEAD");
  git(dir, "commit", "-q", "--allow-empty", "-m", "second");
  return { url: `file://${dir}`, first, second: git(dir, "rev-parse", "HEAD") };
}

let counter = 0;
function pod(): ScriptPaths {
  const base = join(root, `pod-${counter++}`);
  const setup = join(base, "setup");
  mkdirSync(setup, { recursive: true });
  return {
    home: join(base, "tangled/home"),
    workspace: join(base, "tangled/workspace"),
    setup,
    cloneLog: join(setup, "clone.log"),
  };
}

function run(shell: string[], script: string, env: Record<string, string> = {}) {
  const [cmd, ...pre] = shell;
  return spawnSync(cmd!, [...pre, "-c", script], { env: { ...gitEnv, ...env }, encoding: "utf8" });
}

for (const shell of shells) {
  describe(`init container scripts under ${shell.join(" ")}`, { skip }, () => {
    const repo = sourceRepo(`source-${shell.join("-")}`);

    it("setup-user writes passwd/group/subuid/subgid and makes home and workspace", () => {
      const paths = pod();
      const result = run(shell, setupScript(paths));
      assert.equal(result.status, 0, result.stderr);
      assert.equal(
        readFileSync(join(paths.setup, "passwd"), "utf8"),
        `root:x:0:0:root:/root:/bin/sh\nrunner:x:1000:1000:Loom runner:${paths.home}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n`,
      );
      assert.equal(
        readFileSync(join(paths.setup, "group"), "utf8"),
        "root:x:0:\nrunner:x:1000:\nnogroup:x:65534:\n",
      );
      assert.equal(readFileSync(join(paths.setup, "subuid"), "utf8"), "runner:100000:65536\n");
      assert.ok(statSync(paths.home).isDirectory() && statSync(paths.workspace).isDirectory());
    });

    it("clone-repo checks out the pinned sha at depth 1 and logs it", () => {
      const paths = pod();
      assert.equal(run(shell, setupScript(paths)).status, 0);
      const env = {
        LOOM_CLONE_URL: repo.url,
        LOOM_CLONE_SHA: repo.first,
        LOOM_CLONE_DEPTH: "1",
        LOOM_CLONE_SUBMODULES: "false",
      };
      const result = run(shell, cloneScript(paths), env);
      assert.equal(result.status, 0, result.stdout + result.stderr);
      assert.equal(git(paths.workspace, "rev-parse", "HEAD"), repo.first);
      assert.equal(git(paths.workspace, "rev-list", "--count", "HEAD"), "1");
      const log = readFileSync(paths.cloneLog, "utf8");
      assert.match(log, new RegExp(`Checked out ${repo.first}: first\\n$`));
      assert.equal(result.stdout, log);
    });

    it("clone-repo takes the remote's HEAD when there is no sha (manual runs)", () => {
      const paths = pod();
      assert.equal(run(shell, setupScript(paths)).status, 0);
      const result = run(shell, cloneScript(paths), {
        LOOM_CLONE_URL: repo.url,
        LOOM_CLONE_DEPTH: "5",
        LOOM_CLONE_SUBMODULES: "false",
      });
      assert.equal(result.status, 0, result.stdout + result.stderr);
      assert.equal(git(paths.workspace, "rev-parse", "HEAD"), repo.second);
      assert.equal(git(paths.workspace, "rev-list", "--count", "HEAD"), "2");
    });

    it("clone-repo fails with git's own message, and the log says why", () => {
      const paths = pod();
      assert.equal(run(shell, setupScript(paths)).status, 0);
      const result = run(shell, cloneScript(paths), {
        LOOM_CLONE_URL: `file://${join(root, "missing")}`,
        LOOM_CLONE_DEPTH: "1",
        LOOM_CLONE_SUBMODULES: "false",
      });
      assert.notEqual(result.status, 0);
      assert.match(result.stdout, /does not appear to be a git repository|Could not read from remote/);
      assert.equal(result.stdout, readFileSync(paths.cloneLog, "utf8"));
    });

    it("clone-repo does not interpret a hostile URL", () => {
      const paths = pod();
      assert.equal(run(shell, setupScript(paths)).status, 0);
      const marker = join(root, `pwned-${counter}`);
      const result = run(shell, cloneScript(paths), {
        LOOM_CLONE_URL: `$(touch ${marker})`,
        LOOM_CLONE_SHA: `; touch ${marker}`,
        LOOM_CLONE_DEPTH: "1",
        LOOM_CLONE_SUBMODULES: "false",
      });
      assert.notEqual(result.status, 0);
      assert.equal(spawnSync("test", ["-e", marker]).status, 1, "the URL was executed");
    });
  });
}
