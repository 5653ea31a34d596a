/**
 * The shell scripts of the init containers. They run under whatever `sh` the setup and git
 * images ship (busybox ash by default), so they stay POSIX. Paths are parameters only so the
 * tests can run the real scripts in a temporary folder; the Job always uses POD_PATHS.
 */
import { POD_PATHS } from "./pod.ts";

export const RUNNER_UID = 1000;

export interface ScriptPaths {
  home: string;
  workspace: string;
  setup: string;
  cloneLog: string;
}

/**
 * setup-user: passwd/group (and subuid/subgid for rootless buildah, mounted only in buildah
 * mode) for UID 1000, plus home and workspace folders created *as* UID 1000, so git's
 * safe.directory ownership check passes (an emptyDir's root belongs to root). `user` is the name
 * UID 1000 gets (`spindle-workflow` for microvm workflows, as upstream names it).
 */
export function setupScript(paths: ScriptPaths = POD_PATHS, user = "runner"): string {
  return [
    "set -eu",
    `mkdir -p ${paths.home} ${paths.workspace}`,
    `printf '%s\\n' 'root:x:0:0:root:/root:/bin/sh' '${user}:x:${RUNNER_UID}:${RUNNER_UID}:Loom runner:${paths.home}:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' > ${paths.setup}/passwd`,
    `printf '%s\\n' 'root:x:0:' '${user}:x:${RUNNER_UID}:' 'nogroup:x:65534:' > ${paths.setup}/group`,
    `echo '${user}:100000:65536' > ${paths.setup}/subuid`,
    `echo '${user}:100000:65536' > ${paths.setup}/subgid`,
  ].join("\n");
}

/**
 * clone-repo: the same git commands as Tangled's clone step (init, fetch --depth [sha],
 * checkout FETCH_HEAD), plus a real submodule checkout. Every command is chained with && because
 * `set -e` does not apply inside an `if` condition. URL and sha come in through the
 * environment (LOOM_CLONE_URL, LOOM_CLONE_SHA, LOOM_CLONE_DEPTH, LOOM_CLONE_SUBMODULES), never
 * spliced into the script. The output is kept in cloneLog for the workflow's clone step and
 * printed, so it is also the container's log and, on failure, its termination message.
 */
export function cloneScript(paths: ScriptPaths = POD_PATHS): string {
  return [
    "clone() {",
    `  cd ${paths.workspace} &&`,
    "  git -c init.defaultBranch=main init -q &&",
    '  git remote add origin "$LOOM_CLONE_URL" &&',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, not a JS template
    '  git fetch --no-tags --depth="$LOOM_CLONE_DEPTH" origin ${LOOM_CLONE_SHA:+"$LOOM_CLONE_SHA"} &&',
    "  git -c advice.detachedHead=false checkout -q FETCH_HEAD &&",
    '  if [ "$LOOM_CLONE_SUBMODULES" = true ]; then',
    '    git submodule update --init --recursive --depth="$LOOM_CLONE_DEPTH"',
    "  fi &&",
    "  git log -1 --format='Checked out %H: %s'",
    "}",
    `if clone > ${paths.cloneLog} 2>&1; then cat ${paths.cloneLog}; else`,
    `  status=$?; cat ${paths.cloneLog}; exit $status`,
    "fi",
  ].join("\n");
}
