/**
 * HTML with escaping by default: `html\`<td>${value}</td>\`` escapes every interpolated value
 * unless it is already `Html` (a fragment built the same way). Arrays are joined. Nothing the
 * page shows — repo names, workflow names, failure reasons, log lines — reaches the page
 * unescaped, so a workflow name like `<script>` is text, never markup.
 */

export class Html {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Text → HTML text, safe in element content and in quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

type Value = Html | string | number | boolean | null | undefined | readonly Value[];

function part(v: Value): string {
  if (v === null || v === undefined || v === false) return "";
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(part).join("");
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0] ?? "";
  values.forEach((v, i) => {
    out += part(v) + (strings[i + 1] ?? "");
  });
  return new Html(out);
}

/** Trusted markup (constant strings of this folder only: the inline script and style). */
export function trusted(text: string): Html {
  return new Html(text);
}
