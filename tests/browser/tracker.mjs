// t.js on pages that are hard on a tracker, in a real browser (headless Chromium through
// playwright-core) against the real footfall binary:
//
//   1. a single-page app that changes route while the first beacon is still minting the
//      visitor id: every route gets its beacon, each later one with the minted id, and a
//      route's referrer is the route before it;
//   2. once the id is known, a stalled beacon holds up none after it; a page restored
//      from the back-forward cache is a page view again, unless its consent was
//      withdrawn on another page meanwhile; a prerendered page counts once shown;
//   3. a form sent while the first beacon mints the id waits for it, and carries it; a
//      form the page's own handler stops (its validation) is not sent;
//   4. when the JSON post fails, the browser's own post goes through even on a form whose
//      button is named "submit" and which holds a file input (multipart by default),
//      and footfall records the lead;
//   5. on a site that asks for consent, an id kept from before (an expired consent) is
//      neither handed to the page nor kept.
//
// Run: node tests/browser/tracker.mjs (scripts/test.sh does, after `cargo build`).

import http from "node:http";
import { Harness, WAIT, api, check, sleep, USER_AGENT, QUIET_MS } from "./harness.mjs";


const t = new Harness("tracker");
const step = (name, work) => t.step(name, work);

/** The site's pages: /<site>/<anything> carries site <site>'s snippet; /plain/form-* a form. */
async function startSite(snippets, formOf) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://localhost");
    const [, name, rest] = url.pathname.split("/");
    const snippet = snippets[name];
    if (req.method !== "GET" || !snippet) {
      res.writeHead(404);
      res.end();
      return;
    }
    let body = "<h1>Page</h1>";
    if (rest === "form-validated") {
      // The page's validation refuses the form (as a required checkbox left empty would).
      body = `<form data-footfall-form="${formOf()}" onsubmit="event.preventDefault(); window.refused = 1">
<input name="name" value="Val Idation"><input name="email" value="val@example.com"><button>Send</button></form>`;
    } else if (rest === "form-quick") {
      body = `<form data-footfall-form="${formOf()}"><input name="name" value="Quick Sender">
<input name="email" value="quick@example.com"><button>Send</button></form>`;
    } else if (rest === "form-hard") {
      body = `<form data-footfall-form="${formOf()}" method="post" enctype="multipart/form-data">
<input name="name" value="Fall Back"><input name="email" value="fall.back@example.com">
<input type="file" name="cv"><button type="submit" name="submit" value="go">Send</button></form>`;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
    res.end(`<!doctype html><html><head><title>Page</title>${snippet}</head><body>${body}</body></html>`);
  });
  const port = await t.listen(server);
  return `http://localhost:${port}`;
}

/** The beacons the page sends to footfall, their bodies parsed. */
function beacons(page, ff) {
  const seen = [];
  page.on("request", (r) => {
    if (r.url() === `${ff}/v1/collect`) seen.push(JSON.parse(r.postData()));
  });
  return seen;
}

/** Holds back the answer to the page's first beacon a second: its id is being minted. */
async function holdFirstBeacon(page, ff) {
  let first = true;
  await page.route(`${ff}/v1/collect`, async (route) => {
    if (first) {
      first = false;
      await sleep(1000);
    }
    await route.continue();
  });
}

async function waitFor(what, test) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    const value = await test();
    if (value) return value;
    check(Date.now() < deadline, `${what} (waited ${WAIT} ms)`);
    await sleep(50);
  }
}

