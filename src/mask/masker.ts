/**
 * Secret masking (spec §5.3 and beyond): every form in which a step may print a secret value is
 * replaced by `***` — see `secretPatterns` for the list.
 *
 * Matching is leftmost-longest and non-overlapping: at the first position where any pattern
 * matches, the longest matching pattern is replaced and the scan resumes after it. (Go's
 * strings.Replacer prefers argument order at a position; longest-first masks at least as much.)
 *
 * Why a hand-written scanner: a RegExp alternation of 150 literals runs at 50-90 MB/s in V8,
 * short of the 100 MB/s target, and no installed library does multi-pattern search. This one is
 * Wu–Manber: a window as long as the shortest pattern slides over the text by shifts read from a
 * table of three-unit blocks, so most of the text is never looked at; whole patterns are only
 * compared where a window's last block ends a pattern's prefix. Patterns shorter than four units
 * (a one- to three-character secret stored before secret-value.ts refused them) fall back to a
 * filter on each position's first pair.
 */

export const MASK = "***";

/**
 * Shortest derived form (a line of a multi-line value, a base64 slice) that is masked: shorter
 * ones carry too little of the secret to matter and would mask ordinary text.
 */
const MIN_FORM_CHARS = 4;

/**
 * Widths at which tools wrap base64 output: GNU `base64` and MIME (76), `openssl base64` and PEM
 * (64).
 */
const WRAP_WIDTHS = [76, 64];

/**
 * Offset forms broken at every phase of a wrapped text: only for forms of this many characters
 * (values of about 9 to 96 bytes: tokens and passwords, what config files carry). Shorter ones
 * carry little; longer ones (keys) would need hundreds of long patterns each — a multi-line key
 * has its lines as patterns instead.
 */
const MIN_PHASED_CHARS = 12;
const MAX_PHASED_CHARS = 128;

/** `text` broken into lines of `width` characters joined by `eol`. */
function wrap(text: string, width: number, eol: string): string {
  const lines: string[] = [];
  for (let at = 0; at < text.length; at += width) lines.push(text.slice(at, at + width));
  return lines.join(eol);
}

/**
 * The base64 forms of `value` (UTF-8). §5.3 names base64std(V) with and without padding; a value
 * inside a longer text that is encoded as a whole (HTTP Basic `user:token`, a JSON config) shows
 * up as one of three other strings, one per offset of V modulo 3 in that text: the base64
 * characters whose six bits all come from V. The characters at either end that mix V's bits
 * with its neighbours' are left out (they carry at most four bits of V).
 *
 * Beyond those: each also in the URL-safe alphabet (`-_` for `+/`, RFC 4648 §5: JWTs, Python's
 * urlsafe_b64encode with its padding, Node's base64url without), and the encoding of a text that
 * starts with V (V's own, and the offset-0 form, which `echo "$V" | base64` starts with) broken
 * into lines as `base64` (76 columns) and `openssl base64` (64) print it, with `\n` or `\r\n`;
 * for tokens and passwords (MIN_PHASED_CHARS..MAX_PHASED_CHARS) also the offset forms inside a
 * longer wrapped text, broken at each place a line end can fall. A longer value (a key) at
 * another offset inside a longer wrapped text is masked line by line only where its own lines
 * are patterns (a multi-line value), not otherwise.
 */
/** `everyPhase`: add the offset forms broken at every phase (not for the lines of a value). */
function base64Forms(value: string, everyPhase: boolean): string[] {
  const bytes = Buffer.from(value, "utf8");
  const b64 = bytes.toString("base64");
  const forms = [b64, b64.replace(/=+$/, "")];
  const starts = [b64];
  const offsets: string[] = [];
  for (const offset of [0, 1, 2]) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString("base64");
    // Character j covers bits 6j..6j+5 of the text; V covers bits 8·offset .. 8·(offset+n).
    const first = Math.ceil((8 * offset) / 6);
    const end = Math.floor((8 * (offset + bytes.length)) / 6);
    const form = encoded.slice(first, end);
    if (form.length >= MIN_FORM_CHARS) forms.push(form);
    offsets.push(form);
    if (offset === 0) starts.push(form);
  }
  for (const width of WRAP_WIDTHS)
    for (const form of starts) {
      if (form.length <= width) continue;
      forms.push(wrap(form, width, "\n"), wrap(form, width, "\r\n"));
    }
  // V inside a longer text encoded and wrapped (`base64 config.json`): an offset form broken
  // wherever the text's line ends fall, one pattern per phase.
  for (const form of everyPhase ? offsets : []) {
    if (form.length < MIN_PHASED_CHARS || form.length > MAX_PHASED_CHARS) continue;
    for (const width of WRAP_WIDTHS)
      for (let p = 1; p < Math.min(width + 1, form.length); p++) {
        let broken = form.slice(0, p);
        for (let at = p; at < form.length; at += width) broken += `\n${form.slice(at, at + width)}`;
        forms.push(broken, broken.replaceAll("\n", "\r\n"));
      }
  }
  return forms.flatMap((f) => [f, f.replaceAll("+", "-").replaceAll("/", "_")]);
}

