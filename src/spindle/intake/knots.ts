/**
 * All knot event-stream consumers (§1.3): one `KnotConsumer` per knot host, started for every
 * knot in `repos` at start-up and for each knot a new `sh.tangled.repo` record names
 * (`addKnot`, the `KnotRegistry` the Jetstream handlers call).
 *
 * NSID dispatch is the table given at construction (`createIntake` passes RefUpdateIntake's:
 * `sh.tangled.pipeline`, `sh.tangled.git.refUpdate`, `sh.tangled.repo.collaboratorUpdate`);
 * other NSIDs are skipped. A knot's cursor moves only after its handler resolved.
 *
 * A knot seen for the first time gets a stored cursor of *now* before the first connection.
 * Gen1 knots treat a missing cursor as now anyway; Gen2 knots replay everything they retain when
 * the cursor is missing (gen2 §2.3), which would re-run every old pipeline of every repo there.
 */
import type { Logger } from "pino";
import { PIPELINE_NSID } from "../../protocol/nsid.ts";
import type { KnotCursors, Repos } from "../db/index.ts";
import type { KnotRegistry, PipelineIntake } from "../pipelines/intake-contract.ts";
import { KnotConsumer, type KnotConsumerTuning, type KnotEventHandler } from "./knot-consumer.ts";
import { isValidKnotHost } from "./knot-host.ts";

export interface KnotConsumersOptions extends KnotConsumerTuning {
  cursors: KnotCursors;
  /** Where `start()` reads the knots to follow (`repos.knots()`); optional for tests. */
  repos?: Repos;
  /** NSID → handler, fixed for the consumers' life. */
  handlers: Readonly<Record<string, KnotEventHandler>>;
  /** `config.server.dev`: `ws://` instead of `wss://`. */
  dev: boolean;
  log: Logger;
}

export class KnotConsumers implements KnotRegistry {
  readonly #o: KnotConsumersOptions;
  readonly #log: Logger;
  readonly #consumers = new Map<string, KnotConsumer>();
  readonly #handlers: ReadonlyMap<string, KnotEventHandler>;
  #running = false;

  constructor(opts: KnotConsumersOptions) {
    this.#o = opts;
    this.#log = opts.log.child({ component: "knots" });
    this.#handlers = new Map(Object.entries(opts.handlers));
  }

  /** Follows every knot in `repos`, then any added later. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    for (const knot of this.#o.repos?.knots() ?? []) this.addKnot(knot);
    for (const c of this.#consumers.values()) c.start();
  }

  /** Idempotent; a knot added before `start()` is connected by `start()`. */
  addKnot(knot: string): void {
    if (this.#consumers.has(knot)) return;
    if (!isValidKnotHost(knot)) {
      this.#log.warn({ knot }, "not following knot: not a host name");
      return;
    }
    if (this.#o.cursors.get(knot) === null) {
      const nowNs = BigInt(Math.floor((this.#o.nowMs ?? Date.now)())) * 1_000_000n;
      this.#o.cursors.set(knot, nowNs.toString());
    }
    const consumer = new KnotConsumer({ ...this.#o, knot, handlers: this.#handlers });
    this.#consumers.set(knot, consumer);
    this.#log.info({ knot }, "following knot");
    if (this.#running) consumer.start();
  }

  knots(): string[] {
    return [...this.#consumers.keys()].sort();
  }

  /** Each knot followed: connected now?, and its stored cursor (the status page). */
  states(): { knot: string; connected: boolean; cursor: string | null }[] {
    return this.knots().map((knot) => ({
      knot,
      connected: this.#consumers.get(knot)?.connected === true,
      cursor: this.#o.cursors.get(knot),
    }));
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all([...this.#consumers.values()].map((c) => c.stop()));
  }
}

/** The Generation 1 table alone: `sh.tangled.pipeline` → the pipeline processor. */
export function pipelineHandlers(intake: PipelineIntake): Record<string, KnotEventHandler> {
  return { [PIPELINE_NSID]: (knot, env) => intake.acceptPipeline(knot, env.rkey, env.event) };
}
