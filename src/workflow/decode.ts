/**
 * YAML document → Workflow model with Go yaml.v3's decoding rules (spec §2, §2.1):
 * scalars read as their source text into string fields (`CGO_ENABLED: 1` → "1", null → ""),
 * string-or-list fields, YAML 1.1 words (`yes`/`off`…) accepted for booleans, duplicate keys are
 * errors, `<<` merge keys work, unknown keys are left out of the model and reported as warnings.
 *
 * Every error is filed under the top-level key it concerns, because the knot only decodes
 * `when`/`engine`/`clone` (its errors drop the workflow at compile time) while the engine decodes
 * the rest when the workflow starts (spec §2: two independent parses).
 */
import { type Document, isAlias, isMap, isScalar, isSeq, type LineCounter, type Node } from "yaml";
import type {
  CloneKeys,
  Constraint,
  Dependencies,
  Diagnostic,
  EnvVar,
  KeyPath,
  Pos,
  Registry,
  Step,
  Workflow,
} from "./types.ts";

export type Section =
  | "document"
  | "when"
  | "engine"
  | "image"
  | "architecture"
  | "clone"
  | "dependencies"
  | "environment"
  | "steps";

/** The sections the knot decodes (Gen1 `workflow/def.go`); errors elsewhere surface at run time. */
export const KNOT_SECTIONS: ReadonlySet<Section> = new Set(["document", "when", "engine", "clone"]);

export interface Finding {
  section: Section;
  diagnostic: Diagnostic;
}

export interface Decoded {
  /** Undefined only when the document is not a mapping at all. */
  workflow: Workflow | undefined;
  errors: Finding[];
  warnings: Diagnostic[];
}

const TOP_LEVEL_KEYS = new Set<string>([
  "when",
  "engine",
  "image",
  "architecture",
  "clone",
  "dependencies",
  "environment",
  "steps",
]);
/** Gen2 microvm keys: recognised so lint can say why they do nothing here. */
const MICROVM_KEYS = new Set(["registry", "caches", "services", "virtualisation"]);
const CONSTRAINT_KEYS = new Set(["event", "branch", "tag", "types", "paths"]);
const CLONE_KEYS = new Set(["skip", "depth", "submodules", "tags"]);
const STEP_KEYS = new Set(["name", "command", "environment"]);
/** yaml.v3 accepts YAML 1.1 boolean words when the target is a bool. */
const YAML11_TRUE = new Set(["y", "Y", "yes", "Yes", "YES", "on", "On", "ON"]);
const YAML11_FALSE = new Set(["n", "N", "no", "No", "NO", "off", "Off", "OFF"]);

interface Entry {
  key: string;
  pos: Pos;
  value: Node | null;
}

type Maybe = Node | null | undefined;

export function decodeWorkflow(
  file: string,
  doc: Document.Parsed | undefined,
  lineCounter: LineCounter,
  maxAliases: number,
): Decoded {
  const reader = new Reader(file, doc, lineCounter, maxAliases);
  const workflow = reader.workflow(doc?.contents ?? null);
  return { workflow, errors: reader.errors, warnings: reader.warnings };
}

class Reader {
  readonly errors: Finding[] = [];
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

  workflow(root: Maybe): Workflow | undefined {
    const entries = this.mapEntries(root, "document", "the document");
    if (entries === undefined) return undefined;
    const wf: Workflow = {
      when: [],
      engine: "",
      image: "",
      architecture: "",
      clone: {},
      dependencies: { form: "none" },
      environment: [],
      steps: [],
      positions: {},
    };
    for (const { key, pos, value } of entries) {
      if (!TOP_LEVEL_KEYS.has(key)) {
        const why = MICROVM_KEYS.has(key)
          ? `key "${key}" belongs to the microvm engine; Loom ignores it`
          : `unknown key "${key}" is ignored`;
        this.warn(pos, why);
        continue;
      }
      wf.positions[key as KeyPath] = pos;
      switch (key) {
        case "when":
          wf.when = this.when(value) ?? [];
          break;
        case "engine":
        case "image":
        case "architecture":
          wf[key] = this.string(value, key, key) ?? "";
          break;
        case "clone":
          wf.clone = this.clone(value, wf.positions) ?? {};
          break;
        case "dependencies":
          wf.dependencies = this.dependencies(value) ?? { form: "none" };
          break;
        case "environment":
          wf.environment = this.env(value, "environment", "environment") ?? [];
          break;
        case "steps":
          wf.steps = this.steps(value) ?? [];
          break;
      }
    }
    return wf;
  }

