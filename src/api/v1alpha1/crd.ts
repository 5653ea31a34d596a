/**
 * The SpindleSet CustomResourceDefinition, derived from the zod schemas in `spindleset.ts`.
 * `scripts/generate-crd.ts` writes it to config/crd/; the operator never installs its own CRD.
 */
import type {
  V1CustomResourceColumnDefinition,
  V1CustomResourceDefinition,
  V1JSONSchemaProps,
} from "@kubernetes/client-node";
import { z } from "zod";
import { type JsonSchema, toStructural } from "../structural.ts";
import { GROUP, SPINDLESET, VERSION } from "./group.ts";
import { SPEC_OBJECT_SCHEMA, SpindleSetStatusSchema } from "./spindleset.ts";

/** The OpenAPI v3 schema of a zod schema, as a writer sees it (defaults make fields optional). */
export function openApiSchema(schema: z.ZodType): JsonSchema {
  const json = z.toJSONSchema(schema, {
    target: "openapi-3.0",
    io: "input",
    unrepresentable: "throw",
    cycles: "throw",
    reused: "inline",
  }) as JsonSchema;
  return toStructural(json);
}

export const PRINTER_COLUMNS: V1CustomResourceColumnDefinition[] = [
  { name: "Knot", type: "string", jsonPath: ".spec.pipeline.knot", priority: 1 },
  { name: "Rkey", type: "string", jsonPath: ".spec.pipeline.rkey", priority: 1 },
  { name: "Phase", type: "string", jsonPath: ".status.phase", description: "overall phase of the run" },
  { name: "Done", type: "string", jsonPath: ".status.progress", description: "finished/total workflows" },
  { name: "Reason", type: "string", jsonPath: ".status.reason" },
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
];

export function buildSpindleSetCrd(): V1CustomResourceDefinition {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${SPINDLESET.plural}.${GROUP}`,
      labels: { "app.kubernetes.io/name": "loom", "app.kubernetes.io/part-of": "loom" },
    },
    spec: {
      group: GROUP,
      names: {
        kind: SPINDLESET.kind,
        listKind: SPINDLESET.listKind,
        plural: SPINDLESET.plural,
        singular: SPINDLESET.singular,
        shortNames: [...SPINDLESET.shortNames],
        categories: [...SPINDLESET.categories],
      },
      scope: "Namespaced",
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: PRINTER_COLUMNS,
          schema: {
            openAPIV3Schema: {
              description:
                "One pipeline run (knot + rkey) frozen when it starts; each workflow runs as one Job.",
              type: "object",
              required: ["spec"],
              properties: {
                apiVersion: { type: "string" },
                kind: { type: "string" },
                metadata: { type: "object" },
                spec: openApiSchema(SPEC_OBJECT_SCHEMA) as V1JSONSchemaProps,
                status: openApiSchema(SpindleSetStatusSchema) as V1JSONSchemaProps,
              },
            },
          },
        },
      ],
    },
  };
}
