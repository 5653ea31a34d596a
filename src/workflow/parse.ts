/**
 * One workflow file → Workflow model plus findings, each with file, line and column.
 */
import { decodeWorkflow, KNOT_SECTIONS } from "./decode.ts";
import { DEFAULT_LIMITS, readYamlSource, type SourceLimits } from "./source.ts";
import type { Diagnostic, Workflow } from "./types.ts";

export interface ParsedWorkflow {
  /** Undefined when the file is not YAML or not a mapping; then `errors` says why. */
  workflow: Workflow | undefined;
  /** The text as read (the record's `raw`), "" when it could not be read. */
  text: string;
  /** Errors that make the knot drop the workflow: syntax, shape, `when`, `engine`, `clone`. */
  errors: Diagnostic[];
  /** Errors in keys only the engine reads (`steps`, `environment`, `dependencies`, `image`…). */
  engineErrors: Diagnostic[];
  /** Unknown keys and other findings that change nothing. */
  warnings: Diagnostic[];
}

export function parseWorkflow(
  file: string,
  content: string | Uint8Array,
  limits: SourceLimits = DEFAULT_LIMITS,
): ParsedWorkflow {
  const read = readYamlSource(file, content, limits);
  if (!read.ok) {
    return { workflow: undefined, text: "", errors: [read.diagnostic], engineErrors: [], warnings: [] };
  }
  const { text, doc, lineCounter, extraDocuments } = read.source;
  const decoded = decodeWorkflow(file, doc, lineCounter, limits.maxAliases);
  const errors = decoded.errors.filter((f) => KNOT_SECTIONS.has(f.section)).map((f) => f.diagnostic);
  const engineErrors = decoded.errors.filter((f) => !KNOT_SECTIONS.has(f.section)).map((f) => f.diagnostic);
  const warnings = [...decoded.warnings];
  if (extraDocuments > 0) {
    const second = doc?.range[2] ?? 0;
    const pos = lineCounter.linePos(second);
    warnings.push({
      severity: "warning",
      kind: "ignored key",
      message: `only the first YAML document is read; ${extraDocuments} more ignored`,
      file,
      line: pos.line,
      column: pos.col,
    });
  }
  return {
    workflow: errors.length > 0 ? undefined : decoded.workflow,
    text,
    errors,
    engineErrors,
    warnings,
  };
}