  // ---- sections ----

  private when(node: Maybe): Constraint[] | undefined {
    const items = this.seqItems(node, "when", "when", "a list of constraints");
    if (items === undefined) return undefined;
    const out: Constraint[] = [];
    items.forEach((item, i) => {
      const label = `when[${i}]`;
      const entries = this.mapEntries(item, "when", label);
      if (entries === undefined) return;
      const c: Constraint = { event: [], branch: [], tag: [], pos: this.pos(item) };
      for (const { key, pos, value } of entries) {
        if (!CONSTRAINT_KEYS.has(key)) {
          this.warn(pos, `unknown key "${key}" in ${label} is ignored`);
          continue;
        }
        const list = this.stringList(value, "when", `${label}.${key}`) ?? [];
        if (key === "event" || key === "branch" || key === "tag") c[key] = list;
        else c[key as "types" | "paths"] = list;
      }
      out.push(c);
    });
    return out;
  }

  private clone(node: Maybe, positions: Workflow["positions"]): CloneKeys | undefined {
    const entries = this.mapEntries(node, "clone", "clone");
    if (entries === undefined) return undefined;
    const out: CloneKeys = {};
    for (const { key, pos, value } of entries) {
      if (!CLONE_KEYS.has(key)) {
        this.warn(pos, `unknown key "${key}" in clone is ignored`);
        continue;
      }
      if (key === "depth") {
        const depth = this.int(value, "clone", "clone.depth");
        if (depth !== undefined) out.depth = depth;
      } else {
        const flag = this.bool(value, "clone", `clone.${key}`);
        if (flag !== undefined) out[key as "skip" | "submodules" | "tags"] = flag;
      }
      if (key !== "tags") positions[`clone.${key}` as KeyPath] = pos;
    }
    return out;
  }

  private dependencies(node: Maybe): Dependencies | undefined {
    const n = this.deref(node, "dependencies");
    if (n === undefined) return undefined;
    if (n === null || (isScalar(n) && n.value === null)) return { form: "none" };
    if (isSeq(n)) {
      const packages = this.stringList(n, "dependencies", "dependencies");
      return packages === undefined ? undefined : { form: "list", packages };
    }
    const entries = this.mapEntries(n, "dependencies", "dependencies");
    if (entries === undefined) return undefined;
    const registries: Registry[] = [];
    for (const { key, value } of entries) {
      const label = `dependencies.${key}`;
      const items = this.seqItems(value, "dependencies", label, "a list of packages");
      if (items === undefined) continue;
      const packages: string[] = [];
      items.forEach((item, i) => {
        const name = this.string(item, "dependencies", `${label}[${i}]`);
        if (name !== undefined) packages.push(name);
      });
      registries.push({ registry: key, packages });
    }
    return { form: "map", registries };
  }

  private steps(node: Maybe): Step[] | undefined {
    const items = this.seqItems(node, "steps", "steps", "a list of steps");
    if (items === undefined) return undefined;
    const out: Step[] = [];
    items.forEach((item, i) => {
      const label = `steps[${i}]`;
      const entries = this.mapEntries(item, "steps", label);
      if (entries === undefined) return;
      const step: Step = { name: "", command: "", environment: [], pos: this.pos(item) };
      for (const { key, pos, value } of entries) {
        if (!STEP_KEYS.has(key)) {
          this.warn(pos, `unknown key "${key}" in ${label} is ignored`);
          continue;
        }
        if (key === "environment") step.environment = this.env(value, "steps", `${label}.environment`) ?? [];
        else step[key as "name" | "command"] = this.string(value, "steps", `${label}.${key}`) ?? "";
      }
      out.push(step);
    });
    return out;
  }