const hex4 = (unit: number) => `\\u${unit.toString(16).padStart(4, "0")}`;

/**
 * `value` inside a JSON string, as common encoders write it (when that differs from `value`: it
 * holds `"`, a backslash, a control character, or non-ASCII):
 * - JavaScript's JSON.stringify (and Rust's serde_json): two-letter escapes, other controls as
 *   `\u00XX`, the rest as is;
 * - Python's json.dumps (ensure_ascii): also every non-ASCII UTF-16 unit as `\uXXXX`;
 * - Go's encoding/json (HTML-safe by default): also `<`, `>`, `&`, U+2028 and U+2029 as `\uXXXX`.
 */
function jsonForms(value: string): string[] {
  const js = JSON.stringify(value).slice(1, -1);
  const python = js.replace(/[\u0080-\uffff]/g, (c) => hex4(c.charCodeAt(0)));
  const go = js.replace(/[<>&\u2028\u2029]/g, (c) => hex4(c.charCodeAt(0)));
  return [js, python, go];
}

/** Length in code points, stopping once `atLeast` is reached. */
function hasChars(text: string, atLeast: number): boolean {
  let n = 0;
  for (const _ of text) if (++n >= atLeast) return true;
  return false;
}

/**
 * The strings to mask for these secret values: unique, non-empty, longest first. For each value:
 * - the value itself, its base64 with and without `=` padding (§5.3), and its base64 inside a
 *   longer base64-encoded text at each of the three offsets (base64Forms);
 * - its JSON-escaped forms (jsonForms), for values printed inside JSON;
 * - for a multi-line value, each line of at least four characters, not all whitespace, on its
 *   own with all of its forms (a PEM key is often printed, or leaks, one line at a time, and
 *   `sed -n 2p key.pem | base64` encodes one);
 * - a value that ends in line breaks (a key file saved with its final newline) also without
 *   them, with all of its forms, because `$(cat file)` and most tools that print it drop the
 *   trailing newline — the secret would otherwise leak whole but for one character.
 */
export function secretPatterns(values: Iterable<string>): string[] {
  const out = new Set<string>();
  const add = (value: string, everyPhase = true) => {
    if (value === "") return;
    out.add(value);
    for (const form of base64Forms(value, everyPhase)) out.add(form);
    for (const form of jsonForms(value)) out.add(form);
  };
  for (const value of values) {
    add(value);
    add(value.replace(/[\r\n]+$/, ""));
    if (!value.includes("\n")) continue;
    for (const line of value.split("\n")) {
      const text = line.replace(/\r$/, "");
      // An indented blank line would mask every indentation of the same width.
      if (!hasChars(text, MIN_FORM_CHARS) || text.trim() === "") continue;
      add(text, false);
    }
  }
  return [...out].sort((a, b) => b.length - a.length);
}

/** Index into the pair table: low bytes of two UTF-16 units. Collisions only cost a compare. */
function pairKey(a: number, b: number): number {
  return ((a & 0xff) << 8) | (b & 0xff);
}

/**
 * Index into the shift table: low 6 bits of three units (18 bits). Three units make a block
 * rare enough in ordinary text that most windows move by nearly their whole length; a
 * collision only shortens a shift.
 */
function tripleKey(a: number, b: number, c: number): number {
  return ((a & 0x3f) << 12) | ((b & 0x3f) << 6) | (c & 0x3f);
}

/** Whether text[at..] (all of it, shorter than `pat`) equals the start of `pat`; no allocation. */
function isPrefixAt(pat: string, text: string, at: number): boolean {
  for (let i = at, k = 0; i < text.length; i++, k++) {
    if (text.charCodeAt(i) !== pat.charCodeAt(k)) return false;
  }
  return true;
}

/** Shortest window the skipping search is used for; shorter patterns are searched position by position. */
const MIN_WINDOW = 4;

