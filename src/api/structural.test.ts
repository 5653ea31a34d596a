import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StructuralSchemaError, toStructural } from "./structural.ts";

describe("toStructural", () => {
  it("turns a union of objects into one object told apart by oneOf/required", () => {
    const input = {
      anyOf: [
        {
          type: "object",
          properties: { name: { type: "string" }, value: { type: "string" } },
          required: ["name", "value"],
          additionalProperties: false,
        },
        {
          type: "object",
          properties: { name: { type: "string" }, secret: { type: "string" } },
          required: ["name", "secret"],
          additionalProperties: false,
        },
      ],
    };
    assert.deepEqual(toStructural(input), {
      type: "object",
      required: ["name"],
      oneOf: [{ required: ["value"] }, { required: ["secret"] }],
      properties: { name: { type: "string" }, value: { type: "string" }, secret: { type: "string" } },
    });
  });

  it("drops zod's safe-integer bounds, date-time regexes, $schema and closed-object markers", () => {
    const input = {
      $schema: "http://json-schema.org/draft-04/schema#",
      type: "object",
      additionalProperties: false,
      properties: {
        n: { type: "integer", minimum: -9007199254740991, maximum: 9007199254740991 },
        m: { type: "integer", minimum: 1, maximum: 9007199254740991 },
        t: { type: "string", format: "date-time", pattern: "^(?:\\d{4})$" },
        c: { const: "v1", type: "string" },
      },
      required: [],
    };
    assert.deepEqual(toStructural(input), {
      type: "object",
      properties: {
        n: { type: "integer" },
        m: { type: "integer", minimum: 1 },
        t: { type: "string", format: "date-time" },
        c: { type: "string", enum: ["v1"] },
      },
    });
  });

  it("merges unions of enums", () => {
    assert.deepEqual(
      toStructural({
        anyOf: [
          { type: "string", enum: ["a"] },
          { type: "string", enum: ["b"] },
        ],
      }),
      { type: "string", enum: ["a", "b"] },
    );
  });

  it("keeps records as additionalProperties and x-kubernetes markers as they are", () => {
    const input = {
      type: "array",
      "x-kubernetes-list-type": "atomic",
      items: { type: "object", additionalProperties: { type: "string" } },
    };
    assert.deepEqual(toStructural(input), {
      type: "array",
      items: { type: "object", additionalProperties: { type: "string" } },
      "x-kubernetes-list-type": "atomic",
    });
  });

  it("refuses what Kubernetes would refuse, naming the path", () => {
    const cases: [object, RegExp][] = [
      [{ type: "object", properties: { a: { $ref: "#/x" } } }, /^\.a: \$ref/],
      [{ type: "object", properties: { a: { description: "no type" } } }, /^\.a: every node needs a type/],
      [{ type: "string", pattern: "^(?!x)" }, /not RE2/],
      [{ type: "string", format: "url" }, /unknown to Kubernetes/],
      [{ type: "object", additionalProperties: true }, /preserve-unknown-fields/],
      [{ type: "string", propertyNames: {} }, /unsupported keyword "propertyNames"/],
      [{ anyOf: [{ type: "string" }, { type: "number" }] }, /one type/],
    ];
    for (const [input, message] of cases) {
      assert.throws(
        () => toStructural(input as never),
        (err: unknown) => {
          assert.ok(err instanceof StructuralSchemaError);
          assert.match(err.message, message);
          return true;
        },
      );
    }
  });
});
