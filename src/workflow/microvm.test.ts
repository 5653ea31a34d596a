/**
 * `engine: microvm`: its keys decode with file:line:col findings, lint says what Loom's
 * Kubernetes mapping cannot do, and a nixery workflow turned microvm resolves to the same user
 * steps and environment (upstream's promise), plus the dev-shell system step.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseDocument } from "yaml";
import { compileWorkflows } from "./compile.ts";
import { lintWorkflow } from "./lint.ts";
import { DEVSHELL_STEP_NAME, devShellExpression } from "./microvm.ts";
import { parseWorkflow } from "./parse.ts";
import { type RunPlan, resolveWorkflow } from "./resolve.ts";
import { pushTrigger } from "./testkit.ts";
import type { PipelineWorkflow } from "./types.ts";

const opts = { pipeline: { knot: "knot1.tangled.sh", rkey: "3lxyz2abcde22" }, secretKeys: ["TOKEN"] };
const push = pushTrigger("refs/heads/main");
const clone = { depth: 1, skip: false, submodules: false };
const workflow = (raw: string): PipelineWorkflow => ({ clone, engine: "microvm", name: "w.yml", raw });
const plan = (raw: string): RunPlan => {
  const r = resolveWorkflow(workflow(raw), push, opts);
  assert.ok(r.ok, r.ok ? "" : r.error);
  return r.plan;
};
const findings = (text: string) =>
  lintWorkflow("w.yml", text)
    .filter((d) => d.kind !== "no steps")
    .map((d) => [d.severity, d.line, d.column, d.message]);

describe("microvm keys: decode", () => {
  it("reads every key into the model", () => {
    const text = [
      "engine: microvm",
      "image: nixos",
      "dependencies: [go, 'github:nixos/nixpkgs#hello']",
      "registry:",
      "  nixpkgs: github:nixos/nixpkgs/nixos-unstable",
      "caches:",
      "  https://c.example: 'c.example-1:AAAA='",
      "services:",
      "  redis: true",
      "  postgresql: {enable: true, ensureDatabases: [db], port: 5432}",
      "virtualisation: {docker: true}",
    ].join("\n");
    const p = parseWorkflow("w.yml", text);
    assert.deepEqual([...p.errors, ...p.engineErrors, ...p.warnings], []);
    const m = p.workflow!.microvm;
    assert.deepEqual(m.registry, [
      { name: "nixpkgs", flakeref: "github:nixos/nixpkgs/nixos-unstable", pos: { line: 5, column: 3 } },
    ]);
    assert.deepEqual(m.caches, [
      { url: "https://c.example", publicKey: "c.example-1:AAAA=", pos: { line: 7, column: 3 } },
    ]);
    assert.deepEqual(m.services, [
      { name: "redis", enable: true, options: {}, pos: { line: 9, column: 3 } },
      {
        name: "postgresql",
        enable: true,
        options: { ensureDatabases: ["db"], port: 5432 },
        pos: { line: 10, column: 3 },
      },
    ]);
    assert.deepEqual(m.virtualisation, [{ name: "docker", value: true, pos: { line: 11, column: 18 } }]);
    assert.deepEqual(m.dependencyPositions, [
      { line: 3, column: 16 },
      { line: 3, column: 20 },
    ]);
  });

  it("wrong shapes are engine errors with file:line:col", () => {
    const cases: [string, string][] = [
      ["registry: [a]\n", "w.yml:2:11: registry: expected a mapping, found a sequence"],
      ["registry:\n  nixpkgs: [a]\n", "w.yml:3:12: registry.nixpkgs: expected a string, found a sequence"],
      ['registry:\n  "a b": github:x/y\n', 'w.yml:3:3: registry.a b: "a b" is not a flake registry name'],
      [
        "caches:\n  ftp://x: k:AA==\n",
        'w.yml:3:3: caches.ftp://x: "ftp://x" is not an http(s) binary cache URL',
      ],
      [
        "caches:\n  https://x: nokey\n",
        'w.yml:3:3: caches.https://x: "nokey" is not a Nix public key (name:base64)',
      ],
      ["services: true\n", 'w.yml:2:11: services: expected a mapping, found "true"'],
      [
        "services:\n  redis: [a]\n",
        "w.yml:3:10: services.redis: expected true, false or a mapping of options",
      ],
      [
        "services:\n  redis: {enable: maybe}\n",
        'w.yml:3:19: services.redis.enable: expected true or false, found "maybe"',
      ],
      [
        "virtualisation:\n  docker: 3\n",
        "w.yml:3:3: virtualisation.docker: expected true, false or a mapping of options",
      ],
      [
        "dependencies:\n  - go\n  - 'x\"; rm -rf /'\n",
        'w.yml:4:5: dependencies[1]: "x"; rm -rf /" is not a nixpkgs attribute name (or flakeref#attr)',
      ],
      ["dependencies: ['github:a/b#$(x)']\n", 'w.yml:2:16: dependencies[0]: "$(x)" is not an attribute name'],
    ];
    for (const [body, error] of cases) {
      const r = resolveWorkflow(workflow(`engine: microvm\n${body}`), push, opts);
      assert.deepEqual(r, { ok: false, error }, body);
      const lint = lintWorkflow("w.yml", `engine: microvm\n${body}`).filter((d) => d.severity === "error");
      assert.equal(lint.length, 1, body);
      assert.equal(`w.yml:${lint[0]!.line}:${lint[0]!.column}: ${lint[0]!.message}`, error);
    }
  });

  it("other engines neither decode nor check the keys: one ignored-key warning each", () => {
    const p = parseWorkflow("w.yml", "engine: nixery\nservices: [bad]\nregistry: 1\n");
    assert.deepEqual(p.engineErrors, []);
    assert.deepEqual(
      p.warnings.map((d) => [d.kind, d.line]),
      [
        ["ignored key", 2],
        ["ignored key", 3],
      ],
    );
    assert.deepEqual(p.workflow!.microvm.services, []);
  });
});

describe("microvm: lint says what the Kubernetes mapping cannot do", () => {
  it("a service outside the supported set and virtualisation other than docker are errors", () => {
    const text =
      "engine: microvm\nservices:\n  nginx: true\n  redis: {enable: false}\n  mysql: true\n  mariadb: true\nvirtualisation:\n  libvirtd: true\n  docker: true\nsteps:\n  - command: x\n";
    assert.deepEqual(findings(text), [
      [
        "error",
        3,
        3,
        "services.nginx: Loom's Kubernetes engine cannot run this NixOS service (it runs postgresql, redis, mysql, mariadb); the workflow would fail before it starts",
      ],
      ["warning", 4, 3, "services.redis is not enabled (enable: true), so it is not started"],
      [
        "error",
        6,
        3,
        "services.mariadb: Loom runs one MariaDB server for mysql and mariadb; services.mysql is already enabled",
      ],
      [
        "error",
        8,
        3,
        "virtualisation.libvirtd: Loom's Kubernetes engine cannot provide this (only virtualisation.docker, where the operator allows it); the workflow would fail before it starts",
      ],
      [
        "warning",
        9,
        3,
        "virtualisation.docker: Loom's Kubernetes engine runs a rootless Docker daemon only where the operator allows it (microvm.docker.enabled); elsewhere the workflow fails before it starts",
      ],
    ]);
    assert.deepEqual(resolveWorkflow(workflow(text), push, opts), {
      ok: false,
      error:
        "w.yml:6:3: services.mariadb: Loom runs one MariaDB server for mysql and mariadb; services.mysql is already enabled",
    });
  });

  it("redis and mysql/mariadb options: honoured ones reach the plan, any other fails resolve and lint, naming it", () => {
    const ok =
      'engine: microvm\nservices:\n  redis: {enable: true, port: 0}\n  mariadb:\n    enable: true\n    ensureDatabases: [app]\n    ensureUsers:\n      - name: spindle-workflow\n        ensurePermissions:\n          "app.*": ALL PRIVILEGES\n          "*.*": SELECT, PROCESS\n      - name: reader\nsteps:\n  - command: x\n';
    assert.deepEqual(findings(ok), []);
    const plan = resolveWorkflow(workflow(ok), push, opts);
    assert.ok(plan.ok, JSON.stringify(plan));
    assert.deepEqual(plan.plan.microvm, {
      image: "nixos",
      services: ["redis", "mariadb"],
      virtualisation: [],
      redis: { port: 0 },
      mysql: {
        ensureDatabases: ["app"],
        ensureUsers: [
          {
            name: "spindle-workflow",
            ensurePermissions: [
              { on: "app.*", privileges: "ALL PRIVILEGES" },
              { on: "*.*", privileges: "SELECT, PROCESS" },
            ],
          },
          { name: "reader", ensurePermissions: [] },
        ],
      },
    });
    const cases: [string, string][] = [
      [
        "redis: {enable: true, servers: {cache: {enable: true}}}",
        'services.redis.servers: Loom runs only the default server (servers."")',
      ],
      [
        "redis: {enable: true, requirePass: x}",
        "services.redis.requirePass: Loom cannot honour this option (it honours port)",
      ],
      [
        "redis: {enable: true, port: 70000}",
        "services.redis.port: expected a port number (0 for the socket only)",
      ],
      [
        "mysql: {enable: true, package: mariadb}",
        "services.mysql.package: Loom cannot honour this option (it honours ensureDatabases, ensureUsers)",
      ],
      [
        'mysql: {enable: true, ensureDatabases: ["a;b"]}',
        'services.mysql.ensureDatabases[0]: "a;b" is not a name Loom accepts (letters, digits, _ and -, at most 64)',
      ],
      [
        'mysql: {enable: true, ensureUsers: [{name: u, ensurePermissions: {"a.*": "ALL; DROP"}}]}',
        'services.mysql.ensureUsers[0].ensurePermissions.a.*: "ALL; DROP" is not a list of privileges',
      ],
      [
        'mysql: {enable: true, ensureUsers: [{name: u, ensurePermissions: {"a\' OR 1": ALL}}]}',
        'services.mysql.ensureUsers[0].ensurePermissions: "a\' OR 1" is not db.* or db.table',
      ],
      [
        'mysql: {enable: true, ensureUsers: [{name: u, ensurePermissions: {"`a.*": ALL}}]}',
        'services.mysql.ensureUsers[0].ensurePermissions: "`a.*" is not db.* or db.table',
      ],
      [
        "mariadb: {enable: true, ensureUsers: [{name: u, password: x}]}",
        "services.mariadb.ensureUsers[0].password: Loom cannot honour this option",
      ],
    ];
    for (const [service, message] of cases) {
      const text = `engine: microvm\nservices:\n  ${service}\nsteps:\n  - command: x\n`;
      assert.deepEqual(findings(text), [["error", 3, 3, message]], service);
      assert.deepEqual(
        resolveWorkflow(workflow(text), push, opts),
        { ok: false, error: `w.yml:3:3: ${message}` },
        service,
      );
    }
  });

  it("nixery's map of dependencies is an error under microvm", () => {
    assert.deepEqual(findings("engine: microvm\ndependencies:\n  nixpkgs: [go]\nsteps:\n  - command: x\n"), [
      [
        "error",
        2,
        1,
        "engine microvm needs dependencies as a flat list (bare nixpkgs names and flakeref#attr), not a map of registry to packages",
      ],
    ]);
    assert.deepEqual(
      resolveWorkflow(workflow("engine: microvm\ndependencies:\n  nixpkgs: [go]\n"), push, opts),
      {
        ok: false,
        error: "engine microvm needs dependencies as a flat list, not a map of registry to packages",
      },
    );
  });
});

describe("microvm: resolve", () => {
  it("the dev shell is a system step after the clone; later steps source it through BASH_ENV", () => {
    const p = plan(
      "engine: microvm\ndependencies: [go, 'myflake#tool']\nregistry: {myflake: 'github:me/x'}\ncaches: {'https://c.example': 'c-1:AAAA'}\nsteps:\n  - name: b\n    command: go build\n",
    );
    assert.equal(p.engine, "microvm");
    assert.equal(p.image, "nixos");
    assert.deepEqual(p.microvm, { image: "nixos", services: [], virtualisation: [] });
    assert.deepEqual(
      p.steps.map((s) => [s.id, s.name, s.kind]),
      [
        [0, "Clone repository into workspace", "system"],
        [1, DEVSHELL_STEP_NAME, "system"],
        [2, "b", "user"],
      ],
    );
    const nixConfig = [
      "experimental-features = nix-command flakes",
      "build-users-group =",
      "sandbox = false",
      "extra-substituters = https://c.example",
      "extra-trusted-public-keys = c-1:AAAA",
    ].join("\n");
    const last = (env: RunPlan["steps"][number]["env"], name: string) => env.findLast((e) => e.name === name);
    assert.equal(last(p.steps[0]!.env, "NIX_CONFIG"), undefined);
    assert.deepEqual(last(p.steps[1]!.env, "NIX_CONFIG"), { name: "NIX_CONFIG", value: nixConfig });
    assert.equal(last(p.steps[1]!.env, "BASH_ENV"), undefined);
    assert.deepEqual(last(p.steps[2]!.env, "NIX_CONFIG"), { name: "NIX_CONFIG", value: nixConfig });
    assert.deepEqual(last(p.steps[2]!.env, "BASH_ENV"), {
      name: "BASH_ENV",
      value: "/tangled/home/.cache/loom/devshell.sh",
    });
    const cmd = p.steps[1]!.command;
    assert.match(cmd, /^set -eu\n/);
    assert.match(cmd, /nix print-dev-env --impure -L --expr '/);
    assert.match(cmd, /> '\/tangled\/home\/.cache\/loom\/devshell.sh'/);
    assert.ok(
      cmd.includes(
        devShellExpression(
          ["go", "myflake#tool"],
          [{ name: "myflake", flakeref: "github:me/x", pos: { line: 1, column: 1 } }],
        ),
      ),
    );
  });

  it("the expression pins bare names through registry.nixpkgs and maps registry names", () => {
    const at = { line: 1, column: 1 };
    const expr = devShellExpression(
      ["go", "github:nixos/nixpkgs#hello", "mine#a.b"],
      [
        { name: "nixpkgs", flakeref: "github:nixos/nixpkgs/nixos-unstable", pos: at },
        { name: "mine", flakeref: "git+https://x.example/r", pos: at },
      ],
    );
    assert.equal(
      expr,
      [
        "let",
        "  system = builtins.currentSystem;",
        '  f0 = builtins.getFlake "github:nixos/nixpkgs/nixos-unstable";',
        '  f1 = builtins.getFlake "github:nixos/nixpkgs";',
        '  f2 = builtins.getFlake "git+https://x.example/r";',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: Nix interpolation, not a JS template
        "  pkgs = f0.legacyPackages.${system};",
        '  pick = flake: attr: let path = pkgs.lib.splitString "." attr; in',
        "    pkgs.lib.attrByPath path (pkgs.lib.attrByPath path (pkgs.lib.getAttrFromPath path flake)",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: Nix interpolation, not a JS template
        "      (flake.legacyPackages.${system} or { })) (flake.packages.${system} or { });",
        "in",
        "pkgs.mkShellNoCC {",
        "  packages = [",
        '    (pick f0 "go")',
        '    (pick f1 "hello")',
        '    (pick f2 "a.b")',
        "  ];",
        "}",
      ].join("\n"),
    );
  });

  it("no dependencies: no dev-shell step and no BASH_ENV; image defaults to nixos", () => {
    const p = plan("engine: microvm\nsteps:\n  - command: x\n");
    assert.deepEqual(
      p.steps.map((s) => s.kind),
      ["system", "user"],
    );
    assert.equal(p.image, "nixos");
    assert.equal(
      p.steps[1]!.env.some((e) => e.name === "BASH_ENV"),
      false,
    );
  });

  it("services and virtualisation that are enabled reach the plan by name, postgresql with its options", () => {
    const p = plan(
      "engine: microvm\nimage: alpine\nservices:\n  postgresql: {enable: true}\n  redis: false\n  mysql: true\nvirtualisation: {docker: {enable: false}}\n",
    );
    assert.deepEqual(p.microvm, {
      image: "alpine",
      services: ["postgresql", "mysql"],
      virtualisation: [],
      postgresql: { ensureDatabases: [], ensureUsers: [] },
      mysql: { ensureDatabases: [], ensureUsers: [] },
    });
    const text = readFileSync(new URL("./testdata/docs/microvm-postgres.yml", import.meta.url), "utf8");
    const { record } = compileWorkflows([{ name: "pg.yml", content: text }], push);
    const r = resolveWorkflow(record!.workflows[0]!, push, opts);
    assert.ok(r.ok);
    assert.deepEqual(r.plan.microvm!.postgresql, {
      ensureDatabases: ["spindle-workflow"],
      ensureUsers: [{ name: "spindle-workflow", ensureDBOwnership: true }],
    });
  });

  it('services.redis.servers."" (NixOS\'s current form) is the default server, as services.redis', () => {
    const p = plan(
      'engine: microvm\nservices:\n  redis:\n    servers:\n      "": {enable: true, port: 6380}\n',
    );
    assert.deepEqual(p.microvm!.services, ["redis"]);
    assert.deepEqual(p.microvm!.redis, { port: 6380 });
    const off = plan('engine: microvm\nservices:\n  redis:\n    servers:\n      "": {enable: false}\n');
    assert.deepEqual(off.microvm!.services, []);
  });

  it("virtualisation.docker puts the docker CLI in the dev shell, as NixOS puts docker on PATH", () => {
    const realising = (raw: string) =>
      plan(raw)
        .steps.filter((s) => s.name === "Set up dev shell")
        .map((s) => s.command.split("\n").find((l) => l.startsWith("echo 'Realising"))!);
    assert.deepEqual(realising("engine: microvm\nvirtualisation: {docker: true}\n"), [
      "echo 'Realising 1 dependency: docker-client'",
    ]);
    assert.deepEqual(realising("engine: microvm\ndependencies: [go]\nvirtualisation: {docker: true}\n"), [
      "echo 'Realising 2 dependencies: go docker-client'",
    ]);
    assert.deepEqual(
      realising(
        "engine: microvm\ndependencies: ['github:nixos/nixpkgs#docker']\nvirtualisation: {docker: true}\n",
      ),
      ["echo 'Realising 1 dependency: github:nixos/nixpkgs#docker'"],
    );
    assert.deepEqual(realising("engine: microvm\nvirtualisation: {docker: {enable: false}}\n"), []);
    assert.deepEqual(realising("engine: microvm\n"), []);
  });

  it("a postgresql option Loom cannot honour fails resolve and lint, naming it", () => {
    const cases: [string, string][] = [
      [
        "{enable: true, port: 5433}",
        "services.postgresql.port: Loom cannot honour this option (it honours ensureDatabases, ensureUsers)",
      ],
      [
        "{enable: true, ensureUsers: [{name: a, ensurePermissions: {}}]}",
        "services.postgresql.ensureUsers[0].ensurePermissions: Loom cannot honour this option",
      ],
      [
        "{enable: true, ensureUsers: [{name: a, ensureDBOwnership: true}]}",
        "services.postgresql.ensureUsers[0].ensureDBOwnership: needs a database named a in ensureDatabases",
      ],
      [
        "{enable: true, ensureDatabases: ['a;b']}",
        'services.postgresql.ensureDatabases[0]: "a;b" is not a name Loom accepts (letters, digits, _ and -, at most 63)',
      ],
    ];
    for (const [options, error] of cases) {
      const text = `engine: microvm\nservices:\n  postgresql: ${options}\nsteps:\n  - command: x\n`;
      assert.deepEqual(resolveWorkflow(workflow(text), push, opts), {
        ok: false,
        error: `w.yml:3:3: ${error}`,
      });
      assert.deepEqual(findings(text), [["error", 3, 3, error]]);
    }
  });
});

/** A nixery workflow as upstream says it works under microvm: engine renamed, dependencies flat. */
function asMicrovm(text: string): string {
  const doc = parseDocument(text);
  doc.set("engine", "microvm");
  const deps = doc.get("dependencies") as {
    items?: { key: { value: string }; value: { items: { value: string }[] } }[];
  };
  if (deps?.items !== undefined) {
    const flat = deps.items.flatMap((pair) =>
      pair.value.items.map((p) => (pair.key.value === "nixpkgs" ? p.value : `${pair.key.value}#${p.value}`)),
    );
    doc.set("dependencies", flat);
  }
  return doc.toString();
}

