/**
 * The workflow model: what a `.tangled/workflows/*` file means (spec §2.1), the Gen1 pipeline
 * record the knot emits (spec §1.5) and the diagnostics compile and lint report (spec §2.2).
 */
import type { TriggerKind } from "../protocol/trigger-metadata.ts";

/** 1-based line and column of a place in a workflow file. */
export interface Pos {
  line: number;
  column: number;
}

export type Severity = "error" | "warning";

/**
 * The closed list of diagnostic kinds. The first four are the texts of spec §2.2; the rest are
 * Loom's lint findings.
 */
export type DiagnosticKind =
  | "parse error"
  | "missing engine"
  | "workflow skipped"
  | "invalid configuration"
  | "unknown key"
  /** A key of another engine (microvm) or a second YAML document: known, and knowingly ignored. */
  | "ignored key"
  | "no steps"
  | "unknown engine"
  | "invalid value"
  | "never matches";

export interface Diagnostic {
  severity: Severity;
  kind: DiagnosticKind;
  message: string;
  /** The workflow's file name (e.g. `build.yml`). */
  file: string;
  line: number;
  column: number;
  /**
   * For an unknown key: the known key it most likely misspells, set only when that key is
   * absent beside it, so the typo changes what runs (`loom run` refuses such a workflow).
   */
  suggestion?: string;
}

// ---- Trigger metadata and the Gen1 pipeline record (spec §1.5, lexicon sh.tangled.pipeline) ----

export type { TriggerKind };

export interface TriggerRepo {
  knot: string;
  /** Owner DID. */
  did: string;
  /** Repo *name*. */
  repo: string;
  /** Always "" from Gen1 knots. */
  defaultBranch: string;
  /** Gen2 only. */
  repoDid?: string;
}

export interface PushTrigger {
  ref: string;
  oldSha: string;
  newSha: string;
}

export interface PullRequestTrigger {
  sourceBranch: string;
  targetBranch: string;
  sourceSha: string;
  action: string;
}

export interface ManualInput {
  key: string;
  value: string;
}

export interface ManualTrigger {
  inputs?: ManualInput[];
  /** Gen2 (`ci.trigger#manual`): the commit to run. */
  sha?: string;
  /** Gen2: the ref the commit was picked from. */
  ref?: string;
}

export interface TriggerMetadata {
  kind: TriggerKind;
  repo: TriggerRepo;
  push?: PushTrigger;
  pullRequest?: PullRequestTrigger;
  manual?: ManualTrigger;
}

export interface CloneOptions {
  depth: number;
  skip: boolean;
  submodules: boolean;
  /** Gen2 records only (`cloneOpts.tags`). */
  tags?: boolean;
}

/** One workflow of a pipeline record, keys in wire order (the knot emits sorted keys). */
export interface PipelineWorkflow {
  clone: CloneOptions;
  engine: string;
  /** The file name only, e.g. `build.yml` (spec §1.4). */
  name: string;
  /** The full YAML text. */
  raw: string;
}

export interface PipelineRecord {
  /** Always emitted, always "" (spec §1.5). */
  $type: "";
  triggerMetadata: TriggerMetadata;
  workflows: PipelineWorkflow[];
}

// ---- The parsed workflow file (spec §2.1 + Loom and Gen2 keys) ----

export interface EnvVar {
  name: string;
  value: string;
}

/** One `when[]` item. Absent string-or-list fields are empty lists (they never match). */
export interface Constraint {
  event: string[];
  branch: string[];
  tag: string[];
  /** Gen2 (`when[].types`): undefined when the key is absent. */
  types?: string[];
  /** Gen2 (`when[].paths`): undefined when the key is absent. */
  paths?: string[];
  pos: Pos;
}

export interface Step {
  name: string;
  command: string;
  environment: EnvVar[];
  pos: Pos;
}

export interface Registry {
  /** `nixpkgs` or a flake reference. */
  registry: string;
  packages: string[];
}

/**
 * `dependencies` is a map (registry → packages) for nixery; Gen2's microvm engine uses a flat list.
 * Both parse so lint can say which engine wants which form.
 */
export type Dependencies =
  | { form: "none" }
  | { form: "map"; registries: Registry[] }
  | { form: "list"; packages: string[] };

/** Clone keys as written: undefined means absent, so Gen1 and Gen2 defaults can both apply. */
export interface CloneKeys {
  skip?: boolean;
  depth?: number;
  submodules?: boolean;
  /** Gen2 (`clone.tags`). */
  tags?: boolean;
}

/** Where a key was written, for diagnostics. */
export type KeyPath =
  | "when"
  | "engine"
  | "image"
  | "architecture"
  | "clone"
  | "clone.skip"
  | "clone.depth"
  | "clone.submodules"
  | "dependencies"
  | "steps"
  | "registry"
  | "caches"
  | "services"
  | "virtualisation";

export interface Workflow {
  when: Constraint[];
  engine: string;
  /** Loom `engine: kubernetes`. */
  image: string;
  /** Loom `engine: kubernetes`: `amd64` | `arm64`; "" when absent. */
  architecture: string;
  clone: CloneKeys;
  dependencies: Dependencies;
  environment: EnvVar[];
  steps: Step[];
  /** `engine: microvm` keys; decoded (and checked) only for that engine, else empty. */
  microvm: MicrovmKeys;
  positions: Partial<Record<KeyPath, Pos>>;
}

/** A YAML value as plain data (NixOS options are passed on as written). */
export type YamlValue = string | number | boolean | null | YamlValue[] | { [key: string]: YamlValue };

/** One `services.<name>`: `true` is `{enable: true}`; `options` holds every other key. */
export interface MicrovmService {
  name: string;
  enable: boolean;
  options: Record<string, YamlValue>;
  pos: Pos;
}

/** The keys only `engine: microvm` reads (shared/spec/microvm-workflows.md). */
export interface MicrovmKeys {
  /** Flake registry name → flake reference (`nixpkgs` pins bare dependency names). */
  registry: { name: string; flakeref: string; pos: Pos }[];
  /** Binary-cache URL → trusted public key (extra substituters). */
  caches: { url: string; publicKey: string; pos: Pos }[];
  services: MicrovmService[];
  /** `virtualisation.<name>`: a boolean (`docker: true`) or an options mapping. */
  virtualisation: { name: string; value: YamlValue; pos: Pos }[];
  /** Where each flat-list dependency was written, in list order. */
  dependencyPositions: Pos[];
}
