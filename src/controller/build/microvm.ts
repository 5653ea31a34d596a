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
 * - `services.postgresql` runs as a native sidecar (postgres.ts), ready before the first step.
 *   Other services and `virtualisation` are not provided yet: a workflow asking for one fails at
 *   once with Unsupported, naming it (never run without what it asked for).
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
export const POSTGRES_CONTAINER = "service-postgresql";

/** Services Loom's Kubernetes mapping knows (src/workflow/microvm.ts has the same list for lint). */
const KNOWN_SERVICES = new Set(["postgresql", "redis", "mysql", "mariadb"]);

/**
 * `cp -a` as UID 1000: the copies belong to that user (ownership is not preserved without root),
 * modes and links are kept. A second run of the container (a restarted pod) starts empty again.
 */
export const NIX_STORE_COPY = `cp -a ${MICROVM_PATHS.nix}/. ${MICROVM_PATHS.nixCopy}/`;

/** The OCI image of a microvm workflow, or a BuildError (Unsupported) naming what cannot be had. */
export function microvmPodImage(workflow: WorkflowSpec, config: ControllerConfig): string {
  const microvm = workflow.microvm;
  if (microvm === undefined) throw new Error(`workflow ${workflow.name} is not a microvm workflow`);
  const service = microvm.services.find((s) => s !== "postgresql" || microvm.postgresql === undefined);
  if (service !== undefined) {
    const why = KNOWN_SERVICES.has(service)
      ? "Loom runs only postgresql as a microvm service on Kubernetes so far"
      : `Loom runs only ${[...KNOWN_SERVICES].join(", ")}`;
    throw new BuildError("Unsupported", `services.${service}: ${why}; the workflow was not started`);
  }
  const virtualisation = microvm.virtualisation[0];
  if (virtualisation !== undefined) {
    const why =
      virtualisation === "docker"
        ? "no Docker daemon is provided to microvm workflows on this Loom"
        : "Loom provides only virtualisation.docker";
    throw new BuildError(
      "Unsupported",
      `virtualisation.${virtualisation}: ${why}; the workflow was not started`,
    );
  }
  const mapped = microvmImage(config, microvm.image, workflow.architecture);
  if (!mapped.ok) throw new BuildError("Unsupported", mapped.message);
  return mapped.image;
}
