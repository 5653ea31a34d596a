/**
 * `loom run` tells the truth (issue 14): what the host does not honour is said before a workflow
 * runs, steps never see Loom's own Node, typos that change what runs are refused with a
 * suggestion, a workflow without steps is never a silent success, one broken file does not stop
 * `--workflow`, and the original Loom's example workflow (no engine) runs. The real CLI, real git
 * repositories, real step processes.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Gen2TriggerMetadata } from "../../src/protocol/trigger-metadata.ts";
import { compileGen2 } from "../../src/workflow/compile.ts";
import { lines, type Sandbox, sandbox, shown, spawnLoom } from "./support.ts";

const LOOM_ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const ON_PUSH = "when:\n  - event: [push]\n    branch: [main]\n";
const HOST_ARCH = process.arch === "arm64" ? "arm64" : "amd64";
const OTHER_ARCH = HOST_ARCH === "arm64" ? "amd64" : "arm64";

/**
 * The original Loom's README example: only image, architecture and steps (no engine, no when).
 * The steps are this test's: the host has no Go toolchain to rely on.
 */
const ORIGINAL_EXAMPLE = `image: golang:1.24
architecture: amd64

steps:
  - name: build
    command: echo "building on $(uname -m)"
`;

const WORKFLOWS: Record<string, string> = {
  "node18.yml": `${ON_PUSH}engine: kubernetes
image: node:18
steps:
  - name: which node
    command: |
      echo "PATH=$PATH"
      command -v node || echo "no node"
`,
  "arch.yml": `${ON_PUSH}engine: kubernetes
image: alpine:3.20
architecture: ${OTHER_ARCH}
steps:
  - command: uname -m
`,
  "deps.yml": `${ON_PUSH}engine: nixery
dependencies:
  nixpkgs: [bash, coreutils, surely-not-a-command-x7]
steps:
  - command: surely-not-a-command-x7 --version
`,
  "empty.yml": `${ON_PUSH}engine: nixery
steps: []
`,
};

let box: Sandbox;

before(async () => {
  box = await sandbox();
  await box.commit(
    Object.fromEntries(Object.entries(WORKFLOWS).map(([f, t]) => [`.tangled/workflows/${f}`, t])),
  );
});
after(() => box.remove());

describe("loom run on the host says what it does not honour", { concurrency: true }, () => {
  it("image: warned once, before the run; steps never see Loom's node_modules/.bin or its Node", async () => {
    // PATH as `make` and `npx loom` leave it: Loom's bin folder and Node first.
    const path = [join(LOOM_ROOT, "node_modules/.bin"), dirname(process.execPath), "/usr/bin", "/bin"].join(
      ":",
    );
    const r = await box.loom(["run", "--workflow", "node18.yml"], { env: { PATH: path } });
    assert.equal(r.code, 0, shown(r));
    const warnings = lines(r.stderr).filter((l) => l.includes("runs on this host"));
    assert.deepEqual(warnings, [
      "warning: node18.yml runs on this host, not in a container: image node:18 is not used",
    ]);
    // Said before the workflow's output starts.
    const stepPath = lines(r.stdout).find((l) => l.startsWith("  PATH="));
    assert.ok(stepPath, r.stdout);
    assert.ok(!stepPath.includes(LOOM_ROOT), stepPath);
    assert.ok(!stepPath.split(":").includes(dirname(process.execPath)), stepPath);
    const node = lines(r.stdout)[lines(r.stdout).indexOf(stepPath) + 1]!.trim();
    assert.notEqual(node, process.execPath);
    assert.ok(!node.startsWith(LOOM_ROOT), node);
  });

  it("architecture: warned when it is not this host's", async () => {
    const r = await box.loom(["run", "--workflow", "arch.yml"]);
    assert.equal(r.code, 0, shown(r));
    assert.ok(
      r.stderr.includes(
        `warning: arch.yml runs on this host, not in a container: image alpine:3.20 is not used; architecture ${OTHER_ARCH} is not this host's (${HOST_ARCH})\n`,
      ),
      r.stderr,
    );
  });

  it("nixery dependencies: those not on the steps' PATH are named, and the step fails", async () => {
    const r = await box.loom(["run", "--workflow", "deps.yml"]);
    assert.equal(r.code, 1, shown(r));
    assert.ok(
      r.stderr.includes(
        "warning: deps.yml runs on this host, not in a container: dependencies not on PATH: surely-not-a-command-x7\n",
      ),
      r.stderr,
    );
    assert.match(r.stdout, /✘ deps\.yml failed .*exit code 127/);
  });

  it("a workflow without steps is a warning and says so in its verdict", async () => {
    const r = await box.loom(["run", "--workflow", "empty.yml"]);
    assert.equal(r.code, 0, shown(r));
    assert.ok(r.stderr.includes("warning: empty.yml:5:1: no steps: this workflow runs nothing\n"), r.stderr);
    assert.match(r.stdout, /✔ empty\.yml success in \S+ \(no steps: nothing but the clone ran\)/);
  });
});

