// Consent and opt-out in a real browser (headless Chromium through playwright-core)
// against the real footfall binary. The site's pages use the snippets footfall's API
// gives for each site:
//
//   1. a site with `consent: "required"`: before footfall('consent', true) the page sends
//      no request to footfall and leaves no footfall cookie or storage; after it, beacons
//      flow, and a reload keeps them flowing (the consent is remembered); after
//      footfall('consent', false) they stop and footfall's cookies and storage are gone;
//      a consent queued before the script loads (README's stub) counts;
//   2. a site with `respect_opt_out`: a browser with navigator.globalPrivacyControl sends
//      nothing; the same browser on a site that does not respect opt-outs is tracked (so
//      the test can tell the two apart).
//
// Run: node tests/browser/consent.mjs (scripts/test.sh does, after `cargo build`).

import http from "node:http";
import { Harness, WAIT, api, check, sleep, USER_AGENT, QUIET_MS } from "./harness.mjs";


const t = new Harness("consent");
const step = (name, work) => t.step(name, work);

/** The site's pages: /<name> carries the snippet of site <name>; ?queued adds a consent
 * queued before the script. */
async function startSite(snippets) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://localhost");
    const snippet = snippets[url.pathname.slice(1)];
    if (req.method !== "GET" || !snippet) {
      res.writeHead(404);
      res.end();
      return;
    }
    const queued = url.searchParams.has("queued")
      ? `<script>window.footfall = window.footfall || function () { (footfall.q = footfall.q || []).push(arguments); };
footfall("consent", true);</script>` : "";
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
    res.end(`<!doctype html><html><head><title>Page</title>${queued}${snippet}</head>
<body><h1>Page</h1></body></html>`);
  });
  const port = await t.listen(server);
  return `http://localhost:${port}`;
}

/** Counts the page's requests to footfall's beacon endpoint. */
function beacons(page, ff) {
  const seen = [];
  page.on("request", (r) => {
    if (r.url().startsWith(`${ff}/v1/collect`)) seen.push(r.url());
  });
  return seen;
}

async function waitForMore(seen, than) {
  const deadline = Date.now() + WAIT;
  while (seen.length <= than) {
    check(Date.now() < deadline, `no beacon after ${than} (waited ${WAIT} ms)`);
    await sleep(50);
  }
}

/** footfall's cookies and storage as the page sees them. */
async function stored(page, context) {
  const cookies = (await context.cookies()).filter((c) => c.name.startsWith("ff_")).map((c) => c.name);
  const storage = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("ff_")));
  return { cookies, storage };
}

async function run() {
  const ff = await step("start footfall with the shipped config.toml", () => t.startFootfall());
  const created = await api(ff, "POST", "/api/v4/sites", [
    { name: "Consent shop", url: "http://localhost", hosts: ["localhost"], consent: "required", consent_days: 30 },
    { name: "Private shop", url: "http://localhost", hosts: ["localhost"], respect_opt_out: true },
    { name: "Plain shop", url: "http://localhost", hosts: ["localhost"] },
  ]);
  const [consentSite, privateSite, plainSite] = created._embedded.sites;
  check(consentSite.snippet.includes('data-consent="30"'), `snippet: ${consentSite.snippet}`);
  check(privateSite.snippet.includes("data-opt-out"), `snippet: ${privateSite.snippet}`);
  const origin = await step("serve the sites' pages", () =>
    startSite({ consent: consentSite.snippet, private: privateSite.snippet, plain: plainSite.snippet }));

  const browser = await t.chromium();

  {
    const context = await browser.newContext({ userAgent: USER_AGENT });
    context.setDefaultTimeout(WAIT);
    const page = await context.newPage();
    const seen = beacons(page, ff);

    await step("before consent: no request to footfall, no cookie, no storage", async () => {
      await page.goto(`${origin}/consent`);
      await page.waitForFunction(() => typeof window.footfall === "function");
      await page.evaluate(() => history.pushState({}, "", "/consent#next"));
      await sleep(QUIET_MS);
      check(seen.length === 0, `beacons before consent: ${JSON.stringify(seen)}`);
      const s = await stored(page, context);
      check(s.cookies.length === 0 && s.storage.length === 0, `stored before consent: ${JSON.stringify(s)}`);
    });

    await step("footfall('consent', true): beacons flow, the consent is remembered", async () => {
      await page.evaluate(() => window.footfall("consent", true));
      await waitForMore(seen, 0);
      const s = await stored(page, context);
      check(s.cookies.includes("ff_consent"), `no consent cookie: ${JSON.stringify(s)}`);
      const deadline = Date.now() + WAIT;
      while (!(await stored(page, context)).cookies.includes("ff_vid")) {
        check(Date.now() < deadline, "the visitor id was never kept");
        await sleep(50);
      }
    });

    await step("a reload keeps the beacons flowing", async () => {
      const before = seen.length;
      await page.reload();
      await waitForMore(seen, before);
    });

    await step("footfall('consent', false): beacons stop, footfall's cookies and storage go", async () => {
      // footfall expires its server-set (HttpOnly) copy of the id, asked by t.js.
      const forget = page.waitForResponse((r) => r.url() === `${ff}/v1/forget`);
      await page.evaluate(() => window.footfall("consent", false));
      const answered = await forget;
      const expired = (await answered.allHeaders())["set-cookie"] || "";
      check(answered.status() === 204 && /Max-Age=0/.test(expired), `forget: ${answered.status()} ${expired}`);
      const s = await stored(page, context);
      check(s.cookies.length === 0 && s.storage.length === 0, `left after withdrawal: ${JSON.stringify(s)}`);
      const before = seen.length;
      await page.evaluate(() => history.pushState({}, "", "/consent#after"));
      await page.reload();
      await page.waitForFunction(() => typeof window.footfall === "function");
      await sleep(QUIET_MS);
      check(seen.length === before, `beacons after withdrawal: ${JSON.stringify(seen.slice(before))}`);
      const again = await stored(page, context);
      check(again.cookies.length === 0 && again.storage.length === 0, `stored again: ${JSON.stringify(again)}`);
    });

    await step("a consent queued before the script loads counts", async () => {
      const before = seen.length;
      await page.goto(`${origin}/consent?queued`);
      await waitForMore(seen, before);
    });
    await context.close();
  }

  {
    const context = await browser.newContext({ userAgent: USER_AGENT });
    context.setDefaultTimeout(WAIT);
    await context.addInitScript(() =>
      Object.defineProperty(Navigator.prototype, "globalPrivacyControl", { get: () => true }));
    const page = await context.newPage();
    const seen = beacons(page, ff);

    await step("Global Privacy Control on a site that respects opt-outs: nothing is sent", async () => {
      await page.goto(`${origin}/private`);
      await page.waitForFunction(() => navigator.globalPrivacyControl === true && typeof window.footfall === "function");
      await sleep(QUIET_MS);
      check(seen.length === 0, `beacons despite GPC: ${JSON.stringify(seen)}`);
      const s = await stored(page, context);
      check(s.cookies.length === 0 && s.storage.length === 0, `stored despite GPC: ${JSON.stringify(s)}`);
    });

    await step("the same browser on a site that does not respect opt-outs is tracked", async () => {
      await page.goto(`${origin}/plain`);
      await waitForMore(seen, 0);
    });
    await context.close();
  }
}

await t.main(120, run);
