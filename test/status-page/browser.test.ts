/**
 * The status page in a real browser: Debian's Chromium (hack/chromium.sh, `make test-deps`)
 * driven by playwright-core, against a real spindle server (local engine, SQLite) on loopback,
 * with the page on the operations listener. One pipeline fails, one runs (held by a step that
 * waits for a file) and prints a secret, plain and in base64, one waits in the queue. The page
 * shows each; it updates without a reload when the held run finishes and the queued one starts;
 * it works with JavaScript off (a reload shows the new state); the run's log page shows the
 * masked lines and follows new ones live. The secret, in any of its forms, appears in no page
 * HTML and in no byte of the event streams. Screenshots go to test-artifacts/status-page/
 * (gitignored; the path is printed).
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Browser, chromium, type Page } from "playwright-core";
import { repoScopeKey } from "../../src/spindle/rbac/index.ts";
import { SqliteSecretsProvider } from "../../src/spindle/secrets/index.ts";
import { workflowId } from "../../src/workflow/resolve.ts";
import {
  ALICE,
  addRepo,
  type Booted,
  bootServer,
  KEY_HEX,
  KNOT,
  pipelineRecord,
  waitFor,
  workflow,
} from "../spindle/server-kit.ts";
import { collect } from "./kit.ts";

const CHROMIUM = "/usr/bin/chromium";
const SECRET = "s3cr3t-Value-9081-zq";
const FORMS = [
  SECRET,
  Buffer.from(SECRET).toString("base64"),
  Buffer.from(SECRET).toString("base64url"),
  Buffer.from(SECRET).toString("base64").replace(/=+$/, ""),
];
const ARTIFACTS = join(import.meta.dirname, "../../test-artifacts/status-page");
const RK = { fail: "3lxyz2stfail2", run: "3lxyz2strun22", queue: "3lxyz2stque22" };

function assertNoSecret(where: string, text: string): void {
  for (const form of FORMS) assert.ok(!text.includes(form), `${where} holds the secret (${form})`);
}

describe("status page in Chromium", {
  skip: !existsSync(CHROMIUM) && `${CHROMIUM} missing: run make test-deps`,
}, () => {
  let b: Booted;
  let ops: string;
  let browser: Browser;
  const shots: string[] = [];
  const seen: [string, string][] = [];
  const shot = async (page: Page, name: string) => {
    const path = join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    shots.push(path);
  };
  const text = async (page: Page, sel: string) => (await page.locator(sel).textContent()) ?? "";

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: make test-deps installs it (hack/chromium.sh)`);
    mkdirSync(ARTIFACTS, { recursive: true });
    b = await bootServer({
      env: { SPINDLE_SERVER_METRICS_ADDR: "127.0.0.1:0", SPINDLE_SERVER_MAX_JOB_COUNT: "1" },
    });
    ops = b.server.metricsUrl as string;
    addRepo(b.server, ALICE, "loom");
    const provider = new SqliteSecretsProvider({ db: b.server.db, key: Buffer.from(KEY_HEX, "hex") });
    await provider.add({
      repo: repoScopeKey({ ownerDid: ALICE, name: "loom" }),
      key: "SECRET_TOKEN",
      value: SECRET,
      createdBy: ALICE,
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  });
  after(async () => {
    await browser?.close();
    await b?.stop();
    if (shots.length > 0) console.log(`status page screenshots: ${ARTIFACTS}\n  ${shots.join("\n  ")}`);
  });

  it("shows running, queued and failed runs, updates live, works without script, never shows the secret", async (t) => {
    const store = b.server.store;
    const status = (rkey: string, name: string) => store.runByName(KNOT, rkey, name)?.status;
    const stream = collect(`${ops}/status/stream`);
    t.after(() => stream.stop());

    // A failed run, then a held one (prints the secret), then one left in the queue (1 slot).
    await b.server.pipelines.acceptPipeline(
      KNOT,
      RK.fail,
      pipelineRecord([workflow("failing.yml", [{ name: "boom", command: "echo about to fail; exit 3" }])]),
    );
    await waitFor(() => status(RK.fail, "failing.yml") === "failed", 60_000, "the failing run");
    const go = join(b.dir, "go");
    await b.server.pipelines.acceptPipeline(
      KNOT,
      RK.run,
      pipelineRecord([
        workflow("running.yml", [
          {
            name: "print",
            command: 'echo "token=$SECRET_TOKEN"; printf %s "$SECRET_TOKEN" | base64; echo waiting-for-go',
          },
          { name: "hold", command: `while [ ! -f '${go}' ]; do sleep 0.1; done; echo released-after-go` },
        ]),
      ]),
    );
    const runWid = workflowId(KNOT, RK.run, "running.yml");
    const logFile = join(b.dir, "logs", `${runWid}.log`);
    await waitFor(
      () => existsSync(logFile) && readFileSync(logFile, "utf8").includes('"content":"hold"'),
      60_000,
      "the held run's second step",
    );
    await b.server.pipelines.acceptPipeline(
      KNOT,
      RK.queue,
      pipelineRecord([workflow("queued.yml", [{ name: "q", command: "echo queued-ran" }])]),
    );
    await waitFor(() => b.server.store.queuedCount() === 1, 20_000, "the queued pipeline");
    const failReason = store.runByName(KNOT, RK.fail, "failing.yml")?.error ?? "";
    assert.ok(failReason !== "");

    // Without JavaScript: the server-rendered page alone.
    const plain = await browser.newContext({
      javaScriptEnabled: false,
      viewport: { width: 390, height: 844 },
    });
    const nojs = await plain.newPage();
    await nojs.goto(`${ops}/status`);
    assert.equal(await nojs.getAttribute("html", "data-live"), null, "no script ran");
    const running = await text(nojs, "#running");
    assert.match(running, /running\.yml/);
    assert.match(running, /hold/, "the current step");
    assert.match(running, new RegExp(process.arch === "arm64" ? "arm64" : "amd64"));
    assert.match(await text(nojs, "#queue"), /1\s*loom.*queued\.yml/s);
    const finished = await text(nojs, "#finished");
    assert.match(finished, /failing\.yml\s*failed/);
    assert.ok(finished.includes(failReason), `the failure reason ${failReason}`);
    assert.match(await text(nojs, "#capacity"), /1 \/ 1/);
    assert.match(await text(nojs, "#usage"), new RegExp(ALICE));
    assert.match(await text(nojs, "#intake"), /Intake is off/);
    await shot(nojs, "no-script-phone");
    seen.push(["no-script page", await nojs.content()]);

    // With JavaScript, on a phone-sized and a desktop viewport.
    const live = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const page = await live.newPage();
    await page.goto(`${ops}/status`);
    await page.waitForSelector("html[data-live]");
    await page.evaluate("window.marker = 42");
    await shot(page, "live-before-phone");
    const logPage = await live.newPage();
    await logPage.goto(`${ops}/status/log/${encodeURIComponent(runWid)}`);
    await logPage.waitForSelector("html[data-live]");
    const logText = await text(logPage, "#log");
    assert.match(logText, /token=\*\*\*/);
    assert.match(logText, /waiting-for-go/);
    assert.doesNotMatch(logText, /released-after-go/);
    const logStream = collect(`${ops}/status/log/${encodeURIComponent(runWid)}/stream`);
    t.after(() => logStream.stop());

    // The held run finishes; the queued one runs. Both pages follow without a reload.
    writeFileSync(go, "");
    // Browser-side expressions (this file is compiled without the DOM library).
    await page.waitForFunction(
      `(() => { const fin = document.querySelector("#finished")?.textContent ?? "";
        return /running\\.yml\\s*success/.test(fin) && /queued\\.yml\\s*success/.test(fin); })()`,
      undefined,
      { timeout: 60_000 },
    );
    assert.equal(await page.evaluate("window.marker"), 42, "no reload");
    assert.match(await text(page, "#queue"), /The queue is empty/);
    await logPage.waitForFunction(
      `(document.querySelector("#log")?.textContent ?? "").includes("released-after-go")`,
      undefined,
      { timeout: 60_000 },
    );
    await logPage.waitForFunction(
      `document.getElementById("run-status")?.textContent === "success"`,
      undefined,
      {
        timeout: 60_000,
      },
    );
    const lines = (await text(logPage, "#log")).split("waiting-for-go");
    assert.equal(lines.length, 2, "each line once (page, then stream)");
    await shot(page, "live-after-phone");
    await shot(logPage, "log-phone");
    await page.setViewportSize({ width: 1280, height: 900 });
    await shot(page, "live-after-desktop");
    seen.push(["live page", await page.content()], ["log page", await logPage.content()]);

    // Without script, a reload shows the new state.
    await nojs.reload();
    assert.match(await text(nojs, "#finished"), /running\.yml\s*success/);
    seen.push(["no-script page after reload", await nojs.content()]);

    // Raw bytes: the pages as served and every event the streams sent.
    for (const path of ["/status", `/status/log/${encodeURIComponent(runWid)}`]) {
      seen.push([path, await (await fetch(`${ops}${path}`)).text()]);
    }
    await waitFor(() => logStream.text().includes("event: end"), 20_000, "the log stream's end");
    stream.stop();
    logStream.stop();
    assert.match(stream.text(), /event: update\ndata: /);
    assert.match(logStream.text(), /released-after-go/);
    seen.push(["status stream", stream.text()], ["log stream", logStream.text()]);
    for (const [where, body] of seen) assertNoSecret(where, body);
    // The log file itself is masked too (the page's only source).
    assertNoSecret("log file", readFileSync(logFile, "utf8"));
    await plain.close();
    await live.close();
  });
});