describe("typos", { concurrency: true }, () => {
  for (const [name, text, expected] of [
    [
      "step.yml",
      `${ON_PUSH}engine: nixery\nstep:\n  - command: echo hi\n`,
      [
        'error: step.yml:5:1: unknown key: unknown key "step" is ignored; did you mean "steps"?',
        "warning: step.yml:1:1: no steps: this workflow runs nothing",
      ],
    ],
    [
      "comand.yml",
      `${ON_PUSH}engine: nixery\nsteps:\n  - name: hi\n    comand: echo hi\n`,
      [
        'error: comand.yml:7:5: unknown key: unknown key "comand" in steps[0] is ignored; did you mean "command"?',
      ],
    ],
  ] as const) {
    it(`${name}: refused with file:line:col and a suggestion by run; plan reports it, as a warning`, async (t) => {
      const own = await sandbox();
      t.after(() => own.remove());
      await own.commit({ [`.tangled/workflows/${name}`]: text });
      const r = await own.loom(["run"]);
      assert.equal(r.code, 1, shown(r));
      assert.equal(r.stdout, "");
      assert.deepEqual(lines(r.stderr), expected);

      const trigger = join(own.root, "trigger.json");
      await writeFile(
        trigger,
        JSON.stringify({
          kind: "push",
          repo: { knot: "k.example", did: "did:plc:a", repo: "r", defaultBranch: "" },
          push: { ref: "refs/heads/main", oldSha: "0".repeat(40), newSha: "1".repeat(40) },
        }),
      );
      const p = await own.loom(["plan", "--trigger", trigger]);
      // The knot still emits the workflow: a warning there, with the same suggestion.
      assert.equal(p.code, 0, shown(p));
      assert.deepEqual(
        lines(p.stderr),
        expected.map((l) => l.replace(/^error:/, "warning:")),
      );
    });
  }

  it("--workflow runs the named workflow even when another file is broken", async (t) => {
    const own = await sandbox();
    t.after(() => own.remove());
    await own.commit({
      ".tangled/workflows/broken.yml": "when: [\n",
      ".tangled/workflows/good.yml": `${ON_PUSH}engine: nixery\nsteps:\n  - command: echo fine\n`,
    });
    const all = await own.loom(["run"]);
    assert.equal(all.code, 1, shown(all));
    assert.match(all.stderr, /^error: broken\.yml:2:1: parse error: /m);
    assert.equal(all.stdout, "");
    const one = await own.loom(["run", "--workflow", "good.yml"]);
    assert.equal(one.code, 0, shown(one));
    assert.match(one.stdout, /^ {2}fine$/m);
    assert.match(one.stdout, /✔ good\.yml success/);
  });
});

