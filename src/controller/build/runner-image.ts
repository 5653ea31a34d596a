/**
 * Which runner bundle a workflow's pod gets. The bundle is per CPU architecture (linux/amd64,
 * linux/arm64: scripts/build-runner-bundle.ts), and so is the runner image: normally one
 * multi-arch tag (`images.runner`), from which the kubelet pulls the platform of the node the pod
 * is pinned to (the Job's nodeSelector carries kubernetes.io/arch); `images.runnerByArchitecture`
 * names an image per architecture instead, for registries or builds without a manifest list.
 *
 * install-runner then checks what it copies: a bundle carries an ARCH file, and one of another
 * architecture (a single-platform image behind `images.runner`) stops the pod with a sentence
 * saying so (InitContainerFailed), before any step could fail with "exec format error" (126).
 */
import type { Architecture } from "../../api/v1alpha1/spindleset.ts";
import type { ControllerConfig } from "../config.ts";

export function runnerImage(images: ControllerConfig["images"], architecture: Architecture): string {
  return images.runnerByArchitecture[architecture] ?? images.runner;
}

/**
 * How the bundle's launcher (scripts/build-runner-bundle.ts) begins the one line it writes when
 * it cannot start the runner at all: another architecture's bundle, a loader that will not run.
 * The controller reads it from the termination message and blames the runner, not a step.
 */
export const RUNNER_CANNOT_START = "loom-runner: cannot start:";
/** ...and the status it exits with then. Both must match: a step's own 125 is still the step's. */
export const RUNNER_CANNOT_START_EXIT = 125;

/** Exit status of install-runner when the image's bundle is for another architecture. */
export const WRONG_BUNDLE_EXIT = 3;

// `read` is a shell builtin: the runner image needs only sh and cp (busybox).
const INSTALL_SCRIPT = `set -eu
src=$1 arch=$2 dest=$3
if [ -f "$src/ARCH" ]; then
  read -r have <"$src/ARCH"
  if [ "$have" != "$arch" ]; then
    echo "install-runner: this runner image holds the linux/$have bundle, but the workflow runs on linux/$arch: give images.runner a multi-arch tag or set images.runnerByArchitecture.$arch" >&2
    exit ${WRONG_BUNDLE_EXIT}
  fi
fi
cp -R "$src/." "$dest/"
`;

/** install-runner's command: check the bundle in `bundlePath` is for `architecture`, copy it to `dest`. */
export function installRunnerCommand(bundlePath: string, architecture: Architecture, dest: string): string[] {
  return ["sh", "-c", INSTALL_SCRIPT, "install-runner", bundlePath, architecture, dest];
}
