/**
 * A small XRPC client for a real PDS (the harness's @atproto/dev-env PDS): accounts, records and
 * service-auth tokens, with plain fetch. Every call fails with the PDS's own error text.
 *
 *   const alice = await createAccount(peers.pdsUrl, "alice");
 *   const { uri } = await alice.createRecord("sh.tangled.repo", { name: "core", … });
 *   const token = await alice.serviceAuth({ aud: "did:web:localhost%3A26555", lxm: "sh.tangled.repo.addSecret" });
 */
export class PdsError extends Error {
  override name = "PdsError";
  readonly status: number;
  readonly error: string;
  constructor(method: string, status: number, body: Record<string, unknown>) {
    super(`${method}: HTTP ${status} ${String(body.error ?? "")}: ${String(body.message ?? "")}`);
    this.status = status;
    this.error = String(body.error ?? "");
  }
}

async function xrpc(
  pds: string,
  method: string,
  opts: { token?: string; query?: Record<string, string>; body?: unknown } = {},
): Promise<Record<string, unknown>> {
  const url = new URL(`/xrpc/${method}`, pds);
  for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, v);
  const res = await fetch(url, {
    method: opts.body === undefined ? "GET" : "POST",
    headers: {
      ...(opts.token !== undefined && { authorization: `Bearer ${opts.token}` }),
      ...(opts.body !== undefined && { "content-type": "application/json" }),
    },
    ...(opts.body !== undefined && { body: JSON.stringify(opts.body) }),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  const body = text === "" ? {} : (JSON.parse(text) as Record<string, unknown>);
  if (!res.ok) throw new PdsError(method, res.status, body);
  return body;
}

export interface PdsAccount {
  readonly did: string;
  readonly handle: string;
  /** com.atproto.repo.createRecord (validate: false: sh.tangled.* lexicons are unknown to the PDS). */
  createRecord(
    collection: string,
    record: Record<string, unknown>,
    rkey?: string,
  ): Promise<{ uri: string; rkey: string }>;
  deleteRecord(collection: string, rkey: string): Promise<void>;
  /** com.atproto.server.getServiceAuth: a token signed with the account's key, as a PDS mints it. */
  serviceAuth(p: { aud: string; lxm?: string; exp?: number }): Promise<string>;
}

let n = 0;

/** Creates `<name><n>.test` on the PDS (dev-env: no invite, no email check). */
export async function createAccount(pds: string, name: string): Promise<PdsAccount> {
  const handle = `${name}${process.pid % 1000}x${n++}.test`;
  const out = await xrpc(pds, "com.atproto.server.createAccount", {
    body: { handle, email: `${handle}@example.com`, password: `pw-${handle}` },
  });
  const did = String(out.did);
  const token = String(out.accessJwt);
  return {
    did,
    handle,
    async createRecord(collection, record, rkey) {
      const r = await xrpc(pds, "com.atproto.repo.createRecord", {
        token,
        body: {
          repo: did,
          collection,
          validate: false,
          record: { $type: collection, ...record },
          ...(rkey !== undefined && { rkey }),
        },
      });
      const uri = String(r.uri);
      return { uri, rkey: uri.split("/").at(-1) as string };
    },
    async deleteRecord(collection, rkey) {
      await xrpc(pds, "com.atproto.repo.deleteRecord", { token, body: { repo: did, collection, rkey } });
    },
    async serviceAuth(p) {
      const query: Record<string, string> = { aud: p.aud };
      if (p.lxm !== undefined) query.lxm = p.lxm;
      if (p.exp !== undefined) query.exp = String(p.exp);
      return String((await xrpc(pds, "com.atproto.server.getServiceAuth", { token, query })).token);
    },
  };
}
