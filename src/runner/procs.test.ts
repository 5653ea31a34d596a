import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { descendants, signalTree } from "./procs.ts";

/** Alive = listed in /proc and not a zombie (dead, waiting for a parent to reap it). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

describe("process tree", () => {
  it("finds grandchildren, even in another session, and signals them all", async () => {
    const child = spawn("/bin/sh", ["-c", "sleep 30 & setsid sleep 30 & echo ready; wait"], {
      detached: true,
      stdio: ["ignore", "pipe", "ignore"],
    });
    await new Promise((r) => child.stdout.once("data", r));
    const pid = child.pid!;
    const found = descendants(pid);
    assert.equal(found.length, 2, `descendants of ${pid}: ${found}`);
    const exited = new Promise((r) => child.once("exit", r));
    signalTree(pid, "SIGKILL");
    await exited;
    for (let i = 0; i < 100 && found.some(alive); i++) await new Promise((r) => setTimeout(r, 20));
    for (const p of found) assert.equal(alive(p), false, `process ${p} survived`);
  });

  it("returns nothing for a process without children", () => {
    assert.deepEqual(descendants(2 ** 22 + 7), []);
  });
});
