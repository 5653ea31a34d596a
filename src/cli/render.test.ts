import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { LogLine } from "../protocol/logline.ts";
import { HumanRenderer } from "./render.ts";

const T = "2026-02-10T12:00:00Z";
const data = (content: string, partial?: boolean, stream: "stdout" | "stderr" = "stdout"): LogLine => ({
  kind: "data",
  content,
  time: T,
  step_id: 0,
  stream,
  ...(partial ? { partial } : {}),
});

describe("HumanRenderer: pieces of a line over the relay's limit", () => {
  it("prints the pieces of one line as one line", () => {
    let out = "";
    const r = new HumanRenderer({ write: (t) => (out += t) }, { colour: false });
    r.line("ci.yml", data("aaa", true));
    r.line("ci.yml", data("bbb", true));
    r.line("ci.yml", data("ccc"));
    r.line("ci.yml", data("next"));
    assert.equal(out, "  aaabbbccc\n  next\n");
  });

  it("ends an unfinished line before another source prints", () => {
    let out = "";
    const r = new HumanRenderer({ write: (t) => (out += t) }, { colour: false, prefix: true });
    r.line("a.yml", data("aaa", true));
    r.line("b.yml", data("bbb"));
    r.line("a.yml", data("ccc"));
    assert.equal(out, "a.yml |   aaa\nb.yml |   bbb\na.yml |   ccc\n");
  });
});
