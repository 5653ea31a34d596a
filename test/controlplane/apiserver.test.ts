// Smoke tests of the real control plane (etcd + kube-apiserver): the behaviour a fake API server
// would not have — OpenAPI schema validation of custom resources, RBAC, optimistic concurrency,
// server-side dry-run.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ApiException,
  ApiextensionsV1Api,
  CoreV1Api,
  RbacAuthorizationV1Api,
  type V1ConfigMap,
  type V1CustomResourceDefinition,
  VersionApi,
} from "@kubernetes/client-node";
import { eventually, getTestCluster, K8S_VERSION } from "../harness/index.ts";

const cluster = await getTestCluster();

/** Runs `fn`, which must be rejected by the API server with HTTP `code`; returns the error body. */
async function rejected(code: number, fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    assert.equal(err.code, code, `expected HTTP ${code}, got ${err.code}: ${String(err.body)}`);
    return typeof err.body === "string" ? err.body : JSON.stringify(err.body);
  }
  assert.fail(`expected the API server to answer HTTP ${code}, but the request succeeded`);
}

test("the API server is the Kubernetes release the binaries were built from", {
  skip: cluster.skip,
}, async () => {
  const info = await cluster.kubeConfig().makeApiClient(VersionApi).getCode();
  assert.equal(info.gitVersion, K8S_VERSION);
  assert.equal(info.minor, K8S_VERSION.split(".")[1]);
});

const widgetCrd: V1CustomResourceDefinition = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "widgets.smoke.loom.test" },
  spec: {
    group: "smoke.loom.test",
    scope: "Namespaced",
    names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
    versions: [
      {
        name: "v1",
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: {
                type: "object",
                required: ["image", "replicas"],
                properties: {
                  image: { type: "string", minLength: 1 },
                  replicas: { type: "integer", minimum: 1, maximum: 5 },
                },
              },
            },
          },
        },
      },
    ],
  },
};

test("a CRD's OpenAPI schema makes the API server reject an invalid object", {
  skip: cluster.skip,
}, async (t) => {
  const ext = cluster.kubeConfig().makeApiClient(ApiextensionsV1Api);
  await ext.createCustomResourceDefinition({ body: widgetCrd });
  t.after(() => ext.deleteCustomResourceDefinition({ name: widgetCrd.metadata!.name! }).catch(() => {}));
  await eventually("Widget CRD Established", async () => {
    const crd = await ext.readCustomResourceDefinition({ name: widgetCrd.metadata!.name! });
    return crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True") ?? false;
  });

  const ns = await cluster.namespace(t);
  const objects = cluster.objects();
  const widget = (spec: Record<string, unknown>) => ({
    apiVersion: "smoke.loom.test/v1",
    kind: "Widget",
    metadata: { name: "w", namespace: ns },
    spec,
  });

  // The CRD's endpoint may need a moment after Established before it serves creates.
  await eventually("valid Widget accepted", async () => {
    await objects.create(widget({ image: "alpine:3", replicas: 2 }));
    return true;
  });

  const tooMany = await rejected(422, () =>
    objects.create({ ...widget({ image: "alpine:3", replicas: 9 }) }),
  );
  assert.match(tooMany, /spec\.replicas/);
  assert.match(tooMany, /less than or equal to 5/);

  const wrongType = await rejected(422, () => objects.create(widget({ image: "alpine:3", replicas: "two" })));
  assert.match(wrongType, /spec\.replicas/);

  const missing = await rejected(422, () => objects.create(widget({ replicas: 1 })));
  assert.match(missing, /spec\.image/);
  assert.match(missing, /Required value/);
});

test("RBAC: a user without bindings is forbidden until a RoleBinding grants access", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const alice = (await cluster.userKubeConfig("alice")).makeApiClient(CoreV1Api);

  const forbidden = await rejected(403, () => alice.listNamespacedConfigMap({ namespace: ns }));
  // The API server names the user from her client certificate: authentication is x509.
  assert.match(forbidden, /User \\?"alice\\?" cannot list resource \\?"configmaps\\?"/);

  // An explicit Role: the built-in "view"/"edit" ClusterRoles are aggregated by a controller
  // that the plain control plane does not run.
  const rbac = cluster.kubeConfig().makeApiClient(RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({
    namespace: ns,
    body: {
      metadata: { name: "configmap-reader" },
      rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch"] }],
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace: ns,
    body: {
      metadata: { name: "alice-reads-configmaps" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "configmap-reader" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "alice" }],
    },
  });
  await eventually("alice may list configmaps", async () => {
    await alice.listNamespacedConfigMap({ namespace: ns });
    return true;
  });
  // Reading does not include writing.
  await rejected(403, () =>
    alice.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "x" }, data: {} } }),
  );
});

test("an update with a stale resourceVersion gets 409 Conflict", { skip: cluster.skip }, async (t) => {
  const ns = await cluster.namespace(t);
  const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  const created = await core.createNamespacedConfigMap({
    namespace: ns,
    body: { metadata: { name: "cm" }, data: { n: "1" } },
  });
  const stale: V1ConfigMap = structuredClone(created);
  await core.replaceNamespacedConfigMap({
    name: "cm",
    namespace: ns,
    body: { ...created, data: { n: "2" } },
  });
  const body = await rejected(409, () =>
    core.replaceNamespacedConfigMap({ name: "cm", namespace: ns, body: { ...stale, data: { n: "3" } } }),
  );
  assert.match(body, /the object has been modified/);
  const now = await core.readNamespacedConfigMap({ name: "cm", namespace: ns });
  assert.equal(now.data?.n, "2");
});

test("server-side dry-run validates and defaults a manifest without persisting it", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const objects = cluster.objects();
  const job = {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: "dry", namespace: ns },
    spec: {
      template: {
        spec: {
          restartPolicy: "Never",
          containers: [{ name: "main", image: "alpine:3", command: ["true"] }],
        },
      },
    },
  };

  const result = (await objects.create(job, undefined, "All")) as typeof job & {
    metadata: { uid?: string };
    spec: { backoffLimit?: number; completions?: number };
  };
  // Defaulting ran on the server...
  assert.equal(result.spec.backoffLimit, 6);
  assert.equal(result.spec.completions, 1);
  // ...but nothing was stored.
  await rejected(404, () =>
    objects.read({ apiVersion: "batch/v1", kind: "Job", metadata: { name: "dry", namespace: ns } }),
  );

  // Validation runs in dry-run too.
  const invalid = structuredClone(job);
  invalid.spec.template.spec.restartPolicy = "Always";
  const body = await rejected(422, () => objects.create(invalid, undefined, "All"));
  assert.match(body, /spec\.template\.spec\.restartPolicy/);

  // The same through kubectl: apply --server-side --dry-run=server.
  const manifest = JSON.stringify({ ...job, metadata: { name: "dry-kubectl", namespace: ns } });
  const out = await cluster.kubectl(
    ["apply", "--server-side", "--dry-run=server", "-o", "json", "-f", "-"],
    manifest,
  );
  assert.equal(out.code, 0, out.stderr);
  assert.equal(JSON.parse(out.stdout).spec.backoffLimit, 6);
  const get = await cluster.kubectl(["get", "job", "dry-kubectl", "-n", ns]);
  assert.notEqual(get.code, 0);
  assert.match(get.stderr, /NotFound/);
});
