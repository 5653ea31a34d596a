/**
 * atproto TIDs for pipeline ids (gen2 §2.7: `id` = pipeline TID, also the record key the appview
 * puts in page URLs). 13 characters of base32-sortable: 1 zero bit, 53 bits of microseconds
 * since the Unix epoch, 10 bits of clock id.
 *
 * `@atproto/syntax` only validates TIDs. `@atproto/common-web` has a `TID` class, but it is only
 * a transitive dependency here (of @atproto/lexicon and @atproto/identity), and its counter is
 * per millisecond and module-global; a generator with an injected clock is a few lines.
 */

const ALPHABET = "234567abcdefghijklmnopqrstuvwxyz";
const MAX_MICROS = (1n << 53n) - 1n;

/** Encodes microseconds and a clock id (0..1023) as a TID. */
export function encodeTid(micros: bigint, clockId: number): string {
  if (micros < 0n || micros > MAX_MICROS) throw new RangeError(`TID timestamp ${micros} out of range`);
  if (!Number.isInteger(clockId) || clockId < 0 || clockId > 1023) {
    throw new RangeError(`TID clock id ${clockId} out of range 0..1023`);
  }
  let v = (micros << 10n) | BigInt(clockId);
  let out = "";
  for (let i = 0; i < 13; i++) {
    out = ALPHABET[Number(v & 31n)] + out;
    v >>= 5n;
  }
  return out;
}

/** The microsecond timestamp and clock id of a TID; throws on anything that is not one. */
export function decodeTid(tid: string): { micros: bigint; clockId: number } {
  if (!/^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$/.test(tid)) {
    throw new Error(`not a TID: ${JSON.stringify(tid)}`);
  }
  let v = 0n;
  for (const ch of tid) v = (v << 5n) | BigInt(ALPHABET.indexOf(ch));
  return { micros: v >> 10n, clockId: Number(v & 1023n) };
}

/** Wall-clock microseconds: the performance timer gives sub-millisecond steps between calls. */
export function wallClockMicros(): bigint {
  return BigInt(Math.floor((performance.timeOrigin + performance.now()) * 1000));
}

export interface TidGeneratorOptions {
  /** 0..1023; random when omitted (atproto: ids from separate processes rarely collide). */
  clockId?: number;
  nowMicros?: () => bigint;
}

/**
 * Strictly increasing TIDs: when the clock stalls or steps back, the last timestamp is bumped by
 * one microsecond instead, so ids never repeat and sort in creation order within a process.
 */
export class TidGenerator {
  readonly clockId: number;
  readonly #now: () => bigint;
  #last = -1n;

  constructor(opts: TidGeneratorOptions = {}) {
    this.clockId = opts.clockId ?? Math.floor(Math.random() * 1024);
    this.#now = opts.nowMicros ?? wallClockMicros;
    encodeTid(0n, this.clockId); // validates the clock id up front
  }

  next(): string {
    const now = this.#now();
    this.#last = now > this.#last ? now : this.#last + 1n;
    return encodeTid(this.#last, this.clockId);
  }
}
