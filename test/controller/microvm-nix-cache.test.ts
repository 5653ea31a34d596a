/**
 * The Nix store cache volume (microvm.cache.volumeClaimName) run for real with Debian's Nix:
 * the nix-store container's script (src/controller/build/microvm-pod.ts) makes the cache's
 * signing key once and writes the configuration every step reads; the dev-shell step's push
 * (src/workflow/microvm.ts) copies the store into the cache, signed; a later run with the store
 * emptied gets the path from the cache with building forbidden (`--max-jobs 0`): the second run
 * substitutes instead of building. Without the key trusted the same substitution is refused.
 * Differences from the pod: the store is the host's /nix as root, not the pod's copy as UID 1000
 * (the same single-user Nix, no daemon); Debian's Nix is 2.8, the pod's image 2.28. Needs root
 * and Debian's nix-bin package (hack/install-system-deps.sh installs it).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { nixStoreScript } from "../../src/controller/build/microvm-pod.ts";
import { nixCachePush } from "../../src/workflow/microvm.ts";

const hasNix = spawnSync("sh", ["-c", "command -v nix"]).status === 0;
const skip =
  process.getuid?.() !== 0
    ? "needs root (the host's Nix store, single-user)"
    : !hasNix
      ? "Debian's nix-bin package is not installed (make test-deps)"
      : false;

test("the Nix store cache volume: a key made once, the store pushed signed, the second run substitutes", {
  skip,
}, (t) => {
  const dir = mkdtempSync(join(tmpdir(), "loom-nix-cache-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const paths = { nix: join(dir, "image-nix"), nixCopy: join(dir, "nix"), cache: join(dir, "cache") };
  for (const d of Object.values(paths)) mkdirSync(d);
  writeFileSync(join(paths.nix, "from-the-image"), "x");
  const conf = join(paths.nixCopy, "loom", "nix.conf");
  // As the pod's NIX_CONFIG (resolve's nixConfig); the system nix.conf lists no substituter
  // (no cache.nixos.org: no network here), so the cache is the only one.
  const nixConfig = [
    "experimental-features = nix-command flakes",
    "build-users-group =",
    "sandbox = false",
  ].join("\n");
  mkdirSync(join(dir, "etc"));
  writeFileSync(join(dir, "etc", "nix.conf"), "substituters =\n");
  const sh = (script: string, env: Record<string, string> = {}) =>
    spawnSync("sh", ["-c", script], {
      encoding: "utf8",
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: dir,
        NIX_CONF_DIR: join(dir, "etc"),
        NIX_CONFIG: nixConfig,
        ...env,
      },
    });

  // The nix-store container: the copy, the key, the configuration.
  const script = nixStoreScript({ volumeClaimName: "nix-cache" }, paths);
  const first = sh(script);
  assert.equal(first.status, 0, first.stderr);
  assert.equal(readFileSync(join(paths.nixCopy, "from-the-image"), "utf8"), "x");
  const publicKey = readFileSync(join(paths.cache, ".loom/key/public"), "utf8").trim();
  assert.match(publicKey, /^loom-nix-cache-1:[A-Za-z0-9+/]+=*$/);
  assert.equal(
    readFileSync(conf, "utf8"),
    `extra-substituters = file://${paths.cache}?priority=10\nextra-trusted-public-keys = ${publicKey}\n`,
  );
  // A later pod keeps the key the cache's paths are signed with.
  assert.equal(sh(script).status, 0);
  assert.equal(readFileSync(join(paths.cache, ".loom/key/public"), "utf8").trim(), publicKey);
  assert.deepEqual(readdirSync(join(paths.cache, ".loom")), ["key"]);

  // The first run builds something, and the dev-shell step pushes the store.
  const nonce = `${process.pid}-${Date.now()}`;
  const expr = `derivation { name = "loom-cache-probe"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo ${nonce} > $out" ]; }`;
  const build = (env: Record<string, string> = {}) =>
    sh(`nix build --impure --no-link --max-jobs "\${JOBS:-1}" --expr '${expr}'`, env);
  assert.equal(build().status, 0);
  const out = sh(`nix eval --raw --impure --expr '(${expr}).outPath'`).stdout;
  t.after(() => sh(`nix store delete '${out}'`));
  assert.equal(readFileSync(out, "utf8"), `${nonce}\n`);
  const push = sh(nixCachePush(paths.cache));
  assert.equal(push.status, 0, push.stderr);
  assert.match(push.stdout, /Pushing the store to the Nix store cache/);
  const narinfo = readFileSync(
    join(paths.cache, `${out.slice("/nix/store/".length, "/nix/store/".length + 32)}.narinfo`),
    "utf8",
  );
  assert.match(narinfo, /^Sig: loom-nix-cache-1:/m);

  // The second run: the path gone from the store, building forbidden, the cache configured.
  const forget = () => assert.equal(sh(`nix store delete '${out}'`).status, 0);
  forget();
  const second = build({ NIX_USER_CONF_FILES: conf, JOBS: "0" });
  assert.equal(second.status, 0, second.stderr);
  assert.match(second.stderr, new RegExp(`copying path '${out}' from 'file://${paths.cache}`));
  assert.equal(readFileSync(out, "utf8"), `${nonce}\n`);

  // The negative control: the same cache without its key trusted is refused.
  forget();
  const untrusted = join(dir, "untrusted.conf");
  writeFileSync(untrusted, `extra-substituters = file://${paths.cache}?priority=10\n`);
  const refused = build({ NIX_USER_CONF_FILES: untrusted, JOBS: "0" });
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /is not signed by any of the keys in 'trusted-public-keys'/);
});