describe("the original Loom's example workflow (no engine, no when)", () => {
  it("runs with loom run as engine: kubernetes", async (t) => {
    const own = await sandbox();
    t.after(() => own.remove());
    await own.commit({ ".tangled/workflows/build.yml": ORIGINAL_EXAMPLE });
    const r = await own.loom(["run"]);
    assert.equal(r.code, 0, shown(r));
    assert.match(r.stdout, /^build\.yml \(kubernetes, golang:1\.24\)$/m);
    assert.match(r.stdout, /^ {2}building on /m);
    assert.match(r.stdout, /✔ build\.yml success/);

    // loom plan prints what a Gen1 knot emits: nothing (upstream requires engine).
    const trigger = join(own.root, "trigger.json");
    await writeFile(
      trigger,
      JSON.stringify({
        kind: "push",
        repo: { knot: "k.example", did: "did:plc:a", repo: "r", defaultBranch: "" },
        push: { ref: "refs/heads/main", oldSha: "0".repeat(40), newSha: "1".repeat(40) },
      }),
    );
    const p = await own.loom(["plan", "--trigger", trigger]);
    assert.equal(p.code, 1, shown(p));
    assert.equal(p.stderr, "error: build.yml:1:1: missing engine\n");
    assert.equal(p.stdout, "no workflow matches this trigger: a knot would emit no pipeline\n");
    // loom lint warns that a Gen1 knot drops it.
    const l = await own.loom(["lint"]);
    assert.equal(l.code, 0, shown(l));
    assert.equal(
      l.stdout,
      "warning: .tangled/workflows/build.yml:1:1: missing engine: a Gen1 knot drops this workflow before any spindle sees it; Loom's Gen2 intake and `loom run` run it as engine: kubernetes\n",
    );
  });

  it("is built by the Gen2 intake (compileGen2) as engine: kubernetes", () => {
    const trigger: Gen2TriggerMetadata = {
      kind: "push",
      repo: { knot: "k.example", did: "did:plc:a", repoDid: "did:plc:r", defaultBranch: "main" },
      push: { ref: "refs/heads/main", oldSha: "0".repeat(40), newSha: "1".repeat(40) },
    } as Gen2TriggerMetadata;
    const { record, diagnostics } = compileGen2([{ name: "build.yml", content: ORIGINAL_EXAMPLE }], trigger);
    assert.deepEqual(diagnostics, []);
    assert.deepEqual(
      record?.workflows.map((w) => [w.name, w.engine]),
      [["build.yml", "kubernetes"]],
    );
  });

  it("the Gen2 intake's diagnostics carry typos with their suggestion", () => {
    const trigger = {
      kind: "push",
      repo: { knot: "k.example", did: "did:plc:a", repoDid: "did:plc:r", defaultBranch: "main" },
      push: { ref: "refs/heads/main", oldSha: "0".repeat(40), newSha: "1".repeat(40) },
    } as Gen2TriggerMetadata;
    const typo = "image: alpine\nsteps:\n  - name: a\n    comand: make\n";
    const { diagnostics } = compileGen2([{ name: "t.yml", content: typo }], trigger);
    assert.deepEqual(
      diagnostics.map((d) => [d.file, d.line, d.column, d.message, d.suggestion]),
      [["t.yml", 4, 5, 'unknown key "comand" in steps[0] is ignored; did you mean "command"?', "command"]],
    );
  });
});

