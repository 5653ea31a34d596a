/**
 * JSON Schema (as `z.toJSONSchema(..., {target: "openapi-3.0"})` writes it) → a Kubernetes
 * *structural* schema, the only kind apiextensions.k8s.io/v1 accepts:
 * - every node has a `type` (or an x-kubernetes escape hatch);
 * - no `$ref`, no `additionalProperties: false` (pruning already drops unknown fields);
 * - `anyOf`/`oneOf`/`allOf` may only carry value checks, never `type` or `properties`, so a union
 *   of objects becomes one object with every property plus `oneOf: [{required: [...]}, ...]`;
 * - regexes are RE2 (no lookaround, no backreferences), formats from the apiserver's list.
 *
 * It works from an allow-list of keywords and throws on anything else, so a zod upgrade that
 * changes its output fails generation loudly instead of writing a CRD the apiserver rejects.
 */

export type JsonSchema = { [key: string]: unknown };

/** Formats the apiserver validates (k8s.io/kube-openapi/pkg/validation/strfmt). */
const K8S_FORMATS = new Set([
  "bsonobjectid",
  "uri",
  "email",
  "hostname",
  "ipv4",
  "ipv6",
  "cidr",
  "mac",
  "uuid",
  "uuid3",
  "uuid4",
  "uuid5",
  "isbn",
  "isbn10",
  "isbn13",
  "creditcard",
  "ssn",
  "hexcolor",
  "rgbcolor",
  "byte",
  "password",
  "date",
  "duration",
  "datetime",
  "date-time",
  "int32",
  "int64",
  "float",
  "double",
]);

/** zod's placeholder bounds for `.int()`; they say nothing and would only clutter the CRD. */
const SAFE_INT_BOUNDS = new Set([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]);

const COPIED = new Set([
  "description",
  "default",
  "enum",
  "format",
  "pattern",
  "minLength",
  "maxLength",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "minItems",
  "maxItems",
  "nullable",
]);

export class StructuralSchemaError extends Error {
  override readonly name = "StructuralSchemaError";
  readonly path: string;
  constructor(path: string, message: string) {
    super(`${path || "(root)"}: ${message}`);
    this.path = path;
  }
}

export function toStructural(schema: JsonSchema, path = ""): JsonSchema {
  if ("$ref" in schema) throw new StructuralSchemaError(path, "$ref is not allowed; inline the schema");
  if ("anyOf" in schema || "oneOf" in schema) return mergeUnion(schema, path);

  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === "$schema" || key === "title") continue;
    if (key.startsWith("x-kubernetes-")) {
      out[key] = value;
    } else if (key === "type") {
      out.type = value;
    } else if (key === "const") {
      out.enum = [value];
    } else if (key === "properties") {
      const props: JsonSchema = {};
      for (const [name, sub] of Object.entries(value as Record<string, JsonSchema>)) {
        props[name] = toStructural(sub, `${path}.${name}`);
      }
      out.properties = props;
    } else if (key === "required") {
      if ((value as string[]).length > 0) out.required = [...(value as string[])];
    } else if (key === "items") {
      out.items = toStructural(value as JsonSchema, `${path}[]`);
    } else if (key === "additionalProperties") {
      if (value === false) continue; // closed objects: pruning does this in Kubernetes
      if (value === true)
        throw new StructuralSchemaError(path, "open objects need x-kubernetes-preserve-unknown-fields");
      out.additionalProperties = toStructural(value as JsonSchema, `${path}{}`);
    } else if (COPIED.has(key)) {
      out[key] = value;
    } else {
      throw new StructuralSchemaError(path, `unsupported keyword ${JSON.stringify(key)}`);
    }
  }

  if (out.type === "integer") {
    if (SAFE_INT_BOUNDS.has(out.minimum as number)) delete out.minimum;
    if (SAFE_INT_BOUNDS.has(out.maximum as number)) delete out.maximum;
  }
  if (out.format !== undefined) {
    if (!K8S_FORMATS.has(out.format as string)) {
      throw new StructuralSchemaError(path, `format ${JSON.stringify(out.format)} is unknown to Kubernetes`);
    }
    // zod adds its own ECMAScript regex next to a format; the format already says it all.
    if (out.format === "date-time") delete out.pattern;
  }
  if (typeof out.pattern === "string") checkRe2(out.pattern, path);
  const escaped =
    out["x-kubernetes-preserve-unknown-fields"] === true || out["x-kubernetes-int-or-string"] === true;
  if (typeof out.type !== "string" && !escaped)
    throw new StructuralSchemaError(path, "every node needs a type");
  if (out.type === "object" && out.properties && out.additionalProperties) {
    throw new StructuralSchemaError(path, "properties and additionalProperties are mutually exclusive");
  }
  return canonicalOrder(out);
}

