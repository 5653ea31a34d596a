import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { installRunnerCommand, runnerImage, WRONG_BUNDLE_EXIT } from "./runner-image.ts";
import { config } from "./testdata/fixtures.ts";

describe("runnerImage", () => {
  it("is the multi-arch tag unless the architecture has its own image", () => {
    const { images } = config({
      images: {
        runner: "r.test/loom-runner:1",
        runnerByArchitecture: { arm64: "r.test/loom-runner:1-arm64" },
      },
    });
    assert.equal(runnerImage(images, "amd64"), "r.test/loom-runner:1");
    assert.equal(runnerImage(images, "arm64"), "r.test/loom-runner:1-arm64");
  });
});

describe("install-runner's command, run by a real sh", () => {
  const dir = mkdtempSync(join(tmpdir(), "loom-install-runner-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function image(name: string, arch: string | undefined): string {
    const bundle = join(dir, name, "loom-runner");
    mkdirSync(join(bundle, "bin"), { recursive: true });
    writeFileSync(join(bundle, "loom-runner"), "#!/bin/sh\n");
    writeFileSync(join(bundle, "bin", "node"), "node");
    if (arch !== undefined) writeFileSync(join(bundle, "ARCH"), `${arch}\n`);
    return bundle;
  }
  function install(bundle: string, arch: "amd64" | "arm64") {
    const dest = mkdtempSync(join(dir, "dest-"));
    const [cmd, ...args] = installRunnerCommand(bundle, arch, dest);
    const res = spawnSync(cmd!, args, { encoding: "utf8" });
    return { dest, status: res.status, stderr: res.stderr };
  }

  it("copies a bundle of the workflow's architecture", () => {
    const got = install(image("arm", "arm64"), "arm64");
    assert.equal(got.status, 0, got.stderr);
    assert.equal(readFileSync(join(got.dest, "bin", "node"), "utf8"), "node");
    assert.equal(readFileSync(join(got.dest, "ARCH"), "utf8"), "arm64\n");
  });

  it("refuses one of another architecture with a sentence that says what to change", () => {
    const got = install(image("amd", "amd64"), "arm64");
    assert.equal(got.status, WRONG_BUNDLE_EXIT);
    assert.equal(
      got.stderr,
      "install-runner: this runner image holds the linux/amd64 bundle, but the workflow runs on linux/arm64: " +
        "give images.runner a multi-arch tag or set images.runnerByArchitecture.arm64\n",
    );
    assert.ok(!existsSync(join(got.dest, "loom-runner")), "nothing copied");
  });

  it("copies a bundle that predates the ARCH file (the launcher still checks)", () => {
    const got = install(image("old", undefined), "amd64");
    assert.equal(got.status, 0, got.stderr);
    assert.ok(existsSync(join(got.dest, "loom-runner")));
  });
});
