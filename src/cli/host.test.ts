import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { commandOf, hostArchitecture, hostCaveats, stepPath } from "./host.ts";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "loom-host-"));
});
after(() => rm(dir, { recursive: true, force: true }));

describe("stepPath", () => {
  it("drops Loom's folder, npm's helpers and folders whose node is Loom's npm Node; keeps the rest", async () => {
    const root = join(dir, "loom");
    const nodeBin = join(root, "node_modules/node/bin");
    await mkdir(nodeBin, { recursive: true });
    await writeFile(join(nodeBin, "node"), "");
    // Elsewhere, a link to Loom's Node (as `npx` leaves in another project's .bin).
    const other = join(dir, "other/.bin");
    await mkdir(other, { recursive: true });
    await symlink(join(nodeBin, "node"), join(other, "node"));
    const path = [
      join(root, "node_modules/.bin"),
      nodeBin,
      "/usr/lib/node_modules/npm/node_modules/@npmcli/run-script/lib/node-gyp-bin",
      other,
      "/usr/local/bin",
      "",
      "/usr/bin",
    ].join(":");
    assert.equal(stepPath(path, { root, execPath: join(nodeBin, "node") }), "/usr/local/bin:/usr/bin");
  });

  it("keeps a folder whose node is the user's own (Loom started by /usr/bin/node)", () => {
    assert.equal(
      stepPath("/usr/bin:/bin", { root: join(dir, "loom"), execPath: "/usr/bin/node" }),
      "/usr/bin:/bin",
    );
  });
});

describe("host caveats", () => {
  const plan = (over: object) =>
    ({
      workflowName: "w.yml",
      engine: "kubernetes",
      image: "node:18",
      architecture: "amd64",
      steps: [],
      ...over,
    }) as unknown as Parameters<typeof hostCaveats>[0];
  const none = { dependencies: { form: "none" as const } };

  it("names the image, a foreign architecture and missing nixery dependencies", async () => {
    assert.equal(
      hostCaveats(plan({}), none, "/usr/bin", "amd64"),
      "w.yml runs on this host, not in a container: image node:18 is not used",
    );
    assert.equal(
      hostCaveats(plan({ architecture: "arm64" }), none, "/usr/bin", "amd64"),
      "w.yml runs on this host, not in a container: image node:18 is not used; architecture arm64 is not this host's (amd64)",
    );
    const bin = join(dir, "bin");
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, "go"), "", { mode: 0o755 });
    const deps = {
      dependencies: {
        form: "map" as const,
        registries: [{ registry: "nixpkgs", packages: ["go", "nodejs_22"] }],
      },
    };
    const nixery = plan({
      engine: "nixery",
      image: "nixery.tangled.sh/go/nodejs_22/bash/git/coreutils/nix",
      steps: [{ id: 0, name: "s", command: "x", kind: "user", env: [{ name: "PATH", value: bin }] }],
    });
    assert.equal(
      hostCaveats(nixery, deps, "/usr/bin", "amd64"),
      "w.yml runs on this host, not in a container: dependencies not on PATH: nodejs_22",
    );
    assert.equal(hostCaveats(plan({ engine: "nixery" }), none, "/usr/bin", "amd64"), undefined);
  });

  it("knows a few packages by their command", () => {
    assert.deepEqual(
      ["go", "nodejs_22", "python312", "coreutils", "gnumake", "go_1_23", "python3Packages.pip"].map(
        commandOf,
      ),
      ["go", "node", "python3", "ls", "make", "go", "pip"],
    );
    assert.equal(hostArchitecture("x64"), "amd64");
    assert.equal(hostArchitecture("arm64"), "arm64");
    assert.equal(hostArchitecture("riscv64"), undefined);
  });
});