describe("loom run's user interface", { concurrency: true }, () => {
  it("--help on every command (exit 0, stdout), --version", async () => {
    for (const command of ["run", "plan", "lint", "serve", "controller"]) {
      const r = await box.loom([command, "--help"]);
      assert.equal(r.code, 0, shown(r));
      assert.ok(r.stdout.startsWith(`usage: loom ${command} [options]\n`), r.stdout);
      assert.equal(r.stderr, "");
    }
    const pkg = JSON.parse(await readFile(join(LOOM_ROOT, "package.json"), "utf8")) as { version: string };
    const v = await box.loom(["--version"]);
    assert.equal(v.code, 0, shown(v));
    assert.equal(v.stdout, `loom ${pkg.version} (Node.js ${process.version})\n`);
  });

  it("an empty repository and a directory outside git: one sentence, exit 1", async (t) => {
    const own = await sandbox();
    t.after(() => own.remove());
    const r = await own.loom(["run"]);
    assert.equal(r.code, 1, shown(r));
    assert.equal(
      r.stderr,
      `loom: ${own.repo} has no commit yet: commit .tangled/workflows/ first (loom run runs a commit, or the working tree with --worktree once there is one)\n`,
    );
    const outside = await own.loom(["run", own.home], { cwd: own.root });
    assert.equal(outside.code, 1, shown(outside));
    assert.equal(
      outside.stderr,
      `loom: ${own.home} is not inside a git repository: loom run runs a commit of one\n`,
    );
    const noRef = await box.loom(["run", "--ref", "no-such-branch"]);
    assert.equal(noRef.code, 1, shown(noRef));
    assert.equal(noRef.stderr, `loom: no commit named "no-such-branch" in ${box.repo}\n`);
  });

  it("--worktree runs uncommitted changes; without it the message says the commit runs", async (t) => {
    const own = await sandbox();
    t.after(() => own.remove());
    const wf = (word: string) =>
      `${ON_PUSH}engine: nixery\nsteps:\n  - command: echo ${word}; cat note.txt\n`;
    await own.commit({ ".tangled/workflows/ci.yml": wf("committed"), "note.txt": "old note\n" });
    await writeFile(join(own.repo, ".tangled/workflows/ci.yml"), wf("changed"));
    await writeFile(join(own.repo, "note.txt"), "new note\n");
    await writeFile(join(own.repo, "untracked.txt"), "x\n");
    const head = (await own.git("rev-parse", "HEAD")).trim();
    const plain = await own.loom(["run"]);
    assert.equal(plain.code, 0, shown(plain));
    assert.match(plain.stdout, /^ {2}committed\n {2}old note$/m);
    assert.equal(
      plain.stderr,
      `note: running commit ${head.slice(0, 12)}; 3 uncommitted changes are left out (--worktree runs them)\n`,
    );
    const wt = await own.loom(["run", "--worktree"]);
    assert.equal(wt.code, 0, shown(wt));
    assert.match(wt.stdout, /^ {2}changed\n {2}new note$/m);
    // The user's branch, index and status are as they were.
    assert.equal((await own.git("rev-parse", "HEAD")).trim(), head);
    assert.deepEqual(lines(await own.git("status", "--porcelain")).sort(), [
      " M .tangled/workflows/ci.yml",
      " M note.txt",
      "?? untracked.txt",
    ]);
  });

  it("-j 3 runs workflows at once, each line led by its workflow; a totals line ends", async (t) => {
    const own = await sandbox();
    t.after(() => own.remove());
    const files: Record<string, string> = {};
    for (const n of ["a", "b", "c"]) {
      files[`.tangled/workflows/${n}.yml`] =
        `${ON_PUSH}engine: nixery\nsteps:\n  - name: ${n}-step\n    command: echo out-${n}\n`;
    }
    await own.commit(files);
    const r = await own.loom(["run", "-j", "3"]);
    assert.equal(r.code, 0, shown(r));
    for (const n of ["a", "b", "c"]) assert.match(r.stdout, new RegExp(`^${n}\\.yml \\| {3}out-${n}$`, "m"));
    assert.match(lines(r.stdout).at(-1)!, /^3 workflows: 3 passed, 0 failed, \S+$/);
  });

  it("NO_COLOR and --no-color: no escape sequences", async (t) => {
    const own = await sandbox();
    t.after(() => own.remove());
    await own.commit({
      ".tangled/workflows/a.yml": `${ON_PUSH}engine: nixery\nsteps:\n  - command: exit 1\n`,
    });
    // FORCE_COLOR would colour a pipe; NO_COLOR and --no-color win over it.
    for (const [args, env] of [
      [["run"], { NO_COLOR: "1", FORCE_COLOR: "1" }],
      [["run", "--no-color"], { FORCE_COLOR: "1" }],
    ] as const) {
      const r = await own.loom(args, { env });
      assert.equal(r.code, 1, shown(r));
      assert.ok(!r.stdout.includes("\u001b["), JSON.stringify(r.stdout));
    }
    const coloured = await own.loom(["run"], { env: { FORCE_COLOR: "1" } });
    assert.ok(
      coloured.stdout.includes("\u001b["),
      "FORCE_COLOR alone colours (the check above means something)",
    );
  });
});

/** A process that exists and is not a zombie (a zombie holds nothing; its new parent reaps it). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0] !== "Z";
  } catch {
    return false;
  }
}

describe("Ctrl-C", () => {
  it("exits 130 and leaves no step process behind", async (t) => {
    const own = await sandbox();
    t.after(() => own.remove());
    const pids = join(own.root, "pids");
    await own.commit({
      ".tangled/workflows/long.yml": `${ON_PUSH}engine: nixery
steps:
  - name: wait
    command: |
      sleep 300 &
      echo "$! $$" > ${pids}
      echo ready
      wait
  - name: never
    command: echo must not run
`,
    });
    const child = spawnLoom(own, ["run"]);
    let stdout = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.resume();
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    while (!stdout.includes("  ready\n")) {
      if (child.exitCode !== null) assert.fail(`loom exited early:\n${stdout}`);
      await sleep(50);
    }
    const stepPids = (await readFile(pids, "utf8")).trim().split(" ").map(Number);
    child.kill("SIGINT");
    assert.equal(await exited, 130, stdout);
    for (const pid of stepPids) assert.ok(!alive(pid), `step process ${pid} is still alive`);
    assert.doesNotMatch(stdout, /must not run/);
    assert.deepEqual(await own.leftovers(), []);
  });
});
