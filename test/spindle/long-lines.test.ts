/**
 * Long output lines through a real server (issue 12, item 7): the local engine runs the real
 * runner, the relay writes the log file, `/logs` and `subscribePipelineLogs` serve it over
 * loopback WebSockets. A 200,000-character line printed in different chunkings arrives as one
 * line in all three places, masked; a line over the 1 MiB limit arrives as the same pieces every
 * time, marked partial in the file and `/logs`, with no newline between its CBOR frames, and a
 * secret that straddles the cut point is masked. A 1,000,000-byte line of control characters
 * (6 MB once JSON-escaped, over what `/logs` used to read as one file line) arrives whole.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { decodeFirst } from "cborg";
import { WebSocket } from "ws";
import { type LogLine, MAX_LINE_BYTES } from "../../src/protocol/logline.ts";
import { repoScopeKey } from "../../src/spindle/rbac/index.ts";
import { SqliteSecretsProvider } from "../../src/spindle/secrets/index.ts";
import { workflowId } from "../../src/workflow/resolve.ts";
import {
  ALICE,
  addRepo,
  type Booted,
  bootServer,
  Collector,
  KEY_HEX,
  KNOT,
  pipelineRecord,
  statuses,
  workflow,
} from "./server-kit.ts";

const SECRET = "tok-long-line-secret-42";

/**
 * A shell command printing `a` × before, the secret, `b` × rest as one line (then "after"),
 * written in blocks of `bs` bytes (dd reblocks: each write is one block).
 */
function printLine(before: number, rest: number, bs: number): string {
  const fill = (n: number, c: string) => `head -c ${n} /dev/zero | tr '\\0' ${c}`;
  return `{ ${fill(before, "a")}; printf %s "$SECRET_TOKEN"; ${fill(rest, "b")}; echo; } | dd bs=${bs} iflag=fullblock 2>/dev/null; echo after`;
}

interface DataLine {
  content: string;
  partial: boolean;
}

async function cborData(wsUrl: string, rkey: string, name: string): Promise<string[]> {
  const ws = new WebSocket(
    `${wsUrl}/xrpc/sh.tangled.ci.subscribePipelineLogs?pipeline=${rkey}&workflows=${name}`,
    {
      maxPayload: 64 << 20,
    },
  );
  const contents: string[] = [];
  ws.on("message", (data) => {
    const [header, rest] = decodeFirst(new Uint8Array(data as Buffer));
    const [body] = decodeFirst(rest);
    if ((header as { t?: string }).t === "#data") contents.push((body as { content: string }).content);
  });
  await new Promise((res, rej) => {
    ws.once("close", res);
    ws.once("error", rej);
  });
  return contents;
}