/** Everything but the engine-specific variables (nixery's PATH; microvm's NIX_CONFIG, BASH_ENV). */
function userView(p: RunPlan) {
  const engineVars = new Set(["PATH", "NIX_CONFIG", "BASH_ENV"]);
  return p.steps
    .filter((s) => s.kind === "user")
    .map((s) => ({ name: s.name, command: s.command, env: s.env.filter((e) => !engineVars.has(e.name)) }));
}

describe("a nixery workflow with engine microvm resolves to the same user steps and environment", () => {
  const examples = ["upstream-core", "docs"].flatMap((dir) => {
    const base = new URL(`./testdata/${dir}/`, import.meta.url);
    return readdirSync(base)
      .sort()
      .map((name) => ({ name, text: readFileSync(new URL(name, base), "utf8") }))
      .filter((e) => parseWorkflow(e.name, e.text).workflow?.engine === "nixery");
  });
  assert.ok(examples.length >= 5);
  for (const { name, text } of examples) {
    it(name, () => {
      const wf = parseWorkflow(name, text).workflow!;
      const branch = wf.when[0]?.branch[0] ?? "main";
      const trigger = pushTrigger(
        wf.when.every((c) => c.branch.length === 0) ? "refs/tags/v1" : `refs/heads/${branch}`,
      );
      const resolve = (content: string) => {
        const { record } = compileWorkflows([{ name, content }], trigger);
        const r = resolveWorkflow(record!.workflows[0]!, trigger, opts);
        assert.ok(r.ok, r.ok ? "" : r.error);
        return r.plan;
      };
      const microText = asMicrovm(text);
      assert.deepEqual(lintWorkflow(name, microText), []);
      const nixery = resolve(text);
      const microvm = resolve(microText);
      assert.deepEqual(userView(microvm), userView(nixery));
      assert.equal(microvm.image, "nixos");
      const hasDeps =
        wf.dependencies.form === "map" && wf.dependencies.registries.some((r) => r.packages.length > 0);
      assert.deepEqual(
        microvm.steps.filter((s) => s.kind === "system").map((s) => s.name),
        ["Clone repository into workspace", ...(hasDeps ? [DEVSHELL_STEP_NAME] : [])],
      );
      // The clone is the same fetch.
      assert.deepEqual(microvm.clone, { ...nixery.clone!, stepId: 0 });
    });
  }
});

