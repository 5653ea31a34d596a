/**
 * Every XRPC error of spec §3.2, as the examples in spindle-xrpc-examples.json show them, comes
 * out of the one boundary with the same status, tag and message.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  AccessControlError,
  AuthError,
  ConfigError,
  genericError,
  invalidRepoError,
  missingActorDidError,
  ownerNotFoundError,
  SecretsError,
  toXrpcErrorResponse,
  XrpcError,
} from "./errors.ts";

const ACTOR = "did:plc:abcdefghijklmnopqrstuvwx";

describe("toXrpcErrorResponse: §3.2 table", () => {
  const cases: [string, unknown, number, string, string][] = [
    [
      "bad-or-missing-jwt",
      new AuthError("token expired"),
      403,
      "Auth",
      "signature verification failed: token expired",
    ],
    ["missing actor", missingActorDidError(), 400, "MissingActorDid", "actor did not found in context"],
    ["body not JSON", genericError("invalid request body"), 400, "Generic", "invalid request body"],
    ["bad-repo-aturi", invalidRepoError("nope"), 400, "InvalidRepo", "supplied at-uri is not a repo: nope"],
    ["bad-key", new SecretsError("InvalidKey"), 400, "Generic", "key is not a valid identifier"],
    [
      "not-allowed (secrets)",
      new AccessControlError(ACTOR, 401),
      401,
      "AccessControl",
      `DID does not have sufficent access permissions for this operation: ${ACTOR}`,
    ],
    [
      "not-allowed (cancel)",
      new AccessControlError(ACTOR, 400),
      400,
      "AccessControl",
      `DID does not have sufficent access permissions for this operation: ${ACTOR}`,
    ],
    ["duplicate-key", new SecretsError("KeyAlreadyPresent"), 500, "Generic", "key already present"],
    ["remove-missing-key", new SecretsError("KeyNotFound"), 500, "Generic", "key not found"],
    ["owner-unset", ownerNotFoundError(), 500, "OwnerNotFound", "owner not set for this service"],
    [
      "Gen2 unknown repo",
      new XrpcError(400, "RepoNotFound", "repo not found"),
      400,
      "RepoNotFound",
      "repo not found",
    ],
  ];
  for (const [name, err, status, error, message] of cases) {
    it(name, () => {
      const res = toXrpcErrorResponse(err);
      assert.deepEqual(res, { status, body: { error, message }, internal: false });
    });
  }
});

describe("toXrpcErrorResponse: internals never leak", () => {
  it("turns anything unknown into a fixed 500", () => {
    const leaky = [
      new Error("SQLITE_CONSTRAINT: UNIQUE failed: secrets.value = 'hunter2'"),
      new TypeError("Cannot read properties of undefined (reading 'secret')"),
      new ConfigError("SPINDLE_SERVER_OWNER", "is required"),
      "a thrown string with hunter2",
      { error: "Auth", status: 403, message: "looks like an XrpcError but is not" },
      null,
      undefined,
    ];
    for (const err of leaky) {
      const res = toXrpcErrorResponse(err);
      assert.deepEqual(res, {
        status: 500,
        body: { error: "InternalServerError", message: "Internal Server Error" },
        internal: true,
      });
    }
  });

  it("a backend failure keeps its details in cause, not in the answer", () => {
    const err = new SecretsError("BackendFailure", {
      cause: new Error("openbao POST spindle/data/x: HTTP 503"),
    });
    assert.deepEqual(toXrpcErrorResponse(err).body, { error: "Generic", message: "secrets backend failure" });
    assert.equal(err.name, "SecretsError");
    assert.equal(err.code, "BackendFailure");
  });

  it("errors carry name and stable codes", () => {
    assert.equal(new AuthError("x").name, "AuthError");
    assert.ok(new AuthError("x") instanceof XrpcError);
    assert.equal(
      new ConfigError("SPINDLE_SERVER_HOSTNAME", "is required").message,
      "SPINDLE_SERVER_HOSTNAME: is required",
    );
  });
});
