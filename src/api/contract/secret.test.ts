import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BuildError } from "./errors.ts";
import { buildRunSecret, secretEnvName } from "./secret.ts";
import { OWNER, SECRET_VALUES } from "./testdata/fixtures.ts";

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

describe("buildRunSecret", () => {
  it("builds the run's immutable Secret, owned by the SpindleSet, keys as the repo names them", () => {
    const secret = buildRunSecret({
      owner: OWNER,
      pipeline: { knot: "knot.example.com", rkey: "3lq2abcxyz22k" },
      values: SECRET_VALUES,
    });
    assert.deepEqual(secret, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: `${OWNER.name}-secrets`,
        namespace: "loom",
        labels: {
          "app.kubernetes.io/managed-by": "loom",
          "app.kubernetes.io/name": "loom",
          "loom.tangled.sh/spindleset": OWNER.name,
        },
        annotations: { "loom.tangled.sh/knot": "knot.example.com", "loom.tangled.sh/rkey": "3lq2abcxyz22k" },
        ownerReferences: [
          {
            apiVersion: "loom.tangled.sh/v1alpha1",
            kind: "SpindleSet",
            name: OWNER.name,
            uid: OWNER.uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      type: "Opaque",
      immutable: true,
      data: {
        APP_PASSWORD: b64(SECRET_VALUES.APP_PASSWORD),
        MULTI_LINE: b64(SECRET_VALUES.MULTI_LINE),
        NPM_TOKEN: b64(SECRET_VALUES.NPM_TOKEN),
      },
    });
  });

  it("keeps UTF-8 and empty values intact", () => {
    const secret = buildRunSecret({
      owner: OWNER,
      pipeline: { knot: "k", rkey: "r" },
      values: { A: "", B: "päss🔑" },
    });
    assert.deepEqual(secret.data, { A: "", B: b64("päss🔑") });
    assert.equal(Buffer.from(secret.data!.B!, "base64").toString("utf8"), "päss🔑");
  });

  it("rejects keys that cannot be environment variable names", () => {
    for (const key of ["1ABC", "A-B", "A B", ""]) {
      assert.throws(
        () => buildRunSecret({ owner: OWNER, pipeline: { knot: "k", rkey: "r" }, values: { [key]: "v" } }),
        (err: unknown) => err instanceof BuildError && err.reason === "InvalidSpec",
        key,
      );
    }
  });

  it("names the runner's variable with the protocol's prefix", () => {
    assert.equal(secretEnvName("NPM_TOKEN"), "LOOM_SECRET_NPM_TOKEN");
  });
});
