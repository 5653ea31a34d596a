/**
 * Reads a multi-document YAML stream (`kubectl kustomize …`) on stdin and writes it back without
 * the objects of the kinds given, e.g. `node hack/without-kinds.ts Namespace,PersistentVolumeClaim`:
 * what `make undeploy` deletes when it keeps the namespace, the data volume and the secrets key.
 */
import { text } from "node:stream/consumers";
import { parseAllDocuments, stringify } from "yaml";

const skip = new Set((process.argv[2] ?? "").split(",").filter(Boolean));
const docs = parseAllDocuments(await text(process.stdin));
const kept = docs
  .map((d) => d.toJS() as { kind?: string } | null)
  .filter((o): o is { kind?: string } => o !== null && !skip.has(o.kind ?? ""));
process.stdout.write(kept.map((o) => stringify(o, { lineWidth: 0 })).join("---\n"));
