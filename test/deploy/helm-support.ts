/** The helm binary hack/control-plane.sh builds, run against charts/loom. */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { locateBinaries, MissingBinariesError, readConfig } from "../harness/config.ts";

export const root = new URL("../../", import.meta.url).pathname;
export const CHART = join(root, "charts/loom");

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
}

/** The helm path, or why the tests needing it skip (LOOM_SKIP_K8S=1 and no binaries). */
export function helmBinary(): { path: string; skip: false } | { path: undefined; skip: string } {
  const config = readConfig();
  try {
    return { path: locateBinaries(config.cacheDir).helm, skip: false };
  } catch (err) {
    if (err instanceof MissingBinariesError && config.skipIfMissing)
      return { path: undefined, skip: `LOOM_SKIP_K8S=1 and no helm in ${config.cacheDir}` };
    throw err;
  }
}

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs helm with its own config and cache folders (never the user's), plus `env`. */
export function helm(args: readonly string[], env: Record<string, string> = {}): Promise<HelmResult> {
  const bin = helmBinary();
  if (bin.skip !== false) throw new Error(bin.skip);
  const home = join(root, "dist", "helm-test-home");
  return new Promise((resolve, reject) => {
    const child = spawn(bin.path, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        // helm's Kubernetes client keeps its discovery cache under $HOME/.kube: not the repo's.
        HOME: home,
        HELM_CONFIG_HOME: join(home, "config"),
        HELM_CACHE_HOME: join(home, "cache"),
        HELM_DATA_HOME: join(home, "data"),
        ...env,
      },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** `helm template loom charts/loom -n loom -f VALUES [--set …]`: the text and its objects. */
export async function render(
  valuesFile: string,
  sets: readonly string[] = [],
): Promise<{ text: string; objects: K8sObject[] }> {
  const r = await helm([
    "template",
    "loom",
    CHART,
    "--namespace",
    "loom",
    "-f",
    valuesFile,
    ...sets.flatMap((s) => ["--set", s]),
  ]);
  if (r.code !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  const objects = parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
  return { text: r.stdout, objects };
}
