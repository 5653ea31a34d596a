/**
 * The status page's HTML: one full document (`statusPage`) around one fragment (`statusBody`)
 * that the Server-Sent Events stream re-sends on every change; the run's log page
 * (`logPage`) with its lines. Every value goes through `html` (escaped); the only trusted
 * markup is this file's constant style and script.
 */
import { decodeLogLine } from "../../protocol/logline.ts";
import { type Html, html, trusted } from "./html.ts";
import type { StatusSnapshot } from "./snapshot.ts";

const STYLE = trusted(`<style>
:root{color-scheme:light dark;font-family:system-ui,sans-serif;line-height:1.4}
body{margin:0 auto;max-width:72rem;padding:.75rem}
h1{font-size:1.3rem;margin:.2rem 0}h2{font-size:1.05rem;margin:1.2rem 0 .4rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.25rem .4rem;border-bottom:1px solid #8884;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.wrap{overflow-x:auto}.muted{opacity:.7}.ok{color:#1a7f37}.bad{color:#cf222e}.warn{color:#9a6700}
code,pre{font-family:ui-monospace,monospace;font-size:.85rem}
pre{white-space:pre-wrap;word-break:break-word;margin:0}
pre .err{color:#cf222e}pre .ctl{font-weight:bold;margin-top:.4rem}
@media (max-width:40rem){.opt{display:none}body{padding:.4rem}th,td{padding:.2rem .25rem}}
</style>`);

/** Replaces #live with each `update` event's fragment; appends each `line` to #log. */
const SCRIPT = trusted(`<script>
(function(){
  if(!window.EventSource)return;
  var el=document.querySelector("[data-stream]");if(!el)return;
  var es=new EventSource(el.getAttribute("data-stream"));
  es.addEventListener("update",function(e){el.innerHTML=e.data;});
  es.addEventListener("line",function(e){el.insertAdjacentHTML("beforeend",e.data);});
  es.addEventListener("end",function(e){var s=document.getElementById("run-status");if(s&&e.data)s.textContent=e.data;es.close();});
  document.documentElement.setAttribute("data-live","1");
})();
</script>`);

function layout(title: string, body: Html, refresh: string): Html {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>${STYLE}</head>
<body><header><h1>${title}</h1><p class="muted">${refresh}</p></header>
${body}
${SCRIPT}</body></html>
`;
}

export function duration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return "–";
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${m % 60}m`;
}

function when(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "Z");
}

const repoCell = (owner: string, repo: string) =>
  html`<td>${repo}<div class="muted opt"><code>${owner}</code></div></td>`;

export function statusPage(s: StatusSnapshot, base: string): Html {
  return layout(
    "Loom spindle status",
    html`<main id="live" data-stream="${base}/stream">${statusBody(s, base)}</main>`,
    "Live while this page is open; without JavaScript, reload to update.",
  );
}

