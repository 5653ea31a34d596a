import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { lintWorkflow } from "./lint.ts";
import { type ParsedWorkflow, parseWorkflow } from "./parse.ts";
import { DEFAULT_LIMITS } from "./source.ts";

/** Parses and asserts it took less than `ms`; returns the first error. */
function firstError(content: string | Uint8Array, ms = 3000) {
  const started = performance.now();
  const parsed: ParsedWorkflow = parseWorkflow("evil.yml", content);
  const took = performance.now() - started;
  assert.ok(took < ms, `took ${took.toFixed(0)} ms`);
  const d = parsed.errors[0] ?? parsed.engineErrors[0];
  assert.ok(d, "expected an error diagnostic");
  assert.equal(d.file, "evil.yml");
  assert.ok(d.line >= 1 && d.column >= 1);
  return d;
}

describe("malformed and hostile YAML: a diagnostic with location, never a crash or hang", () => {
  it("a 10 MB file is refused by size before parsing", () => {
    const big = `engine: nixery\nsteps:\n${"  - name: x\n    command: echo\n".repeat(350_000)}`;
    assert.ok(big.length > 10_000_000);
    const d = firstError(big, 500);
    assert.match(d.message, /the limit is 524288 bytes/);
    assert.deepEqual([d.line, d.column], [1, 1]);
    assert.match(firstError(Buffer.from(big), 500).message, /bytes; the limit/);
  });

  it("deep flow nesting is refused at the offending bracket", () => {
    const d = firstError(`steps: ${"[".repeat(200_000)}`, 1000);
    assert.match(d.message, /nesting is deeper than 64 levels/);
    assert.deepEqual([d.line, d.column], [1, 8 + DEFAULT_LIMITS.maxDepth]);
    assert.match(firstError("{a: ".repeat(100_000), 1000).message, /nesting is deeper/);
  });

  it("deep compact block nesting is refused", () => {
    assert.match(firstError(`${"- ".repeat(100_000)}x`, 1000).message, /nesting is deeper/);
  });

  it("deep nesting by indentation ends in a diagnostic", () => {
    let text = "";
    for (let i = 0; i < 1000; i++) text += `${" ".repeat(i)}k:\n`;
    firstError(text);
  });

  it("a billion-laughs alias bomb under a known key is cut off by the alias budget", () => {
    const levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"];
    for (let i = 1; i < 10; i++) {
      const prev = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(", ")}]`);
    }
    const text = `${levels.join("\n")}\nengine: nixery\nwhen:\n  - event: *j\n`;
    const d = firstError(text, 1000);
    assert.match(d.message, /expected a string, found a sequence/);
  });

  it("a merge-key bomb is cut off by the alias budget", () => {
    const levels = ["x0: &x0 {A: 1}"];
    for (let i = 1; i < 12; i++)
      levels.push(
        `x${i}: &x${i} {<<: [${Array(10)
          .fill(`*x${i - 1}`)
          .join(", ")}]}`,
      );
    const d = firstError(`${levels.join("\n")}\nenvironment: *x11\n`, 1000);
    assert.match(d.message, /more than 100 alias references/);
  });

  it("an alias bomb under an unknown key is never expanded", () => {
    const text = `a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b]\nengine: nixery\n`;
    const started = performance.now();
    const parsed = parseWorkflow("evil.yml", text);
    assert.ok(performance.now() - started < 500);
    assert.equal(parsed.workflow?.engine, "nixery");
  });

  it("binary bytes (invalid UTF-8) are located", () => {
    const bytes = Buffer.concat([Buffer.from("engine: nixery\nsteps: x"), Buffer.from([0xff, 0xfe, 0x00])]);
    const d = firstError(bytes);
    assert.match(d.message, /invalid UTF-8/);
    assert.deepEqual([d.line, d.column], [2, 9]);
  });

  it("control characters are located (yaml.v3 rejects them)", () => {
    const d = firstError("engine: nixery\nsteps:\n  - command: a\u0000b\n");
    assert.match(d.message, /control character U\+0000/);
    assert.deepEqual([d.line, d.column], [3, 15]);
    assert.match(firstError("engine: \u001b[31m\n").message, /U\+001B/);
  });

  it("many keys parse in bounded time (duplicate check is linear)", () => {
    const lines = ["engine: nixery", "environment:"];
    for (let i = 0; i < 5_000; i++) lines.push(`  K${i}: v`);
    const started = performance.now();
    const parsed = parseWorkflow("many.yml", `${lines.join("\n")}\n`);
    assert.ok(performance.now() - started < 8000);
    assert.equal(parsed.workflow?.environment.length, 5_000);
    lines.push("  K5: again");
    assert.match(firstError(`${lines.join("\n")}\n`, 8000).message, /"K5" already defined at line 8/);
  });

  it("an undefined alias is an error, not a crash", () => {
    firstError("engine: *nowhere\n");
  });

  it("random mutations of real workflows never throw", () => {
    const seedText = readFileSync(new URL("./testdata/docs/complete-nixery.yml", import.meta.url));
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const alphabet = Buffer.from("[]{}:-?&*!|>'\"#%@`,\n \t\\~0x1aZ\u00ff");
    const started = performance.now();
    for (let round = 0; round < 150; round++) {
      const bytes = Buffer.from(seedText);
      const edits = 1 + Math.floor(random() * 8);
      for (let e = 0; e < edits; e++) {
        bytes[Math.floor(random() * bytes.length)] = alphabet[Math.floor(random() * alphabet.length)]!;
      }
      assert.doesNotThrow(() => lintWorkflow("fuzz.yml", bytes));
    }
    assert.ok(performance.now() - started < 10_000);
  });
});
