import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ControllerConfigError, parseControllerConfig } from "./config.ts";

function issuesOf(microvm: unknown): readonly string[] {
  try {
    parseControllerConfig({ images: { runner: "r" }, microvm });
  } catch (err) {
    assert.ok(err instanceof ControllerConfigError);
    return err.issues;
  }
  assert.fail("expected a ControllerConfigError");
}

describe("microvm config: Docker and the Nix store cache", () => {
  it("both off by default; each is read when set", () => {
    const off = parseControllerConfig({ images: { runner: "r" } }).microvm;
    assert.deepEqual(off.cache, {});
    assert.equal(off.docker.enabled, false);
    const on = parseControllerConfig({
      images: { runner: "r" },
      microvm: {
        docker: { enabled: true, image: "r.test/docker:dind-rootless" },
        cache: { url: "https://cache.example.org", publicKey: "cache.example.org-1:AAAA=" },
      },
    }).microvm;
    assert.deepEqual(on.docker, { enabled: true, image: "r.test/docker:dind-rootless" });
    assert.deepEqual(on.cache, { url: "https://cache.example.org", publicKey: "cache.example.org-1:AAAA=" });
    const volume = parseControllerConfig({
      images: { runner: "r" },
      microvm: { cache: { volumeClaimName: "loom-nix-cache" } },
    }).microvm;
    assert.deepEqual(volume.cache, { volumeClaimName: "loom-nix-cache" });
  });

  it("names what is wrong: both kinds of cache, a key without URL, bad shapes, unknown keys", () => {
    assert.deepEqual(issuesOf({ cache: { volumeClaimName: "c", url: "https://x.org" } }), [
      "kubernetes.microvm.cache.url: set volumeClaimName or url, not both",
    ]);
    assert.deepEqual(issuesOf({ cache: { publicKey: "k:AAAA" } }), [
      "kubernetes.microvm.cache.publicKey: only applies with url",
    ]);
    assert.deepEqual(
      issuesOf({ cache: { volumeClaimName: "Not_A_Claim", url: "ftp://x", publicKey: "nokey" } }),
      [
        "kubernetes.microvm.cache.volumeClaimName: must be a DNS subdomain",
        "kubernetes.microvm.cache.url: an http(s) binary cache URL",
        "kubernetes.microvm.cache.publicKey: a Nix public key (name:base64)",
        "kubernetes.microvm.cache.url: set volumeClaimName or url, not both",
      ],
    );
    assert.deepEqual(issuesOf({ docker: { enabled: "yes", privileged: true } }), [
      "kubernetes.microvm.docker.enabled: Invalid input: expected boolean, received string",
      'kubernetes.microvm.docker: Unrecognized key: "privileged"',
    ]);
  });
});
