import { readdirSync, readFileSync } from "node:fs";

/**
 * Parent pid of every process, from /proc. Empty when /proc is not mounted (a bare chroot):
 * killing then falls back to the process group alone.
 */
function parentsByPid(): Map<number, number> {
  const parents = new Map<number, number>();
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return parents;
  }
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
      // The command name may hold spaces and parentheses: fields resume after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parents.set(pid, Number(fields[1]));
    } catch {
      // The process exited while we looked.
    }
  }
  return parents;
}

/** Every live descendant of `root` (not `root` itself). */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parentsByPid()) {
    const list = children.get(ppid);
    if (list === undefined) children.set(ppid, [pid]);
    else list.push(pid);
  }
  const out: number[] = [];
  const queue = [root];
  for (let pid = queue.pop(); pid !== undefined; pid = queue.pop()) {
    for (const child of children.get(pid) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // ESRCH: already gone. EPERM: not ours to kill.
  }
}

/**
 * Signal a step's whole process tree: its process group (the step leads its own, being spawned
 * detached), and every descendant found in /proc even if it moved to another group or session
 * (setsid). When the runner is PID 1 of a container, orphans that escaped by double-forking are
 * re-parented to it, so its own descendants are included too.
 */
export function signalTree(pgid: number, sig: NodeJS.Signals): void {
  const pids = descendants(pgid);
  if (process.pid === 1) pids.push(...descendants(1));
  signal(-pgid, sig);
  for (const pid of pids) if (pid !== process.pid) signal(pid, sig);
}

/**
 * End of run: SIGKILL what is left of every step's process group (background processes a step
 * started). The leaders have exited, so their trees cannot be walked any more; as PID 1 of a
 * container, everything else the runner started is its descendant and goes too. One /proc scan
 * at most, whatever the number of steps.
 */
export function killLeftovers(pgids: number[]): void {
  for (const pgid of pgids) signal(-pgid, "SIGKILL");
  if (process.pid === 1) for (const pid of descendants(1)) signal(pid, "SIGKILL");
}
