/**
 * Reads a workflow's JSON-lines log file from the start and follows it while the workflow runs.
 * One reader for both log streams: `/logs` (Gen1 text frames) and `subscribePipelineLogs` (Gen2
 * CBOR frames) differ only in how a line is sent.
 *
 * The status is read before each read to end of file: the scheduler closes the log file before it
 * records a final status, so "finished, then EOF" is the true end of the log.
 */
import { constants } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { MAX_ENCODED_LINE_BYTES } from "../../protocol/logline.ts";
import { FINISHED } from "../../protocol/status.ts";
import type { RunRow } from "../pipelines/store.ts";

const CHUNK = 64 * 1024;
/**
 * A line longer than this is cut (the relay bounds a line's content to MAX_LINE_BYTES, so its
 * encoding stays below this; it guards odd files). It was 4 MiB, less than an encoded line of a
 * 1 MiB content that needs escaping: such a line would have reached viewers torn.
 */
const MAX_LINE = MAX_ENCODED_LINE_BYTES;

export interface FollowLogOptions {
  path: string;
  /** The run as stored now (null while unknown). */
  run: () => Pick<RunRow, "status" | "error"> | null;
  /** True once the reader went away: stop at the next line. */
  closed: () => boolean;
  /** Resolves when the file may have grown or the status changed (or after a poll period). */
  waitForChange: () => Promise<void>;
  /** Each line of the file, without its newline (a last unterminated one once finished). */
  onLine: (text: string) => Promise<void>;
  /** The run finished without ever writing a log file. */
  onNoLog: (run: Pick<RunRow, "status" | "error">) => Promise<void>;
}

export async function followLogFile(o: FollowLogOptions): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    let offset = 0;
    let pending = Buffer.alloc(0);
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      if (o.closed()) return;
      const run = o.run();
      const finished = run !== null && FINISHED.has(run.status);
      if (!fh) {
        fh = await open(o.path, constants.O_RDONLY).catch(() => undefined);
        if (!fh) {
          if (finished) return o.onNoLog(run);
          await o.waitForChange();
          continue;
        }
      }
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, CHUNK, offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
        let data =
          pending.length > 0
            ? Buffer.concat([pending, buf.subarray(0, bytesRead)])
            : buf.subarray(0, bytesRead);
        let nl = data.indexOf(10);
        while (nl !== -1) {
          await o.onLine(data.toString("utf8", 0, nl));
          data = data.subarray(nl + 1);
          nl = data.indexOf(10);
        }
        pending = Buffer.from(data.length > MAX_LINE ? data.subarray(0, MAX_LINE) : data);
        if (o.closed()) return;
      }
      if (finished) {
        if (pending.length > 0) await o.onLine(pending.toString("utf8"));
        return;
      }
      await o.waitForChange();
    }
  } finally {
    await fh?.close().catch(() => {});
  }
}
