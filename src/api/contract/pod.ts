/**
 * The container names of a workflow's pod (the Job is built by src/controller/build/job.ts).
 * The controller reads their statuses (a failed `clone-repo` is CloneFailed, the `runner`'s exit
 * code is the step's); the engine follows the `runner` container's log for the runner's events.
 */
export const CONTAINERS = {
  setupUser: "setup-user",
  cloneRepo: "clone-repo",
  installRunner: "install-runner",
  runner: "runner",
} as const;
