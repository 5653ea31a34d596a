/**
 * Turning untrusted bytes into a YAML document without crashing or hanging: size cap, UTF-8 and
 * control-character checks, and a nesting pre-check. The `yaml` package does the YAML itself;
 * these guards exist because its composer recurses per nesting level (deep input is slow before
 * it overflows) and because it accepts control characters that Go's yaml.v3 rejects.
 */
import { isUtf8 } from "node:buffer";
import { type Document, Lexer, LineCounter, parseAllDocuments, type YAMLError } from "yaml";
import type { Diagnostic } from "./types.ts";

export interface SourceLimits {
  /** Largest accepted file. Upstream's own workflows are about 1 KiB. */
  maxBytes: number;
  /** Deepest accepted flow nesting, and most block indicators (`- `, `? `, `: `) on one line. */
  maxDepth: number;
  /** Most alias dereferences while reading one file (anchor/alias bombs). */
  maxAliases: number;
}

export const DEFAULT_LIMITS: SourceLimits = { maxBytes: 512 * 1024, maxDepth: 64, maxAliases: 100 };

export interface YamlSource {
  text: string;
  /** The first YAML document, or undefined for an empty file (yaml.v3 reads only the first). */
  doc: Document.Parsed | undefined;
  lineCounter: LineCounter;
  extraDocuments: number;
}

export type SourceResult = { ok: true; source: YamlSource } | { ok: false; diagnostic: Diagnostic };

export function parseError(file: string, message: string, line = 1, column = 1): Diagnostic {
  return { severity: "error", kind: "parse error", message, file, line, column };
}

/** Everything outside YAML 1.2's printable set except tab, LF and CR (yaml.v3 rejects these). */
const NON_PRINTABLE = /[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x84\x86-\x9F\uFFFE\uFFFF]/;

