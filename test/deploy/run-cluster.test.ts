/**
 * `make run-cluster`'s command — `loom serve --dev` with config/examples/run-cluster.yaml
 * (engine: kubernetes) against a kubeconfig — on the real control plane: in a namespace that
 * does not exist it stops at once with one sentence saying what to do (no stream of raw 404s);
 * in one that exists it starts, reports ready, and stops cleanly on SIGTERM.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { installCrd } from "../controller/support.ts";
import { getTestCluster } from "../harness/index.ts";

const root = new URL("../../", import.meta.url).pathname;
const MAIN = join(root, "src/cli/main.ts");
const cluster = await getTestCluster();
// What `make run-cluster` does first (`make install`); a missing CRD is preflight.test.ts's case.
if (!cluster.skip) await installCrd(cluster);

/** run-cluster.yaml with the namespace replaced, in a scratch folder that is also the cwd. */
function scratch(namespace: string): { dir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), "loom-run-cluster-"));
  const file = parse(readFileSync(join(root, "config/examples/run-cluster.yaml"), "utf8"));
  assert.equal(file.engine, "kubernetes");
  file.kubernetes.namespace = namespace;
  const config = join(dir, "config.yaml");
  writeFileSync(config, stringify(file));
  return { dir, config };
}

function serve(dir: string, config: string) {
  return spawn(process.execPath, [MAIN, "serve", "--dev"], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: dir,
      LOOM_CONFIG: config,
      KUBECONFIG: cluster.kubeconfigPath,
      // Not the dev port 6555: other work on this machine may hold it.
      SPINDLE_SERVER_LISTEN_ADDR: "127.0.0.1:0",
      LOOM_LOG_LEVEL: "warn",
    },
  });
}

function collect(child: ReturnType<typeof serve>) {
  const out = { stdout: "", stderr: "" };
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    out.stdout += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    out.stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { out, exited };
}

describe("make run-cluster: loom serve --dev with the Kubernetes engine", { skip: cluster.skip }, () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("a missing namespace stops it at once with one sentence", async () => {
    const ns = `absent-${process.pid}`;
    const { dir, config } = scratch(ns);
    dirs.push(dir);
    const child = serve(dir, config);
    const { out, exited } = collect(child);
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const code = await exited;
    clearTimeout(timer);
    assert.equal(code, 1, out.stderr);
    assert.equal(
      out.stderr,
      `loom: namespace ${ns} does not exist: create it (kubectl create namespace ${ns}) or set kubernetes.namespace to the one Loom should use\n`,
    );
    assert.doesNotMatch(out.stdout, /404|NotFound/);
  });

  it("with the namespace it starts, gets ready, and stops on SIGTERM", async (t) => {
    const ns = await cluster.namespace(t);
    const { dir, config } = scratch(ns);
    dirs.push(dir);
    const child = serve(dir, config);
    const { out, exited } = collect(child);
    t.after(() => child.kill("SIGKILL"));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner: ${out.stderr}`)), 60_000);
      child.stderr.on("data", () => {
        const m = /loom spindle listening on (http:\/\/\S+)/.exec(out.stderr);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      void exited.then((code) => reject(new Error(`exited ${code}: ${out.stderr}`)));
    });
    assert.match(out.stderr, /engine +kubernetes/);
    let ready = 0;
    for (let i = 0; i < 300 && ready !== 200; i++) {
      ready = (await fetch(`${url}/readyz`)).status;
      if (ready !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(ready, 200, "the embedded controller synced");
    child.kill("SIGTERM");
    assert.equal(await exited, 0, out.stderr);
  });
});
