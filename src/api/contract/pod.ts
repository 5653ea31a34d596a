/**
 * The container names and paths of a workflow's pod (the Job is built by src/controller/build/job.ts).
 * The controller reads their statuses (a failed `clone-repo` is CloneFailed, the `runner`'s exit
 * code is the step's); the engine follows the `runner` container's log for the runner's events.
 */
export const CONTAINERS = {
  setupUser: "setup-user",
  cloneRepo: "clone-repo",
  installRunner: "install-runner",
  runner: "runner",
} as const;

/** Where things live inside a workflow pod. */
export const POD_PATHS = {
  /** emptyDir; setup-user creates home/ and workspace/ in it as UID 1000, so git trusts them. */
  tangled: "/tangled",
  workspace: "/tangled/workspace",
  home: "/tangled/home",
  /** emptyDir the runner bundle is copied into. */
  runner: "/loom/runner",
  runnerBinary: "/loom/runner/loom-runner",
  /** The RunnerSpec ConfigMap. */
  spec: "/loom/spec",
  specFile: "/loom/spec/spec.json",
  /** emptyDir for what init containers leave behind: passwd, group, subuid, subgid, clone.log. */
  setup: "/loom/setup",
  cloneLog: "/loom/setup/clone.log",
  tmp: "/tmp",
} as const;