/** Patterns compiled for fast search; shareable between streams, whose replacements it counts. */
export class Masker {
  /** Replacements made so far by this masker and its streams (the only state that changes). */
  #masked = 0;
  readonly patterns: readonly string[];
  /** Length of the longest pattern (0 when there is nothing to mask). */
  readonly maxLength: number;
  /** pairKey → index into `buckets` + 1 (0 = no pattern starts with such a pair). */
  readonly #pairs = new Uint16Array(65536);
  /** Patterns of length ≥ 2 grouped by pair key, longest first. */
  readonly #buckets: string[][] = [];
  /** Single-unit patterns by UTF-16 code (rare: a one-character secret). */
  readonly #singles = new Uint8Array(65536);
  /** First UTF-16 unit of any pattern of two or more units, for the stream tail check. */
  readonly #firsts = new Uint8Array(65536);
  /** Wu–Manber window: the shortest pattern's length, capped (longer windows gain little). */
  readonly #window: number;
  /** tripleKey of a window's last three units → how far the window may safely move. */
  readonly #shifts = new Uint8Array(1 << 18);
  /** tripleKey of the units ending a pattern's first #window → those patterns, longest first. */
  readonly #ends = new Map<number, string[]>();

  /**
   * `encode` rewrites every pattern (value and base64 forms) before compiling, for callers that
   * mask a representation of the text rather than the text itself: the relay masks UTF-8 bytes
   * held one per character ("byte text", src/relay/byte-text.ts).
   */
  constructor(values: Iterable<string>, opts: { encode?: (pattern: string) => string } = {}) {
    const patterns = secretPatterns(values);
    const { encode } = opts;
    this.patterns =
      encode === undefined
        ? patterns
        : [...new Set(patterns.map(encode))].filter((p) => p !== "").sort((a, b) => b.length - a.length);
    this.maxLength = this.patterns[0]?.length ?? 0;
    for (const p of this.patterns) {
      const c0 = p.charCodeAt(0);
      if (p.length === 1) {
        this.#singles[c0] = 1;
        continue;
      }
      this.#firsts[c0] = 1;
      const key = pairKey(c0, p.charCodeAt(1));
      let slot = this.#pairs[key]!;
      if (slot === 0) {
        this.#buckets.push([]);
        slot = this.#buckets.length;
        this.#pairs[key] = slot;
      }
      // Patterns arrive longest first, so each bucket stays sorted longest first.
      this.#buckets[slot - 1]!.push(p);
    }
    const w = Math.min(this.patterns.at(-1)?.length ?? 0, 64);
    this.#window = w;
    if (w < MIN_WINDOW) return;
    this.#shifts.fill(w - 2);
    for (const p of this.patterns) {
      for (let j = 2; j < w; j++) {
        const key = tripleKey(p.charCodeAt(j - 2), p.charCodeAt(j - 1), p.charCodeAt(j));
        this.#shifts[key] = Math.min(this.#shifts[key]!, w - 1 - j);
      }
      const key = tripleKey(p.charCodeAt(w - 3), p.charCodeAt(w - 2), p.charCodeAt(w - 1));
      const bucket = this.#ends.get(key);
      if (bucket === undefined) this.#ends.set(key, [p]);
      else bucket.push(p);
    }
  }

  /** Mask a whole text at once. */
  mask(text: string): string {
    if (this.maxLength === 0) return text;
    let out = "";
    let from = 0;
    for (;;) {
      const m = this.#find(text, from);
      if (m < 0) break;
      this.#masked++;
      out += text.slice(from, m) + MASK;
      from = m + this.#lastLength;
    }
    return from === 0 ? text : out + text.slice(from);
  }

  /** How many secret occurrences this masker (and its streams) replaced so far. */
  get masked(): number {
    return this.#masked;
  }

  /** A stream masker for one output stream. */
  stream(): StreamMasker {
    return new StreamMasker(this);
  }

  /** Length of the match found by the last successful #find. */
  #lastLength = 0;

