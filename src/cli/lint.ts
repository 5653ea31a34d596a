/** `loom lint`: every problem in `.tangled/workflows/*`, as `file:line:col`. */
import { join, relative } from "node:path";
import { formatDiagnostic, lintWorkflow, readWorkflowFiles, WORKFLOWS_DIR } from "../workflow/index.ts";

export async function lintCommand(dir: string, json: boolean): Promise<number> {
  const { files, diagnostics } = await readWorkflowFiles(dir);
  for (const f of files) diagnostics.push(...lintWorkflow(f.name, f.content));
  // Paths relative to where the user is, so terminals and editors can jump to them.
  const prefix = relative(process.cwd(), join(dir, WORKFLOWS_DIR)) || ".";
  const located = diagnostics.map((d) => ({ ...d, file: join(prefix, d.file) }));
  if (json) process.stdout.write(`${JSON.stringify(located)}\n`);
  else for (const d of located) process.stdout.write(`${formatDiagnostic(d)}\n`);
  const errors = located.filter((d) => d.severity === "error").length;
  if (!json) {
    process.stderr.write(
      files.length === 0
        ? `no workflow files in ${prefix}\n`
        : `${files.length} file(s), ${errors} error(s), ${located.length - errors} warning(s)\n`,
    );
  }
  return errors > 0 ? 1 : 0;
}
