// node --test --test-global-setup=test/harness/global-setup.ts ...
// Starts the run's one control plane before any test file and stops it after the last one (the
// runner also calls globalTeardown on SIGINT). Test files reach it through getTestCluster().
//
// Binaries missing: nothing is started here; the test files that need Kubernetes then fail with
// MissingBinariesError (or skip with LOOM_SKIP_K8S=1), while the other test files still run.
import { ENV_SHARED_STATE, locateBinaries, MissingBinariesError, readConfig } from "./config.ts";
import { ControlPlane } from "./control-plane.ts";

let controlPlane: ControlPlane | undefined;

export async function globalSetup(): Promise<void> {
  const config = readConfig();
  let binaries: ReturnType<typeof locateBinaries>;
  try {
    binaries = locateBinaries(config.cacheDir);
  } catch (err) {
    if (err instanceof MissingBinariesError) {
      process.stderr.write(`[k8s harness] not starting a control plane: ${err.message}\n`);
      return;
    }
    throw err;
  }
  controlPlane = await ControlPlane.start({
    binaries,
    full: config.mode === "full",
    keepRunDir: config.keepRunDir,
  });
  process.env[ENV_SHARED_STATE] = JSON.stringify(controlPlane.state());
  const t = controlPlane.timings;
  process.stderr.write(
    `[k8s harness] ${config.mode} control plane ${binaries.versions.K8S_VERSION ?? ""} ready in ` +
      `${t.full ?? t["kube-apiserver"]} ms; KUBECONFIG=${controlPlane.kubeconfigPath}\n`,
  );
}

export async function globalTeardown(): Promise<void> {
  await controlPlane?.stop();
  controlPlane = undefined;
}
