// Installing CustomResourceDefinitions from their YAML files, exactly as written.
//
// Not through @kubernetes/client-node: its serializer writes a CRD by the typed model's attribute
// names (`_enum`, `_default`, `x_kubernetes_list_type`, ...), so the raw keys of a parsed YAML
// file (`enum`, `default`, `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, ...) are
// silently dropped and the API server gets a weaker schema than `make install` gives it. Instead
// the file's text goes to the control plane's kubectl as a server-side apply, like `make install`
// and `make deploy` (field manager loom-deploy) do; with its own field manager the tests share
// ownership with those (same values, so no conflict) instead of taking it over.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { parseAllDocuments } from "yaml";

/** Field manager of the tests' CRD applies. */
export const TEST_FIELD_MANAGER = "loom-test";

/** The SpindleSet CRD as `make install` applies it. */
export const SPINDLESET_CRD_PATH = new URL(
  "../../config/crd/loom.tangled.sh_spindlesets.yaml",
  import.meta.url,
);

export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `kubectl --kubeconfig=<kubeconfigPath> <args>`; `input` goes to stdin. */
export function runKubectl(
  kubectl: string,
  kubeconfigPath: string,
  args: readonly string[],
  input?: string,
): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(kubectl, [`--kubeconfig=${kubeconfigPath}`, ...args], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.once("error", reject);
    // kubectl may exit without reading stdin (bad arguments); its exit code tells the story.
    child.stdin.on("error", () => {});
    child.once("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

/**
 * Server-side applies every CustomResourceDefinition in `file` (created, or updated to the file's
 * content) and waits until each is Established. Returns their names.
 */
export async function applyCrdFile(
  kubectl: string,
  kubeconfigPath: string,
  file: string | URL,
  timeoutSeconds = 30,
): Promise<string[]> {
  const text = await readFile(file, "utf8");
  const names = parseAllDocuments(text)
    .map((d) => d.toJS() as { kind?: string; metadata?: { name?: string } } | null)
    .filter((d) => d?.kind === "CustomResourceDefinition")
    .map((d) => d!.metadata?.name ?? "");
  if (names.length === 0 || names.includes("")) {
    throw new Error(`${file}: no CustomResourceDefinitions, or one without metadata.name`);
  }
  const kc = (args: readonly string[], input?: string) => runKubectl(kubectl, kubeconfigPath, args, input);
  const applied = await kc(
    ["apply", "--server-side", `--field-manager=${TEST_FIELD_MANAGER}`, "-f", "-"],
    text,
  );
  if (applied.code !== 0) throw new Error(`kubectl apply --server-side ${file}: ${applied.stderr.trim()}`);
  // Polled rather than `kubectl wait --for=condition=Established`: that fails at once ("accessor
  // error: <nil>") when it reads a CRD whose status has no conditions yet, as a CRD just created
  // has for a moment.
  const established =
    '{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Established")].status}{"\\n"}{end}';
  const until = Date.now() + timeoutSeconds * 1000;
  let last = "";
  for (;;) {
    const got = await kc(["get", "customresourcedefinitions", "-o", `jsonpath=${established}`]);
    last = got.code === 0 ? got.stdout : got.stderr;
    const ready = new Set(
      got.stdout
        .split("\n")
        .filter((l) => l.endsWith("=True"))
        .map((l) => l.slice(0, -"=True".length)),
    );
    if (got.code === 0 && names.every((n) => ready.has(n))) return names;
    if (Date.now() > until) throw new Error(`CRDs ${names.join(", ")} not Established: ${last.trim()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
