// The example receivers (examples/receivers/{python,node}) against a live footfall: each
// verifies a real signed webhook with the official `standardwebhooks` package and
// refuses a tampered copy of it.
//
// footfall (the shipped config.toml, private webhook targets allowed) gets one handler
// per receiver, whose webhook_url is a tap in this test: the tap passes footfall's
// webhook to the receiver as it came, then again with one byte of the body changed, and
// records both answers. One return visit fires the site-visit action of each handler.
//
// Run: node tests/deploy/receivers.mjs (scripts/test.sh does, after installing the
// receivers' packages).

import { spawn } from "node:child_process";
import http from "node:http";
import path from "node:path";
import { Harness, ROOT, api, check, sleep } from "../browser/harness.mjs";
import { freePort } from "../browser/webdriver.mjs";

const RECEIVERS = {
  python: { cmd: "python3", args: [path.join(ROOT, "examples/receivers/python/receiver.py")] },
  node: { cmd: "node", args: [path.join(ROOT, "examples/receivers/node/receiver.mjs")] },
};
const UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0";
const t = new Harness("receivers");

/** Starts a receiver with the handler's secret; resolves once it listens. */
async function startReceiver(kind, secret) {
  const port = await freePort();
  const { cmd, args } = RECEIVERS[kind];
  const child = spawn(cmd, args, { env: { ...process.env, FOOTFALL_WEBHOOK_SECRET: secret, PORT: String(port) }, stdio: ["ignore", "pipe", "pipe"] });
  t.processes.push(child);
  t.cleanups.push(() => child.kill("SIGTERM"));
  const lines = [];
  let onLine = () => {};
  for (const s of [child.stdout, child.stderr]) {
    s.setEncoding("utf8");
    s.on("data", (d) => d.split("\n").filter(Boolean).forEach((l) => { lines.push(l); onLine(l); }));
  }
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the ${kind} receiver did not listen within 20 s: ${lines.join(" | ")}`)), 20_000);
    onLine = (l) => { if (l.startsWith("listening")) { clearTimeout(timer); resolve(); } };
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`the ${kind} receiver exited with ${code}: ${lines.join(" | ")}`)); });
  });
  return { url: `http://127.0.0.1:${port}/hook`, lines };
}

/** A tap that passes each webhook on as it came and tampered; records both answers. */
async function startTap() {
  const tap = { target: null, answers: [] };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks);
      const headers = {};
      for (const h of ["content-type", "webhook-id", "webhook-timestamp", "webhook-signature"]) headers[h] = req.headers[h];
      const send = (b) => fetch(tap.target, { method: "POST", headers, body: b }).then((r) => r.status, (e) => `error ${e.message}`);
      const real = await send(body);
      const tampered = Buffer.from(body.toString("utf8").replace('"type":18', '"type":19'));
      check(!tampered.equals(body), "the webhook has no \"type\":18 to tamper with");
      tap.answers.push({ id: headers["webhook-id"], real, tampered: await send(tampered) });
      res.writeHead(typeof real === "number" ? real : 502).end();
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  t.cleanups.push(() => new Promise((r) => server.close(r)));
  tap.url = `http://127.0.0.1:${server.address().port}/hook`;
  return tap;
}

async function run() {
  const ff = await t.step("start footfall", () => t.startFootfall(() => ({
    FOOTFALL__DELIVERY__ALLOW_PRIVATE_TARGETS: "true",
    FOOTFALL__DEMO__ENABLED: "true", // the demo account is the one with the shipped token
  })));
  const site = (await api(ff, "POST", "/api/v4/sites", [{ name: "Shop", url: "https://shop.example", visit_idle_seconds: 1 }]))._embedded.sites[0];
  const form = (await api(ff, "POST", "/api/v4/forms", [{ name: "Contact", site_id: site.id, pipeline_id: 1 }]))._embedded.forms[0];
  const taps = {};
  for (const kind of Object.keys(RECEIVERS)) {
    taps[kind] = await startTap();
    const handler = (await api(ff, "POST", "/api/v4/handlers", [{
      code: `${kind}-receiver`, name: `${kind} receiver`, webhook_url: taps[kind].url,
      settings: { message: { name: "Message", type: "text", required: true } },
    }]))._embedded.handlers[0];
    const receiver = await t.step(`start the ${kind} receiver with its handler's secret`, () => startReceiver(kind, handler.secret));
    taps[kind].target = receiver.url;
    taps[kind].lines = receiver.lines;
    await api(ff, "POST", "/api/v4/actions", [{
      pipeline_id: 1, status_ids: [1002], event: "site_visit", handler: handler.code,
      site_url: "https://shop.example", delay_seconds: 0, settings: { message: "Hi {{contact.name}}" },
    }]);
  }
  const beacon = (vid, url) => fetch(`${ff}/v1/collect`, { method: "POST", headers: { "User-Agent": UA }, body: JSON.stringify({ site: site.key, vid, url, title: "Page" }) });
  await t.step("a visitor submits the form, is accepted, comes back: one webhook per handler", async () => {
    const { vid } = await (await beacon(null, "https://shop.example/")).json();
    const res = await fetch(`${ff}/v1/forms/${form.id}/submit`, {
      method: "POST", headers: { "User-Agent": UA, "Content-Type": "application/json" },
      body: JSON.stringify({ vid, page: "https://shop.example/contact", fields: { name: "Anna", email: "anna@example.com" } }),
    });
    check(res.status === 201, `the form answered ${res.status}`);
    const { uid } = await res.json();
    await api(ff, "POST", `/api/v4/leads/unsorted/${uid}/accept`, { status_id: 1002 });
    await sleep(1200); // the site's 1 s visit gap
    await beacon(vid, "https://shop.example/pricing");
  });
  for (const [kind, tap] of Object.entries(taps)) {
    await t.step(`the ${kind} receiver verified the real webhook and refused the tampered one`, async () => {
      const end = Date.now() + 20_000;
      while (!tap.answers.length && Date.now() < end) await sleep(100);
      check(tap.answers.length, `no webhook reached the ${kind} receiver's tap`);
      const [{ id, real, tampered }] = tap.answers;
      check(real === 204, `the ${kind} receiver answered ${real} to the real webhook: ${tap.lines.join(" | ")}`);
      check(tampered === 400, `the ${kind} receiver answered ${tampered} to the tampered webhook: ${tap.lines.join(" | ")}`);
      check(tap.lines.some((l) => l.startsWith(`verified ${id} site_visit`) && l.includes("Hi Anna")), `the ${kind} receiver did not print the event: ${tap.lines.join(" | ")}`);
      check(tap.lines.some((l) => l.startsWith(`refused ${id}`)), `the ${kind} receiver did not say it refused: ${tap.lines.join(" | ")}`);
    });
  }
}

try {
  await run();
  await t.cleanup();
  console.log(`example receivers: 2 passed, 0 failed (${((Date.now() - t.started) / 1000).toFixed(1)} s)`);
  process.exit(0);
} catch (e) {
  console.error(`\nexample receivers FAILED: ${e.message}`);
  console.error("last lines of footfall's log:\n" + t.footfallLog.slice(-15).join("\n"));
  await t.cleanup();
  process.exit(1);
}
