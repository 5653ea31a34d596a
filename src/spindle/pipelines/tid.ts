/**
 * Record keys for the events this spindle emits: atproto TIDs (13 characters of base32-sortable,
 * 53 bits of microseconds since the epoch then 10 bits of clock id). `@atproto/syntax` only
 * validates TIDs and `@atproto/common-web`'s generator is not a direct dependency, so this is
 * the few lines it takes. Strictly increasing within one generator, even if the clock stalls
 * or steps back.
 */
const ALPHABET = "234567abcdefghijklmnopqrstuvwxyz";

export function encodeTid(micros: bigint, clockId: number): string {
  let v = ((micros & ((1n << 53n) - 1n)) << 10n) | BigInt(clockId & 1023);
  let out = "";
  for (let i = 0; i < 13; i++) {
    out = ALPHABET[Number(v & 31n)] + out;
    v >>= 5n;
  }
  return out;
}

export class TidClock {
  readonly #clockId: number;
  readonly #nowMicros: () => bigint;
  #last = 0n;

  constructor(opts: { clockId?: number; nowMicros?: () => bigint } = {}) {
    this.#clockId = opts.clockId ?? Math.floor(Math.random() * 1024);
    this.#nowMicros = opts.nowMicros ?? (() => BigInt(Date.now()) * 1000n);
  }

  next(): string {
    const now = this.#nowMicros();
    this.#last = now > this.#last ? now : this.#last + 1n;
    return encodeTid(this.#last, this.#clockId);
  }
}
