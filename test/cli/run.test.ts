/**
 * `loom run` as a user runs it: the real CLI in a real git repository, steps as real processes
 * of the local engine; only stdout, stderr and the exit code are looked at.
 */
import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it, test } from "node:test";
import { lines, type Sandbox, sandbox, shown } from "./support.ts";

const ON_PUSH_TO_MAIN = "when:\n  - event: [push]\n    branch: [main]\n";

const WORKFLOWS = {
  ".tangled/workflows/pass.yml": `${ON_PUSH_TO_MAIN}engine: nixery
environment:
  WHO: the workflow
steps:
  - name: greet
    command: echo "hello from $WHO and $STEP_ONLY"
    environment:
      STEP_ONLY: the step
  - name: look around
    command: |
      echo "STEP_ONLY=\${STEP_ONLY:-unset} CI=$CI TANGLED_REF=$TANGLED_REF"
      git log -1 --format=%s
      cat marker.txt
`,
  ".tangled/workflows/fail.yml": `${ON_PUSH_TO_MAIN}engine: nixery
steps:
  - name: first
    command: echo one
  - name: boom
    command: echo about to fail; exit 3
  - name: never
    command: echo this step must not run
`,
  ".tangled/workflows/secret.yml": `${ON_PUSH_TO_MAIN}engine: kubernetes
image: alpine:3.20
steps:
  - name: print secrets
    command: |
      echo "token: $TOKEN"
      echo "token on stderr: $TOKEN" >&2
      printf %s "$TOKEN" | base64
      echo "from file: $FILE_TOKEN"
      printf %s "$FILE_TOKEN" | base64
      half=\${TOKEN%????????}; printf %s "$half"; sleep 0.2; printf '%s\\n' "\${TOKEN#"$half"}"
      env | grep -c -e '^TOKEN=' -e '^FILE_TOKEN='
`,
  ".tangled/workflows/pr.yml": `when:
  - event: [pull_request]
    branch: [main]
engine: kubernetes
image: alpine:3.20
steps:
  - name: pr
    command: echo "pull request into $TANGLED_PR_TARGET_BRANCH from $TANGLED_PR_SOURCE_BRANCH"
`,
  ".tangled/workflows/manual.yml": `when:
  - event: [manual]
engine: kubernetes
image: alpine:3.20
steps:
  - name: which commit
    command: git log -1 --format=%s; cat marker.txt
`,
  "marker.txt": "committed on main\n",
};

const TOKEN = "tok-Zq8v3Lr2Xw9";
const FILE_TOKEN = "file secret with spaces";

/**
 * What every push to main prints on stderr: that the uncommitted change is left out, and that the
 * workflows for other events are skipped.
 */
let SKIPPED_ON_PUSH: string;
/** Said before a kubernetes workflow of the fixture runs. */
const ON_HOST = (f: string) =>
  `warning: ${f} runs on this host, not in a container: image alpine:3.20 is not used\n`;

let box: Sandbox;
let head: string;

before(async () => {
  box = await sandbox();
  // A branch that sorts before main, with other code: HEAD is main, and only main may run.
  await box.commit({ "marker.txt": "committed on aaa\n" }, "on aaa");
  await box.git("branch", "-m", "aaa");
  await box.git("checkout", "-q", "--orphan", "main");
  await box.commit(WORKFLOWS, "on main");
  await box.git("branch", "other");
  head = (await box.git("rev-parse", "HEAD")).trim();
  SKIPPED_ON_PUSH = [
    `note: running commit ${head.slice(0, 12)}; 1 uncommitted change is left out (--worktree runs them)\n`,
    ...["manual.yml", "pr.yml"].map(
      (f) => `warning: ${f}:1:1: workflow skipped: did not match trigger push\n`,
    ),
  ].join("");
  // Not committed: `loom run` reads the workflows and the code from HEAD only.
  await writeFile(join(box.repo, "marker.txt"), "uncommitted\n");
});
after(() => box.remove());

/** A duration as `loom run` prints it (`12ms`, `1.5s`, `2m3s`). */
const DURATION = String.raw`(\d+ms|\d+\.\d+s|\d+m\d+s)`;

/**
 * The human output with every duration as `<t>`, and the clone step's lines (git's own words,
 * which vary with its version) returned apart.
 */