export function statusBody(s: StatusSnapshot, base: string): Html {
  const statusClass = (st: string) => (st === "success" ? "ok" : st === "cancelled" ? "warn" : "bad");
  const js = s.intake.jetstream;
  const lag = js?.cursorUs != null ? s.now - js.cursorUs / 1000 : null;
  return html`<p class="muted">As of <time datetime="${new Date(s.now).toISOString()}">${when(s.now)}</time></p>
<section id="capacity"><h2>Capacity</h2>
<p>Slots: <strong data-slots>${s.capacity.used} / ${s.capacity.total}</strong> pipelines running.
${s.capacity.byArch.length === 0 ? "No workflows running." : html`Workflows by architecture: ${s.capacity.byArch.map((a, i) => html`${i > 0 ? ", " : ""}${a.arch || "?"}: ${a.running}`)}.`}</p></section>
<section id="running"><h2>Running now (${s.running.length})</h2>
${
  s.running.length === 0
    ? html`<p class="muted">Nothing running.</p>`
    : html`<div class="wrap"><table><thead><tr><th>Repo</th><th>Workflow</th><th>Step</th><th class="n">Duration</th><th class="opt">Arch</th><th></th></tr></thead><tbody>
${s.running.map(
  (
    r,
  ) => html`<tr data-wid="${r.wid}">${repoCell(r.owner, r.repo)}<td>${r.workflow}</td><td>${r.step ?? html`<span class="muted">–</span>`}</td><td class="n">${duration(r.startedAt === null ? null : s.now - r.startedAt)}</td><td class="opt">${r.arch}</td><td><a href="${base}/log/${encodeURIComponent(r.wid)}">log</a></td></tr>
`,
)}</tbody></table></div>`
}</section>
<section id="queue"><h2>Queue (${s.queue.length})</h2>
${
  s.queue.length === 0
    ? html`<p class="muted">The queue is empty.</p>`
    : html`<div class="wrap"><table><thead><tr><th class="n">Place</th><th>Repo</th><th>Workflows</th><th class="n">Waiting</th></tr></thead><tbody>
${s.queue.map(
  (
    q,
  ) => html`<tr data-rkey="${q.rkey}"><td class="n">${q.place}</td>${repoCell(q.owner, q.repo)}<td>${q.workflows.join(", ")}</td><td class="n">${duration(s.now - q.createdAt)}</td></tr>
`,
)}</tbody></table></div>`
}</section>
<section id="finished"><h2>Recently finished</h2>
${
  s.finished.length === 0
    ? html`<p class="muted">No finished runs yet.</p>`
    : html`<div class="wrap"><table><thead><tr><th>Repo</th><th>Workflow</th><th>Status</th><th>Reason</th><th class="n opt">Took</th><th class="opt">Finished</th><th></th></tr></thead><tbody>
${s.finished.map(
  (
    f,
  ) => html`<tr data-wid="${f.wid}">${repoCell(f.owner, f.repo)}<td>${f.workflow}</td><td class="${statusClass(f.status)}" data-status>${f.status}</td><td>${f.error ?? ""}</td><td class="n opt">${duration(f.startedAt === null ? null : f.finishedAt - f.startedAt)}</td><td class="opt">${when(f.finishedAt)}</td><td><a href="${base}/log/${encodeURIComponent(f.wid)}">log</a></td></tr>
`,
)}</tbody></table></div>`
}</section>
<section id="usage"><h2>Usage, last 24 h</h2>
${
  s.usage.byRepo.length === 0
    ? html`<p class="muted">No runs in the last 24 hours.</p>`
    : html`<div class="wrap"><table><thead><tr><th>Owner</th><th class="n">Runs</th><th class="n">Failed</th><th class="n">Engine time</th></tr></thead><tbody>
${s.usage.byOwner.map((u) => html`<tr><td><code>${u.owner}</code></td><td class="n">${u.runs}</td><td class="n">${u.failed}</td><td class="n">${duration(u.ms)}</td></tr>`)}
</tbody></table></div>
<div class="wrap"><table><thead><tr><th>Repo</th><th class="n">Runs</th><th class="n">Failed</th><th class="n">Engine time</th></tr></thead><tbody>
${s.usage.byRepo.map((u) => html`<tr>${repoCell(u.owner, u.repo)}<td class="n">${u.runs}</td><td class="n">${u.failed}</td><td class="n">${duration(u.ms)}</td></tr>`)}
</tbody></table></div>`
}</section>
<section id="intake"><h2>Intake</h2>
${
  js === null
    ? html`<p class="muted">Intake is off in this process.</p>`
    : html`<p>Jetstream: <strong class="${js.connected ? "ok" : "bad"}">${js.connected ? "connected" : "disconnected"}</strong>,
cursor ${js.cursorUs === null ? "none yet" : html`<code>${js.cursorUs}</code> (lag ${duration(lag)})`}.</p>`
}
${
  s.intake.knots.length === 0
    ? html`<p class="muted">No knots followed.</p>`
    : html`<div class="wrap"><table><thead><tr><th>Knot</th><th>State</th><th>Cursor</th></tr></thead><tbody>
${s.intake.knots.map(
  (k) =>
    html`<tr><td>${k.knot}</td><td class="${k.connected ? "ok" : "bad"}">${k.connected ? "connected" : "disconnected"}</td><td><code>${k.cursor ?? "–"}</code></td></tr>`,
)}
</tbody></table></div>`
}</section>`;
}

export interface LogView {
  wid: string;
  workflow: string;
  repo: string;
  status: string;
}

/** One log line (a LogLine JSON text from the masked log file) → its HTML. */
export function logLineHtml(text: string): Html {
  const l = decodeLogLine(text);
  if (!l) return html``;
  if (l.kind === "control")
    return l.step_status === "start"
      ? html`<div class="ctl">▶ ${l.content || `step ${l.step_id}`}</div>`
      : html``;
  return html`<div${l.stream === "stderr" ? html` class="err"` : ""}>${l.content}</div>`;
}

/** `lines`: the end of the log so far; `total`: the file's line count (the stream skips them). */
export function logPage(v: LogView, lines: string[], total: number, base: string): Html {
  return layout(
    `Log: ${v.repo} · ${v.workflow}`,
    html`<p><a href="${base}">← status</a> · <code>${v.wid}</code> · <span id="run-status">${v.status}</span></p>
<pre id="log" data-stream="${base}/log/${encodeURIComponent(v.wid)}/stream?skip=${total}">${lines.map(logLineHtml)}</pre>`,
    "Secrets are masked. Live while the run goes on; without JavaScript, reload to see more.",
  );
}
