/** Test helper: live processes whose environment holds `marker` (e.g. `SUITE_RUN=<wid>`). */
import { readdirSync, readFileSync } from "node:fs";

export function findProcesses(marker: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      const env = readFileSync(`/proc/${pid}/environ`, "latin1").split("\0");
      if (!env.includes(marker)) continue;
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "latin1").replaceAll("\0", " ").trim();
      out.push(`${pid} ${cmd}`);
    } catch {
      // Gone, or not ours.
    }
  }
  return out;
}
