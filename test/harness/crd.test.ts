/**
 * The tests' CRDs reach the API server exactly as their files have them: every key the file sets
 * (`enum`, `default`, `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, ...) is in the live
 * object, so the tests run against the schema `make install` gives a real cluster. (Created via
 * @kubernetes/client-node from the parsed YAML they were silently dropped.)
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { locateBinaries, readConfig } from "./config.ts";
import { getTestCluster, SPINDLESET_CRD_PATH, TEST_FIELD_MANAGER } from "./index.ts";

const cluster = await getTestCluster();

/** Paths where `actual` lacks or differs from what `expected` sets (the server may add more). */
function differences(expected: unknown, actual: unknown, path = ""): string[] {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return [`${path} (array)`];
    return expected.flatMap((e, i) => differences(e, actual[i], `${path}[${i}]`));
  }
  if (expected !== null && typeof expected === "object") {
    if (actual === null || typeof actual !== "object" || Array.isArray(actual)) return [`${path} (object)`];
    return Object.entries(expected).flatMap(([k, v]) =>
      k in actual
        ? differences(v, (actual as Record<string, unknown>)[k], `${path}.${k}`)
        : [`${path}.${k} (missing)`],
    );
  }
  return Object.is(expected, actual)
    ? []
    : [`${path}: ${JSON.stringify(actual)} != ${JSON.stringify(expected)}`];
}

// biome-ignore lint/suspicious/noExplicitAny: a CRD read back as JSON
type Any = any;

async function liveCrd(name: string): Promise<Any> {
  const r = await cluster.kubectl([
    "get",
    `customresourcedefinition/${name}`,
    "-o",
    "json",
    "--show-managed-fields",
  ]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test("the SpindleSet CRD on the server is the file's, with its enums, defaults and list-map keys", {
  skip: cluster.skip,
}, async () => {
  await cluster.installSpindleSetCrd();
  // Twice: an update of an existing CRD (the shared control plane's usual case) works too.
  await cluster.installSpindleSetCrd();
  const file = parse(await readFile(SPINDLESET_CRD_PATH, "utf8"));
  const live = await liveCrd(file.metadata.name);
  assert.deepEqual(differences(file.spec, live.spec), []);
  assert.deepEqual(differences(file.metadata.labels, live.metadata.labels), []);

  // The keys client-node's serializer dropped, named so a failure says what is missing.
  const schema = live.spec.versions[0].schema.openAPIV3Schema.properties;
  assert.deepEqual(
    schema.status.properties.reason.enum,
    file.spec.versions[0].schema.openAPIV3Schema.properties.status.properties.reason.enum,
  );
  assert.ok(schema.status.properties.reason.enum.length > 0);
  assert.equal(schema.status.properties.conditions["x-kubernetes-list-type"], "map");
  assert.equal(schema.spec.properties.workflows["x-kubernetes-list-type"], "map");
  assert.deepEqual(schema.spec.properties.workflows["x-kubernetes-list-map-keys"], ["name"]);
  assert.equal(schema.spec.properties.cancel.default, false);

  // Applied server-side by the tests' own field manager (`make install` / `make deploy` use
  // loom-deploy; same values, so they share the fields without a conflict).
  const managers = live.metadata.managedFields.map((f: Any) => `${f.manager}/${f.operation}`);
  assert.ok(managers.includes(`${TEST_FIELD_MANAGER}/Apply`), managers.join(" "));
});

test("kwok's CRDs on the server are the file's, with their list-map keys", {
  skip: cluster.skip || (!cluster.full && "kwok runs only on the full control plane"),
}, async () => {
  const docs = parseAllDocuments(await readFile(locateBinaries(readConfig().cacheDir).kwokCrds, "utf8"))
    .map((d) => d.toJS())
    .filter((d) => d?.kind === "CustomResourceDefinition");
  assert.ok(docs.length >= 2);
  for (const crd of docs) {
    const live = await liveCrd(crd.metadata.name);
    assert.deepEqual(differences(crd.spec, live.spec), [], crd.metadata.name);
  }
  assert.match(JSON.stringify(docs), /x-kubernetes-list-map-keys/);
});
