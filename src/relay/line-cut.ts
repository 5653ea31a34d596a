/**
 * Where an output line longer than the limit (MAX_LINE_BYTES, protocol/logline.ts) is cut into
 * pieces. The rule looks only at the line's own (masked) bytes, never at how they arrived, so
 * the same line is always cut at the same points, whatever the chunking of the runner's stdout,
 * its output events or the masker's held-back tail:
 *
 * - a piece is at most `max` bytes, cut as late as the rules below allow;
 * - never inside a UTF-8 sequence (both halves would decode to U+FFFD);
 * - never between two `*`, so a mask (`***`) is never split across pieces (a run of asterisks
 *   that fills the whole piece is the one exception: it is cut at `max`).
 *
 * Masking happens before cutting (the relay masks the stream, then splits it into lines), so a
 * secret that straddles a cut point is masked whole.
 */

const isContinuation = (c: number) => c >= 0x80 && c <= 0xbf;

/**
 * The end of the piece of `bytes` (byte text, see byte-text.ts) that starts at `start`, given
 * that the line goes on past `start + max` (callers guarantee `bytes.length > start + max`).
 * Always greater than `start`.
 */
export function cutPoint(bytes: string, start: number, max: number): number {
  let cut = start + max;
  // A continuation byte at the cut: go back to its lead byte (valid UTF-8 has at most three
  // continuation bytes), unless the sequence is invalid anyway.
  if (isContinuation(bytes.charCodeAt(cut))) {
    let k = cut - 1;
    while (k > start && k > cut - 4 && isContinuation(bytes.charCodeAt(k))) k--;
    const lead = bytes.charCodeAt(k);
    const len = lead >= 0xf0 && lead <= 0xf7 ? 4 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xc0 ? 2 : 1;
    if (lead <= 0xff && k + len > cut && k > start) cut = k;
  }
  // Between two asterisks: back to the start of their run.
  if (bytes.charCodeAt(cut) === 42 && bytes.charCodeAt(cut - 1) === 42) {
    let k = cut - 1;
    while (k > start && bytes.charCodeAt(k - 1) === 42) k--;
    if (k > start) cut = k;
  }
  return cut;
}

/** Whether some line of `bytes` (split on "\n") is longer than `max`. */
export function hasLineLongerThan(bytes: string, max: number): boolean {
  if (bytes.length <= max) return false;
  let from = 0;
  for (let nl = bytes.indexOf("\n"); nl >= 0; nl = bytes.indexOf("\n", from)) {
    if (nl - from > max) return true;
    from = nl + 1;
  }
  return bytes.length - from > max;
}
