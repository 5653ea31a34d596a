/**
 * The status page's intake health from the real consumers: a Jetstream stand-in and a knot
 * stand-in on loopback (connected, with their cursors) and a knot nobody listens at
 * (disconnected). A filtered Jetstream event moves the cursor the page shows.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { bootServer, waitFor } from "../spindle/server-kit.ts";
import { commitEvent, JetstreamStandIn } from "../support/jetstream-standin.ts";
import { KnotStandIn } from "../support/knot-standin.ts";

const fast = { backoff: { baseMs: 50, capMs: 200, minMs: 20 } };

test("intake: Jetstream and each knot with connection state and cursor", async (t) => {
  const jetstream = await JetstreamStandIn.start();
  const knot = await KnotStandIn.start({ gen: 2 });
  t.after(async () => {
    await knot.stop();
    await jetstream.stop();
  });
  const b = await bootServer({
    env: { SPINDLE_SERVER_METRICS_ADDR: "127.0.0.1:0", SPINDLE_SERVER_JETSTREAM_ENDPOINT: jetstream.url },
    server: { intake: { jetstream: fast, knots: fast } },
  });
  t.after(() => b.stop());
  const intake = b.server.intake;
  assert.ok(intake);
  intake.knots.addKnot(knot.host);
  intake.knots.addKnot("127.0.0.1:9"); // the discard port: nothing accepts there
  await jetstream.waitForConnections(1);
  const [ev] = jetstream.push(
    commitEvent({ did: "did:plc:someoneelse000000000000", collection: "sh.tangled.repo", rkey: "3lother" }),
  );
  const page = async () => (await fetch(`${b.server.metricsUrl}/status`)).text();
  let html = "";
  await waitFor(
    () =>
      html.includes(`<code>${(ev?.time_us ?? 0) + 1}</code>`) &&
      /127\.0\.0\.1:\d+<\/td><td class="ok">connected/.test(html),
    20_000,
    "the page to show the cursor and the connected knot",
    async () => {
      html = await page();
    },
  );
  const intakeHtml = html.slice(html.indexOf('<section id="intake">'));
  assert.match(intakeHtml, /Jetstream: <strong class="ok">connected<\/strong>/);
  assert.match(
    intakeHtml,
    new RegExp(`${knot.host.replace(/\./g, "\\.")}</td><td class="ok">connected</td><td><code>\\d+</code>`),
  );
  assert.match(intakeHtml, /127\.0\.0\.1:9<\/td><td class="bad">disconnected<\/td><td><code>\d+<\/code>/);
  assert.match(intakeHtml, /\(lag \d+s\)/);

  // The Jetstream connection goes away: the page says so.
  await jetstream.stop();
  await waitFor(
    () => intakeOf(html).includes("disconnected</strong>"),
    20_000,
    "disconnected",
    async () => {
      html = await page();
    },
  );
});

const intakeOf = (html: string) => html.slice(html.indexOf('<section id="intake">'));
