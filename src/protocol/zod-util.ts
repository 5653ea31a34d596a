/** Small zod pieces shared by the v2026 wire types, and one way to report their failures. */
import { isValidDid } from "@atproto/syntax";
import { z } from "zod";

/** Lexicons only ask for 40 characters; we also want hex: SHAs end up on `git` command lines. */
export const sha40 = z.string().regex(/^[0-9a-f]{40}$/, "must be a 40-character lowercase hex SHA");

export const did = z.string().refine((s) => isValidDid(s), "must be a DID");

export class WireError extends Error {
  override readonly name = "WireError";
  readonly code = "InvalidWireValue";
}

/** Parses with `schema`, or throws a WireError naming every offending field by its path. */
export function parseWire<S extends z.ZodType>(what: string, schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const where = issue.path.length === 0 ? what : `${what}.${issue.path.join(".")}`;
    return `${where}: ${issue.message}`;
  });
  throw new WireError(`invalid ${what}:\n  ${lines.join("\n  ")}`, { cause: result.error });
}
