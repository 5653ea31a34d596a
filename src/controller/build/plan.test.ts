import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ANNOTATIONS, buildRunSecret } from "../../api/contract/index.ts";
import { buildJob } from "./job.ts";
import { planWorkflow } from "./plan.ts";
import { selectProfile } from "./profile.ts";
import { buildRunnerSpec, buildRunnerSpecConfigMap, INLINE_SPEC_MAX_BYTES } from "./runner-spec.ts";
import { config, OWNER, SECRET_VALUES, spec } from "./testdata/fixtures.ts";

const amdNode = { name: "n1", labels: { "kubernetes.io/arch": "amd64" } };

describe("planWorkflow", () => {
  it("plans the Job of one workflow, its RunnerSpec riding in the pod template", () => {
    const s = spec();
    const cfg = config();
    const plan = planWorkflow({
      owner: OWNER,
      spec: s,
      workflowName: "build.yml",
      nodes: [amdNode],
      config: cfg,
    });
    const choice = selectProfile(cfg.template.resourceProfiles, "amd64", [amdNode]);
    assert.ok(choice.ok);
    const runnerSpec = JSON.stringify(buildRunnerSpec(s.workflows[0]!, cfg));
    const job = buildJob({
      owner: OWNER,
      pipeline: s.pipeline,
      workflow: s.workflows[0]!,
      secretName: s.secretRef?.name,
      profile: choice,
      config: cfg,
      inlineSpec: runnerSpec,
    });
    job.metadata!.annotations![ANNOTATIONS.profile] = "small";
    assert.deepEqual(plan, { ok: true, jobName: job.metadata!.name, profile: "small", job });
    assert.equal(job.spec!.template.metadata!.annotations![ANNOTATIONS.runnerSpec], runnerSpec);
    assert.equal(job.metadata!.annotations![ANNOTATIONS.runnerSpec], undefined, "not twice in the Job");
    assert.deepEqual(
      job.spec!.template.spec!.volumes!.find((v) => v.name === "spec"),
      {
        name: "spec",
        downwardAPI: {
          items: [
            {
              path: "spec.json",
              fieldRef: { apiVersion: "v1", fieldPath: `metadata.annotations['${ANNOTATIONS.runnerSpec}']` },
            },
          ],
          defaultMode: 0o444,
        },
      },
    );
  });

  it("plans a ConfigMap for a spec too large for an annotation", () => {
    const s = spec((x) => {
      x.workflows[0]!.steps.at(-1)!.command = `echo ${"x".repeat(INLINE_SPEC_MAX_BYTES)}`;
    });
    const cfg = config();
    const plan = planWorkflow({
      owner: OWNER,
      spec: s,
      workflowName: "build.yml",
      nodes: [amdNode],
      config: cfg,
    });
    assert.ok(plan.ok);
    assert.deepEqual(
      plan.configMap,
      buildRunnerSpecConfigMap({
        owner: OWNER,
        pipeline: s.pipeline,
        workflow: s.workflows[0]!,
        jobName: plan.jobName,
        spec: buildRunnerSpec(s.workflows[0]!, cfg),
      }),
    );
    assert.equal(plan.job.spec!.template.metadata!.annotations![ANNOTATIONS.runnerSpec], undefined);
    assert.equal(
      plan.job.spec!.template.spec!.volumes!.find((v) => v.name === "spec")!.configMap!.name,
      plan.configMap!.metadata!.name,
    );
  });

  it("fails at once when no node can run the workflow", () => {
    const plan = planWorkflow({
      owner: OWNER,
      spec: spec((x) => {
        x.workflows[0]!.architecture = "arm64";
      }),
      workflowName: "build.yml",
      nodes: [amdNode],
      config: config(),
    });
    assert.deepEqual(plan, {
      ok: false,
      reason: "NoMatchingProfile",
      message:
        "no node matches a resource profile for arm64 (1 nodes checked): small needs {kubernetes.io/arch=arm64}",
    });
  });

  it("fails a microvm workflow asking for a service at once with Unsupported, naming it", () => {
    const plan = planWorkflow({
      owner: OWNER,
      spec: spec((x) => {
        x.workflows[0]!.image = "nixos";
        x.workflows[0]!.microvm = {
          image: "nixos",
          services: ["postgresql", "memcached"],
          postgresql: { ensureDatabases: [], ensureUsers: [] },
        };
      }),
      workflowName: "build.yml",
      nodes: [amdNode],
      config: config(),
    });
    assert.deepEqual(plan, {
      ok: false,
      reason: "Unsupported",
      message:
        "services.memcached: Loom runs only postgresql, redis, mysql, mariadb; the workflow was not started",
    });
  });

  it("reports an unknown workflow as InvalidSpec", () => {
    const plan = planWorkflow({
      owner: OWNER,
      spec: spec(),
      workflowName: "nope.yml",
      nodes: undefined,
      config: config(),
    });
    assert.deepEqual(plan, { ok: false, reason: "InvalidSpec", message: "no workflow named nope.yml" });
  });

  it("never puts a secret value (or its base64) into the spec, the ConfigMap or the Job", () => {
    const s = spec();
    const large = spec((x) => {
      x.workflows[0]!.steps.at(-1)!.command = `echo ${"x".repeat(INLINE_SPEC_MAX_BYTES)}`;
    });
    const plan = (input: typeof s) =>
      planWorkflow({
        owner: OWNER,
        spec: input,
        workflowName: "build.yml",
        nodes: undefined,
        config: config(),
      });
    const small = plan(s);
    const big = plan(large);
    assert.ok(small.ok && big.ok && big.configMap);
    const secret = buildRunSecret({ owner: OWNER, pipeline: s.pipeline, values: SECRET_VALUES });
    const texts = {
      spec: JSON.stringify(s),
      job: JSON.stringify(small.job),
      configMap: JSON.stringify(big.configMap),
      "large spec's Job": JSON.stringify(big.job),
    };
    for (const value of Object.values(SECRET_VALUES)) {
      const forms = [value, JSON.stringify(value).slice(1, -1), Buffer.from(value).toString("base64")];
      for (const [where, text] of Object.entries(texts)) {
        for (const form of forms) assert.ok(!text.includes(form), `a secret value leaked into the ${where}`);
      }
    }
    // ...while the Secret does carry them, so the test would notice a builder that dropped them.
    assert.equal(Buffer.from(secret.data!.NPM_TOKEN!, "base64").toString(), SECRET_VALUES.NPM_TOKEN);
  });
});
