/**
 * `loom run -j N` (target printed, never asserted): three workflows of one 3-second step each,
 * in a real git repository, run by the real CLI with -j 1 and -j 3; the wall time of each run.
 * Target: -j 3 under 5 s (the three steps overlap; clone and start-up are the rest).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// As users run it: the built CLI (`make bench` builds first).
const MAIN = new URL("../dist/cli/main.js", import.meta.url).pathname;

export async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "loom-bench-jobs-"));
  try {
    const repo = join(root, "repo");
    mkdirSync(join(repo, ".tangled/workflows"), { recursive: true });
    for (const n of ["one", "two", "three"]) {
      writeFileSync(
        join(repo, `.tangled/workflows/${n}.yml`),
        `when:\n  - event: [push]\n    branch: [main]\nengine: nixery\nsteps:\n  - name: wait\n    command: sleep 3\n`,
      );
    }
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: root, GIT_CONFIG_NOSYSTEM: "1" };
    const git = (...args: string[]) =>
      execFileSync("git", ["-c", "user.name=b", "-c", "user.email=b@b", ...args], { cwd: repo, env });
    git("init", "-q", "-b", "main");
    git("add", "-A");
    git("commit", "-q", "-m", "three workflows");
    for (const jobs of [1, 3]) {
      const t0 = performance.now();
      const r = spawnSync(process.execPath, [MAIN, "run", "-j", String(jobs)], {
        cwd: repo,
        env,
        encoding: "utf8",
      });
      const wall = (performance.now() - t0) / 1000;
      if (r.status !== 0) throw new Error(`loom run -j ${jobs} exited ${r.status}:\n${r.stdout}${r.stderr}`);
      const target = jobs === 3 ? "   (target < 5 s)" : "";
      console.log(`loom run -j ${jobs}, three 3-second workflows: ${wall.toFixed(2)} s wall${target}`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