const KEY_ORDER = [
  "description",
  "type",
  "format",
  "enum",
  "default",
  "pattern",
  "minLength",
  "maxLength",
  "minimum",
  "exclusiveMinimum",
  "maximum",
  "exclusiveMaximum",
  "minItems",
  "maxItems",
  "nullable",
  "required",
  "oneOf",
  "properties",
  "items",
  "additionalProperties",
];

/** A fixed key order, so the generated YAML reads the same way everywhere and diffs stay small. */
function canonicalOrder(schema: JsonSchema): JsonSchema {
  const rank = (key: string) => {
    const i = KEY_ORDER.indexOf(key);
    return i >= 0 ? i : KEY_ORDER.length; // x-kubernetes-* last, in their own order
  };
  const keys = Object.keys(schema).sort(
    (a, b) => rank(a) - rank(b) || (rank(a) === KEY_ORDER.length ? a.localeCompare(b) : 0),
  );
  return Object.fromEntries(keys.map((key) => [key, schema[key]]));
}

/** A union of objects → one object; a union of same-typed scalars → one scalar with merged enums. */
function mergeUnion(schema: JsonSchema, path: string): JsonSchema {
  const branches = ((schema.anyOf ?? schema.oneOf) as JsonSchema[]).map((b) => toStructural(b, path));
  const rest = Object.fromEntries(Object.entries(schema).filter(([k]) => k !== "anyOf" && k !== "oneOf"));
  const types = new Set(branches.map((b) => b.type));
  if (types.size !== 1) throw new StructuralSchemaError(path, "a union must have branches of one type");
  const [type] = types;

  if (type !== "object") {
    if (!branches.every((b) => Array.isArray(b.enum))) {
      throw new StructuralSchemaError(path, "only unions of enums are supported for scalars");
    }
    return canonicalOrder({
      ...toStructural({ ...rest, type }, path),
      enum: branches.flatMap((b) => b.enum as unknown[]),
    });
  }

  const properties: JsonSchema = {};
  for (const branch of branches) {
    for (const [name, sub] of Object.entries((branch.properties ?? {}) as JsonSchema)) {
      if (name in properties && JSON.stringify(properties[name]) !== JSON.stringify(sub)) {
        throw new StructuralSchemaError(`${path}.${name}`, "union branches disagree on this property");
      }
      properties[name] = sub;
    }
  }
  const requiredLists = branches.map((b) => (b.required ?? []) as string[]);
  const common = requiredLists.reduce((acc, list) => acc.filter((name) => list.includes(name)));
  const out: JsonSchema = { ...toStructural({ ...rest, type: "object" }, path), properties };
  if (common.length > 0) out.required = common;
  // Exactly one branch must match: each branch is told apart by the fields only it requires.
  const distinct = requiredLists.map((list) => list.filter((name) => !common.includes(name)));
  if (distinct.some((list) => list.length === 0)) {
    throw new StructuralSchemaError(path, "every union branch needs a required field of its own");
  }
  out.oneOf = distinct.map((required) => ({ required }));
  return canonicalOrder(out);
}

function checkRe2(pattern: string, path: string): void {
  if (/\(\?[=!<]/.test(pattern) || /\\[1-9]/.test(pattern)) {
    throw new StructuralSchemaError(path, `pattern ${pattern} uses lookaround or backreferences (not RE2)`);
  }
}