async function run() {
  const ff = await step("start footfall with the shipped config.toml", () => t.startFootfall());
  const pipeline = (await api(ff, "GET", "/api/v4/leads/pipelines"))._embedded.pipelines[0];
  const created = await api(ff, "POST", "/api/v4/sites", [
    { name: "App shop", url: "http://localhost", hosts: ["localhost"] },
    { name: "Consent shop", url: "http://localhost", hosts: ["localhost"], consent: "required", consent_days: 30 },
  ]);
  const [plainSite, consentSite] = created._embedded.sites;
  let form = null;
  const origin = await step("serve the sites' pages", () =>
    startSite({ plain: plainSite.snippet, consent: consentSite.snippet }, () => form.id));
  form = (await api(ff, "POST", "/api/v4/forms", [{ name: "Contact", site_id: plainSite.id, pipeline_id: pipeline.id }]))
    ._embedded.forms[0];

  const browser = await t.chromium();
  const context = await browser.newContext({ userAgent: USER_AGENT });
  context.setDefaultTimeout(WAIT);

  await step("routes changed while the first beacon mints the id: each gets its beacon", async () => {
    const page = await context.newPage();
    const seen = beacons(page, ff);
    // The first beacon's answer is held back a second, so the app's routes change while
    // the id is being minted.
    await holdFirstBeacon(page, ff);
    await page.goto(`${origin}/plain/`);
    await page.waitForFunction(() => typeof window.footfall === "function");
    await page.evaluate(() => history.pushState({}, "", "/plain/b"));
    await sleep(100);
    await page.evaluate(() => history.pushState({}, "", "/plain/c"));
    await waitFor(`beacons of /, /b and /c: ${JSON.stringify(seen)}`, () => seen.length >= 3);
    const paths = seen.map((b) => new URL(b.url).pathname);
    check(JSON.stringify(paths) === JSON.stringify(["/plain/", "/plain/b", "/plain/c"]), `beacons: ${paths}`);
    const vid = await page.evaluate(() => new Promise((r) => window.footfall("visitor_uid", r)));
    check(vid && !seen[0].vid && seen[1].vid === vid && seen[2].vid === vid,
      `the later beacons do not carry the minted id ${vid}: ${JSON.stringify(seen)}`);
    check(seen[1].referrer === `${origin}/plain/` && seen[2].referrer === `${origin}/plain/b`,
      `a route's referrer is not the route before it: ${JSON.stringify(seen)}`);

    await step("a stalled beacon holds up none after it, once the id is known", async () => {
      let release;
      const held = new Promise((r) => { release = r; });
      await page.unroute(`${ff}/v1/collect`);
      await page.route(`${ff}/v1/collect`, async (route) => {
        if (JSON.parse(route.request().postData()).url.endsWith("/plain/d")) await held;
        await route.continue();
      });
      const before = seen.length;
      await page.evaluate(() => history.pushState({}, "", "/plain/d"));
      await sleep(100);
      await page.evaluate(() => history.pushState({}, "", "/plain/c"));
      await waitFor(`no beacon of /plain/c while /plain/d stalls: ${JSON.stringify(seen.slice(before))}`,
        () => seen.slice(before).some((b) => b.url.endsWith("/plain/c")));
      release();
    });

    await step("a page restored from the back-forward cache is a page view again", async () => {
      const before = seen.length;
      await page.evaluate(() => window.dispatchEvent(new PageTransitionEvent("pageshow", { persisted: true })));
      await waitFor("no beacon after a restore", () => seen.length > before);
      check(new URL(seen[before].url).pathname === "/plain/c", `restored: ${JSON.stringify(seen[before])}`);
    });
    await page.close();
  });

  await step("a prerendered page sends nothing until it is shown", async () => {
    const page = await context.newPage();
    // Chromium's prerendering, as a page sees it: document.prerendering, then the event.
    await page.addInitScript(() => {
      let prerendering = true;
      Object.defineProperty(Document.prototype, "prerendering", { get: () => prerendering });
      window.__show = () => {
        prerendering = false;
        document.dispatchEvent(new Event("prerenderingchange"));
      };
    });
    const seen = beacons(page, ff);
    await page.goto(`${origin}/plain/prerendered`);
    await page.waitForFunction(() => typeof window.footfall === "function");
    // A router booting in the prerendered page.
    await page.evaluate(() => history.replaceState({}, "", "/plain/prerendered?booted"));
    await sleep(QUIET_MS);
    check(seen.length === 0, `a prerendered page sent ${JSON.stringify(seen)}`);
    await page.evaluate(() => window.__show());
    await waitFor("no beacon once shown", () => seen.length === 1);
    await page.close();
  });

  await step("a page restored after consent was withdrawn on another page sends nothing", async () => {
    const page = await context.newPage();
    const seen = beacons(page, ff);
    await page.goto(`${origin}/consent/a`);
    await page.waitForFunction(() => typeof window.footfall === "function");
    await page.evaluate(() => window.footfall("consent", true));
    await waitFor("no beacon after consent", () => seen.length === 1);
    // Another page of the site withdrew it: the consent cookie is gone.
    await context.clearCookies();
    await page.evaluate(() => window.dispatchEvent(new PageTransitionEvent("pageshow", { persisted: true })));
    await sleep(QUIET_MS);
    check(seen.length === 1, `tracked after the withdrawal: ${JSON.stringify(seen.slice(1))}`);
    const vid = await page.evaluate(() => new Promise((r) => window.footfall("visitor_uid", r)));
    check(vid === null, `the restored page still hands out the withdrawn id ${vid}`);
    await page.close();
  });

  await step("a consent withdrawn while the first beacon mints asks footfall to forget at once", async () => {
    const page = await context.newPage();
    let release;
    const held = new Promise((r) => { release = r; });
    await page.route(`${ff}/v1/collect`, async (route) => {
      await held;
      await route.continue();
    });
    const forgot = page.waitForRequest(`${ff}/v1/forget`, { timeout: WAIT });
    await page.goto(`${origin}/consent/b`);
    await page.waitForFunction(() => typeof window.footfall === "function");
    await page.evaluate(() => window.footfall("consent", true));
    await page.evaluate(() => window.footfall("consent", false));
    // The beacon is still held: the forget must not wait for it (a page that reloads on
    // the withdrawal would never send it).
    await forgot;
    release();
    await page.close();
  });

  await step("a form sent while the first beacon mints the id carries that id", async () => {
    // A browser new to the site: no id yet. Its first beacon's answer is held back a
    // second, and the form is sent meanwhile.
    const fresh = await browser.newContext({ userAgent: USER_AGENT });
    fresh.setDefaultTimeout(WAIT);
    const page = await fresh.newPage();
    await holdFirstBeacon(page, ff);
    await page.goto(`${origin}/plain/form-quick`);
    await page.waitForFunction(() => typeof window.footfall === "function");
    const posted = page.waitForRequest((r) => r.url().includes("/v1/forms/") && r.method() === "POST");
    await page.click("button");
    const sent = JSON.parse((await posted).postData());
    const vid = await page.evaluate(() => new Promise((r) => window.footfall("visitor_uid", r)));
    check(vid && sent.vid === vid, `the form did not carry the minted id ${vid}: ${JSON.stringify(sent)}`);
    await fresh.close();
  });

  await step("a form the page's own validation stops is not sent", async () => {
    const page = await context.newPage();
    const posts = [];
    page.on("request", (r) => { if (r.url().includes("/v1/forms/")) posts.push(r.url()); });
    await page.goto(`${origin}/plain/form-validated`);
    await page.waitForFunction(() => typeof window.footfall === "function");
    await page.click("button");
    await page.waitForFunction(() => window.refused === 1);
    await sleep(QUIET_MS);
    check(posts.length === 0, `the refused form was sent: ${JSON.stringify(posts)}`);
    await page.close();
  });

  await step("the browser's own post, when the JSON one fails, goes through on a hard form", async () => {
    const page = await context.newPage();
    await page.goto(`${origin}/plain/form-hard`);
    await page.waitForFunction(() => typeof window.footfall === "function");
    // The JSON post fails outright (a network error), as behind a broken proxy.
    await page.route(`${ff}/v1/forms/**`, (route) =>
      route.request().headers()["content-type"]?.startsWith("application/x-www-form-urlencoded")
        ? route.continue() : route.abort());
    const answered = page.waitForResponse((r) => r.url() === `${ff}/v1/forms/${form.id}/submit` && r.request().method() === "POST"
      && (r.request().headers()["content-type"] || "").startsWith("application/x-www-form-urlencoded"));
    await page.click("button");
    const answer = await answered;
    check(answer.status() === 201, `the browser's own post answered ${answer.status()}: ${await answer.text()}`);
    const unsorted = await api(ff, "GET", "/api/v4/leads/unsorted");
    const entry = unsorted._embedded.unsorted.find((u) => u.metadata.form_page.endsWith("/plain/form-hard"));
    check(entry, `no Unsorted entry of the fallback post: ${JSON.stringify(unsorted)}`);
    const contact = await api(ff, "GET", `/api/v4/contacts/${entry._embedded.contacts[0].id}`);
    check(contact.name === "Fall Back", `the fallback post's contact: ${JSON.stringify(contact)}`);
    await page.close();
  });

  await step("consent required, an id kept from an expired consent: neither handed out nor kept", async () => {
    const page = await context.newPage();
    await context.addCookies([{ name: "ff_vid", value: "stale-signed-id", url: origin }]);
    await page.goto(`${origin}/consent/`);
    await page.waitForFunction(() => typeof window.footfall === "function");
    const vid = await page.evaluate(() => new Promise((r) => window.footfall("visitor_uid", r)));
    check(vid === null, `the stale id was handed to the page: ${vid}`);
    const left = (await context.cookies(origin)).filter((c) => c.name === "ff_vid");
    check(left.length === 0, `the stale id is still kept: ${JSON.stringify(left)}`);
    await page.close();
  });
}

await t.main(120, run);
