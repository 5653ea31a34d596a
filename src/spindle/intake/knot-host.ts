/**
 * Knot names as they appear in `sh.tangled.repo.knot` and the `repos` table: a bare host with an
 * optional port (`knot1.tangled.sh`, `localhost:5555`). They come from other people's records,
 * so anything that could smuggle a scheme, path, query or credentials into a URL is refused.
 */
const KNOT_HOST_RE =
  /^(?=.{1,253}(?::|$))[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*(:[0-9]{1,5})?$/;

export function isValidKnotHost(knot: string): boolean {
  if (!KNOT_HOST_RE.test(knot)) return false;
  const port = knot.split(":")[1];
  return port === undefined || (Number(port) > 0 && Number(port) <= 65535);
}

/** `wss://<knot>/events` (`ws://` in dev mode), with `?cursor=` when a cursor is given (§1.3). */
export function knotEventsUrl(knot: string, dev: boolean, cursor: string | null): string {
  const base = `${dev ? "ws" : "wss"}://${knot}/events`;
  return cursor !== null && cursor !== "0" ? `${base}?cursor=${cursor}` : base;
}
