/**
 * The images without a container engine. The Dockerfile's final stages only copy what
 * scripts/image-layout.ts laid out; these tests run the same script and start Loom from its
 * folder (server: `loom serve --dev` answers /healthz with no runner bundle anywhere; the runner
 * images' bundles run workflows in test/image/runner-image.test.ts), and check the Dockerfile's
 * structure: its stages, their platforms, and that the server stage copies no bundle.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ARCH_INFO, ARCHES } from "../../scripts/build-runner-bundle.ts";
import { elfInfo } from "../../scripts/elf.ts";
import { IMAGE_PATHS, layOutRunner, layOutServer } from "../../scripts/image-layout.ts";
import { parseControllerConfig } from "../../src/controller/config.ts";
import { eventually } from "../harness/index.ts";
import { freePort } from "../support/ports.ts";

const repo = new URL("../../", import.meta.url).pathname;

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  base: string;
  name: string;
  platform: string | undefined;
  body: Instruction[];
}

/** Dockerfile → stages (continuation lines joined, comments dropped). Enough for this file. */
function stages(text: string): Stage[] {
  const lines = text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const out: Stage[] = [];
  for (const line of lines) {
    const [, op = "", args = ""] = /^(\S+)\s+(.*)$/.exec(line) ?? [];
    if (op.toUpperCase() === "FROM") {
      const m = /^(?:--platform=(\S+)\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      assert.ok(m, `FROM ${args}`);
      out.push({ platform: m[1], base: m[2]!, name: m[3] ?? "", body: [] });
    } else {
      assert.ok(out.length > 0, `${op} before FROM`);
      out.at(-1)!.body.push({ op: op.toUpperCase(), args });
    }
  }
  return out;
}

/** Every file under `dir`, relative. */
function files(dir: string, prefix = ""): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path, `${prefix}${name}/`) : [`${prefix}${name}`];
  });
}

describe("Dockerfile", () => {
  const all = stages(readFileSync(join(repo, "Dockerfile"), "utf8"));
  const byName = new Map(all.map((s) => [s.name, s]));
  const copies = (s: Stage) => s.body.filter((i) => i.op === "COPY").map((i) => i.args);
  const runs = (s: Stage) => s.body.filter((i) => i.op === "RUN").map((i) => i.args);

  it("has the build stages on the build machine's platform and the images last, the server by default", () => {
    assert.deepEqual(
      all.map((s) => [s.name, s.base, s.platform]),
      [
        ["build", "docker.io/library/node:24-bookworm-slim", "$BUILDPLATFORM"],
        ["runner-build", "build", undefined],
        ["runner", "docker.io/library/busybox:1.37", undefined],
        ["loom", "docker.io/library/node:24-bookworm-slim", undefined],
      ],
    );
    // busybox and node publish both platforms; the final stages take the target's (no --platform).
    assert.ok(byName.get("runner-build")!.body.some((i) => i.op === "ARG" && i.args === "TARGETARCH"));
  });

  it("lays out both images with scripts/image-layout.ts, the runner for the target architecture", () => {
    assert.ok(
      runs(byName.get("build")!).some((r) => r.includes("node scripts/image-layout.ts server /out/server")),
    );
    const runner = runs(byName.get("runner-build")!).join("\n");
    assert.match(runner, /bash hack\/runner-cross\.sh "\$TARGETARCH"/);
    assert.match(runner, /node scripts\/image-layout\.ts runner "\$TARGETARCH" \/out\/runner/);
    assert.deepEqual(copies(byName.get("runner")!), ["--from=runner-build /out/runner/ /"]);
  });

  it("gives the server image the server's files only: no runner bundle, no build stage's tree", () => {
    const loom = byName.get("loom")!;
    assert.deepEqual(copies(loom), ["--from=build /out/server/ /"]);
    assert.ok(!loom.body.some((i) => /runner/i.test(i.args)), "nothing in the server stage names the runner");
    const entry = loom.body.find((i) => i.op === "ENTRYPOINT")!;
    // --optimize-for-size: a small young generation and freed pages returned (docs/operating.md, memory).
    assert.deepEqual(JSON.parse(entry.args), [
      "node",
      "--optimize-for-size",
      `${IMAGE_PATHS.server}/dist/cli/main.js`,
    ]);
    assert.ok(loom.body.some((i) => i.op === "USER" && i.args === "1000:1000"));
  });

  it("puts the bundle where the controller's default runnerBundlePath looks", () => {
    const config = parseControllerConfig({ images: { runner: "r.test/loom-runner:1" } });
    assert.equal(config.images.runnerBundlePath, IMAGE_PATHS.runnerBundle);
  });
});

