/**
 * Glob matching with the semantics of Go's `github.com/bmatcuk/doublestar/v4` `Match`, which
 * upstream uses for `when[].branch` and `when[].tag` (spec §2.4):
 *
 *   `*`        any run of characters except `/`
 *   `**`       as a whole path component: zero or more components (`a/**` matches `a`, and
 *              so does `a/**` followed by a slash); anywhere else it is the same as `*`
 *   `?`        one character except `/`
 *   `[abc]` `[a-z]` `[^…]` `[!…]`   a character class (non-empty; `]` first must be escaped)
 *   `{a,b}`    alternatives, may nest
 *   `\c`       the character c
 *
 * A malformed pattern never matches (upstream ignores doublestar's ErrBadPattern).
 *
 * Hand-written rather than compiled to a RegExp: no glob library is installed, and a RegExp of
 * many `*` can backtrack exponentially on a long branch name. This matcher is polynomial: one
 * backtrack point per component, a memo table across components.
 */

type Token =
  | { t: "lit"; ch: string }
  | { t: "any" }
  | { t: "star" }
  | { t: "class"; negate: boolean; ranges: [string, string][] };

/** A compiled component: `null` is a `**` component. */
type Component = Token[] | null;

export interface Glob {
  /** One list of components per brace alternative. */
  alternatives: Component[][];
}

/** Beyond this many brace expansions the pattern is treated as malformed (no match, no hang). */
const MAX_ALTERNATIVES = 1024;
const cache = new Map<string, Glob | null>();
const CACHE_LIMIT = 4096;
const CACHEABLE_LENGTH = 256;

/** Compiles a pattern, or returns null when it is malformed. */
export function compileGlob(pattern: string): Glob | null {
  const hit = cache.get(pattern);
  if (hit !== undefined || cache.has(pattern)) return hit ?? null;
  const glob = compileUncached(pattern);
  // Only short patterns are cached, so hostile workflows cannot grow the cache without bound.
  if (pattern.length > CACHEABLE_LENGTH) return glob;
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(pattern, glob);
  return glob;
}

export function isValidGlob(pattern: string): boolean {
  return compileGlob(pattern) !== null;
}

/** doublestar `Match(pattern, name)`, a malformed pattern counting as no match. */
export function globMatch(pattern: string, name: string): boolean {
  const glob = compileGlob(pattern);
  if (glob === null) return false;
  const segments = name.split("/").map((s) => Array.from(s));
  return glob.alternatives.some((components) => matchComponents(components, segments));
}

/** True if any pattern matches; an empty list never matches (spec §2.4). */
export function anyGlob(patterns: readonly string[], name: string): boolean {
  return patterns.some((p) => globMatch(p, name));
}

function compileUncached(pattern: string): Glob | null {
  const expanded = expandBraces(pattern);
  if (expanded === null) return null;
  const alternatives: Component[][] = [];
  for (const alt of expanded) {
    const components = splitComponents(alt).map(compileComponent);
    if (components.some((c) => c === undefined)) return null;
    alternatives.push(components as Component[]);
    // doublestar v4: a trailing "/**/" also matches the bare parent ("a/**/" matches "a").
    const n = components.length;
    if (n >= 2 && components[n - 2] === null && (components[n - 1] as Token[]).length === 0) {
      alternatives.push(components.slice(0, n - 2) as Component[]);
    }
  }
  return { alternatives };
}

/** Index just past the `]` closing the class that starts at `start`, or -1 if malformed. */
function classEnd(p: string, start: number): number {
  let i = start + 1;
  if (p[i] === "^" || p[i] === "!") i++;
  if (p[i] === "]") return -1; // an empty class is malformed
  while (i < p.length) {
    if (p[i] === "\\") i += 2;
    else if (p[i] === "]") return i + 1;
    else i++;
  }
  return -1;
}

interface SeqResult {
  alts: string[];
  next: number;
  terminator: "," | "}" | "end";
}

/** Expands `{a,b}` into whole-pattern alternatives, keeping escapes and classes verbatim. */
function expandBraces(pattern: string): string[] | null {
  const result = expandSeq(pattern, 0, false);
  return result === null ? null : result.alts;
}

function expandSeq(p: string, from: number, inBrace: boolean): SeqResult | null {
  let current = [""];
  const append = (text: string) => {
    current = current.map((c) => c + text);
  };
  let i = from;
  while (i < p.length) {
    const c = p[i]!;
    if (c === "\\") {
      if (i + 1 >= p.length) return null; // a trailing backslash escapes nothing
      append(p.slice(i, i + 2));
      i += 2;
    } else if (c === "[") {
      const end = classEnd(p, i);
      if (end < 0) return null;
      append(p.slice(i, end));
      i = end;
    } else if (c === "{") {
      const options: string[] = [];
      let j = i + 1;
      for (;;) {
        const inner = expandSeq(p, j, true);
        if (inner === null) return null;
        options.push(...inner.alts);
        j = inner.next;
        if (inner.terminator === "}") break;
      }
      if (current.length * options.length > MAX_ALTERNATIVES) return null;
      current = current.flatMap((prefix) => options.map((o) => prefix + o));
      i = j;
    } else if (inBrace && (c === "," || c === "}")) {
      return { alts: current, next: i + 1, terminator: c };
    } else {
      append(c);
      i++;
    }
  }
  if (inBrace) return null; // unclosed `{`
  return { alts: current, next: i, terminator: "end" };
}

