/**
 * Shared set-up of the intake tests (intake-jetstream, intake-jetstream-lanes, intake-batch): a
 * polling wait, per-test cleanups, and the PLC and PDS stand-ins for a file's tests.
 */
import { after, afterEach, before } from "node:test";
import { PdsStandIn } from "../../support/pds-standin.ts";
import { type PlcServer, startPlcServer } from "../../support/plc-server.ts";

/** Polls `cond` every 10 ms; throws "timed out waiting for <what>" after `timeoutMs`. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Registers an afterEach that runs what the test pushed, last first; returns the push. */
export function cleanupsAfterEach(): (fn: () => Promise<void> | void) => void {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return (fn) => {
    cleanups.push(fn);
  };
}

/** A PLC server and a PDS stand-in for the file's tests (started before, stopped after them). */
export function atprotoStandIns(): { readonly plc: PlcServer; readonly pds: PdsStandIn } {
  let plc: PlcServer | undefined;
  let pds: PdsStandIn | undefined;
  before(async () => {
    plc = await startPlcServer();
    pds = await PdsStandIn.start();
  });
  after(async () => {
    await plc?.stop();
    await pds?.stop();
  });
  const unstarted = (): never => {
    throw new Error("atprotoStandIns: used outside a test");
  };
  return {
    get plc() {
      return plc ?? unstarted();
    },
    get pds() {
      return pds ?? unstarted();
    },
  };
}
