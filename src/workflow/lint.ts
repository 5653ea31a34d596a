/**
 * `loom lint`: everything compile would say for any trigger, plus what only shows at run time
 * (engine keys) and what silently does nothing (unknown keys, constraints that never match).
 */
import { cloneWarnings } from "./compile.ts";
import { noStepsWarning } from "./decode.ts";
import { isValidGlob } from "./glob.ts";
import {
  MICROVM_SERVICES,
  MICROVM_VIRTUALISATION,
  microvmServiceOptions,
  virtualisationEnabled,
} from "./microvm.ts";
import { parseWorkflow } from "./parse.ts";
import { ARCHITECTURES, ENGINES } from "./resolve.ts";
import { DEFAULT_LIMITS, type SourceLimits } from "./source.ts";
import type { Constraint, Diagnostic, Pos, Workflow } from "./types.ts";

const EVENTS = new Set(["push", "pull_request", "manual"]);
/** Gen2 pull-request actions (gen2 §2.11). */
const PR_TYPES = new Set(["opened", "reopened", "closed", "merged", "synchronize"]);

export function lintWorkflow(
  file: string,
  content: string | Uint8Array,
  limits: SourceLimits = DEFAULT_LIMITS,
): Diagnostic[] {
  const parsed = parseWorkflow(file, content, limits);
  // A typo that leaves the key it meant unset changes what runs: an error here, as in `loom run`.
  const warnings = parsed.warnings.map((d) =>
    d.suggestion === undefined ? d : { ...d, severity: "error" as const },
  );
  const out = [...parsed.errors, ...parsed.engineErrors, ...warnings];
  const wf = parsed.workflow;
  if (wf === undefined) return sortByPosition(out);
  const d = (
    severity: Diagnostic["severity"],
    kind: Diagnostic["kind"],
    pos: Pos | undefined,
    message: string,
  ) => out.push({ severity, kind, message, file, line: pos?.line ?? 1, column: pos?.column ?? 1 });

  if (wf.engine === "") {
    d(
      "warning",
      "missing engine",
      wf.positions.engine,
      "a Gen1 knot drops this workflow before any spindle sees it; Loom's Gen2 intake and `loom run` run it as engine: kubernetes",
    );
  } else if (!(ENGINES as readonly string[]).includes(wf.engine)) {
    d(
      "error",
      "unknown engine",
      wf.positions.engine,
      `unknown engine "${wf.engine}" (Loom runs ${ENGINES.join(", ")})`,
    );
  }
  out.push(...cloneWarnings(wf, file), ...(parsed.engineErrors.length === 0 ? noStepsWarning(wf, file) : []));
  lintEngineKeys(wf, d);
  wf.when.forEach((c, i) => {
    lintConstraint(c, i, d);
  });
  return sortByPosition(out);
}

type Report = (
  severity: Diagnostic["severity"],
  kind: Diagnostic["kind"],
  pos: Pos | undefined,
  message: string,
) => void;

function lintEngineKeys(wf: Workflow, d: Report): void {
  if (wf.engine === "kubernetes" && wf.image === "") {
    d("error", "invalid value", wf.positions.engine, `engine "kubernetes" requires "image"`);
  }
  if (wf.engine === "" && wf.image === "") {
    d(
      "error",
      "invalid value",
      undefined,
      `without "engine" this runs as engine: kubernetes, which requires "image"`,
    );
  }
  if (wf.architecture !== "" && !(ARCHITECTURES as readonly string[]).includes(wf.architecture)) {
    d(
      "error",
      "invalid value",
      wf.positions.architecture,
      `architecture must be amd64 or arm64, not "${wf.architecture}"`,
    );
  }
  if (wf.engine === "nixery" && wf.dependencies.form === "list") {
    d(
      "error",
      "invalid value",
      wf.positions.dependencies,
      "engine nixery needs dependencies as a map of registry to packages",
    );
  }
  if (wf.engine === "nixery" && wf.image !== "") {
    d(
      "warning",
      "unknown key",
      wf.positions.image,
      `engine nixery ignores "image"; its image comes from dependencies.nixpkgs`,
    );
  }
  if (wf.engine === "microvm") lintMicrovm(wf, d);
  if ((wf.clone.depth ?? 0) < 0) {
    d("warning", "invalid value", wf.positions["clone.depth"], "clone.depth below 0 is treated as 1");
  }
}

