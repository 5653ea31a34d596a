/**
 * Reading yaml Document nodes the way Go's yaml.v3 decodes into typed fields: any scalar reads
 * as its source text into a string (null → ""), YAML 1.1 words (`yes`/`off`…) into booleans,
 * duplicate keys are errors, `<<` merge keys are applied, aliases are followed under a budget.
 * Every finding carries file, line and column, and a caller-chosen section tag.
 */
import { type Document, isAlias, isMap, isScalar, isSeq, type LineCounter, type Node } from "yaml";
import type { Diagnostic, Pos } from "./types.ts";

/** yaml.v3 accepts YAML 1.1 boolean words when the target is a bool. */
const YAML11_TRUE = new Set(["y", "Y", "yes", "Yes", "YES", "on", "On", "ON"]);
const YAML11_FALSE = new Set(["n", "N", "no", "No", "NO", "off", "Off", "OFF"]);

export interface Entry {
  key: string;
  pos: Pos;
  value: Node | null;
}

export type Maybe = Node | null | undefined;

export interface Finding<S extends string> {
  section: S;
  diagnostic: Diagnostic;
}

export class YamlReader<S extends string> {
  readonly errors: Finding<S>[] = [];
  readonly warnings: Diagnostic[] = [];
  private aliases = 0;
  private readonly file: string;
  private readonly doc: Document.Parsed | undefined;
  private readonly lineCounter: LineCounter;
  private readonly maxAliases: number;

  constructor(file: string, doc: Document.Parsed | undefined, lineCounter: LineCounter, maxAliases: number) {
    this.file = file;
    this.doc = doc;
    this.lineCounter = lineCounter;
    this.maxAliases = maxAliases;
  }

  // ---- typed scalars ----

  /** Any scalar reads as its source text; null reads as "" (yaml.v3 into a Go string). */
  protected string(node: Maybe, section: S, label: string): string | undefined {
    const n = this.deref(node, section);
    if (n === undefined) return undefined;
    if (n === null) return "";
    if (isScalar(n)) return n.value === null ? "" : (n.source ?? String(n.value));
    return this.fail(section, n, `${label}: expected a string, found ${describe(n)}`);
  }

  /** A scalar is a one-element list, null is empty, a sequence must hold only scalars. */
  protected stringList(node: Maybe, section: S, label: string): string[] | undefined {
    const n = this.deref(node, section);
    if (n === undefined) return undefined;
    if (n === null || (isScalar(n) && n.value === null)) return [];
    if (isScalar(n)) return [n.source ?? String(n.value)];
    if (isMap(n))
      return this.fail(section, n, `${label}: expected a string or a list of strings, found a mapping`);
    const out: string[] = [];
    let ok = true;
    (n as { items: Maybe[] }).items.forEach((item, i) => {
      const s = this.string(item, section, `${label}[${i}]`);
      if (s === undefined) ok = false;
      else out.push(s);
    });
    return ok ? out : undefined;
  }

  protected bool(node: Maybe, section: S, label: string): boolean | undefined {
    const n = this.deref(node, section);
    if (n === undefined) return undefined;
    if (n === null || (isScalar(n) && n.value === null)) return false;
    if (isScalar(n)) {
      if (typeof n.value === "boolean") return n.value;
      const text = n.source ?? String(n.value);
      if (YAML11_TRUE.has(text)) return true;
      if (YAML11_FALSE.has(text)) return false;
      return this.fail(section, n, `${label}: expected true or false, found "${text}"`);
    }
    return this.fail(section, n, `${label}: expected true or false, found ${describe(n)}`);
  }

  protected int(node: Maybe, section: S, label: string): number | undefined {
    const n = this.deref(node, section);
    if (n === undefined) return undefined;
    if (n === null || (isScalar(n) && n.value === null)) return 0;
    if (isScalar(n) && typeof n.value === "number" && Number.isSafeInteger(n.value)) return n.value;
    const found = isScalar(n) ? `"${n.source ?? String(n.value)}"` : describe(n);
    return this.fail(section, n, `${label}: expected an integer, found ${found}`);
  }

  // ---- collections ----

  protected seqItems(node: Maybe, section: S, label: string, what: string): Maybe[] | undefined {
    const n = this.deref(node, section);
    if (n === undefined) return undefined;
    if (n === null || (isScalar(n) && n.value === null)) return [];
    if (!isSeq(n)) return this.fail(section, n, `${label}: expected ${what}, found ${describe(n)}`);
    return n.items as Maybe[];
  }