describe("spindle server: long lines reach every viewer as printed", () => {
  let b: Booted;
  before(async () => {
    b = await bootServer();
    addRepo(b.server, ALICE, "loom");
    const provider = new SqliteSecretsProvider({ db: b.server.db, key: Buffer.from(KEY_HEX, "hex") });
    const repo = repoScopeKey({ ownerDid: ALICE, name: "loom" });
    await provider.add({ repo, key: "SECRET_TOKEN", value: SECRET, createdBy: ALICE });
  });
  after(() => b.stop());

  /** Runs one workflow per block size; returns each one's data lines from /logs, file and CBOR. */
  async function runAll(rkey: string, before: number, rest: number, sizes: number[]) {
    const events = new Collector(`${b.wsUrl}/events`);
    await events.opened;
    const names = sizes.map((bs) => `bs${bs}.yml`);
    await b.server.pipelines.acceptPipeline(
      KNOT,
      rkey,
      pipelineRecord(
        sizes.map((bs, i) => workflow(names[i]!, [{ name: "print", command: printLine(before, rest, bs) }])),
      ),
    );
    const final = (f: string[], n: string) =>
      statuses(f, n).find((e) => e.status !== "pending" && e.status !== "running");
    await events.until((f) => names.every((n) => final(f, n) !== undefined), 120_000);
    events.close();
    const out = [];
    for (const name of names) {
      assert.equal(final(events.frames, name)!.status, "success", JSON.stringify(final(events.frames, name)));
      const logs = new Collector(`${b.wsUrl}/logs/${KNOT}/${rkey}/${name}`);
      assert.equal((await logs.closed).code, 1000);
      const pick = (lines: LogLine[]): DataLine[] =>
        lines
          .filter((l) => l.kind === "data")
          .map((l) => ({ content: l.content, partial: l.partial === true }));
      const file = readFileSync(join(b.dir, "logs", `${workflowId(KNOT, rkey, name)}.log`), "utf8")
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l) as LogLine);
      out.push({
        name,
        ws: pick(logs.frames.map((f) => JSON.parse(f) as LogLine)),
        file: pick(file),
        cbor: await cborData(b.wsUrl, rkey, name),
      });
    }
    return out;
  }

  it("a 200,000-character line arrives as one line, masked, through /logs, the file and CBOR frames", async () => {
    // The secret straddles 65,536, where lines used to be cut.
    const before = 65_530;
    const rest = 200_000 - before - SECRET.length;
    const line = `${"a".repeat(before)}***${"b".repeat(rest)}`;
    const runs = await runAll("3lxyz2longaaa", before, rest, [7, 4093, 65_536, 300_000]);
    for (const r of runs) {
      const expected = [
        { content: line, partial: false },
        { content: "after", partial: false },
      ];
      assert.deepEqual(r.ws, expected, `${r.name}: /logs`);
      assert.deepEqual(r.file, expected, `${r.name}: file`);
      assert.deepEqual(r.cbor, [`${line}\n`, "after\n"], `${r.name}: CBOR`);
    }
  });

  it("a line just under the limit that needs escaping everywhere arrives whole (6 MB encoded)", async () => {
    const rkey = "3lxyz2longccc";
    const events = new Collector(`${b.wsUrl}/events`);
    await events.opened;
    await b.server.pipelines.acceptPipeline(
      KNOT,
      rkey,
      pipelineRecord([
        workflow("ctl.yml", [
          { name: "print", command: "head -c 1000000 /dev/zero | tr '\\0' '\\001'; echo" },
        ]),
      ]),
    );
    await events.until((f) => statuses(f, "ctl.yml").some((e) => e.status === "success"), 60_000);
    events.close();
    const logs = new Collector(`${b.wsUrl}/logs/${KNOT}/${rkey}/ctl.yml`);
    assert.equal((await logs.closed).code, 1000);
    const data = logs.json.filter((l) => l.kind === "data");
    assert.deepEqual(
      data.map((l) => [l.content, l.partial]),
      [["\x01".repeat(1_000_000), undefined]],
    );
    assert.deepEqual(await cborData(b.wsUrl, rkey, "ctl.yml"), [`${"\x01".repeat(1_000_000)}\n`]);
  });

  it("a line over the limit arrives as the same pieces for every chunking, with no invented newline", async () => {
    // 2.5 MiB; the secret starts 10 bytes before the first cut point.
    const before = MAX_LINE_BYTES - 10;
    const rest = (5 << 19) - before - SECRET.length;
    const line = `${"a".repeat(before)}***${"b".repeat(rest)}`;
    const runs = await runAll("3lxyz2long2mb", before, rest, [4093, 65_536, 1_000_003]);
    const first = runs[0]!;
    for (const r of runs) {
      assert.deepEqual(r.ws, first.ws, `${r.name}: cut like ${first.name}`);
      assert.deepEqual(r.file, r.ws, `${r.name}: file = /logs`);
      const pieces = r.ws.slice(0, -1);
      assert.equal(pieces.map((p) => p.content).join(""), line);
      assert.ok(pieces.length >= 3);
      assert.ok(pieces.every((p) => Buffer.byteLength(p.content) <= MAX_LINE_BYTES));
      assert.deepEqual(
        pieces.map((p) => p.partial),
        pieces.map((_, i) => i < pieces.length - 1),
      );
      assert.deepEqual(r.ws.at(-1), { content: "after", partial: false });
      // A viewer that joins the frames' contents sees exactly the lines the program printed.
      assert.equal(r.cbor.join(""), `${line}\nafter\n`);
      assert.equal(r.cbor.length, pieces.length + 1);
    }
  });
});
