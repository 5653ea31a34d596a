import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AtUri, ensureValidAtUri } from "@atproto/syntax";
import { spindleDidDocument, spindlePipelineAtUri } from "./did-web.ts";
import { validate } from "./lexicons.ts";

describe("spindleDidDocument", () => {
  it("builds the did:web document with a #tangled_spindle service", () => {
    assert.deepEqual(spindleDidDocument("spindle.example.com"), {
      "@context": ["https://www.w3.org/ns/did/v1"],
      id: "did:web:spindle.example.com",
      service: [
        { id: "#tangled_spindle", type: "TangledSpindle", serviceEndpoint: "https://spindle.example.com" },
      ],
    });
  });

  it("percent-encodes the port in the DID but not in the endpoint; http in dev", () => {
    const doc = spindleDidDocument("localhost:6555", { dev: true });
    assert.equal(doc.id, "did:web:localhost%3A6555");
    assert.equal(doc.service[0]?.serviceEndpoint, "http://localhost:6555");
  });

  it("refuses things that are not a host", () => {
    for (const bad of ["https://x.org", "x.org/path", "", "a b", "x.org:port"]) {
      assert.throws(() => spindleDidDocument(bad), /not a host name/, bad);
    }
  });
});

describe("spindlePipelineAtUri", () => {
  it("is a valid AT-URI whose record key is the TID, ports encoded", () => {
    const uri = spindlePipelineAtUri("ci.example.com:8443", "3mrkp6iz6os2o");
    assert.equal(uri, "at://did:web:ci.example.com%3A8443/sh.tangled.pipeline/3mrkp6iz6os2o");
    ensureValidAtUri(uri);
    assert.ok(validate.triggerPipelineOutput({ pipeline: uri }));
    // @atproto/syntax's AtUri class refuses a %3A authority (only dev hosts have ports).
    const parsed = new AtUri(spindlePipelineAtUri("ci.example.com", "3mrkp6iz6os2o"));
    assert.equal(parsed.rkey, "3mrkp6iz6os2o");
    assert.equal(parsed.collection, "sh.tangled.pipeline");
  });
});
