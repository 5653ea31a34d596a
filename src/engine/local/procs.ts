/**
 * Finding and killing every process a local run left behind, from /proc (Linux).
 *
 * Steps run in their own sessions (the runner spawns them detached), so killing the runner's
 * process group is not enough, and a step's background job re-parents to init once the runner
 * is gone. A process belongs to a run when it descends from the runner, or when its working
 * directory lies inside the run's directory — which also finds orphans of a runner that died
 * with a previous server process. A process that both daemonised and left the run directory
 * escapes; only a cgroup (the Kubernetes engine's pod) closes that gap.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

interface ProcInfo {
  pid: number;
  ppid: number;
  cwd: string | undefined;
}

function listProcs(): ProcInfo[] {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  const out: ProcInfo[] = [];
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
      // The command name may hold spaces and ')': the fields resume after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] === "Z") continue; // a zombie holds nothing; its parent reaps it
      let cwd: string | undefined;
      try {
        cwd = readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        // Not ours (EACCES) or gone.
      }
      out.push({ pid, ppid: Number(fields[1]), cwd });
    } catch {
      // Exited while we looked.
    }
  }
  return out;
}

/** Live processes (never this one) that descend from `root` or work inside `dir`. */
export function runProcesses(dir: string, root?: number): number[] {
  const procs = listProcs();
  const found = new Set<number>();
  const prefix = dir.endsWith("/") ? dir : `${dir}/`;
  for (const p of procs) {
    if (p.cwd !== undefined && (p.cwd === dir || p.cwd.startsWith(prefix))) found.add(p.pid);
  }
  if (root !== undefined) {
    const children = new Map<number, number[]>();
    for (const p of procs) {
      const list = children.get(p.ppid);
      if (list) list.push(p.pid);
      else children.set(p.ppid, [p.pid]);
    }
    const queue = [root];
    for (let pid = queue.pop(); pid !== undefined; pid = queue.pop()) {
      for (const child of children.get(pid) ?? []) {
        found.add(child);
        queue.push(child);
      }
    }
    if (procs.some((p) => p.pid === root)) found.add(root);
  }
  return [...found];
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // ESRCH: already gone; EPERM: not ours.
  }
}

/**
 * SIGKILLs everything runProcesses() finds, again and again until nothing is left (a process
 * may fork while we kill its parent). Returns the pids that were still alive after `rounds`.
 */
export async function killRunProcesses(dir: string, root?: number, rounds = 50): Promise<number[]> {
  let left: number[] = [];
  for (let i = 0; i < rounds; i++) {
    left = runProcesses(dir, root);
    if (left.length === 0) return [];
    for (const pid of left) {
      // Each step leads its own process group; killing the group first catches a fork racing us.
      kill(-pid, "SIGKILL");
      kill(pid, "SIGKILL");
    }
    await sleep(i < 5 ? 10 : 50);
  }
  return left;
}