  /**
   * The entries of a mapping: scalar keys as source text, duplicates reported (yaml.v3: "already
   * defined"), `<<` merges applied with explicit keys winning. Null reads as an empty mapping.
   */
  protected mapEntries(node: Maybe, section: S, label: string): Entry[] | undefined {
    const n = this.deref(node, section);
    if (n === undefined) return undefined;
    if (n === null || (isScalar(n) && n.value === null)) return [];
    if (!isMap(n)) return this.fail(section, n, `${label}: expected a mapping, found ${describe(n)}`);
    const own: Entry[] = [];
    const seen = new Map<string, Pos>();
    const merges: Maybe[] = [];
    for (const pair of n.items) {
      const keyNode = this.deref(pair.key as Maybe, section);
      if (keyNode === undefined) return undefined;
      if (keyNode !== null && !isScalar(keyNode)) {
        return this.fail(
          section,
          keyNode,
          `${label}: mapping keys must be strings, found ${describe(keyNode)}`,
        );
      }
      // A null key (`~:`) reads as "" like any null into a Go string.
      const key = keyNode === null || keyNode.value === null ? "" : (keyNode.source ?? String(keyNode.value));
      const pos = keyNode === null ? this.pos(n) : this.pos(keyNode);
      if (key === "<<" && keyNode?.type === "PLAIN") {
        merges.push(pair.value as Maybe);
        continue;
      }
      const previous = seen.get(key);
      if (previous !== undefined) {
        const message = `${label}: mapping key "${key}" already defined at line ${previous.line}`;
        this.errors.push({ section, diagnostic: this.diag("error", "parse error", pos, message) });
        return undefined;
      }
      seen.set(key, pos);
      own.push({ key, pos, value: pair.value as Node | null });
    }
    for (const source of merges) {
      const merged = this.mergeSources(source, section, label);
      if (merged === undefined) return undefined;
      for (const entry of merged) {
        if (seen.has(entry.key)) continue;
        seen.set(entry.key, entry.pos);
        own.push(entry);
      }
    }
    return own;
  }

  /** `<<: *a` or `<<: [*a, *b]` (earlier sources win, as in YAML 1.1 merge). */
  protected mergeSources(node: Maybe, section: S, label: string): Entry[] | undefined {
    const n = this.deref(node, section);
    if (n === undefined) return undefined;
    if (n !== null && isSeq(n)) {
      const out: Entry[] = [];
      for (const item of n.items as Maybe[]) {
        const entries = this.mapEntries(item, section, label);
        if (entries === undefined) return undefined;
        out.push(...entries);
      }
      return out;
    }
    return this.mapEntries(n, section, label);
  }

  // ---- helpers ----

  /** Follows an alias (counted, so an alias bomb is an error rather than a hang). */
  protected deref(node: Maybe, section: S): Node | null | undefined {
    if (node === null || node === undefined) return null;
    if (!isAlias(node)) return node;
    if (++this.aliases > this.maxAliases) {
      return this.fail(section, node, `more than ${this.maxAliases} alias references`);
    }
    const target = this.doc === undefined ? undefined : node.resolve(this.doc);
    if (target === undefined) return this.fail(section, node, `alias "*${node.source}" has no anchor`);
    return target;
  }

  protected pos(node: Maybe): Pos {
    const offset = node?.range?.[0] ?? 0;
    const { line, col } = this.lineCounter.linePos(offset);
    return { line, column: col };
  }

  protected fail(section: S, node: Maybe, message: string): undefined {
    this.errors.push({ section, diagnostic: this.diag("error", "parse error", this.pos(node), message) });
    return undefined;
  }

  protected warn(pos: Pos, message: string): void {
    this.warnings.push(this.diag("warning", "unknown key", pos, message));
  }

  protected diag(
    severity: Diagnostic["severity"],
    kind: Diagnostic["kind"],
    pos: Pos,
    message: string,
  ): Diagnostic {
    return { severity, kind, message, file: this.file, line: pos.line, column: pos.column };
  }
}

export function describe(n: Node): string {
  if (isMap(n)) return "a mapping";
  if (isSeq(n)) return "a sequence";
  if (isScalar(n)) return `"${n.source ?? String(n.value)}"`;
  return "an alias";
}
