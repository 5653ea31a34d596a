/**
 * Leader election with a coordination.k8s.io/v1 Lease, the way client-go does it, so two
 * replicas never both act:
 *
 * - every `retryPeriod` a candidate reads the Lease; it takes it if it is free (no holder), or
 *   if the holder has not renewed it for `leaseDuration` — measured on *our* clock from when we
 *   last saw the record change, never by comparing the holder's timestamps with our clock;
 * - every write is a replace guarded by the resourceVersion just read (or a create), so of two
 *   candidates racing for the same record one gets a 409 and stays a follower;
 * - the leader renews every `retryPeriod`; if it sees another holder, or has not renewed for
 *   `renewDeadline` (< leaseDuration), it stops leading at once — before anyone else may take
 *   over — and goes back to being a candidate;
 * - stop() releases a held Lease (empty holder), so a successor need not wait out the duration.
 */
import { CoordinationV1Api, type KubeConfig, type V1Lease } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { errorText } from "../api/informer.ts";
import { statusCode } from "./api.ts";

export interface LeaderElectorOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  name?: string;
  identity: string;
  log: Logger;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Called when this replica becomes the leader. */
  onStartedLeading(): void;
  /** Called when it stops (lease lost, or stop()); must stop acting at once. */
  onStoppedLeading(): void;
}

export class LeaderElector {
  readonly #opts: Required<Omit<LeaderElectorOptions, "kubeConfig">>;
  readonly #api: CoordinationV1Api;
  #leading = false;
  #stopped = true;
  #lastRenew = 0;
  #observed: { rv: string; at: number } | undefined;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;

  constructor(opts: LeaderElectorOptions) {
    this.#opts = {
      name: "loom-controller",
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      ...opts,
    };
    if (this.#opts.renewDeadlineMs >= this.#opts.leaseDurationMs) {
      throw new Error("renewDeadlineMs must be shorter than leaseDurationMs");
    }
    this.#api = opts.kubeConfig.makeApiClient(CoordinationV1Api);
  }

  get leading(): boolean {
    return this.#leading;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#wake?.();
    await this.#loop;
    if (this.#leading) {
      this.#lose("stopped");
      await this.#release().catch((err: unknown) =>
        this.#opts.log.warn({ err: errorText(err), lease: this.#opts.name }, "lease release failed"),
      );
    }
  }

  /** Stops campaigning without releasing the Lease, as a crashed process would. */
  async abandon(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#loop;
    this.#leading = false;
  }

  async #run(): Promise<void> {
    const { log, retryPeriodMs, renewDeadlineMs, name, identity } = this.#opts;
    while (!this.#stopped) {
      let held = false;
      try {
        held = await this.#tryAcquireOrRenew();
      } catch (err) {
        log.warn({ err: errorText(err), lease: name }, "lease update failed");
      }
      if (this.#stopped) break;
      if (held) {
        this.#lastRenew = Date.now();
        if (!this.#leading) {
          this.#leading = true;
          log.info({ lease: name, identity }, "became leader");
          this.#opts.onStartedLeading();
        }
      } else if (this.#leading && (this.#heldByOther || Date.now() - this.#lastRenew > renewDeadlineMs)) {
        this.#lose("lease lost");
      }
      await this.#sleep(retryPeriodMs);
    }
  }

  #heldByOther = false;

  #lose(why: string): void {
    this.#leading = false;
    this.#opts.log.warn({ lease: this.#opts.name, identity: this.#opts.identity, why }, "stopped leading");
    this.#opts.onStoppedLeading();
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.#opts;
    const now = Date.now();
    let lease: V1Lease;
    try {
      lease = await this.#api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
      return this.#write(undefined, now);
    }
    const rv = lease.metadata?.resourceVersion ?? "";
    if (this.#observed?.rv !== rv) this.#observed = { rv, at: now };
    const holder = lease.spec?.holderIdentity ?? "";
    const durationMs = (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
    this.#heldByOther = holder !== "" && holder !== identity;
    if (this.#heldByOther && now < this.#observed.at + durationMs) return false;
    return this.#write(lease, now);
  }

  /** Creates the Lease, or replaces it guarded by its resourceVersion; false on a lost race. */
  async #write(lease: V1Lease | undefined, now: number): Promise<boolean> {
    const { namespace, name, identity, leaseDurationMs } = this.#opts;
    const mine = lease?.spec?.holderIdentity === identity;
    const stamp = microTime(now);
    const spec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
      acquireTime: mine ? microTime(lease?.spec?.acquireTime) : stamp,
      renewTime: stamp,
      leaseTransitions: (lease?.spec?.leaseTransitions ?? 0) + (mine || !lease ? 0 : 1),
    } as unknown as V1Lease["spec"];
    try {
      const written = lease
        ? await this.#api.replaceNamespacedLease({
            name,
            namespace,
            body: { metadata: { name, namespace, resourceVersion: lease.metadata!.resourceVersion! }, spec },
          })
        : await this.#api.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec } });
      this.#observed = { rv: written.metadata?.resourceVersion ?? "", at: now };
      this.#heldByOther = false;
      return true;
    } catch (err) {
      if (statusCode(err) === 409) return false;
      throw err;
    }
  }

  async #release(): Promise<void> {
    const { namespace, name, identity } = this.#opts;
    const lease = await this.#api.readNamespacedLease({ name, namespace });
    if (lease.spec?.holderIdentity !== identity) return;
    const spec = {
      ...lease.spec,
      holderIdentity: "",
      leaseDurationSeconds: 1,
      acquireTime: microTime(lease.spec.acquireTime),
      renewTime: microTime(Date.now()),
    } as unknown as V1Lease["spec"];
    const metadata = { name, namespace, resourceVersion: lease.metadata!.resourceVersion! };
    await this.#api.replaceNamespacedLease({ name, namespace, body: { metadata, spec } });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}

/** MicroTime as the apiserver wants it: RFC 3339 with six fractional digits. */
function microTime(value: Date | number | string | undefined): string {
  const date = value === undefined ? new Date() : new Date(value);
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}
