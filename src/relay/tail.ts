/**
 * Reading a workflow's log file for the `/logs` stream (spec §4.3): every line from the start,
 * verbatim, then — while the workflow runs — each line as it is appended.
 *
 * Following waits on fs.watch, with a slow timer as a safety net for filesystems whose change
 * events are unreliable (network and overlay mounts). At each end of file `finished()` is asked;
 * once it says yes, the rest of the file is read and the tail ends: unlike Gen1, Loom stops
 * following a finished workflow (as Gen2 does), so a stream never hangs on a dead run.
 */
import { watch } from "node:fs";
import { open } from "node:fs/promises";

export interface TailOptions {
  /** Asked at each end of file; when it returns true the tail reads what is left and ends. */
  finished: () => boolean | Promise<boolean>;
  /** Ends the tail early (the client went away). */
  signal?: AbortSignal;
  /** Safety-net re-check period while following (default 1000 ms). */
  pollMs?: number;
  /** Longer lines are skipped (default 4 MiB); the relay never writes one. */
  maxLineBytes?: number;
}

const READ_SIZE = 64 << 10;

/** Yields each line (without its newline) of the file at `path`. Rejects if it cannot be opened. */
export async function* tailLogFile(path: string, opts: TailOptions): AsyncGenerator<string> {
  const maxLine = opts.maxLineBytes ?? 4 << 20;
  const pollMs = opts.pollMs ?? 1000;
  const fh = await open(path, "r");
  const buf = Buffer.allocUnsafe(READ_SIZE);
  let pos = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let skipping = false;
  try {
    for (;;) {
      if (opts.signal?.aborted) return;
      const { bytesRead } = await fh.read(buf, 0, READ_SIZE, pos);
      if (bytesRead > 0) {
        pos += bytesRead;
        const chunk = buf.subarray(0, bytesRead);
        let from = 0;
        for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, from)) {
          const piece = chunk.subarray(from, nl);
          from = nl + 1;
          if (skipping || pendingBytes + piece.length > maxLine) {
            skipping = false;
            pending = [];
            pendingBytes = 0;
            continue;
          }
          const line = pendingBytes > 0 ? Buffer.concat([...pending, piece]) : piece;
          pending = [];
          pendingBytes = 0;
          yield line.toString("utf8");
        }
        const rest = chunk.subarray(from);
        if (!skipping && rest.length > 0) {
          if (pendingBytes + rest.length > maxLine) {
            skipping = true;
            pending = [];
            pendingBytes = 0;
          } else {
            pending.push(Buffer.from(rest));
            pendingBytes += rest.length;
          }
        }
        continue;
      }
      // End of file: stop if the workflow is done (after one more read, for lines written
      // between our read and its final status), else wait for the file to grow.
      if (await opts.finished()) {
        const { size } = await fh.stat();
        if (size > pos) continue;
        if (pendingBytes > 0 && !skipping) yield Buffer.concat(pending).toString("utf8");
        return;
      }
      await changed(path, pollMs, opts.signal);
    }
  } finally {
    await fh.close();
  }
}

/** Resolves on the next change to the file, after `ms`, or on abort — whichever comes first. */
function changed(path: string, ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    let watcher: ReturnType<typeof watch> | undefined;
    const done = () => {
      clearTimeout(timer);
      watcher?.close();
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    try {
      watcher = watch(path, { persistent: false }, done);
      watcher.on("error", done);
    } catch {
      // No watch support here: the timer alone will do.
    }
  });
}