/** Splits on unescaped `/` outside classes. */
function splitComponents(p: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let i = 0;
  while (i < p.length) {
    const c = p[i];
    if (c === "\\") i += 2;
    else if (c === "[") i = classEnd(p, i);
    else if (c === "/") {
      parts.push(p.slice(start, i));
      start = ++i;
    } else i++;
  }
  parts.push(p.slice(start));
  return parts;
}

/** Tokens of one component, null for `**`, undefined if malformed. */
function compileComponent(text: string): Component | undefined {
  if (text === "**") return null;
  const chars = Array.from(text);
  const tokens: Token[] = [];
  let i = 0;
  while (i < chars.length) {
    const c = chars[i]!;
    if (c === "\\") {
      tokens.push({ t: "lit", ch: chars[i + 1]! });
      i += 2;
    } else if (c === "*") {
      if (tokens.at(-1)?.t !== "star") tokens.push({ t: "star" });
      i++;
    } else if (c === "?") {
      tokens.push({ t: "any" });
      i++;
    } else if (c === "[") {
      const parsed = parseClass(chars, i);
      if (parsed === undefined) return undefined;
      tokens.push(parsed.token);
      i = parsed.next;
    } else {
      tokens.push({ t: "lit", ch: c });
      i++;
    }
  }
  return tokens;
}

/**
 * `[...]` as doublestar v4 reads it (like bash, looser than Go's path.Match): a `-` is literal at
 * the start, before the closing `]` and right after a range (`[a-b-d]` is a, b, `-`, d).
 */
function parseClass(chars: string[], start: number): { token: Token; next: number } | undefined {
  let i = start + 1;
  const negate = chars[i] === "^" || chars[i] === "!";
  if (negate) i++;
  const ranges: [string, string][] = [];
  const read = (): string | undefined => {
    const c = chars[i];
    if (c === "\\") {
      i += 2;
      return chars[i - 1];
    }
    i++;
    return c;
  };
  for (;;) {
    const c = chars[i];
    if (c === undefined) return undefined;
    if (c === "]") {
      if (ranges.length === 0) return undefined; // `[]` and `[]a]` are malformed
      break;
    }
    const lo = read();
    if (lo === undefined) return undefined;
    if (chars[i] === "-" && chars[i + 1] !== "]" && chars[i + 1] !== undefined) {
      i++;
      const hi = read();
      if (hi === undefined) return undefined;
      ranges.push([lo, hi]);
      // A `-` right after a range is a literal, not the start of another range.
      if (chars[i] === "-" && chars[i + 1] !== "]") {
        ranges.push(["-", "-"]);
        i++;
      }
    } else {
      ranges.push([lo, lo]);
    }
  }
  return { token: { t: "class", negate, ranges }, next: i + 1 };
}

function classMatches(token: Extract<Token, { t: "class" }>, ch: string): boolean {
  if (ch === "/") return false;
  const cp = ch.codePointAt(0)!;
  const inside = token.ranges.some(([lo, hi]) => lo.codePointAt(0)! <= cp && cp <= hi.codePointAt(0)!);
  return inside !== token.negate;
}

function tokenMatches(token: Token, ch: string): boolean {
  switch (token.t) {
    case "lit":
      return token.ch === ch;
    case "any":
      return ch !== "/";
    case "class":
      return classMatches(token, ch);
    case "star":
      return false;
  }
}

/** Wildcard match of one component; `*` backtracks to its last position only (linear-ish). */
function matchSegment(tokens: Token[], chars: string[]): boolean {
  let ti = 0;
  let ci = 0;
  let starTi = -1;
  let starCi = 0;
  while (ci < chars.length) {
    const token = tokens[ti];
    if (token !== undefined && token.t === "star") {
      starTi = ti++;
      starCi = ci;
    } else if (token !== undefined && tokenMatches(token, chars[ci]!)) {
      ti++;
      ci++;
    } else if (starTi >= 0) {
      ti = starTi + 1;
      ci = ++starCi;
    } else {
      return false;
    }
  }
  while (tokens[ti]?.t === "star") ti++;
  return ti === tokens.length;
}

/**
 * Components against path segments; `**` spans zero or more segments. Bottom-up table over
 * (component, segment), two rows at a time: O(P·N) time, no recursion (a ref name may hold
 * thousands of `/`).
 */
function matchComponents(components: Component[], segments: string[][]): boolean {
  const n = segments.length;
  let next = new Uint8Array(n + 1);
  next[n] = 1; // no components left matches no segments left
  for (let pi = components.length - 1; pi >= 0; pi--) {
    const component = components[pi]!;
    const row = new Uint8Array(n + 1);
    for (let ni = n; ni >= 0; ni--) {
      if (component === null) row[ni] = next[ni] === 1 || (ni < n && row[ni + 1] === 1) ? 1 : 0;
      else row[ni] = ni < n && next[ni + 1] === 1 && matchSegment(component, segments[ni]!) ? 1 : 0;
    }
    next = row;
  }
  return next[0] === 1;
}