export function readYamlSource(
  file: string,
  content: string | Uint8Array,
  limits: SourceLimits = DEFAULT_LIMITS,
): SourceResult {
  const size = typeof content === "string" ? Buffer.byteLength(content) : content.byteLength;
  if (size > limits.maxBytes) {
    return fail(parseError(file, `file is ${size} bytes; the limit is ${limits.maxBytes} bytes`));
  }
  const lineCounter = new LineCounter();
  let text: string;
  if (typeof content === "string") text = content;
  else {
    text = new TextDecoder("utf-8").decode(content);
    if (!isUtf8(content)) {
      // The decoder replaced the first bad byte with U+FFFD; report where that landed.
      return fail(at(file, text, text.indexOf("\uFFFD"), "invalid UTF-8 (is this a binary file?)"));
    }
  }
  const control = NON_PRINTABLE.exec(text);
  if (control !== null) {
    const code = control[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
    return fail(at(file, text, control.index, `control character U+${code} is not allowed`));
  }
  // Only the first document is used (as yaml.v3 reads only the first): the rest is not parsed,
  // so a file of 50,000 tiny documents costs what its first one costs.
  const split = firstDocumentEnd(text);
  const head = split === null ? text : text.slice(0, split);
  const tooDeep = head.length > NESTING_CHECK_FROM ? findExcessiveNesting(head, limits.maxDepth) : -1;
  if (tooDeep >= 0) {
    return fail(at(file, text, tooDeep, `nesting is deeper than ${limits.maxDepth} levels`));
  }
  const docs = parseAllDocuments(head, { lineCounter, uniqueKeys: false, prettyErrors: true });
  // An empty stream is an empty array that may still carry errors of its own.
  const list = Array.from(docs);
  const doc = list[0];
  const error = doc?.errors[0] ?? (docs as { errors?: YAMLError[] }).errors?.[0];
  if (error !== undefined) {
    const pos = lineCounter.linePos(error.pos[0]);
    return fail(parseError(file, yamlErrorText(error.message), pos.line, pos.col));
  }
  const extraDocuments = split === null ? Math.max(0, list.length - 1) : countDocuments(text.slice(split));
  return { ok: true, source: { text, doc, lineCounter, extraDocuments } };
}

/** A `---` or `...` line: a document marker wherever it is (YAML 1.2 §9.1.4, "c-forbidden"). */
const MARKER = /^(?:---|\.\.\.)(?=[ \t\r\n]|$)/m;
const markers = () => new RegExp(MARKER.source, "gm");
/** A line that is blank, a comment or a directive: no document content. */
const NOT_CONTENT = /^(?:[ \t]*(?:#.*)?|%.*)$/;

/**
 * The offset where the first document's text ends (the marker line that closes it), or null
 * when the file holds one document (or its shape is unusual: then everything is parsed).
 * A document marker cannot occur inside any scalar, block or quoted, so cutting there gives
 * the first document exactly as the whole-stream parse would see it.
 */
function firstDocumentEnd(text: string): number | null {
  const re = markers();
  const first = re.exec(text);
  if (first === null) return null;
  const before = text.slice(0, first.index).split("\n");
  const bare = before.some((line) => !NOT_CONTENT.test(line.replace(/\r$/, "")));
  // A bare first document ends at the first marker; an explicit one (`---`) at the next.
  if (bare) return first.index;
  if (first[0] !== "---") return null;
  const next = re.exec(text);
  return next === null ? null : next.index;
}

/** Documents in the text after the first one: each `---` starts one; else any content is one. */
function countDocuments(rest: string): number {
  let n = 0;
  for (const m of rest.matchAll(markers())) if (m[0] === "---") n++;
  if (n > 0) return n;
  const lines = rest.split("\n").filter((l) => !/^\.\.\.(?=[ \t\r]|$)/.test(l));
  return lines.some((l) => !NOT_CONTENT.test(l.replace(/\r$/, ""))) ? 1 : 0;
}

function fail(diagnostic: Diagnostic): SourceResult {
  return { ok: false, diagnostic };
}

function at(file: string, text: string, offset: number, message: string): Diagnostic {
  const before = text.slice(0, Math.max(0, offset));
  const line = before.split("\n").length;
  const column = before.length - before.lastIndexOf("\n");
  return parseError(file, message, line, column);
}

/** The yaml package appends " at line L, column C:" and a source excerpt; the diagnostic has both. */
function yamlErrorText(message: string): string {
  // The composer recurses per level and reports running out of stack as an error of its own.
  if (message.includes("Maximum call stack size exceeded")) return "nesting is too deep";
  const first = message.split("\n", 1)[0] ?? message;
  return first.replace(/ at line \d+, column \d+:?$/, "");
}

/**
 * Below this many characters the yaml composer copes with any nesting quickly (8 K levels take
 * tens of milliseconds, and it reports its own stack overflow as an error), so the extra lexing
 * pass is skipped for ordinary files.
 */
const NESTING_CHECK_FROM = 8192;

const SYNTHETIC_TOKENS = new Set(["\u0002", "\u0018", "\u001f"]);

/**
 * Offset of the first token nested deeper than `maxDepth`, or -1. Flow collections count by
 * bracket; block collections opened on one line (`- - - x`, `a: b: c`) count per indicator.
 * Block nesting by indentation needs quadratic file size, so the size cap already bounds it.
 */
function findExcessiveNesting(text: string, maxDepth: number): number {
  let offset = 0;
  let flow = 0;
  let onLine = 0;
  for (const token of new Lexer().lex(text)) {
    if (SYNTHETIC_TOKENS.has(token)) continue;
    if (token === "[" || token === "{") flow++;
    else if (token === "]" || token === "}") flow--;
    else if (token === "-" || token === "?" || token === ":") onLine++;
    else if (token === "\n" || token === "\r\n") onLine = 0;
    if (flow > maxDepth || onLine > maxDepth) return offset;
    offset += token.length;
  }
  return -1;
}