describe("microvm: the dev shell, run for real with bash (a stand-in nix prints the environment)", () => {
  it("the dev-shell step writes the script; later steps source it through BASH_ENV, image PATH kept", () => {
    const home = mkdtempSync(join(tmpdir(), "loom-devshell-"));
    try {
      const bin = join(home, "bin");
      mkdirSync(bin);
      // What `nix print-dev-env` prints, in short: it replaces PATH and sets hook variables.
      writeFileSync(
        join(bin, "nix"),
        `#!/bin/sh\nprintf '%s\\n' "$@" > "${home}/nix-args"\necho 'building…' >&2\nprintf '%s\\n' "PATH='/devshell/bin'" 'export PATH' "PKG_CONFIG_PATH='/devshell/lib/pkgconfig'" 'export PKG_CONFIG_PATH' 'echo sourced >> "${home}/sourced"'\n`,
      );
      chmodSync(join(bin, "nix"), 0o755);
      const r = resolveWorkflow(
        workflow("engine: microvm\ndependencies: [pkg-config]\nsteps:\n  - command: x\n"),
        push,
        { ...opts, homeDir: home },
      );
      assert.ok(r.ok);
      const [, devShell, user] = r.plan.steps;
      const envOf = (step: typeof devShell) =>
        Object.fromEntries(step!.env.flatMap((e) => ("value" in e ? [[e.name, e.value]] : [])));
      const basePath = `${bin}:/usr/bin:/bin`;
      const setup = spawnSync("bash", ["-c", devShell!.command], {
        env: { ...envOf(devShell), PATH: basePath },
        stdio: ["ignore", "pipe", "pipe"],
        encoding: "utf8",
      });
      assert.equal(setup.status, 0, setup.stderr);
      assert.match(setup.stderr, /building…/);
      assert.match(setup.stdout, /Realising 1 dependency: pkg-config\n[\s\S]*Dev shell ready/);
      const args = readFileSync(join(home, "nix-args"), "utf8").split("\n");
      assert.deepEqual(args.slice(0, 4), ["print-dev-env", "--impure", "-L", "--expr"]);
      // A user step, as the runner runs it (bash -c), sees the dev shell's variables.
      // stdin /dev/null as the runner gives steps (on a socket, Debian's bash reads ~/.bashrc instead).
      const step = spawnSync("bash", ["-c", 'echo "$PATH|$PKG_CONFIG_PATH"; bash -c true'], {
        env: { ...envOf(user), PATH: basePath },
        stdio: ["ignore", "pipe", "pipe"],
        encoding: "utf8",
      });
      assert.equal(step.status, 0, step.stderr);
      assert.equal(step.stdout, `/devshell/bin:${basePath}|/devshell/lib/pkgconfig\n`);
      // A nested bash inherits the environment without sourcing the script again.
      assert.equal(readFileSync(join(home, "sourced"), "utf8"), "sourced\n");
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
