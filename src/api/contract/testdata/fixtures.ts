/** Plain inputs shared by the builder tests (the controller's builders use them too). */
import { parseSpindleSetSpec, type SpindleSetSpec, type SpindleSetSpecInput } from "../../v1alpha1/spindleset.ts";
import type { SpindleSetRef } from "../owner.ts";

export const OWNER: SpindleSetRef = {
  name: "knot-example-com-3lq2abcxyz22k-0123456789",
  namespace: "loom",
  uid: "6f1c1d2e-0000-4000-8000-000000000001",
};

export const SECRET_VALUES = {
  APP_PASSWORD: "hunter2-app-password",
  NPM_TOKEN: "npm_abcdefghijklmnopqrstuvwxyz0123456789",
  MULTI_LINE: "-----BEGIN KEY-----\nc2VjcmV0\n-----END KEY-----",
} as const;

export function specInput(): SpindleSetSpecInput {
  return {
    pipeline: { knot: "knot.example.com", rkey: "3lq2abcxyz22k" },
    trigger: {
      kind: "push",
      repo: { knot: "knot.example.com", did: "did:plc:abc", repo: "hello" },
      push: {
        ref: "refs/heads/main",
        oldSha: "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        newSha: "9f2c3a1e0b7d4c6a8e5f1d2b3c4a5e6f7a8b9c0d",
      },
    },
    secretRef: { name: `${OWNER.name}-secrets` },
    workflows: [
      {
        name: "build.yml",
        wid: "knot.example.com-3lq2abcxyz22k-build.yml",
        image: "docker.io/library/node:24",
        architecture: "amd64",
        timeoutSeconds: 300,
        secretKeys: ["NPM_TOKEN", "APP_PASSWORD"],
        clone: {
          url: "https://knot.example.com/did:plc:abc/hello",
          sha: "9f2c3a1e0b7d4c6a8e5f1d2b3c4a5e6f7a8b9c0d",
          stepId: 0,
        },
        steps: [
          { id: 0, name: "Clone repository into workspace", kind: "system", command: "git init && git fetch ..." },
          {
            id: 1,
            name: "Test",
            kind: "user",
            command: "npm ci && npm test",
            env: [
              { name: "CI", value: "true" },
              { name: "NPM_TOKEN", secret: "NPM_TOKEN" },
            ],
          },
        ],
      },
    ],
  };
}

export function spec(mutate: (s: SpindleSetSpecInput) => void = () => {}): SpindleSetSpec {
  const input = specInput();
  mutate(input);
  const parsed = parseSpindleSetSpec(input);
  if (!parsed.ok) throw new Error(parsed.issues.join("\n"));
  return parsed.value;
}
