/**
 * `sh.tangled.ci.describeWorkflowDefinition` hash (gen2 §2.6): files sorted by name; for each,
 * the name's UTF-8 bytes, one 0x00, the content length as 8 bytes little-endian, the content;
 * SHA-256 over all of it; `sha256:<lowercase hex>`.
 */
import { createHash } from "node:crypto";

export interface DefinitionFile {
  /** File name only (e.g. `ci.yml`), as listed in the output's `workflows`. */
  name: string;
  content: string | Uint8Array;
}

export function workflowDefinitionHash(files: readonly DefinitionFile[]): string {
  // Go's sort.Strings compares bytes, not UTF-16 units: sort on the encoded names.
  const encoded = files.map((f) => ({
    name: Buffer.from(f.name, "utf8"),
    content: typeof f.content === "string" ? Buffer.from(f.content, "utf8") : f.content,
  }));
  encoded.sort((a, b) => Buffer.compare(a.name, b.name));
  const hash = createHash("sha256");
  const len = Buffer.alloc(8);
  for (const f of encoded) {
    hash.update(f.name);
    hash.update(Buffer.of(0));
    len.writeBigUInt64LE(BigInt(f.content.byteLength));
    hash.update(len);
    hash.update(f.content);
  }
  return `sha256:${hash.digest("hex")}`;
}

/** The whole describeWorkflowDefinition answer for workflow files read from the repo. */
export function describeWorkflowDefinition(files: readonly DefinitionFile[]): {
  derived: true;
  hash: string;
  workflows: string[];
} {
  const workflows = files.map((f) => f.name).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return { derived: true, hash: workflowDefinitionHash(files), workflows };
}
