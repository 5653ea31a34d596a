import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalEngine } from "../../src/engine/local/engine.ts";
import { findProcesses } from "./procs.ts";
import { engineBehaviour } from "./suite.ts";

engineBehaviour("local", async () => {
  const base = await mkdtemp(join(tmpdir(), "loom-engine-"));
  const engine = new LocalEngine({ baseDir: base, killGraceMs: 1500, timeoutGraceMs: 3000 });
  return {
    engine,
    async leftovers(wid) {
      const dirs = (await readdir(base)).map((d) => `directory ${d}`);
      const procs = findProcesses(`SUITE_RUN=${wid}`).map((p) => `process ${p}`);
      return [...dirs, ...procs];
    },
    async close() {
      await engine.close();
      await rm(base, { recursive: true, force: true });
    },
  };
});
