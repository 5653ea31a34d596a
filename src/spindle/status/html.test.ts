import assert from "node:assert/strict";
import { test } from "node:test";
import { escapeHtml, html } from "./html.ts";
import { sseEvent } from "./routes.ts";

test("escapeHtml escapes the five characters that matter in content and attributes", () => {
  assert.equal(
    escapeHtml(`<a href="x" title='y'>&</a>`),
    "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;",
  );
});

test("html escapes interpolations, keeps nested fragments, joins arrays, drops null/false", () => {
  const name = "<script>alert(1)</script>";
  const row = html`<td>${name}</td>`;
  assert.equal(row.text, "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>");
  const table = html`<tr>${[row, html`<td>${3}</td>`]}${null}${false}${undefined}</tr>`;
  assert.equal(table.text, "<tr><td>&lt;script&gt;alert(1)&lt;/script&gt;</td><td>3</td></tr>");
});

test("sseEvent: a carriage return in the text can neither end the event nor start a field", () => {
  const ev = sseEvent("line", "a\rdata: x\r\nevent: end\n\nid: 7\rb");
  assert.equal(ev, "event: line\ndata: a\ndata: data: x\ndata: event: end\ndata: \ndata: id: 7\ndata: b\n\n");
  // Every line of the event, parsed as the EventSource spec does (CR, LF, CRLF), is one field.
  const fields = ev.split(/\r\n|\r|\n/).filter((l) => l !== "");
  assert.ok(fields.slice(1).every((l) => l.startsWith("data: ")));
});
