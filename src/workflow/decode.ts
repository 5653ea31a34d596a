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
import { type Document, isMap, isScalar, isSeq, type LineCounter, type Node } from "yaml";
import { checkCache, checkDependency, checkRegistry, liftDefaultRedisServer } from "./microvm.ts";
import type {
  CloneKeys,
  Constraint,
  Dependencies,
  Diagnostic,
  EnvVar,
  KeyPath,
  MicrovmKeys,
  MicrovmService,
  Pos,
  Registry,
  Step,
  Workflow,
  YamlValue,
} from "./types.ts";
import { type Finding, type Maybe, YamlReader } from "./yaml-reader.ts";

export type Section =
  | "document"
  | "when"
  | "engine"
  | "image"
  | "architecture"
  | "clone"
  | "dependencies"
  | "environment"
  | "steps"
  | "registry"
  | "caches"
  | "services"
  | "virtualisation";

/** The sections the knot decodes (Gen1 `workflow/def.go`); errors elsewhere surface at run time. */
export const KNOT_SECTIONS: ReadonlySet<Section> = new Set(["document", "when", "engine", "clone"]);

export type WorkflowFinding = Finding<Section>;

export interface Decoded {
  /** Undefined only when the document is not a mapping at all. */
  workflow: Workflow | undefined;
  errors: WorkflowFinding[];
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
/** Keys of `engine: microvm`: decoded for that engine, `ignored key` for the others. */
const MICROVM_KEYS = new Set(["registry", "caches", "services", "virtualisation"]);
const CONSTRAINT_KEYS = new Set(["event", "branch", "tag", "types", "paths"]);
const CLONE_KEYS = new Set(["skip", "depth", "submodules", "tags"]);
const STEP_KEYS = new Set(["name", "command", "environment"]);

export function decodeWorkflow(
  file: string,
  doc: Document.Parsed | undefined,
  lineCounter: LineCounter,
  maxAliases: number,
): Decoded {
  const reader = new WorkflowReader(file, doc, lineCounter, maxAliases);
  const workflow = reader.workflow(doc?.contents ?? null);
  return { workflow, errors: reader.errors, warnings: reader.warnings };
}

class WorkflowReader extends YamlReader<Section> {
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
      microvm: emptyMicrovmKeys(),
      positions: {},
    };
    const microvmEntries: typeof entries = [];
    let dependenciesNode: Maybe;
    for (const { key, pos, value } of entries) {
      if (!TOP_LEVEL_KEYS.has(key)) {
        if (MICROVM_KEYS.has(key)) microvmEntries.push({ key, pos, value });
        else this.unknownKey(key, pos, "", TOP_LEVEL_KEYS, entries);
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
          dependenciesNode = value;
          break;
        case "environment":
          wf.environment = this.env(value, "environment", "environment") ?? [];
          break;
        case "steps":
          wf.steps = this.steps(value) ?? [];
          break;
      }
    }
    // The engine is known only now (keys come in any order): other engines ignore these keys.
    if (wf.engine === "microvm") {
      for (const { key, pos, value } of microvmEntries) {
        wf.positions[key as KeyPath] = pos;
        this.microvmKey(key as keyof Omit<MicrovmKeys, "dependencyPositions">, value, wf.microvm);
      }
      if (wf.dependencies.form === "list") this.microvmDependencies(dependenciesNode, wf);
    } else {
      for (const { key, pos } of microvmEntries) {
        const engine = wf.engine === "" ? "this workflow's engine" : `engine ${wf.engine}`;
        const message = `key "${key}" belongs to the microvm engine; ${engine} ignores it`;
        this.warnings.push(this.diag("warning", "ignored key", pos, message));
      }
    }
    return wf;
  }

  // ---- engine: microvm ----

  private microvmKey(
    key: keyof Omit<MicrovmKeys, "dependencyPositions">,
    node: Maybe,
    out: MicrovmKeys,
  ): void {
    const entries = this.mapEntries(node, key, key);
    if (entries === undefined) return;
    for (const { key: name, pos, value } of entries) {
      const label = `${key}.${name}`;
      if (key === "registry") {
        const flakeref = this.string(value, key, label);
        if (flakeref === undefined) continue;
        const problem = checkRegistry(name, flakeref);
        if (problem !== undefined) this.failAt(key, pos, `${label}: ${problem}`);
        else out.registry.push({ name, flakeref, pos });
      } else if (key === "caches") {
        const publicKey = this.string(value, key, label);
        if (publicKey === undefined) continue;
        const problem = checkCache(name, publicKey);
        if (problem !== undefined) this.failAt(key, pos, `${label}: ${problem}`);
        else out.caches.push({ url: name, publicKey, pos });
      } else if (key === "services") {
        const service = this.service(name, pos, value);
        if (service !== undefined) out.services.push(service);
      } else {
        const v = this.plain(value, key, label);
        if (v === undefined) continue;
        if (typeof v !== "boolean" && (v === null || typeof v !== "object" || Array.isArray(v))) {
          this.failAt(key, pos, `${label}: expected true, false or a mapping of options`);
          continue;
        }
        out.virtualisation.push({ name, value: v, pos });
      }
    }
  }

  /** `name: true|false` or `name: {enable: …, …options}` (NixOS `services.<name>`). */
  private service(name: string, pos: Pos, node: Maybe): MicrovmService | undefined {
    const label = `services.${name}`;
    const n = this.deref(node, "services");
    if (n === undefined) return undefined;
    if (n === null || isScalar(n)) {
      const enable = this.bool(n, "services", label);
      return enable === undefined ? undefined : { name, enable, options: {}, pos };
    }
    if (!isMap(n)) return this.fail("services", n, `${label}: expected true, false or a mapping of options`);
    const entries = this.mapEntries(n, "services", label);
    if (entries === undefined) return undefined;
    const service: MicrovmService = { name, enable: false, options: {}, pos };
    for (const entry of entries) {
      if (entry.key === "enable") {
        const enable = this.bool(entry.value, "services", `${label}.enable`);
        if (enable === undefined) return undefined;
        service.enable = enable;
        continue;
      }
      const v = this.plain(entry.value, "services", `${label}.${entry.key}`);
      if (v === undefined) return undefined;
      service.options[entry.key] = v;
    }
    return name === "redis" ? liftDefaultRedisServer(service) : service;
  }

  /** Checks every flat-list dependency (bare nixpkgs name or `flakeref#attr`) where it is written. */
  private microvmDependencies(node: Maybe, wf: Workflow): void {
    const items = this.seqItems(node, "dependencies", "dependencies", "a list of packages") ?? [];
    items.forEach((item, i) => {
      const pos = this.pos(this.deref(item, "dependencies") ?? item);
      wf.microvm.dependencyPositions.push(pos);
      const dep = wf.dependencies.form === "list" ? wf.dependencies.packages[i] : undefined;
      const problem = dep === undefined ? undefined : checkDependency(dep);
      if (problem !== undefined) this.failAt("dependencies", pos, `dependencies[${i}]: ${problem}`);
    });
  }

  /** Any YAML value as plain data (typed scalars, as NixOS reads them), under the alias budget. */
  private plain(node: Maybe, section: Section, label: string): YamlValue | undefined {
    const n: Node | null | undefined = this.deref(node, section);
    if (n === undefined) return undefined;
    if (n === null) return null;
    if (isScalar(n)) {
      const v = n.value;
      if (v === null || typeof v === "string" || typeof v === "boolean") return v;
      if (typeof v === "number" && Number.isFinite(v)) return v;
      return n.source ?? String(v);
    }
    if (isSeq(n)) {
      const out: YamlValue[] = [];
      for (const [i, item] of (n.items as Maybe[]).entries()) {
        const v = this.plain(item, section, `${label}[${i}]`);
        if (v === undefined) return undefined;
        out.push(v);
      }
      return out;
    }
    const entries = this.mapEntries(n, section, label);
    if (entries === undefined) return undefined;
    const out: { [key: string]: YamlValue } = {};
    for (const entry of entries) {
      const v = this.plain(entry.value, section, `${label}.${entry.key}`);
      if (v === undefined) return undefined;
      out[entry.key] = v;
    }
    return out;
  }

  private failAt(section: Section, pos: Pos, message: string): void {
    this.errors.push({ section, diagnostic: this.diag("error", "parse error", pos, message) });
  }

  /**
   * An unknown key, with the known key it most likely misspells. When that key is not set in the
   * same mapping the typo changes what runs (`step:` leaves no steps, `comand:` an empty
   * command), and the finding carries it as `suggestion` so `loom run` can refuse.
   */
  private unknownKey(
    key: string,
    pos: Pos,
    where: string,
    known: ReadonlySet<string>,
    siblings: readonly { key: string }[],
  ): void {
    const meant = closestKey(key, known);
    const hint = meant === undefined ? "" : `; did you mean "${meant}"?`;
    const d = this.diag("warning", "unknown key", pos, `unknown key "${key}"${where} is ignored${hint}`);
    if (meant !== undefined && !siblings.some((s) => s.key === meant)) d.suggestion = meant;
    this.warnings.push(d);
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
          this.unknownKey(key, pos, ` in ${label}`, CONSTRAINT_KEYS, entries);
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
        this.unknownKey(key, pos, " in clone", CLONE_KEYS, entries);
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
          this.unknownKey(key, pos, ` in ${label}`, STEP_KEYS, entries);
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
}

export function emptyMicrovmKeys(): MicrovmKeys {
  return { registry: [], caches: [], services: [], virtualisation: [], dependencyPositions: [] };
}

/** A workflow without steps runs nothing but its clone: never a silent success (compile, lint). */
export function noStepsWarning(wf: Workflow, file: string): Diagnostic[] {
  if (wf.steps.length > 0) return [];
  const at = wf.positions.steps ?? { line: 1, column: 1 };
  const message = "this workflow runs nothing";
  return [{ severity: "warning", kind: "no steps", message, file, line: at.line, column: at.column }];
}

/**
 * The known key `key` most likely misspells: same letters in another case, or within an edit
 * distance of 1 (keys of up to 4 letters) or 2 (longer keys), counting a swap of two neighbours
 * as one edit. Undefined when nothing is that close, or when two keys are equally close.
 */
export function closestKey(key: string, known: Iterable<string>): string | undefined {
  const lower = key.toLowerCase();
  const limit = lower.length <= 4 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  let tie = false;
  for (const candidate of known) {
    const d = editDistance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
      tie = false;
    } else if (d === bestDistance) tie = true;
  }
  return best !== undefined && bestDistance <= limit && !tie ? best : undefined;
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      }
      row.push(d);
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}
