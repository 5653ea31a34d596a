/** Shared pieces of the status page tests. */
import assert from "node:assert/strict";

/** Reads an event stream into `text` until aborted. */
export function collect(url: string): { text: () => string; stop: () => void; done: Promise<void> } {
  const abort = new AbortController();
  let text = "";
  const done = (async () => {
    const res = await fetch(url, { signal: abort.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
    const decoder = new TextDecoder();
    for await (const chunk of res.body as AsyncIterable<Uint8Array>)
      text += decoder.decode(chunk, { stream: true });
  })().catch((err: Error) => {
    if (err.name !== "AbortError") throw err;
  });
  return { text: () => text, stop: () => abort.abort(), done };
}
