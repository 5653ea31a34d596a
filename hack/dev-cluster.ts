// make dev-cluster: the test control plane (full mode: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kwok with fake amd64/arm64 nodes) for manual work.
// Prints the kubeconfig and a kubectl line; Ctrl-C stops everything and removes its files.
//
//   node hack/dev-cluster.ts [--plain] [--keep]
//     --plain  only etcd + kube-apiserver
//     --keep   keep the run folder (component logs, PKI) after stopping
import { copyFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { locateBinaries, readConfig } from "../test/harness/config.ts";
import { ControlPlane } from "../test/harness/control-plane.ts";

const { values } = parseArgs({
  options: { plain: { type: "boolean", default: false }, keep: { type: "boolean", default: false } },
});
const config = readConfig();
const binaries = locateBinaries(config.cacheDir);
const say = (msg: string) => process.stdout.write(`${msg}\n`);

say(
  `starting ${values.plain ? "plain" : "full"} control plane (Kubernetes ${binaries.versions.K8S_VERSION ?? "?"}) ...`,
);
const cp = await ControlPlane.start({
  binaries,
  full: !values.plain,
  keepRunDir: values.keep || config.keepRunDir,
  log: (m) => say(`  ${m}`),
});
// A stable path, so a shell that exported KUBECONFIG keeps working across restarts.
const stableKubeconfig = join(config.cacheDir, "dev-cluster.kubeconfig");
await copyFile(cp.kubeconfigPath, stableKubeconfig);

const rss = await cp.rss();
const totalMb = Math.round(Object.values(rss).reduce((a, b) => a + b, 0) / 1024);
say("");
say(`ready in ${cp.timings.full ?? cp.timings["kube-apiserver"]} ms; ${cp.server}`);
say(
  `memory (RSS): ${Object.entries(rss)
    .map(([k, v]) => `${k} ${Math.round(v / 1024)} MB`)
    .join(", ")}; total ${totalMb} MB`,
);
say(`component logs: ${cp.runDir}/*.log`);
say(`kubeconfig:     ${stableKubeconfig}`);
say("");
say(`  export KUBECONFIG=${stableKubeconfig}`);
say(`  ${binaries.kubectl} --kubeconfig=${stableKubeconfig} get nodes -L kubernetes.io/arch`);
say("");
say("Ctrl-C to stop.");

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  say(`\n${signal}: stopping ...`);
  await cp.stop();
  await rm(stableKubeconfig, { force: true });
  say(values.keep ? `stopped; run folder kept: ${cp.runDir}` : "stopped; nothing left behind");
  process.exit(0);
};
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));
// Keep the process alive (the components do not hold the event loop open).
setInterval(() => {}, 1 << 30);