/** What Loom's Kubernetes mapping of `engine: microvm` cannot do, said where it is written. */
function lintMicrovm(wf: Workflow, d: Report): void {
  if (wf.dependencies.form === "map") {
    d(
      "error",
      "invalid value",
      wf.positions.dependencies,
      "engine microvm needs dependencies as a flat list (bare nixpkgs names and flakeref#attr), not a map of registry to packages",
    );
  }
  for (const s of wf.microvm.services) {
    if (!s.enable) {
      d(
        "warning",
        "invalid value",
        s.pos,
        `services.${s.name} is not enabled (enable: true), so it is not started`,
      );
    } else if (!MICROVM_SERVICES.includes(s.name)) {
      d(
        "error",
        "invalid value",
        s.pos,
        `services.${s.name}: Loom's Kubernetes engine cannot run this NixOS service (it runs ${MICROVM_SERVICES.join(", ")}); the workflow would fail before it starts`,
      );
    } else {
      const checked = microvmServiceOptions([s]);
      if (!checked.ok) d("error", "invalid value", s.pos, checked.error);
    }
  }
  const databases = wf.microvm.services.filter(
    (s) => s.enable && (s.name === "mysql" || s.name === "mariadb"),
  );
  if (databases.length > 1) {
    d(
      "error",
      "invalid value",
      databases[1]!.pos,
      `services.${databases[1]!.name}: Loom runs one MariaDB server for mysql and mariadb; services.${databases[0]!.name} is already enabled`,
    );
  }
  for (const v of wf.microvm.virtualisation) {
    if (!MICROVM_VIRTUALISATION.includes(v.name)) {
      d(
        "error",
        "invalid value",
        v.pos,
        `virtualisation.${v.name}: Loom's Kubernetes engine cannot provide this (only virtualisation.docker, where the operator allows it); the workflow would fail before it starts`,
      );
    } else if (virtualisationEnabled(v.value)) {
      d(
        "warning",
        "invalid value",
        v.pos,
        "virtualisation.docker: Loom's Kubernetes engine runs a rootless Docker daemon only where the operator allows it (microvm.docker.enabled); elsewhere the workflow fails before it starts",
      );
    }
  }
}

/** Spec §2.4 read backwards: which constraints can never be true. */
function lintConstraint(c: Constraint, i: number, d: Report): void {
  const where = `when[${i}]`;
  if (c.event.length === 0)
    d("warning", "never matches", c.pos, `${where} has no event, so it never matches`);
  for (const e of c.event) {
    if (!EVENTS.has(e))
      d(
        "warning",
        "never matches",
        c.pos,
        `${where}: event "${e}" is never sent (push, pull_request, manual)`,
      );
  }
  const wantsRefs = c.event.includes("push") || c.event.includes("pull_request");
  if (wantsRefs && c.branch.length === 0 && c.tag.length === 0) {
    d(
      "warning",
      "never matches",
      c.pos,
      `${where} has no branch or tag, so pushes and pull requests never match`,
    );
  }
  for (const t of c.types ?? []) {
    if (!PR_TYPES.has(t))
      d("warning", "never matches", c.pos, `${where}: pull request type "${t}" is never sent`);
  }
  for (const p of [...c.branch, ...c.tag, ...(c.paths ?? [])]) {
    if (!isValidGlob(p))
      d("warning", "never matches", c.pos, `${where}: malformed glob "${p}" never matches`);
  }
}

function sortByPosition(ds: Diagnostic[]): Diagnostic[] {
  return ds.sort((a, b) => a.line - b.line || a.column - b.column);
}
