/**
 * The human view of `loom run`: step headers, streaming output, durations and a final verdict,
 * drawn from the same Tangled LogLines the spindle serves (so what a developer sees locally is
 * what the appview will show). Colour only when the output is a terminal.
 */
import { styleText } from "node:util";
import type { LogLine } from "../protocol/logline.ts";

type Style = Parameters<typeof styleText>[0];

export interface Output {
  write(text: string): void;
  readonly isTTY?: boolean;
}

export interface WorkflowSummary {
  workflow: string;
  status: string;
  durationMs: number;
  error?: string;
  exitCode?: number;
  /** Said beside the verdict, e.g. that no step ran. */
  note?: string;
}

export class HumanRenderer {
  readonly #out: Output;
  readonly #colour: boolean;
  readonly #prefix: boolean;
  readonly #starts = new Map<string, number>();
  /** Per workflow, the step that ended last: where a failed run stopped. */
  readonly #lastStep = new Map<string, string>();
  /**
   * Per workflow, the end of the step that ended last, held back until the next line or the
   * workflow's outcome says whether that step failed (the log line itself does not).
   */
  readonly #pendingEnd = new Map<string, { id: number; name: string; took: string }>();
  /**
   * The source (workflow, step, stream) of a line printed without its end: a piece of a line
   * over the relay's limit (`partial`), which the next piece of the same source continues.
   */
  #midLine: string | undefined;

  /** `prefix`: put the workflow name before every line (when several workflows interleave). */
  constructor(out: Output, opts: { colour?: boolean; prefix?: boolean } = {}) {
    this.#out = out;
    this.#colour = opts.colour ?? out.isTTY === true;
    this.#prefix = opts.prefix ?? false;
  }

  #paint(style: Style, text: string): string {
    return this.#colour ? styleText(style, text, { validateStream: false }) : text;
  }

  #lead(workflow: string): string {
    return this.#prefix ? this.#paint("cyan", `${workflow} | `) : "";
  }

  /** Ends a line left open by a partial piece, before anything else is printed. */
  #endLine(): void {
    if (this.#midLine === undefined) return;
    this.#midLine = undefined;
    this.#out.write("\n");
  }

  /** The line that opens a workflow's output. */
  header(workflow: string, text: string): void {
    this.#endLine();
    if (this.#prefix) this.#out.write(`${this.#lead(workflow)}${this.#paint("bold", text)}\n`);
    else this.#out.write(`\n${text}\n`);
  }

  #flushEnd(workflow: string, failedStep: number | null): void {
    const end = this.#pendingEnd.get(workflow);
    if (end === undefined) return;
    this.#pendingEnd.delete(workflow);
    const lead = this.#lead(workflow);
    if (end.id === failedStep)
      this.#out.write(`${lead}${this.#paint("red", `  ✘ ${end.name}${end.took} failed`)}\n`);
    else this.#out.write(`${lead}${this.#paint("dim", `  ⏹ ${end.name}${end.took}`)}\n`);
  }

  /** The workflow is over: its last step's end marker says whether that step failed. */
  finish(workflow: string, failedStep: number | null): void {
    this.#endLine();
    this.#flushEnd(workflow, failedStep);
  }

  line(workflow: string, line: LogLine): void {
    const key = `${workflow}\u0000${line.step_id}`;
    const source = `${key}\u0000${line.stream}`;
    const continues = line.kind === "data" && this.#midLine === source;
    if (!continues) this.#endLine();
    this.#flushEnd(workflow, null);
    const lead = this.#lead(workflow);
    if (line.kind === "control") {
      const system = line.step_kind !== 1;
      if (line.step_status === "start") {
        this.#starts.set(key, Date.parse(line.time));
        const name = line.content || "(unnamed step)";
        this.#out.write(`${lead}${this.#paint(system ? "dim" : "bold", `▶ ${name}`)}\n`);
      } else if (line.step_status === "end") {
        const started = this.#starts.get(key);
        this.#starts.delete(key);
        const took = started === undefined ? "" : ` ${formatDuration(Date.parse(line.time) - started)}`;
        const name = line.content || "(unnamed step)";
        this.#pendingEnd.set(workflow, { id: line.step_id, name, took });
        this.#lastStep.set(workflow, name);
      }
      return;
    }
    const text = line.content.replace(/\n$/, "");
    const body = line.stream === "stderr" ? this.#paint("yellow", text) : text;
    // A piece of a longer line (`partial`) is continued by the next one: no line break between.
    const end = line.partial === true ? "" : "\n";
    this.#midLine = line.partial === true ? source : undefined;
    this.#out.write(`${continues ? "" : `${lead}  `}${body.replaceAll("\n", `\n${lead}  `)}${end}`);
  }

  summary(results: readonly WorkflowSummary[], wallMs?: number): void {
    this.#endLine();
    if (results.length === 0) {
      this.#out.write(this.#paint("yellow", "no workflow matched this trigger\n"));
      return;
    }
    this.#out.write("\n");
    for (const r of results) {
      const ok = r.status === "success";
      const mark = ok ? this.#paint("green", "✔") : this.#paint("red", "✘");
      const step = this.#lastStep.get(r.workflow);
      const detail = ok
        ? ""
        : ` ${[
            r.error,
            r.exitCode !== undefined && r.exitCode !== 0 ? `exit code ${r.exitCode}` : "",
            step !== undefined ? `at step "${step}"` : "",
          ]
            .filter(Boolean)
            .join(", ")}`;
      const note = r.note === undefined ? "" : ` ${this.#paint("yellow", `(${r.note})`)}`;
      this.#out.write(
        `${mark} ${r.workflow} ${this.#paint(ok ? "green" : "red", r.status)} in ${formatDuration(r.durationMs)}${detail}${note}\n`,
      );
    }
    if (wallMs === undefined) return;
    const passed = results.filter((r) => r.status === "success").length;
    const failed = results.length - passed;
    const n = results.length;
    const totals = `${n} workflow${n === 1 ? "" : "s"}: ${passed} passed, ${failed} failed, ${formatDuration(wallMs)}`;
    this.#out.write(`${this.#paint(failed > 0 ? "red" : "green", totals)}\n`);
  }
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${Math.round((ms % 60_000) / 1000)}s`;
}
