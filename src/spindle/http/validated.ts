/**
 * Lexicon validation of outgoing `sh.tangled.ci.pipeline` objects, remembered so that an
 * unchanged pipeline is neither validated nor serialised again: `@atproto/lexicon` costs
 * ~0.06 ms per pipeline and JSON.stringify a few µs, which on a 250-row queryPipelines page
 * would be most of the answer's time. Every object sent has passed the validator:
 *
 * - by identity: a deep-frozen object (CiPipelines's remembered pipelines are) keeps the JSON text
 *   it was validated as; being frozen, it cannot have changed since. A new status makes CiPipelines
 *   build a new object, which is validated on its first use;
 * - by JSON text: any other object is serialised, and validated unless that exact text passed.
 */
import { type CiPipeline, validate } from "../../protocol/index.ts";

export class ValidatedPipelines {
  readonly #ok = new Set<string>();
  readonly #frozen = new WeakMap<object, string>();
  readonly #max: number;
  #validations = 0;

  constructor(max = 20_000) {
    this.#max = max;
  }

  /** Lexicon validations run so far (each object or text not seen before costs one). */
  get validations(): number {
    return this.#validations;
  }

  /** The pipeline's JSON text; throws LexiconValidationError when it does not match the lexicon. */
  json(p: CiPipeline): string {
    const known = this.#frozen.get(p);
    if (known !== undefined) return known;
    const text = JSON.stringify(p);
    if (!this.#ok.has(text)) {
      this.#validations++;
      validate.pipeline(p);
      this.#remember(text);
    }
    // Checked after validation: a frozen object's JSON text can never change.
    if (deepFrozen(p)) this.#frozen.set(p, text);
    return text;
  }

  #remember(text: string): void {
    if (this.#ok.size >= this.#max) {
      // Drop the oldest half (a Set iterates in insertion order).
      let drop = this.#max >> 1;
      for (const k of this.#ok) {
        if (drop-- <= 0) break;
        this.#ok.delete(k);
      }
    }
    this.#ok.add(text);
  }
}

/** Whether `value` and everything reachable from it is frozen (so its JSON can never change). */
export function deepFrozen(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return true;
  if (!Object.isFrozen(value)) return false;
  for (const v of Object.values(value)) if (!deepFrozen(v)) return false;
  return true;
}
