// The console's end-to-end test in a real browser (headless Chromium through
// playwright-core), against the real footfall binary, run as a new user runs it:
//
//   1. footfall runs with the shipped config.toml unchanged (embedded store, demo on; only
//      the port and public URL come from FOOTFALL__ variables) on a free port of 127.0.0.1;
//   2. the demo site is served by a small Node server on http://localhost:<port> — another
//      *site* than footfall's http://127.0.0.1:<port> — and the browser blocks
//      third-party cookies, so the visitor id can only travel as the tracker's
//      first-party cookie;
//   3. the visitor submits the form; in the console a site-visit action is put on
//      "First contact" for that site, the new lead is dragged from Unsorted into it, the
//      lead card is opened, the visitor comes back after the demo site's 15 s visit gap,
//      and the fired event and its delivery appear on the open card live, without a
//      reload; the webhook is in the Demo inbox within a minute of the form;
//   4. the API reference (/api/docs) is opened from the console and shows a route;
//   5. the console's own defences: a refused token kept in the tab leads to the sign-in
//      form, a contact's mailto: link cannot add header fields (an email with ? and &),
//      and sign-out leaves no toast behind;
//   6. screenshots of the board and of the lead card go to tests/artifacts/ (and to
//      docs/screenshots/, linked from the README, when FOOTFALL_UPDATE_SCREENSHOTS=1).
//
// Run: node tests/browser/console.mjs (scripts/test.sh does, after `cargo build`).
// FOOTFALL_BIN and CHROMIUM override the binary paths; KEEP_BROWSER_TMP=1 keeps temp files.
// tests/browser/engines.mjs runs the same steps in Firefox and WebKit.

import { mkdtemp, mkdir, writeFile, copyFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Harness, ROOT, ARTIFACTS, TOKEN, WAIT, api, check, sleep, CHROMIUM, CHROMIUM_ARGS, USER_AGENT } from "./harness.mjs";
import { chromium } from "../../tools/node_modules/playwright-core/index.mjs";

const DOCS_SHOTS = path.join(ROOT, "docs/screenshots");
// Headless Chromium says "HeadlessChrome", which footfall drops as a bot.
const DEADLINE = 150_000; // the whole test
// The one-minute demo: the Demo tab promises the webhook within a minute of the form.
const DEMO_PROMISE_SECONDS = 60;

const t = new Harness("chromium");
const log = (m) => t.log(m);
const step = (name, work) => t.step(name, work);
const pageErrors = [];
let sitePage = null;
let consolePage = null;

/** A few more leads so that the board looks like a working day (sent as a browser would). */
async function seedLeads(ff, formId, siteOrigin) {
  const people = [
    ["Boris Petrov", "+7 912 555-01-02", "boris@example.com"],
    ["Clara Schmidt", "+49 30 901820", "clara@example.de"],
    ["David Okafor", "+44 20 7946 0958", "david@example.co.uk"],
  ];
  const ids = [];
  for (const [name, phone, email] of people) {
    const res = await fetch(`${ff}/v1/forms/${formId}/submit`, {
      method: "POST",
      headers: { "Content-Type": "text/plain", "User-Agent": USER_AGENT, Origin: siteOrigin },
      body: JSON.stringify({ vid: null, page: `${siteOrigin}/demo/contact`, fields: { name, phone, email } }),
    });
    const text = await res.text();
    check(res.ok, `seeding a lead answered ${res.status}: ${text}`);
    ids.push(JSON.parse(text).uid);
  }
  // One lead is already being negotiated.
  await api(ff, "POST", `/api/v4/leads/unsorted/${ids[2]}/accept`, { status_id: 1003 });
}

// ---- the test ---------------------------------------------------------------------------

