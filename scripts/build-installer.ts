/**
 * dist/install.yaml for `make build-installer IMG=... RUNNER_IMG=...`: everything `make deploy`
 * applies (config/default, rendered by `kubectl kustomize`) in one file, with Loom's image in the
 * Deployment and the runner image in the config's `kubernetes.images.runner` (a string inside
 * the ConfigMap, which kustomize's `images:` cannot reach). Comments in the config are kept.
 * Operators install it with `kubectl apply --server-side -f install.yaml`.
 *
 * Usage: node scripts/build-installer.ts [--image IMG] [--runner-image RUNNER_IMG] [--out FILE]
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { isMap, isSeq, parseAllDocuments, parseDocument, type YAMLMap } from "yaml";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
/** The Deployment's container and the ConfigMap key the images go into (config/manager). */
export const INSTALLER_TARGETS = {
  container: "loom",
  configMap: "loom-config",
  configKey: "config.yaml",
} as const;

export interface InstallerImages {
  image?: string | undefined;
  runnerImage?: string | undefined;
}

/** Sets the images in kustomize's output. Throws when a target is missing (a renamed object). */
export function renderInstaller(kustomized: string, images: InstallerImages): string {
  const docs = parseAllDocuments(kustomized);
  let deployment = false;
  let config = false;
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`kustomize output: ${doc.errors[0]!.message}`);
    const kind = doc.get("kind");
    if (kind === "Deployment") {
      const containers = doc.getIn(["spec", "template", "spec", "containers"]);
      if (!isSeq(containers)) continue;
      for (const c of containers.items) {
        if (isMap(c) && (c as YAMLMap).get("name") === INSTALLER_TARGETS.container) {
          deployment = true;
          if (images.image) (c as YAMLMap).set("image", images.image);
        }
      }
    } else if (kind === "ConfigMap" && doc.getIn(["metadata", "name"]) === INSTALLER_TARGETS.configMap) {
      const text = doc.getIn(["data", INSTALLER_TARGETS.configKey]);
      if (typeof text !== "string") continue;
      config = true;
      if (images.runnerImage) {
        const inner = parseDocument(text);
        inner.setIn(["kubernetes", "images", "runner"], images.runnerImage);
        doc.setIn(["data", INSTALLER_TARGETS.configKey], String(inner));
      }
    }
  }
  if (!deployment) throw new Error(`no Deployment with a container named ${INSTALLER_TARGETS.container}`);
  if (!config)
    throw new Error(`no ConfigMap ${INSTALLER_TARGETS.configMap} with ${INSTALLER_TARGETS.configKey}`);
  // A document read after a `---` prints one itself: drop it, the join puts exactly one.
  return docs.map((d) => String(d).replace(/^---\n/, "")).join("---\n");
}

/** kubectl from PATH, else the one `make test-deps` built. */
function kubectl(): string {
  try {
    execFileSync("kubectl", ["version", "--client"], { stdio: "ignore" });
    return "kubectl";
  } catch {
    const cached = join(
      process.env.LOOM_CACHE || join(homedir(), ".cache", "loom"),
      "k8s-v1.37.2",
      "bin",
      "kubectl",
    );
    if (existsSync(cached)) return cached;
    throw new Error("kubectl is needed to render config/default (install it, or run make test-deps)");
  }
}

export function kustomize(dir = join(root, "config", "default")): string {
  return execFileSync(kubectl(), ["kustomize", dir], { encoding: "utf8", maxBuffer: 64 << 20 });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values } = parseArgs({
    options: {
      image: { type: "string" },
      "runner-image": { type: "string" },
      out: { type: "string", default: join(root, "dist", "install.yaml") },
    },
  });
  const out = resolve(values.out);
  const yaml = renderInstaller(kustomize(), {
    image: values.image || undefined,
    runnerImage: values["runner-image"] || undefined,
  });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, yaml);
  console.log(`wrote ${out}`);
}
