/**
 * Workflow model throughput: 1,000 workflow files (50 repos × 20 files, 1–3 KiB each, nixery and
 * kubernetes, branch/tag/PR/manual constraints) written to a temp dir, then for each repo a
 * trigger (push to a branch, tag push, pull request, manual in turn) is compiled from disk
 * (`.tangled/workflows` listing, read, parse, match) and every matching workflow is resolved
 * into a RunPlan (second parse, steps, env). Also the same work from memory, without file I/O,
 * and resolving alone for all 1,000 files (a manual trigger matches every workflow).
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { compileDirectory, compileWorkflows, type WorkflowFile } from "../src/workflow/compile.ts";
import { resolveWorkflow } from "../src/workflow/resolve.ts";
import { manualTrigger, prTrigger, pushTrigger } from "../src/workflow/testkit.ts";
import type { PipelineRecord, TriggerMetadata } from "../src/workflow/types.ts";

const REPOS = 50;
const FILES_PER_REPO = 20;
const ROUNDS = 3;

function workflowText(i: number): string {
  const whens = [
    "when:\n  - event: [push, pull_request]\n    branch: [main, 'release-*']\n",
    "when:\n  - event: push\n    tag: ['v*']\n",
    "when:\n  - event: [push]\n    branch: ['feature/**']\n  - event: pull_request\n    branch: main\n",
    "when:\n  - event: manual\n",
    "",
  ];
  const kube = i % 2 === 0;
  const lines = [whens[i % whens.length]!];
  if (kube)
    lines.push(
      `engine: kubernetes\nimage: golang:1.${20 + (i % 5)}\narchitecture: ${i % 3 ? "amd64" : "arm64"}\n`,
    );
  else {
    lines.push("engine: nixery\ndependencies:\n  nixpkgs:\n    - go\n    - gcc\n    - nodejs\n");
    if (i % 4 === 1) lines.push("  github:nixos/nixpkgs/nixpkgs-unstable:\n    - bun\n");
  }
  lines.push(`clone:\n  depth: ${1 + (i % 50)}\n  submodules: ${i % 7 === 0}\n`);
  lines.push("environment:\n  CGO_ENABLED: 1\n  GOFLAGS: -mod=readonly\n  NODE_ENV: production\n");
  lines.push("steps:\n");
  const steps = 2 + (i % 9);
  for (let s = 0; s < steps; s++) {
    lines.push(
      `  - name: step ${s} of workflow ${i}\n    command: |\n      echo "building part ${s}"\n      go test -run 'Test${s}' ./pkg/${s}/...\n`,
    );
    if (s % 3 === 0) lines.push(`    environment:\n      PART: ${s}\n      VERBOSE: true\n`);
  }
  return lines.join("");
}

function triggerFor(repo: number): TriggerMetadata {
  switch (repo % 4) {
    case 0:
      return pushTrigger("refs/heads/main");
    case 1:
      return pushTrigger("refs/tags/v1.2.3");
    case 2:
      return prTrigger("main");
    default:
      return manualTrigger([{ key: "target", value: "staging" }]);
  }
}

function resolveAll(record: PipelineRecord | undefined, trigger: TriggerMetadata, repo: number): number {
  if (record === undefined) return 0;
  let plans = 0;
  for (const wf of record.workflows) {
    const r = resolveWorkflow(wf, trigger, {
      pipeline: { knot: "knot1.tangled.sh", rkey: `3lxyz${repo}` },
      secretKeys: ["TOKEN", "NPM_TOKEN"],
    });
    if (!r.ok) throw new Error(r.error);
    plans++;
  }
  return plans;
}

/** Every file resolved (a manual trigger matches all), from already compiled records. */
function resolveOnly(repos: WorkflowFile[][]): { ms: number; plans: number } {
  const trigger = manualTrigger();
  const records = repos.map((files) => compileWorkflows(files, trigger).record);
  let plans = 0;
  const t0 = performance.now();
  records.forEach((record, repo) => {
    plans += resolveAll(record, trigger, repo);
  });
  return { ms: performance.now() - t0, plans };
}

async function fromDisk(root: string): Promise<{ ms: number; plans: number }> {
  let plans = 0;
  const t0 = performance.now();
  for (let repo = 0; repo < REPOS; repo++) {
    const trigger = triggerFor(repo);
    const { record } = await compileDirectory(join(root, `repo${repo}`), trigger);
    plans += resolveAll(record, trigger, repo);
  }
  return { ms: performance.now() - t0, plans };
}

function fromMemory(repos: WorkflowFile[][]): { ms: number; plans: number } {
  let plans = 0;
  const t0 = performance.now();
  repos.forEach((files, repo) => {
    const trigger = triggerFor(repo);
    plans += resolveAll(compileWorkflows(files, trigger).record, trigger, repo);
  });
  return { ms: performance.now() - t0, plans };
}

export async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "loom-workflow-bench-"));
  try {
    const repos: WorkflowFile[][] = [];
    let bytes = 0;
    for (let repo = 0; repo < REPOS; repo++) {
      const dir = join(root, `repo${repo}`, ".tangled", "workflows");
      await mkdir(dir, { recursive: true });
      const files: WorkflowFile[] = [];
      for (let f = 0; f < FILES_PER_REPO; f++) {
        const content = workflowText(repo * FILES_PER_REPO + f);
        bytes += content.length;
        files.push({ name: `wf${String(f).padStart(2, "0")}.yml`, content });
        await writeFile(join(dir, files.at(-1)!.name), content);
      }
      repos.push(files);
    }
    const files = REPOS * FILES_PER_REPO;
    console.log(`workflow: ${files} files, ${(bytes / files / 1024).toFixed(1)} KiB average`);
    let disk = await fromDisk(root); // warm-up, then best of ROUNDS
    for (let i = 0; i < ROUNDS; i++) {
      const r = await fromDisk(root);
      if (r.ms < disk.ms) disk = r;
    }
    let memory = fromMemory(repos);
    for (let i = 0; i < ROUNDS; i++) {
      const r = fromMemory(repos);
      if (r.ms < memory.ms) memory = r;
    }
    const report = (label: string, r: { ms: number; plans: number }) =>
      console.log(
        `workflow: ${label}: ${files} files compiled, ${r.plans} plans resolved in ${r.ms.toFixed(0)} ms = ` +
          `${Math.round((r.plans * 1000) / r.ms)} plans/s, ${Math.round((files * 1000) / r.ms)} files/s`,
      );
    report("from disk", disk);
    report("from memory", memory);
    let only = resolveOnly(repos);
    for (let i = 0; i < ROUNDS; i++) {
      const r = resolveOnly(repos);
      if (r.ms < only.ms) only = r;
    }
    console.log(
      `workflow: resolve only: ${only.plans} plans in ${only.ms.toFixed(0)} ms = ${Math.round((only.plans * 1000) / only.ms)} plans/s`,
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
