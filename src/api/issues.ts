import type { z } from "zod";

/** `a.b[1].c` for a zod issue path, so an error points at the exact place in a YAML file. */
export function formatPath(path: readonly PropertyKey[], prefix = ""): string {
  let out = prefix;
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else if (typeof part === "string" && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(part))
      out += out ? `.${part}` : part;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out || "(root)";
}

/** One line per issue, `path: message`, in zod's order (which follows the input). */
export function formatIssues(error: z.ZodError, prefix = ""): string[] {
  return error.issues.map((issue) => `${formatPath(issue.path, prefix)}: ${issue.message}`);
}
