/**
 * Real atproto identities for tests: keys from `@atproto/crypto`, DID documents in the shape a
 * PDS publishes, and service JWTs signed the way `com.atproto.server.getServiceAuth` signs them.
 */
import { randomBytes } from "node:crypto";
import type { Keypair } from "@atproto/crypto";

/** A DID document whose `#atproto` key is `key` (Multikey, as current PDSes publish). */
export function didDocument(did: string, key: Keypair, handle = "alice.test"): Record<string, unknown> {
  return {
    "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
    id: did,
    alsoKnownAs: [`at://${handle}`],
    verificationMethod: [
      {
        id: `${did}#atproto`,
        type: "Multikey",
        controller: did,
        publicKeyMultibase: key.did().slice("did:key:".length),
      },
    ],
    service: [
      { id: "#atproto_pds", type: "AtprotoPersonalDataServer", serviceEndpoint: "https://pds.invalid" },
    ],
  };
}

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

/** Signs `payload` with `key`; header defaults to `{typ: "JWT", alg: key.jwtAlg}`. */
export async function signJwt(
  key: Keypair,
  payload: Record<string, unknown>,
  header: Record<string, unknown> = { typ: "JWT", alg: key.jwtAlg },
): Promise<string> {
  const input = `${b64url(header)}.${b64url(payload)}`;
  const sig = await key.sign(new TextEncoder().encode(input));
  return `${input}.${Buffer.from(sig).toString("base64url")}`;
}

/** The claims a PDS puts in a service token: iat now, exp now+60 s, a random jti. */
export function serviceClaims(
  iss: string,
  aud: string,
  lxm: string | undefined,
  nowSec = Math.floor(Date.now() / 1000),
): Record<string, unknown> {
  const claims: Record<string, unknown> = {
    iss,
    aud,
    iat: nowSec,
    exp: nowSec + 60,
    jti: randomBytes(16).toString("hex"),
  };
  if (lxm !== undefined) claims.lxm = lxm;
  return claims;
}