async function run() {
  const tmp = await mkdtemp(path.join(os.tmpdir(), "footfall-browser-"));
  if (!process.env.KEEP_BROWSER_TMP) t.cleanups.push(() => rm(tmp, { recursive: true, force: true }));
  await mkdir(ARTIFACTS, { recursive: true });

  const ff = await step("start footfall with the shipped config.toml", () => t.startFootfall());
  const demo = await api(ff, "GET", "/api/v4/demo");
  const IDLE_SECONDS = (await api(ff, "GET", `/api/v4/sites/${demo.site_id}`)).visit_idle_seconds;
  check(IDLE_SECONDS === 15, `the demo site's visit gap is ${IDLE_SECONDS} s, not 15 s`);
  const site = await step("serve the demo site from another site", () => t.startDemoSite(ff));
  log(`footfall ${ff}, demo site ${site}`);

  const context = await step("launch Chromium with third-party cookies blocked", async () => {
    // A fresh profile whose "Block third-party cookies" setting is on: the preference
    // profile.cookie_controls_mode = 1 (0 allows them, 2 blocks them in incognito only).
    // Chromium's --test-third-party-cookie-phaseout switch does not override a profile
    // that allows them, so the test sets the preference itself.
    const profile = path.join(tmp, "profile");
    await mkdir(path.join(profile, "Default"), { recursive: true });
    await writeFile(path.join(profile, "Default", "Preferences"), JSON.stringify({ profile: { cookie_controls_mode: 1 } }));
    const ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      userAgent: USER_AGENT,
      viewport: { width: 1440, height: 900 },
      locale: "en-GB",
      timezoneId: "UTC",
    });
    t.cleanups.push(() => ctx.close());
    ctx.setDefaultTimeout(WAIT);
    return ctx;
  });

  const name = "Anna Example"; // each run has a fresh store
  let lastPageView = 0;
  let formSentAt = 0;

  await step("the visitor browses the demo site and submits the form", async () => {
    sitePage = context.pages()[0] || (await context.newPage());
    watch(sitePage, "demo site");
    await sitePage.goto(`${site}/demo/home`);
    // t.js mints a visitor id and keeps it as a first-party cookie (and in localStorage).
    await sitePage.waitForFunction(() => /(?:^|; )ff_vid=/.test(document.cookie), null, { timeout: WAIT })
      .catch(() => { throw new Error("the tracker kept no visitor id: did /v1/collect answer? (see footfall's log)"); });
    await sitePage.getByRole("link", { name: "Pricing" }).click();
    await sitePage.waitForURL(/\/demo\/pricing$/);
    await sitePage.getByRole("link", { name: "Contact" }).click();
    await sitePage.getByLabel("Name").fill(name);
    await sitePage.getByLabel("Phone").fill("+7 900 123-45-67");
    await sitePage.getByLabel("Email").fill("anna@example.com");
    // A site's form often has a password and a hidden CSRF token: t.js must send neither.
    await sitePage.evaluate(() => {
      const form = document.querySelector("form[data-footfall-form]");
      for (const [type, name, value] of [["password", "password", "pw-never-leaves"], ["hidden", "csrf_token", "csrf-never-leaves"], ["text", "comment", "unmapped-never-leaves"]]) {
        const input = document.createElement("input");
        Object.assign(input, { type, name, value });
        form.appendChild(input);
      }
    });
    const sent = [];
    const onRequest = (r) => { if (r.url().includes("/submit")) sent.push(r.postData() || ""); };
    sitePage.on("request", onRequest);
    await sitePage.getByRole("button", { name: "Send" }).click();
    await sitePage.locator("#sent").waitFor({ state: "visible" })
      .catch(async () => { throw new Error(`the form was not accepted: ${await sitePage.locator("#failed").textContent()}`); });
    sitePage.off("request", onRequest);
    const posts = sent.filter((b) => b.includes("anna@example.com"));
    check(posts.length > 0, `the form post was not seen (${sent.length} requests to /submit)`);
    for (const body of posts) {
      check(!/never-leaves/.test(body), `t.js sent a password, hidden or unmapped field: ${body}`);
    }
    lastPageView = Date.now();
    formSentAt = lastPageView;
  });

  await step("third-party cookies were blocked; the first-party one is there", async () => {
    // footfall's own cookie is SameSite=Lax in the shipped config, refused cross-site
    // anyway; the probe's SameSite=None cookie shows the browser's own policy.
    const probe = await t.startCookieProbe(site);
    await sitePage.evaluate((url) => fetch(url, { credentials: "include" }).then((r) => r.text()), probe);
    const probed = (await context.cookies(probe)).map((c) => c.name);
    check(!probed.includes("probe"), `the browser kept a third-party SameSite=None cookie: third-party cookies are not blocked`);
    const third = (await context.cookies(ff)).map((c) => c.name);
    check(!third.includes("ff_vid"), `the browser kept footfall's third-party cookie (${third.join(", ")})`);
    const first = (await context.cookies(site)).map((c) => c.name);
    check(first.includes("ff_vid"), `no first-party visitor cookie on ${site} (cookies: ${first.join(", ") || "none"})`);
  });

  await step("seed three more leads", () => seedLeads(ff, demo.form_id, site));

  await step("a refused token kept in the tab leads to the sign-in form", async () => {
    consolePage = await context.newPage();
    watch(consolePage, "console");
    await consolePage.goto(`${ff}/console`);
    // A token the tab kept from before, which footfall refuses now (revoked, or another
    // footfall): the console starts with it, is refused, and asks for a token.
    await consolePage.evaluate(() => sessionStorage.setItem("footfall.token", "a-revoked-token"));
    await consolePage.reload();
    await consolePage.locator("#token").waitFor()
      .catch(async () => { throw new Error(`a refused stored token did not lead to the sign-in form; the page shows: ${(await consolePage.locator("#app").innerText()).slice(0, 200)}`); });
    await consolePage.getByText("footfall refused the token").waitFor()
      .catch(() => { throw new Error("the sign-in form does not say the stored token was refused"); });
    check(await consolePage.evaluate(() => sessionStorage.getItem("footfall.token")) === null, "the refused token is still kept in the tab");
  });

  await step("sign in to the console", async () => {
    await consolePage.locator("#token").fill("not-the-token");
    await consolePage.getByRole("button", { name: "Sign in" }).click();
    await consolePage.locator(".form-error", { hasText: "The token was refused" }).getByText("the token is not valid").waitFor()
      .catch(() => { throw new Error("a wrong token was not refused in words"); });
    await consolePage.locator("#token").fill(TOKEN);
    await consolePage.getByRole("button", { name: "Sign in" }).click();
    await consolePage.locator('.column[data-status-id="1001"] .lead-card', { hasText: name }).waitFor()
      .catch(() => { throw new Error(`the new lead "${name}" is not in the Unsorted column`); });
    await consolePage.locator('.live-status[data-state="live"]').waitFor()
      .catch(() => { throw new Error("the console did not connect to the live stream"); });
  });

  await step("add a site-visit action for the demo site to First contact", async () => {
    await consolePage.locator('.column[data-status-id="1002"] .column-add').click();
    const dialog = consolePage.locator("dialog[open]");
    await dialog.waitFor();
    check((await dialog.locator('[data-field="status_ids"]').inputValue()) === "1002", "the form did not preselect First contact");
    // An error from the API is shown in words next to its field.
    await dialog.locator('[data-field="site_url"]').fill("");
    await dialog.locator('[data-field="settings.message"]').fill("Hi {{contact.name}}, welcome back!");
    await dialog.getByRole("button", { name: "Create action" }).click();
    await dialog.locator('[data-field-wrap="site_url"] .field-error', { hasText: "needs the site URL" }).waitFor()
      .catch(() => { throw new Error("the API's field error for site_url is not shown"); });
    await dialog.locator('[data-field="site_url"]').fill(`${site}/demo`);
    await dialog.locator('[name="delay"]').fill("0");
    await dialog.getByRole("button", { name: "Create action" }).click();
    await dialog.waitFor({ state: "detached" });
    const actions = (await api(ff, "GET", "/api/v4/actions"))._embedded.actions;
    check(actions.some((a) => a.site_url && a.site_url.includes("localhost") && a.status_ids.includes(1002) && a.enabled),
      `the new action is not stored: ${JSON.stringify(actions)}`);
    await consolePage.locator('.column[data-status-id="1002"] .column-actions .chip', { hasText: "Demo inbox" }).nth(1).waitFor();
  });

  const leadId = await step("drag the lead from Unsorted into First contact", async () => {
    const card = consolePage.locator('.column[data-status-id="1001"] .lead-card', { hasText: name });
    const id = Number(await card.getAttribute("data-lead-id"));
    await card.dragTo(consolePage.locator('.column[data-status-id="1002"] .column-body'));
    await consolePage.locator(`.column[data-status-id="1002"] .lead-card[data-lead-id="${id}"]`).waitFor()
      .catch(() => { throw new Error("the card did not land in First contact"); });
    const errors = await consolePage.locator(".toast-error").allTextContents();
    check(!errors.length, `the console reported: ${errors.join(" | ")}`);
    const lead = await api(ff, "GET", `/api/v4/leads/${id}`);
    check(lead.status_id === 1002, `the lead is in status ${lead.status_id} on the server, not 1002`);
    const unsorted = (await api(ff, "GET", "/api/v4/leads/unsorted"))._embedded.unsorted;
    check(!unsorted.some((u) => u._embedded.leads[0].id === id), "the lead's Unsorted entry was not accepted");
    return id;
  });

  await step("open the lead card", async () => {
    const drawer = consolePage.locator("#lead-drawer");
    // The board redraws from the server after the move: a click on the card being
    // replaced opens nothing, so click until the card opens.
    for (let attempt = 1; ; attempt++) {
      await consolePage.locator(`.lead-card[data-lead-id="${leadId}"]`).click();
      try {
        await drawer.locator(".drawer-title", { hasText: name }).waitFor({ timeout: attempt < 5 ? 2000 : WAIT });
        break;
      } catch (e) {
        if (attempt >= 5) throw e;
      }
    }
    await drawer.locator('.tl-item[data-type="moved"]', { hasText: "Unsorted → First contact" }).waitFor();
    await drawer.locator('.tl-item[data-type="visit"] .tl-page').first().waitFor();
    check((await drawer.locator('.tl-item[data-type="event_fired"]').count()) === 0, "an event fired before the visitor came back");
    await consolePage.evaluate(() => (window.__sameDocument = true));
  });

  await step(`the visitor comes back after the ${IDLE_SECONDS} s visit gap`, async () => {
    const wait = lastPageView + IDLE_SECONDS * 1000 + 600 - Date.now();
    if (wait > 0) await sleep(wait);
    await sitePage.goto(`${site}/demo/pricing`);
  });

  await step("the fired event and its delivery appear on the open card, live", async () => {
    const drawer = consolePage.locator("#lead-drawer");
    await drawer.locator('.tl-item[data-type="event_fired"]', { hasText: "Site visit event fired" }).waitFor()
      .catch(() => { throw new Error("no event_fired entry appeared on the lead card"); });
    await drawer.locator('.tl-item[data-type="event_fired"][data-state="delivered"] .tl-attempt[data-type="delivery"][data-status="200"]').waitFor()
      .catch(() => { throw new Error("no successful delivery attempt appeared on the lead card"); });
    await drawer.locator('.tl-item[data-type="visit"]', { hasText: "Visit 2" }).waitFor();
    check(await consolePage.evaluate(() => window.__sameDocument === true), "the console page was reloaded");
    await sleep(2600); // let the "new" highlight fade before the screenshot
    // Taller, so that the whole timeline (both visits) is in the picture.
    await consolePage.setViewportSize({ width: 1440, height: 1300 });
    await consolePage.screenshot({ path: path.join(ARTIFACTS, "lead-card.png"), animations: "disabled" });
    await consolePage.setViewportSize({ width: 1440, height: 900 });
  });

  await step("the board, and the webhook in the demo inbox", async () => {
    await consolePage.keyboard.press("Escape");
    await consolePage.locator("#lead-drawer").waitFor({ state: "hidden" });
    await consolePage.mouse.move(0, 0);
    await consolePage.screenshot({ path: path.join(ARTIFACTS, "board.png"), animations: "disabled" });
    await consolePage.locator('[data-tab="demo"]').click();
    const item = consolePage.locator(`.inbox-item[data-signature-valid="true"]`, { hasText: `lead #${leadId}` });
    await item.waitFor().catch(() => { throw new Error("the webhook is not in the demo inbox with a valid signature"); });
    const seconds = (Date.now() - formSentAt) / 1000;
    log(`the webhook was in the Demo inbox ${seconds.toFixed(1)} s after the form`);
    check(seconds <= DEMO_PROMISE_SECONDS, `the demo took ${seconds.toFixed(1)} s from the form to the inbox, more than the promised minute`);
    check(await item.getByText("welcome back!").count(), "the macro in the webhook's message was not filled in");
    check(await consolePage.getByText(`Wait ${IDLE_SECONDS} seconds`).count(), "the Demo tab does not tell the demo site's visit gap");
    await consolePage.screenshot({ path: path.join(ARTIFACTS, "demo.png"), animations: "disabled" });
  });

  await step("the API reference opens from the console and shows a route", async () => {
    const [docs] = await Promise.all([
      context.waitForEvent("page"),
      consolePage.locator('[data-link="api-docs"]').click(),
    ]);
    watch(docs, "API reference");
    // Everything comes from footfall: no CDN, no web fonts from elsewhere.
    const external = [];
    docs.on("request", (r) => { if (!/^(data:|blob:|http:\/\/127\.0\.0\.1[:/])/.test(r.url())) external.push(r.url()); });
    await docs.waitForURL(/\/api\/docs/);
    // RapiDoc renders the document in its shadow DOM, which Playwright's locators pierce.
    await docs.locator("rapi-doc").getByText("/api/v4/leads/unsorted/{uid}/accept").first().waitFor()
      .catch(() => { throw new Error("the API reference does not show the accept route"); });
    check(!external.length, `the API reference loaded from elsewhere: ${external.join(", ")}`);
    await docs.screenshot({ path: path.join(ARTIFACTS, "api-docs.png") });
    await docs.close();
  });

  await step("a contact's email link names only the address, whatever the address holds", async () => {
    // footfall's email check lets ?, & and % through: put in the link as it is, this
    // address would add a Bcc and a subject to the marketer's mail.
    const email = "jane@x.com?bcc=spy%40evil.example&subject=Invoice";
    const res = await fetch(`${ff}/v1/forms/${demo.form_id}/submit`, {
      method: "POST",
      headers: { "Content-Type": "text/plain", "User-Agent": USER_AGENT, Origin: site },
      body: JSON.stringify({ vid: null, page: `${site}/demo/contact`, fields: { name: "Jane Query", phone: "+1 555 0100", email } }),
    });
    check(res.ok, `the form refused ${email}: ${res.status} ${await res.text()}`);
    await consolePage.locator('[data-tab="board"]').click();
    const card = consolePage.locator('.column[data-status-id="1001"] .lead-card', { hasText: "Jane Query" });
    await card.waitFor().catch(() => { throw new Error("the lead with the odd email is not on the board"); });
    await card.click();
    const link = consolePage.locator("#lead-drawer .contact-line", { hasText: email });
    await link.waitFor();
    const href = await link.getAttribute("href");
    const parsed = new URL(href);
    check(parsed.protocol === "mailto:" && parsed.search === "" && !/[?&]/.test(href),
      `the mailto: link can add header fields: ${href}`);
    check(decodeURIComponent(parsed.pathname) === email, `the mailto: link does not name the address: ${href}`);
    const plain = await consolePage.evaluate(() => import("/console/lead.js").then((m) => m.mailtoHref("anna@example.com")));
    check(plain === "mailto:anna@example.com", `an ordinary address changed in its link: ${plain}`);
    await consolePage.keyboard.press("Escape");
    await consolePage.locator("#lead-drawer").waitFor({ state: "hidden" });
  });

  await step("sign-out leaves no toast behind", async () => {
    // An error toast stays until dismissed, and toasts live outside #app.
    await consolePage.evaluate(() => import("/console/ui.js").then((m) => m.toast("Could not do something", { kind: "error", lines: ["a reason"] })));
    await consolePage.locator("#toasts .toast-error").waitFor();
    await consolePage.getByRole("button", { name: "Sign out" }).click();
    await consolePage.locator("#token").waitFor();
    const left = await consolePage.locator("#toasts .toast").allTextContents();
    check(!left.length, `toasts outlived the sign-out: ${left.join(" | ")}`);
  });

  await step("a page under a headless browser's own user agent: the dropped beacon logs no CORS error", async () => {
    // Headless Chromium's own user agent (HeadlessChrome) is dropped as a bot; its
    // beacon is still answered with the CORS headers of a recorded one.
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.setUserAgentOverride", { userAgent: USER_AGENT.replace("Chrome/", "HeadlessChrome/") });
    const errors = [];
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    const [beacon] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith("/v1/collect")),
      page.goto(`${site}/demo/pricing`),
    ]);
    check(beacon.status() === 204, `the bot's beacon answered ${beacon.status()}`);
    check(beacon.headers()["access-control-allow-origin"] === site, `the bot's beacon has no CORS header for ${site}: ${JSON.stringify(beacon.headers())}`);
    await page.evaluate(() => new Promise((r) => setTimeout(r, 200))); // let a CORS error reach the console
    check(!errors.some((e) => /CORS|Access-Control/i.test(e)), `the page logged: ${errors.join(" | ")}`);
    await page.close();
  });

  check(!pageErrors.length, `the pages threw: ${pageErrors.join(" | ")}`);
  if (process.env.FOOTFALL_UPDATE_SCREENSHOTS === "1") {
    await mkdir(DOCS_SHOTS, { recursive: true });
    for (const shot of ["board.png", "lead-card.png"]) await copyFile(path.join(ARTIFACTS, shot), path.join(DOCS_SHOTS, shot));
  }
}

