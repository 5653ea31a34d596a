import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { readYamlSource } from "./source.ts";

/** What a parse of the whole stream makes of the first document: its value or its first error. */
function wholeStream(text: string): unknown {
  const docs = Array.from(parseAllDocuments(text, { uniqueKeys: false }));
  const doc = docs[0];
  const err = doc?.errors[0];
  return err
    ? { error: err.message.split("\n", 1)[0]?.replace(/ at line \d+, column \d+:?$/, "") }
    : doc?.toJS();
}

function firstOnly(text: string): unknown {
  const r = readYamlSource("w.yml", text);
  if (!r.ok) return { error: r.diagnostic.message };
  return r.source.doc?.toJS();
}

describe("readYamlSource: only the first document", () => {
  it("reads a file of 50,000 documents as its first one and counts the rest", () => {
    const first = "engine: nixery\nsteps:\n  - name: a\n    command: echo hi\n";
    const r = readYamlSource("w.yml", first + "---\na: 1\n".repeat(50_000));
    assert.ok(r.ok);
    assert.deepEqual(r.source.doc?.toJS(), { engine: "nixery", steps: [{ name: "a", command: "echo hi" }] });
    assert.equal(r.source.extraDocuments, 50_000);
    // The later documents were not parsed: a broken one after the first changes nothing.
    const broken = readYamlSource("w.yml", `${first}---\n[unclosed\n`);
    assert.ok(broken.ok);
    assert.equal(broken.source.extraDocuments, 1);
    // Not even pre-checked: a later document nested too deep to read does not fail the file.
    const deep = `${"[".repeat(100)}${"]".repeat(100)}\n`;
    const nested = readYamlSource("w.yml", `${first}# ${"x".repeat(9000)}\n---\n${deep}`);
    assert.ok(nested.ok, nested.ok ? "" : nested.diagnostic.message);
    assert.equal(readYamlSource("w.yml", `${first}# ${"x".repeat(9000)}\nz: ${deep}`).ok, false);
  });

  it("gives the first document exactly as a whole-stream parse does", () => {
    const cases = [
      "a: 1\n",
      "a: 1\n---\nb: 2\n",
      "--- \na: 1\n--- \nb: 2\n",
      "# c\n%YAML 1.2\n---\na: 1\n...\n---\nb: 2\n",
      "a: 1\n...\nb: 2\n",
      "a: |\n  x\n---\n  y\n",
      'a: "x\n---\ny"\n',
      "a: [1,\n---\n2]\n",
      "---\n---\n",
      "--- a\n---\nb\n",
      "a: 1\n----\nb: 2\n",
      "a: 1\r\n---\r\nb: 2\r\n",
      "",
      "# only a comment\n",
    ];
    for (const text of cases) assert.deepEqual(firstOnly(text), wholeStream(text), JSON.stringify(text));
  });

  it("counts the documents after the first", () => {
    const count = (text: string) => {
      const r = readYamlSource("w.yml", text);
      assert.ok(r.ok, text);
      return r.source.extraDocuments;
    };
    assert.equal(count("a: 1\n"), 0);
    assert.equal(count("a: 1\n---\nb: 2\n---\nc: 3\n"), 2);
    assert.equal(count("---\na: 1\n...\n"), 0);
    assert.equal(count("a: 1\n...\nb: 2\n"), 1);
  });
});
