/** `loom controller` as a process: it acts on a run, serves metrics, and stops on SIGTERM. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { stringify } from "yaml";
import { eventually, getTestCluster } from "../harness/index.ts";
import { createRun, ensureNodes, installCrd, PARKED_RESOURCE, waitForWorkflow, workflow } from "./support.ts";

const cluster = await getTestCluster();
if (!cluster.skip) {
  await installCrd(cluster);
  await ensureNodes(cluster);
}

const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;

test("loom controller runs until SIGTERM", { skip: cluster.skip }, async (t) => {
  const ns = await cluster.namespace(t);
  const dir = await mkdtemp(join(tmpdir(), "loom-controller-cli-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const configPath = join(dir, "config.yaml");
  await writeFile(
    configPath,
    stringify({
      kubernetes: {
        namespace: ns,
        images: { runner: "ghcr.io/example/loom-runner:0.1.0" },
        // Parked (see support.ts): the Job stays unfinished on a full control plane too.
        template: {
          resourceProfiles: [
            { resources: { requests: { [PARKED_RESOURCE]: "1" }, limits: { [PARKED_RESOURCE]: "1" } } },
          ],
        },
      },
    }),
  );
  const child = spawn(
    process.execPath,
    [MAIN, "controller", "--metrics-port", "0", "--identity", "cli-test"],
    {
      env: { PATH: process.env.PATH, KUBECONFIG: cluster.kubeconfigPath, LOOM_CONFIG: configPath },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  t.after(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  await eventually("controller started", async () => out.includes("controller started") || out.slice(-300));
  const run = await createRun(cluster, ns, [workflow("cli.yml")]);
  await waitForWorkflow(cluster, ns, run.metadata.name!, "cli.yml", (_p, r) => r === "Scheduled");
  child.kill("SIGTERM");
  const [code] = await once(child, "exit");
  assert.equal(code, 0, out.slice(-2000));
  assert.match(out, /"msg":"became leader"/);
});