function human(stdout: string): { lines: string[]; clone: string[] } {
  const out: string[] = [];
  const clone: string[] = [];
  let cloning = false;
  for (const line of lines(stdout)) {
    if (line === "▶ Clone repository into workspace") cloning = true;
    else if (line.startsWith("  ⏹ Clone repository into workspace")) cloning = false;
    else if (cloning) {
      clone.push(line);
      continue;
    }
    out.push(
      line
        .replace(new RegExp(`^(  [⏹✘] .*) ${DURATION}(?<failed> failed)?$`), (...m) => {
          const groups = m.at(-1) as { failed?: string };
          return `${m[1]} <t>${groups.failed ?? ""}`;
        })
        .replace(new RegExp(`^(\\d+ workflows?: \\d+ passed, \\d+ failed, )${DURATION}$`), "$1<t>")
        .replace(new RegExp(`^([✔✘] \\S+ \\S+ in )${DURATION}`), "$1<t>"),
    );
  }
  return { lines: out, clone };
}

/** pass.yml's part of the human output. */
const PASS_RUN = [
  "pass.yml (nixery, nixery.tangled.sh/bash/git/coreutils/nix)",
  "▶ Configure Nix",
  "  ⏹ Configure Nix <t>",
  "▶ Clone repository into workspace",
  "  ⏹ Clone repository into workspace <t>",
  "▶ greet",
  "  hello from the workflow and the step", // workflow and step environment
  "  ⏹ greet <t>",
  "▶ look around",
  "  STEP_ONLY=unset CI=true TANGLED_REF=refs/heads/main", // a step's environment is its own
  "  on main", // the committed HEAD, not the working tree
  "  committed on main",
  "  ⏹ look around <t>",
];

