/**
 * Lexicon validation of outgoing `sh.tangled.ci.pipeline` objects, remembered by their JSON
 * text: a finished pipeline's JSON never changes, and `@atproto/lexicon` costs ~0.1 ms per
 * pipeline, which on a 250-row queryPipelines page would be most of the answer's time. Every
 * object sent has passed the validator once; a changed one (a new status) is validated again.
 */
import { type CiPipeline, validate } from "../../gen2/index.ts";

export class ValidatedPipelines {
  readonly #ok = new Set<string>();
  readonly #max: number;

  constructor(max = 20_000) {
    this.#max = max;
  }

  /** The pipeline's JSON text; throws LexiconValidationError when it does not match the lexicon. */
  json(p: CiPipeline): string {
    const text = JSON.stringify(p);
    if (this.#ok.has(text)) return text;
    validate.pipeline(p);
    if (this.#ok.size >= this.#max) {
      // Drop the oldest half (a Set iterates in insertion order).
      let drop = this.#max >> 1;
      for (const k of this.#ok) {
        if (drop-- <= 0) break;
        this.#ok.delete(k);
      }
    }
    this.#ok.add(text);
    return text;
  }
}
