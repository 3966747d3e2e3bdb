// Leads by API with the visitor's uid, in a real browser (headless Chromium through
// playwright-core) against the real footfall binary:
//
//   1. a page of a site (served on http://localhost:<port>, another site than footfall's)
//      loads t.js and asks it for the visitor's uid with footfall('visitor_uid', …), queued
//      before the script loads; the browser views two pages anonymously;
//   2. the page hands the uid to the site's own backend (a small Node server), which creates
//      the lead with it through POST /api/v4/leads/unsorted/forms;
//   3. the lead is accepted into "First contact", where a site-visit action waits;
//   4. the browser's next visit fires the action: the event is delivered to the demo's
//      handler; the lead's timeline shows the page views from before the API call.
//
// Run: node tests/browser/visitor_uid.mjs (scripts/test.sh does, after `cargo build`).

import http from "node:http";
import { Harness, WAIT, TOKEN, api, check, pageViews, sleep, USER_AGENT } from "./harness.mjs";

const IDLE_SECONDS = 2; // the test site's visit gap
const FIRST_CONTACT = 1002;

const t = new Harness("visitor_uid");
const step = (name, work) => t.step(name, work);

/** The site: its pages, and its backend's sign-up route, which calls footfall's API. */
async function startSite(ff, siteKey, pipelineId) {
  let signups = 0;
  const page = (title) => `<!doctype html><html><head><title>${title}</title>
<script>window.footfall = [["visitor_uid", function (uid) { window.visitorUid = uid; }]];</script>
<script async src="${ff}/t.js" data-site="${siteKey}"></script></head>
<body><h1>${title}</h1><a href="/pricing">Pricing</a></body></html>`;
  const server = http.createServer(async (req, res) => {
    if (req.method === "GET" && (req.url === "/" || req.url === "/pricing")) {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
      res.end(page(req.url === "/" ? "Home" : "Pricing"));
      return;
    }
    if (req.method === "POST" && req.url === "/backend/signup") {
      // The site's backend: the uid from the page goes with the new lead to footfall.
      let body = "";
      for await (const chunk of req) body += chunk;
      const { uid, name, email } = JSON.parse(body);
      const answer = await fetch(`${ff}/api/v4/leads/unsorted/forms`, {
        method: "POST",
        headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
        body: JSON.stringify([{
          source_uid: "backend-signup", source_name: "Sign-up", pipeline_id: pipelineId,
          metadata: { form_id: "signup", form_name: "Sign-up", form_page: `http://${req.headers.host}/`,
            ip: req.socket.remoteAddress, referer: "", visitor_uid: uid },
          _embedded: { contacts: [{ name, custom_fields_values: [{ field_code: "EMAIL", values: [{ value: email }] }] }] },
        }]),
      });
      signups++;
      res.writeHead(answer.status, { "content-type": "application/json" });
      res.end(await answer.text());
      return;
    }
    res.writeHead(404);
    res.end();
  });
  const port = await t.listen(server);
  return { origin: `http://localhost:${port}`, signups: () => signups };
}

async function run() {
  const ff = await step("start footfall with the shipped config.toml", () => t.startFootfall());
  const demo = await api(ff, "GET", "/api/v4/demo");
  const pipeline = (await api(ff, "GET", "/api/v4/leads/pipelines"))._embedded.pipelines[0];

  // The site's key is needed to serve its pages, its host to create it: create it with
  // the host the pages will be served on (localhost), then serve them.
  const created = await api(ff, "POST", "/api/v4/sites", [{
    name: "Backend shop", url: "http://localhost", hosts: ["localhost"], visit_idle_seconds: IDLE_SECONDS,
  }]);
  const siteKey = created._embedded.sites[0].key;
  const site = await step("serve the site's pages and backend", () => startSite(ff, siteKey, pipeline.id));
  await step("a site-visit action on First contact for the site", () =>
    api(ff, "POST", "/api/v4/actions", [{
      pipeline_id: pipeline.id, status_ids: [FIRST_CONTACT], event: "site_visit", handler: demo.handler,
      site_url: site.origin, delay_seconds: 0, settings: { message: "{{contact.name}} is back" },
    }]));

  const browser = await t.chromium();
  const context = await browser.newContext({ userAgent: USER_AGENT });
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();

  const uid = await step("the page gets the visitor's uid from footfall('visitor_uid', …)", async () => {
    await page.goto(`${site.origin}/`);
    await page.waitForFunction(() => typeof window.visitorUid === "string" && window.visitorUid.length > 0);
    await page.getByRole("link", { name: "Pricing" }).click();
    await page.waitForURL(/\/pricing$/);
    const again = await page.evaluate(() => new Promise((resolve) => window.footfall("visitor_uid", resolve)));
    const first = await page.evaluate(() => window.visitorUid);
    check(again === first, `the uid changed between pages: ${first} then ${again}`);
    return first;
  });

  const lead = await step("the site's backend creates the lead with the uid (POST /leads/unsorted/forms)", async () => {
    const answer = await page.evaluate(async (uid) => {
      const res = await fetch("/backend/signup", {
        method: "POST", body: JSON.stringify({ uid, name: "Gleb", email: "gleb@example.com" }),
      });
      return { status: res.status, body: await res.json() };
    }, uid);
    check(answer.status === 200, `the backend's API call answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    const entry = answer.body._embedded.unsorted[0];
    return { id: entry._embedded.leads[0].id, uid: entry.uid };
  });

  await step("the lead's timeline has the page views from before the API call", async () => {
    const views = await pageViews(ff, lead.id);
    check(views.includes("/") && views.includes("/pricing"), `page views on the lead: ${JSON.stringify(views)}`);
  });

  await step("the lead is accepted into First contact", () =>
    api(ff, "POST", `/api/v4/leads/unsorted/${lead.uid}/accept`, { status_id: FIRST_CONTACT }));

  await step("the browser's next visit fires the site-visit webhook", async () => {
    await sleep((IDLE_SECONDS + 1) * 1000);
    await page.goto(`${site.origin}/`);
    const deadline = Date.now() + WAIT;
    for (;;) {
      const events = await api(ff, "GET", `/api/v4/webhook_events?lead_id=${lead.id}`);
      const fired = ((events && events._embedded.events) || []).filter((e) => e.type_code === "site_visit");
      if (fired.some((e) => e.state === "delivered")) break;
      check(Date.now() < deadline, `no delivered site_visit event for lead ${lead.id}: ${JSON.stringify(events)}`);
      await sleep(200);
    }
  });
}

await t.main(120, run);