  private env(node: Maybe, section: Section, label: string): EnvVar[] | undefined {
    const entries = this.mapEntries(node, section, label);
    if (entries === undefined) return undefined;
    const out: EnvVar[] = [];
    for (const { key, pos, value } of entries) {
      if (key === "" || key.includes("=")) {
        // Such a name cannot be passed to a process environment (`NAME=value`).
        const message = `${label}: "${key}" is not a valid variable name`;
        this.errors.push({ section, diagnostic: this.diag("error", "parse error", pos, message) });
        return undefined;
      }
      const v = this.string(value, section, `${label}.${key}`);
      if (v !== undefined) out.push({ name: key, value: v });
    }
    return out;
  }

  // ---- typed scalars ----

  /** Any scalar reads as its source text; null reads as "" (yaml.v3 into a Go string). */
  private string(node: Maybe, section: Section, label: string): string | undefined {
    const n = this.deref(node, section);
    if (n === undefined) return undefined;
    if (n === null) return "";
    if (isScalar(n)) return n.value === null ? "" : (n.source ?? String(n.value));
    return this.fail(section, n, `${label}: expected a string, found ${describe(n)}`);
  }

  /** A scalar is a one-element list, null is empty, a sequence must hold only scalars. */
  private stringList(node: Maybe, section: Section, label: string): string[] | undefined {
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

  private bool(node: Maybe, section: Section, label: string): boolean | undefined {
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

  private int(node: Maybe, section: Section, label: string): number | undefined {
    const n = this.deref(node, section);
    if (n === undefined) return undefined;
    if (n === null || (isScalar(n) && n.value === null)) return 0;
    if (isScalar(n) && typeof n.value === "number" && Number.isSafeInteger(n.value)) return n.value;
    const found = isScalar(n) ? `"${n.source ?? String(n.value)}"` : describe(n);
    return this.fail(section, n, `${label}: expected an integer, found ${found}`);
  }

  // ---- collections ----

  private seqItems(node: Maybe, section: Section, label: string, what: string): Maybe[] | undefined {
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
  private mapEntries(node: Maybe, section: Section, label: string): Entry[] | undefined {
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
  private mergeSources(node: Maybe, section: Section, label: string): Entry[] | undefined {
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
  private deref(node: Maybe, section: Section): Node | null | undefined {
    if (node === null || node === undefined) return null;
    if (!isAlias(node)) return node;
    if (++this.aliases > this.maxAliases) {
      return this.fail(section, node, `more than ${this.maxAliases} alias references`);
    }
    const target = this.doc === undefined ? undefined : node.resolve(this.doc);
    if (target === undefined) return this.fail(section, node, `alias "*${node.source}" has no anchor`);
    return target;
  }

  private pos(node: Maybe): Pos {
    const offset = node?.range?.[0] ?? 0;
    const { line, col } = this.lineCounter.linePos(offset);
    return { line, column: col };
  }

  private fail(section: Section, node: Maybe, message: string): undefined {
    this.errors.push({ section, diagnostic: this.diag("error", "parse error", this.pos(node), message) });
    return undefined;
  }

  private warn(pos: Pos, message: string): void {
    this.warnings.push(this.diag("warning", "unknown key", pos, message));
  }

  private diag(
    severity: Diagnostic["severity"],
    kind: Diagnostic["kind"],
    pos: Pos,
    message: string,
  ): Diagnostic {
    return { severity, kind, message, file: this.file, line: pos.line, column: pos.column };
  }
}

function describe(n: Node): string {
  if (isMap(n)) return "a mapping";
  if (isSeq(n)) return "a sequence";
  if (isScalar(n)) return `"${n.source ?? String(n.value)}"`;
  return "an alias";
}
