/**
 * Service auth for the spindle's XRPC methods (spec §3.3). Typical wiring, once at start-up:
 *
 *   const verifier = new ServiceJwtVerifier({
 *     resolver: identity, // the server's one IdentityResolver (src/net/identity.ts)
 *     replay: new JtiReplayCache(db),
 *   });
 *   const audiences = serviceAudiences(config.server.hostname);
 *
 * and per request:
 *
 *   const { iss: actorDid } = await verifier.verify(bearerToken(req.headers.authorization),
 *     { audiences, method: "sh.tangled.repo.addSecret" });
 */
export { didWebEncoded, SPINDLE_SERVICE_ID, serviceAudiences } from "../../protocol/did-web.ts";
export { JtiReplayCache } from "../db/jti-replay.ts";
export {
  bearerToken,
  type ServiceAuth,
  ServiceJwtVerifier,
  type ServiceJwtVerifierOptions,
  type VerifyOptions,
} from "./service-jwt.ts";