  /**
   * Leftmost-longest match at or after `from`: its start (length in #lastLength), or -1.
   * A pattern only matches when it lies wholly inside `text`.
   */
  #find(text: string, from: number): number {
    return this.#window >= MIN_WINDOW ? this.#findSkipping(text, from) : this.#findEach(text, from);
  }

  /**
   * Wu–Manber: look at the three units that end a window of #window units; the shift table says how
   * far the window can move before any pattern could start inside it. Positions are visited in
   * increasing order and skipped ones provably start no match, so the first hit is leftmost.
   */
  #findSkipping(text: string, from: number): number {
    const n = text.length;
    const w = this.#window;
    const shifts = this.#shifts;
    const ends = this.#ends;
    let pos = from;
    while (pos + w <= n) {
      const j = pos + w - 1;
      const key = tripleKey(text.charCodeAt(j - 2), text.charCodeAt(j - 1), text.charCodeAt(j));
      const shift = shifts[key]!;
      if (shift > 0) {
        pos += shift;
        continue;
      }
      const bucket = ends.get(key);
      if (bucket !== undefined) {
        for (const p of bucket) {
          if (text.startsWith(p, pos)) {
            this.#lastLength = p.length;
            return pos;
          }
        }
      }
      pos++;
    }
    return -1;
  }

  /** Position by position, filtered on the first pair; used when a pattern is very short. */
  #findEach(text: string, from: number): number {
    const n = text.length;
    const pairs = this.#pairs;
    const singles = this.#singles;
    if (from >= n) return -1;
    let prev = text.charCodeAt(from);
    for (let i = from; i < n; i++) {
      const next = i + 1 < n ? text.charCodeAt(i + 1) : 0;
      const slot = pairs[pairKey(prev, next)]!;
      if (slot !== 0 && i + 1 < n) {
        for (const p of this.#buckets[slot - 1]!) {
          if (text.startsWith(p, i)) {
            this.#lastLength = p.length;
            return i;
          }
        }
      }
      if (singles[prev] === 1) {
        this.#lastLength = 1;
        return i;
      }
      prev = next;
    }
    return -1;
  }

  /**
   * The first position p ≥ from such that text[p..] is a proper prefix of a pattern (more input
   * could complete a match there), or text.length when there is none. Only the last
   * maxLength - 1 units can qualify.
   */
  pendingFrom(text: string, from: number): number {
    const n = text.length;
    for (let p = Math.max(from, n - this.maxLength + 1); p < n; p++) {
      const c0 = text.charCodeAt(p);
      if (this.#firsts[c0] === 0) continue;
      // One unit left: a pattern of two or more units starts with it (that is what #firsts says).
      if (p === n - 1) return p;
      const slot = this.#pairs[pairKey(c0, text.charCodeAt(p + 1))]!;
      if (slot === 0) continue;
      for (const pat of this.#buckets[slot - 1]!) {
        if (pat.length > n - p && isPrefixAt(pat, text, p)) return p;
      }
    }
    return n;
  }

  /**
   * Used by StreamMasker: pushes onto `out` the masked text from `from` up to the point where
   * more input could still change the result, and returns that point.
   */
  maskUntil(text: string, from: number, out: string[]): number {
    let at = from;
    // The hold point is the first pending position at or after `at`; it only moves when a
    // match ends beyond it, so it is computed once per write, not once per match.
    let hold = this.pendingFrom(text, at);
    for (;;) {
      const m = this.#find(text, at);
      if (m < 0 || m >= hold) {
        out.push(text.slice(at, hold));
        return hold;
      }
      out.push(text.slice(at, m), MASK);
      this.#masked++;
      at = m + this.#lastLength;
      if (at > hold) hold = this.pendingFrom(text, at);
    }
  }
}

/**
 * Masks one stream written in pieces. `write` returns the text that is safe to emit now; it
 * holds back only a tail that could be the start of a secret (at most maxLength - 1 units), so a
 * secret split across writes, or spanning lines, is still masked and memory stays bounded.
 */
export class StreamMasker {
  readonly #masker: Masker;
  #held = "";

  constructor(masker: Masker) {
    this.#masker = masker;
  }

  /** Units held back, waiting to see whether they start a secret (< the longest pattern). */
  get pendingLength(): number {
    return this.#held.length;
  }

  write(chunk: string): string {
    if (this.#masker.maxLength === 0) return chunk;
    const text = this.#held + chunk;
    const out: string[] = [];
    const end = this.#masker.maskUntil(text, 0, out);
    this.#held = text.slice(end);
    return out.join("");
  }

  /** Flush the held tail (the stream has ended, so it cannot grow into a secret any more). */
  end(): string {
    const rest = this.#masker.mask(this.#held);
    this.#held = "";
    return rest;
  }
}

/** One-shot masking of `text` against secret `values`. */
export function maskSecrets(text: string, values: Iterable<string>): string {
  return new Masker(values).mask(text);
}
