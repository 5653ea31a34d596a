/**
 * The OCI image `loom run` runs a microvm workflow's image name in: the controller's defaults
 * (DEFAULT_MICROVM_IMAGES: `nixos` → the pinned official Nix image), as a cluster without
 * microvm.images would. Other plans keep their image.
 */
import { DEFAULT_MICROVM_IMAGES } from "../controller/config.ts";
import type { RunPlan } from "../workflow/index.ts";

export function microvmContainerImage(
  plan: Pick<RunPlan, "engine" | "image" | "microvm">,
): { ok: true; image: string } | { ok: false; message: string } {
  if (plan.engine !== "microvm") return { ok: true, image: plan.image };
  const name = plan.microvm?.image ?? plan.image;
  const image = Object.hasOwn(DEFAULT_MICROVM_IMAGES, name) ? DEFAULT_MICROVM_IMAGES[name] : undefined;
  if (image === undefined) {
    const known = Object.keys(DEFAULT_MICROVM_IMAGES).sort().join(", ");
    return {
      ok: false,
      message: `microvm image "${name}" has no OCI image for loom run (it knows ${known})`,
    };
  }
  return { ok: true, image };
}
