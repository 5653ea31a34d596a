/**
 * A spindle server with the Kubernetes engine on the test cluster, for the e2e-kubernetes tests:
 * its own directory and config file, KUBECONFIG set the way production passes cluster access (and
 * put back after the test), alice/loom registered and an /events collector from the start.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import type { TestCluster } from "../harness/index.ts";
import { ALICE, addRepo, type Booted, bootServer, Collector } from "./server-kit.ts";

export async function bootKubernetesServer(
  t: TestContext,
  o: {
    cluster: TestCluster;
    namespace: string;
    /** Prefix of the temporary directory's name. */
    prefix: string;
    /** Config lines under `kubernetes:` after its namespace and runner image (indented by two). */
    kubernetes?: string[];
  },
): Promise<{ booted: Booted; events: Collector }> {
  const dir = mkdtempSync(join(tmpdir(), o.prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const configFile = join(dir, "config.yaml");
  writeFileSync(
    configFile,
    [
      "kubernetes:",
      `  namespace: ${o.namespace}`,
      "  images:",
      "    runner: example.invalid/loom-runner:test",
      ...(o.kubernetes ?? []),
      "",
    ].join("\n"),
  );
  const previous = process.env.KUBECONFIG;
  process.env.KUBECONFIG = o.cluster.kubeconfigPath;
  t.after(() => {
    if (previous === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = previous;
  });
  const booted = await bootServer({
    dir,
    env: { SPINDLE_SERVER_ENGINE: "kubernetes", LOOM_CONFIG: configFile },
  });
  t.after(() => booted.stop());
  addRepo(booted.server, ALICE, "loom");
  const events = new Collector(`${booted.wsUrl}/events?cursor=1`);
  t.after(() => events.close());
  await events.opened;
  return { booted, events };
}
