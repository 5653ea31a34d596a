/**
 * "Byte text": the UTF-8 bytes of a text held in a JS string one character per byte (latin1),
 * which is how the relay carries step output from the runner's stdout to the log file.
 *
 * Why: the relay's work is bytes in → bytes out (runner event lines → log file lines). Going
 * through real text costs a UTF-8 decode into a two-byte string as soon as one character is
 * outside Latin-1 (an arrow, a check mark, an emoji: common in CI logs), slow JSON parsing and
 * masking of two-byte strings, and a UTF-8 encode of output two to three times longer. In byte
 * text all of that runs on one-byte strings, decoding is a copy, and the log file gets the bytes
 * back with another copy: the relay is about twice as fast.
 *
 * Masking and line splitting are the same in byte text as in text: UTF-8 is self-synchronising
 * (a secret's bytes can only match at character boundaries of valid UTF-8) and "\n" is one byte.
 *
 * One exception is kept as it is: a lone UTF-16 surrogate (only a `\udXXX` escape from a broken
 * or hostile runner makes one) has no UTF-8 form, so it stays in byte text as the code unit
 * itself, and the encoders write it as Go writes invalid UTF-8: `\ufffd`.
 */

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const LONE_SURROGATE_G = new RegExp(LONE_SURROGATE.source, "g");
const ABOVE_BYTE = /[^\x00-\xff]/;
const ABOVE_BYTE_G = /[^\x00-\xff]+/g;

/** Text → byte text. */
export function toByteText(text: string): string {
  if (!LONE_SURROGATE.test(text)) return Buffer.from(text, "utf8").toString("latin1");
  return convertAround(text, LONE_SURROGATE_G, (part) => Buffer.from(part, "utf8").toString("latin1"));
}

/** Byte text → text. Bytes that are not valid UTF-8 become U+FFFD (as any UTF-8 decoder does). */
export function fromByteText(bytes: string): string {
  if (!ABOVE_BYTE.test(bytes)) return Buffer.from(bytes, "latin1").toString("utf8");
  return convertAround(bytes, ABOVE_BYTE_G, (part) => Buffer.from(part, "latin1").toString("utf8"));
}

/** `convert` applied to the text between the matches of `kept`, which stay as they are. */
function convertAround(text: string, kept: RegExp, convert: (part: string) => string): string {
  let out = "";
  let from = 0;
  for (const m of text.matchAll(kept)) {
    out += convert(text.slice(from, m.index)) + m[0];
    from = m.index + m[0].length;
  }
  return out + convert(text.slice(from));
}