describe("loom run", { concurrency: true }, () => {
  it("runs a passing workflow from HEAD: each step's output, exit 0, a success verdict", async () => {
    const r = await box.loom(["run", "--workflow", "pass.yml"]);
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stderr, SKIPPED_ON_PUSH);
    const { lines: out, clone } = human(r.stdout);
    assert.deepEqual(out, [
      "",
      ...PASS_RUN,
      "",
      "✔ pass.yml success in <t>",
      "1 workflow: 1 passed, 0 failed, <t>",
    ]);
    // The commit that ran, fetched from this repository; git's advice is silenced.
    assert.ok(clone.includes(`  HEAD is now at ${head.slice(0, 7)} on main`), clone.join("\n"));
    assert.deepEqual(
      clone.filter((l) => /^ {2}hint:/.test(l)),
      [],
    );
  });

  it("a failing step fails the run: exit 1, the verdict names the exit code and the step, later steps never run", async () => {
    const r = await box.loom(["run", "--workflow", "pass.yml", "--workflow", "fail.yml"]);
    assert.equal(r.code, 1, shown(r));
    assert.equal(r.stderr, SKIPPED_ON_PUSH);
    // In file order, whatever the order of --workflow; the verdicts come last.
    assert.deepEqual(human(r.stdout).lines, [
      "",
      "fail.yml (nixery, nixery.tangled.sh/bash/git/coreutils/nix)",
      "▶ Configure Nix",
      "  ⏹ Configure Nix <t>",
      "▶ Clone repository into workspace",
      "  ⏹ Clone repository into workspace <t>",
      "▶ first",
      "  one",
      "  ⏹ first <t>",
      "▶ boom",
      "  about to fail",
      "  ✘ boom <t> failed", // a failed step's end is marked apart
      "",
      ...PASS_RUN,
      "",
      '✘ fail.yml failed in <t> exit code 3, at step "boom"',
      "✔ pass.yml success in <t>",
      "2 workflows: 1 passed, 1 failed, <t>",
    ]);
    assert.doesNotMatch(r.stdout, /never|must not run/);
  });

  it("masks --secret and --secrets-file values, their base64 and a value written in two parts", async () => {
    const file = join(box.root, "secrets.env");
    await writeFile(file, `# dotenv\nFILE_TOKEN="${FILE_TOKEN}"\n`);
    const r = await box.loom([
      "run",
      "--workflow",
      "secret.yml",
      `--secret=TOKEN=${TOKEN}`,
      "--secrets-file",
      file,
    ]);
    assert.equal(r.code, 0, shown(r));
    assertNoSecret(r.stdout + r.stderr);
    const out = human(r.stdout).lines;
    const step = out.slice(out.indexOf("▶ print secrets") + 1, out.indexOf("  ⏹ print secrets <t>"));
    // stdout and stderr are two pipes: their lines may come in either order.
    assert.deepEqual(step.toSorted(), [
      "  ***", // base64 of TOKEN
      "  ***", // base64 of FILE_TOKEN
      "  ***", // TOKEN in two writes 0.2 s apart
      "  2", // both secrets reached the step's environment
      "  from file: ***",
      "  token on stderr: ***",
      "  token: ***",
    ]);
  });

  it("--json prints only Tangled LogLine JSON, masked", async () => {
    const r = await box.loom(["run", "--json", "--workflow", "secret.yml", "--secret", `TOKEN=${TOKEN}`]);
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stderr, SKIPPED_ON_PUSH + ON_HOST("secret.yml"));
    assertNoSecret(r.stdout);
    const logLines = lines(r.stdout).map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const l of logLines) {
      if (l.kind === "data") {
        assert.deepEqual(Object.keys(l), ["kind", "content", "time", "step_id", "stream"]);
        assert.ok(l.stream === "stdout" || l.stream === "stderr");
      } else {
        assert.equal(l.kind, "control");
        assert.ok(l.step_status === "start" || l.step_status === "end");
        // Go's field order; step_kind only for user steps (0, a system step, is omitted).
        const kind = l.step_kind === undefined ? [] : ["step_kind"];
        assert.deepEqual(Object.keys(l), [
          "kind",
          "content",
          "time",
          "step_id",
          "step_status",
          ...kind,
          "step_command",
        ]);
      }
      assert.equal(typeof l.content, "string");
      assert.ok(!Number.isNaN(Date.parse(l.time as string)), String(l.time));
    }
    const controls = logLines
      .filter((l) => l.kind === "control")
      .map((l) => [l.step_id, l.step_status, l.step_kind ?? 0, l.content]);
    assert.deepEqual(controls, [
      [0, "start", 0, "Clone repository into workspace"],
      [0, "end", 0, "Clone repository into workspace"],
      [1, "start", 1, "print secrets"],
      [1, "end", 1, "print secrets"],
    ]);
    const data = (id: number) => logLines.filter((l) => l.kind === "data" && l.step_id === id);
    assert.deepEqual(
      data(0).filter((l) => /^hint:/.test(l.content as string)),
      [],
    );
    assert.deepEqual(
      data(1)
        .map((l) => `${l.stream} ${l.content}`)
        .toSorted(),
      [
        "stderr token on stderr: ***",
        "stdout ***",
        "stdout ***",
        "stdout 1", // FILE_TOKEN is not given this time
        "stdout from file: ",
        "stdout token: ***",
      ],
    );
  });

  it("runs nothing for a ref no workflow matches, says so, and exits 0", async () => {
    const r = await box.loom(["run", "--ref", "refs/heads/other"]);
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stdout, "no workflow matched this trigger\n");
    assert.deepEqual(
      lines(r.stderr),
      ["fail.yml", "manual.yml", "pass.yml", "pr.yml", "secret.yml"].map(
        (f) => `warning: ${f}:1:1: workflow skipped: did not match trigger push`,
      ),
    );
  });

  it("refuses a --workflow that does not match the trigger, exit 1", async () => {
    const r = await box.loom(["run", "--ref", "other", "--workflow", "pass.yml"]);
    assert.equal(r.code, 1, shown(r));
    assert.equal(r.stdout, "");
    assert.equal(
      lines(r.stderr).at(-1),
      "error: workflow pass.yml does not exist or does not match this push",
    );
  });

  it("--event pull_request runs the workflows for pull requests into main, only those", async () => {
    const r = await box.loom(["run", "--event", "pull_request"]);
    assert.equal(r.code, 0, shown(r));
    const out = human(r.stdout).lines;
    assert.deepEqual(out.slice(out.indexOf("▶ pr")), [
      "▶ pr",
      "  pull request into main from main",
      "  ⏹ pr <t>",
      "",
      "✔ pr.yml success in <t>",
      "1 workflow: 1 passed, 0 failed, <t>",
    ]);
    assert.deepEqual(
      out.filter((l) => / \(.*\)$/.test(l)),
      ["pr.yml (kubernetes, alpine:3.20)"],
    );
  });

  it("--event manual runs the code at HEAD (not the first branch the remote lists)", async () => {
    const r = await box.loom(["run", "--event", "manual", "--workflow", "manual.yml"]);
    assert.equal(r.code, 0, shown(r));
    const out = human(r.stdout).lines;
    assert.deepEqual(out.slice(out.indexOf("▶ which commit"), out.indexOf("▶ which commit") + 4), [
      "▶ which commit",
      "  on main",
      "  committed on main",
      "  ⏹ which commit <t>",
    ]);
  });
});

