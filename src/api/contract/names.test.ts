import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  hashedName,
  jobName,
  runnerSpecConfigMapName,
  secretName,
  shortHash,
  slug,
  spindleSetName,
} from "./names.ts";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

describe("names", () => {
  it("builds readable, hashed names for a typical run", () => {
    const ss = spindleSetName({ knot: "knot.tangled.sh", rkey: "3lq2abcxyz22k" });
    assert.equal(ss, `knot-tangled-sh-3lq2abcxyz22k-${shortHash(["knot.tangled.sh", "3lq2abcxyz22k"], 10)}`);
    const job = jobName(ss, "build.yml");
    assert.equal(job, `knot-tangled-sh-3lq2abcxyz22k-build-${shortHash([ss, "build.yml"], 10)}`);
    assert.equal(secretName(ss), `${ss}-secrets`);
    assert.equal(runnerSpecConfigMapName(job), `${job}-spec`);
  });

  it("is deterministic and keeps lossy slugs apart", () => {
    const a = spindleSetName({ knot: "a.b", rkey: "x" });
    assert.equal(a, spindleSetName({ knot: "a.b", rkey: "x" }));
    assert.notEqual(a, spindleSetName({ knot: "a-b", rkey: "x" }));
    assert.notEqual(jobName(a, "build.yml"), jobName(a, "build-yml"));
    assert.notEqual(shortHash(["a-b", "c"]), shortHash(["a", "b-c"]));
  });

  it("keeps long names within 63 characters, still valid DNS labels, still distinct", () => {
    const knot = `${"very-long-knot-name.".repeat(10)}example.com:5555`;
    const ss = spindleSetName({ knot, rkey: "3lq2abcxyz22k" });
    const jobs = [
      "a-workflow-with-an-extremely-long-file-name-indeed.yaml",
      "a-workflow-with-an-extremely-long-file-name-too.yaml",
    ].map((wf) => jobName(ss, wf));
    for (const name of [ss, ...jobs]) {
      assert.ok(name.length <= 63, name);
      assert.match(name, DNS_LABEL);
    }
    assert.equal(ss.length, 63);
    assert.notEqual(jobs[0], jobs[1]);
    assert.match(jobs[0]!, /^very-long-knot-name-very-long-k-a-workflow-with-an-e-[0-9a-f]{10}$/);
  });

  it("survives inputs with nothing sluggable", () => {
    assert.match(hashedName("...", ["..."]), /^[0-9a-f]{10}$/);
    assert.match(jobName("ss-0123456789", "._.yml"), /^ss-[0-9a-f]{10}$/);
    assert.equal(slug("--Hello, World!--"), "hello-world");
  });
});
