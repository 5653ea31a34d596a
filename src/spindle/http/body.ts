import type { IncomingMessage } from "node:http";
import { genericError } from "../errors.ts";

export const MAX_BODY_BYTES = 64 * 1024;

/** Reads a JSON object body of at most MAX_BODY_BYTES; anything else is `Generic` 400. */
export async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) {
      req.resume();
      throw genericError(`request body larger than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks)));
  } catch {
    throw genericError("failed to decode request body: not JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw genericError("failed to decode request body: not a JSON object");
  }
  return value as Record<string, unknown>;
}
