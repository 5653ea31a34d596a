// Measures the test control plane: start-up time (plain and full) and resident memory per
// component, a few runs each. `node hack/control-plane/measure.ts [runs]`
import { locateBinaries, readConfig } from "../../test/harness/config.ts";
import { ControlPlane } from "../../test/harness/control-plane.ts";

const runs = Number(process.argv[2] ?? 3);
const binaries = locateBinaries(readConfig().cacheDir);
const say = (m: string) => process.stdout.write(`${m}\n`);
say(`versions: ${JSON.stringify(binaries.versions)}`);

for (const full of [false, true]) {
  const totals: number[] = [];
  for (let i = 0; i < runs; i++) {
    const cp = await ControlPlane.start({ binaries, full });
    // Let the components settle (informers synced, caches filled) before reading memory.
    await new Promise((r) => setTimeout(r, 5_000));
    const rss = await cp.rss();
    const t0 = performance.now();
    await cp.stop();
    const stopMs = Math.round(performance.now() - t0);
    const ready = cp.timings.full ?? cp.timings["kube-apiserver"] ?? 0;
    totals.push(ready);
    const mb = Object.entries(rss).map(([k, v]) => `${k}=${Math.round(v / 1024)}MB`);
    const sum = Math.round(Object.values(rss).reduce((a, b) => a + b, 0) / 1024);
    say(
      `${full ? "full " : "plain"} run ${i + 1}: ready ${ready} ms ${JSON.stringify(cp.timings)}; ` +
        `RSS ${mb.join(" ")} total=${sum}MB; stop ${stopMs} ms`,
    );
  }
  totals.sort((a, b) => a - b);
  say(
    `${full ? "full " : "plain"}: median ready ${totals[Math.floor(totals.length / 2)]} ms over ${runs} runs`,
  );
}