describe("server image files (scripts/image-layout.ts server)", () => {
  const out = mkdtempSync(join(tmpdir(), "loom-image-server-"));
  let app = "";
  let child: ChildProcess | undefined;
  before(() => {
    app = layOutServer(out);
  });
  after(() => {
    child?.kill("SIGKILL");
    rmSync(out, { recursive: true, force: true });
  });

  it("holds no runner bundle and no development dependencies", () => {
    const all = files(app);
    const bundleFiles = all.filter((f) => /(^|\/)(runner-bundle[^/]*\/|loom-runner$|runner\.mjs$)/.test(f));
    assert.deepEqual(bundleFiles, []);
    const pkg = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    const modules = join(app, "node_modules");
    for (const dep of Object.keys(pkg.dependencies))
      assert.ok(statSync(join(modules, dep)).isDirectory(), dep);
    for (const dev of ["esbuild", "typescript", "node", "@biomejs/biome"]) {
      assert.throws(() => statSync(join(modules, dev)), `${dev} is a devDependency`);
    }
    const bytes = all.reduce((n, f) => n + statSync(join(app, f)).size, 0);
    console.log(`# server image /app: ${(bytes / 1e6).toFixed(1)} MB in ${all.length} files`);
  });

  it("starts: loom serve --dev from the folder answers /healthz", async () => {
    const cwd = join(out, "work");
    mkdirSync(cwd);
    const port = await freePort();
    let output = "";
    child = spawn(process.execPath, [join(app, "dist", "cli", "main.js"), "serve", "--dev"], {
      cwd,
      env: {
        PATH: process.env.PATH,
        HOME: cwd,
        SPINDLE_SERVER_LISTEN_ADDR: `127.0.0.1:${port}`,
        // No network: a Jetstream that refuses connections.
        SPINDLE_SERVER_JETSTREAM_ENDPOINT: "ws://127.0.0.1:1/subscribe",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.stderr!.on("data", (d: Buffer) => {
      output += d.toString();
    });
    await eventually(
      "/healthz answering",
      async () => {
        if (child!.exitCode !== null) throw new Error(`loom exited ${child!.exitCode}: ${output}`);
        const res = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
        return res?.status === 200 || `not yet (${res?.status ?? "refused"})`;
      },
      30_000,
    );
    assert.match(output, /loom spindle listening on/);
  });
});

describe("runner image files (scripts/image-layout.ts runner <arch>)", () => {
  for (const arch of ARCHES) {
    it(`holds the linux/${arch} bundle at ${IMAGE_PATHS.runnerBundle}: Node, loader and libraries all ${arch}`, async (t) => {
      const out = mkdtempSync(join(tmpdir(), `loom-image-runner-${arch}-`));
      t.after(() => rmSync(out, { recursive: true, force: true }));
      const dir = await layOutRunner(arch, out);
      assert.equal(dir, join(out, IMAGE_PATHS.runnerBundle));
      assert.deepEqual(readdirSync(out), [IMAGE_PATHS.runnerBundle.slice(1)]);
      assert.equal(readFileSync(join(dir, "ARCH"), "utf8"), `${arch}\n`);
      assert.ok(statSync(join(dir, "loom-runner")).mode & 0o111, "the launcher is executable");
      const { machine, loader } = ARCH_INFO[arch];
      assert.equal(elfInfo(readFileSync(join(dir, "bin", "node"))).machine, machine);
      const libs = readdirSync(join(dir, "lib"));
      assert.ok(libs.includes(loader), `${loader} in lib/`);
      for (const lib of libs)
        assert.equal(elfInfo(readFileSync(join(dir, "lib", lib))).machine, machine, lib);
      const bytes = files(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
      console.log(`# runner image linux/${arch} ${IMAGE_PATHS.runnerBundle}: ${(bytes / 1e6).toFixed(1)} MB`);
    });
  }
});