describe("loom usage errors", { concurrency: true }, () => {
  const usage = "\n\nusage: loom <command> [options]\n";
  for (const [args, message] of [
    [["frob"], 'loom: unknown command "frob"'],
    [["run", "--frob"], "loom: Unknown option '--frob'."],
    [["run", "--event", "tag"], "loom: --event must be one of push, pull_request, manual"],
    [["run", "--secret", "hunter2"], "loom: --secret takes KEY=VALUE, KEY made of letters, digits and _\n"],
    [["run", "-j", "0"], "loom: -j takes a whole number of workflows, 1 or more\n"],
    [
      ["run", "-j", "2", "--json"],
      "loom: --json takes no -j: a Tangled LogLine does not name its workflow\n",
    ],
    [["run", "--worktree", "--ref", "main"], "loom: --worktree runs the working tree: it takes no --ref\n"],
  ] as const) {
    it(`loom ${args.join(" ")}: exit 2, the reason and the usage on stderr`, async () => {
      const r = await box.loom(args);
      assert.equal(r.code, 2, shown(r));
      assert.equal(r.stdout, "");
      assert.ok(r.stderr.startsWith(message), r.stderr);
      assert.ok(!r.stderr.includes("hunter2"), "a malformed --secret is not echoed");
      assert.ok(r.stderr.includes(usage), r.stderr);
      assert.match(r.stderr, /^ {2}run \[DIR\]/m);
    });
  }
});

describe("loom run refuses secret values that cannot be masked or passed on", { concurrency: true }, () => {
  const rule = "must be at least 4 characters long";
  for (const [what, args, file, message] of [
    ["a one-character --secret", ["--secret", "TOKEN=x"], undefined, `loom: --secret: secret TOKEN ${rule}`],
    [
      "a three-character --secret",
      ["--secret=TOKEN=x\ny\n"],
      undefined,
      `loom: --secret: secret TOKEN ${rule}`,
    ],
    ["a short value in --secrets-file", [], 'SHORT="abc"\n', `secret SHORT ${rule}`],
    ["a NUL in --secrets-file", [], "NUL=hunter\0two\n", "secret NUL must not contain a NUL byte"],
    [
      "a whitespace-only --secret",
      ["--secret", "TOKEN=  \t  "],
      undefined,
      "loom: --secret: secret TOKEN must not be only whitespace",
    ],
  ] as const) {
    it(`${what}: exit 1 with the rule, the value never echoed, nothing run`, async (t) => {
      let fileArgs: string[] = [];
      if (file !== undefined) {
        const path = join(box.root, `bad-${what.replaceAll(" ", "-")}.env`);
        await writeFile(path, file);
        t.after(() => rm(path, { force: true }));
        fileArgs = ["--secrets-file", path];
      }
      const r = await box.loom(["run", "--workflow", "pass.yml", ...args, ...fileArgs]);
      assert.equal(r.code, 1, shown(r));
      assert.ok(r.stderr.includes(message), r.stderr);
      assert.doesNotMatch(r.stdout + r.stderr, /hunter|"abc"|=x\b|▶/);
    });
  }
});

test("loom run leaves no temporary workspace behind", async () => {
  assert.deepEqual(await box.leftovers(), []);
});

function assertNoSecret(text: string): void {
  for (const value of [TOKEN, FILE_TOKEN]) {
    const b64 = Buffer.from(value).toString("base64");
    for (const form of [value, b64, b64.replace(/=+$/, "")]) {
      assert.ok(!text.includes(form), `${JSON.stringify(form)} leaked:\n${text}`);
    }
  }
}

describe("loom run with workflows that are not committed", () => {
  it("warns that it runs the commit, not the working tree", async (t) => {
    const fresh = await sandbox();
    t.after(() => fresh.remove());
    await fresh.commit({ "README.md": "x\n" }, "first");
    await mkdir(join(fresh.repo, ".tangled", "workflows"), { recursive: true });
    await writeFile(
      join(fresh.repo, ".tangled", "workflows", "ci.yml"),
      WORKFLOWS[".tangled/workflows/pass.yml"],
    );
    const r = await fresh.loom(["run"]);
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stdout, "no workflow matched this trigger\n");
    const sha = (await fresh.git("rev-parse", "HEAD")).trim().slice(0, 12);
    assert.equal(
      r.stderr,
      `note: running commit ${sha}; 1 uncommitted change is left out (--worktree runs them)\n` +
        `warning: no workflow files in .tangled/workflows/ at ${sha} (.tangled/workflows/ has files, but none committed: loom run runs the commit, --worktree the working tree)\n`,
    );
  });
});
