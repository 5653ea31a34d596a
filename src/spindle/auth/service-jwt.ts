/**
 * Verification of inter-service JWTs (spec §3.3, gen2 §2.1/§2.6): the appview asks the user's
 * PDS for a token (`com.atproto.server.getServiceAuth`) signed with the user's atproto key and
 * sends it as `Authorization: Bearer <jwt>`; the authenticated actor is the token's issuer.
 *
 * Checks, in order (each failure is an `AuthError`: 403 `Auth`, "signature verification
 * failed: <what>"; the token itself is never quoted):
 *   1. shape: three base64url parts, JSON header and payload;
 *   2. header: `alg` ES256 or ES256K (so never `none`), `typ` absent or `JWT`;
 *   3. `iss` a did:plc or did:web (a `#service` suffix is ignored, as atproto does; did:key
 *      issuers are refused: they would authenticate a key, not an account);
 *   4. `aud` one of the accepted audiences (see `audience.ts`);
 *   5. `exp` required and not passed, `iat` (if present) not in the future, both with leeway;
 *      `exp` at most an hour ahead (a PDS never issues longer service tokens; the bound limits
 *      what a leaked token is worth and how long its jti must be remembered);
 *   6. `lxm`, when present, equals the called method (stricter than upstream, which ignores it;
 *      the appview always sets it);
 *   7. signature with the issuer's current atproto key (`@atproto/crypto`); on failure the DID
 *      document is fetched again once, bypassing the cache, to follow a key rotation;
 *   8. `jti`, when present, not seen before (stricter than upstream), remembered until `exp`.
 * High-S ECDSA signatures are accepted, as atproto's own service-auth verifier does, because
 * other PDS implementations may produce them; replay protection does not rely on uniqueness of
 * signatures but on `jti`.
 */
import { verifySignature } from "@atproto/crypto";
import type { SigningKeyResolver } from "../../net/identity.ts";
import type { JtiReplayCache } from "../db/jti-replay.ts";
import { AuthError } from "../errors.ts";

const ALGS = new Set(["ES256", "ES256K"]);
const DID_RE = /^did:(plc|web):[a-zA-Z0-9._:%-]+$/;

export interface ServiceJwtVerifierOptions {
  resolver: SigningKeyResolver;
  /** Null disables replay protection (only for tools that verify, never for the server). */
  replay: JtiReplayCache | null;
  /** Clock skew tolerated on `exp` and `iat`, seconds (upstream: 5). */
  leewaySec?: number;
  /** Longest accepted remaining lifetime (`exp - now`), seconds; default 3600. */
  maxLifetimeSec?: number;
  /** Injected clock. */
  now?: () => Date;
}

export interface VerifyOptions {
  /** Accepted `aud` values, e.g. `serviceAudiences(config.server.hostname)`. */
  audiences: readonly string[];
  /** NSID of the XRPC method being called; compared with `lxm`. */
  method: string;
  /** Overrides the verifier's clock for this call. */
  now?: Date;
}

/** What a verified token says. `iss` is the authenticated actor's DID. */
export interface ServiceAuth {
  iss: string;
  aud: string;
  exp: number;
  lxm: string | null;
  jti: string | null;
}

/** The token from an `Authorization` header (`Bearer <jwt>`), or an AuthError. */
export function bearerToken(header: string | null | undefined): string {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  if (!m) throw new AuthError("missing or malformed Authorization header (expected Bearer <jwt>)");
  return m[1] as string;
}

export class ServiceJwtVerifier {
  readonly #resolver: SigningKeyResolver;
  readonly #replay: JtiReplayCache | null;
  readonly #leeway: number;
  readonly #maxLifetime: number;
  readonly #now: () => Date;

  constructor(opts: ServiceJwtVerifierOptions) {
    this.#resolver = opts.resolver;
    this.#replay = opts.replay;
    this.#leeway = opts.leewaySec ?? 5;
    this.#maxLifetime = opts.maxLifetimeSec ?? 3600;
    this.#now = opts.now ?? (() => new Date());
  }

  async verify(token: string, opts: VerifyOptions): Promise<ServiceAuth> {
    const parts = token.split(".");
    if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p)))
      throw new AuthError("malformed token");
    const [h, p, s] = parts as [string, string, string];
    const header = decodeJson(h, "header");
    const payload = decodeJson(p, "payload");

    const alg = header.alg;
    if (typeof alg !== "string" || !ALGS.has(alg))
      throw new AuthError(`unsupported alg ${JSON.stringify(alg ?? null)}`);
    if (header.typ !== undefined && header.typ !== "JWT")
      throw new AuthError("unexpected typ (expected JWT)");

    const issClaim = payload.iss;
    if (typeof issClaim !== "string") throw new AuthError("missing iss");
    const iss = issClaim.split("#")[0] as string;
    if (!DID_RE.test(iss)) throw new AuthError("iss is not a did:plc or did:web");

    const aud = payload.aud;
    if (typeof aud !== "string" || !opts.audiences.includes(aud)) {
      throw new AuthError(`wrong aud (expected ${opts.audiences[0] ?? "this service"})`);
    }

    const nowSec = (opts.now ?? this.#now()).getTime() / 1000;
    const exp = payload.exp;
    if (typeof exp !== "number" || !Number.isFinite(exp)) throw new AuthError("missing exp");
    if (nowSec > exp + this.#leeway) throw new AuthError("token expired");
    if (exp > nowSec + this.#maxLifetime + this.#leeway) throw new AuthError("exp too far in the future");
    const iat = payload.iat;
    if (iat !== undefined) {
      if (typeof iat !== "number" || !Number.isFinite(iat)) throw new AuthError("invalid iat");
      if (iat > nowSec + this.#leeway) throw new AuthError("token issued in the future");
    }

    const lxm = payload.lxm;
    if (lxm !== undefined && lxm !== opts.method) {
      throw new AuthError(`lxm does not match the called method ${opts.method}`);
    }
    const jti = payload.jti;
    if (jti !== undefined && (typeof jti !== "string" || jti === "" || jti.length > 256)) {
      throw new AuthError("invalid jti");
    }

    const signingInput = new TextEncoder().encode(`${h}.${p}`);
    const sig = new Uint8Array(Buffer.from(s, "base64url"));
    if (!(await this.#checkSignature(iss, alg, signingInput, sig, false))) {
      if (!(await this.#checkSignature(iss, alg, signingInput, sig, true)))
        throw new AuthError("bad signature");
    }

    if (jti !== undefined && this.#replay && !this.#replay.remember(iss, jti, exp + this.#leeway, nowSec)) {
      throw new AuthError("token replayed (jti already used)");
    }
    return {
      iss,
      aud,
      exp,
      lxm: typeof lxm === "string" ? lxm : null,
      jti: typeof jti === "string" ? jti : null,
    };
  }

  async #checkSignature(
    iss: string,
    alg: string,
    data: Uint8Array,
    sig: Uint8Array,
    forceRefresh: boolean,
  ): Promise<boolean> {
    let key: string;
    try {
      key = await this.#resolver.resolveSigningKey(iss, forceRefresh);
    } catch (err) {
      throw new AuthError(`could not resolve the issuer's signing key (${iss})`, { cause: err });
    }
    try {
      // jwtAlg makes a key of the other curve fail instead of being tried.
      return await verifySignature(key, data, sig, { jwtAlg: alg, allowMalleableSig: true });
    } catch {
      return false;
    }
  }
}

function decodeJson(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
  } catch {
    throw new AuthError(`malformed token (${what} is not JSON)`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new AuthError(`malformed token (${what} is not an object)`);
  }
  return value as Record<string, unknown>;
}
