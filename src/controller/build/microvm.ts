/**
 * An `engine: microvm` workflow's pod (shared/spec/microvm-workflows.md): upstream's VM becomes
 * the workflow's pod, as close as Kubernetes allows.
 *
 * - `image` is a name; `microvm.images` maps it to an OCI image per architecture.
 * - The image's /nix is copied by the `nix-store` init container (same image, UID 1000) into a
 *   volume mounted at /nix in the runner container, so single-user Nix as UID 1000 can realise
 *   the dependencies (the official image's store belongs to root; the pod may not be root).
 * - Steps run as UID 1000 named `spindle-workflow`, in `/workspace/repo` (the workspace volume
 *   mounted there too), as upstream.
 * - `microvm.runtimeClassName` (e.g. Kata Containers) gives the VM isolation upstream has.
 * - `services.postgresql`, `.redis`, `.mysql`/`.mariadb` run as native sidecars, ready before the
 *   first step; `virtualisation.docker` as a rootless Docker daemon sidecar where the operator
 *   enabled microvm.docker (microvm-pod.ts). Anything else a workflow asks for fails it at once
 *   with Unsupported, naming it (never run without what it asked for).
 */
import { BuildError } from "../../api/contract/index.ts";
import type { WorkflowSpec } from "../../api/v1alpha1/spindleset.ts";
import { type ControllerConfig, microvmImage } from "../config.ts";

export const MICROVM_USER = "spindle-workflow";

export const MICROVM_PATHS = {
  /** Upstream's working directory: the workspace volume's `workspace` folder, mounted again. */
  workspace: "/workspace/repo",
  nix: "/nix",
  /** Where the nix-store init container copies the image's /nix. */
  nixCopy: "/loom/nix",
} as const;

export const NIX_STORE_CONTAINER = "nix-store";

/** Services Loom's Kubernetes mapping knows (src/workflow/microvm.ts has the same list for lint). */
const KNOWN_SERVICES = new Set(["postgresql", "redis", "mysql", "mariadb"]);

/** The OCI image of a microvm workflow, or a BuildError (Unsupported) naming what cannot be had. */
export function microvmPodImage(workflow: WorkflowSpec, config: ControllerConfig): string {
  const microvm = workflow.microvm;
  if (microvm === undefined) throw new Error(`workflow ${workflow.name} is not a microvm workflow`);
  for (const service of microvm.services) {
    if (!KNOWN_SERVICES.has(service)) {
      const why = `Loom runs only ${[...KNOWN_SERVICES].join(", ")}`;
      throw new BuildError("Unsupported", `services.${service}: ${why}; the workflow was not started`);
    }
    const options =
      service === "mariadb" ? microvm.mysql : microvm[service as "postgresql" | "redis" | "mysql"];
    if (options === undefined) {
      throw new BuildError(
        "Unsupported",
        `services.${service}: the SpindleSet carries no ${service === "mariadb" ? "mysql" : service} options for it; the workflow was not started`,
      );
    }
  }
  if (microvm.services.includes("mysql") && microvm.services.includes("mariadb")) {
    throw new BuildError(
      "Unsupported",
      "services.mariadb: Loom runs one MariaDB server for mysql and mariadb; the workflow was not started",
    );
  }
  for (const virtualisation of microvm.virtualisation) {
    const why =
      virtualisation !== "docker"
        ? "Loom provides only virtualisation.docker"
        : config.microvm.docker.enabled
          ? undefined
          : "this Loom runs no Docker daemon for microvm workflows (microvm.docker.enabled is false)";
    if (why !== undefined) {
      throw new BuildError(
        "Unsupported",
        `virtualisation.${virtualisation}: ${why}; the workflow was not started`,
      );
    }
  }
  const mapped = microvmImage(config, microvm.image, workflow.architecture);
  if (!mapped.ok) throw new BuildError("Unsupported", mapped.message);
  return mapped.image;
}