function watch(page, label) {
  page.on("pageerror", (e) => pageErrors.push(`${label}: ${e.message}`));
  page.on("console", (m) => {
    // Failed API calls are asserted where they are expected; other errors are worth seeing.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) log(`${label} console: ${m.text()}`);
  });
}

async function saveFailureShots() {
  for (const [page, file] of [[consolePage, "failure-console.png"], [sitePage, "failure-site.png"]]) {
    if (page && !page.isClosed()) await page.screenshot({ path: path.join(ARTIFACTS, file) }).catch(() => {});
  }
}

const watchdog = setTimeout(() => {
  console.error(`browser test FAILED: no result after ${DEADLINE / 1000} s`);
  t.killAll();
  process.exit(1);
}, DEADLINE);

try {
  await run();
  await t.cleanup();
  clearTimeout(watchdog);
  log("screenshots: tests/artifacts/{board,lead-card,demo,api-docs}.png");
  console.log(`Chromium browser test: 1 passed, 0 failed (${((Date.now() - t.started) / 1000).toFixed(1)} s)`);
  process.exit(0);
} catch (e) {
  console.error(`\nbrowser test FAILED: ${e.message}`);
  await saveFailureShots();
  console.error(`screenshots of the pages: ${ARTIFACTS}/failure-*.png`);
  console.error("last lines of footfall's log:\n" + t.footfallLog.slice(-25).join("\n"));
  await t.cleanup();
  clearTimeout(watchdog);
  process.exit(1);
}
