// The five steps in Firefox and in WebKit, through WebDriver, against the real footfall
// binary started with the shipped config.toml:
//
//   node tests/browser/engines.mjs firefox     (Firefox ESR, headless, geckodriver)
//   xvfb-run -a node tests/browser/engines.mjs webkit   (WebKitGTK's MiniBrowser)
//
// The demo site is served from http://localhost:<port>, another site than footfall's
// http://127.0.0.1:<port>, and each engine keeps its default cookie policy (Firefox's
// Total Cookie Protection partitions third-party cookies; MiniBrowser blocks them, as
// Safari does). The visitor browses (page views, SPA navigation), submits the form; in
// the console the lead is accepted from Unsorted into "First contact", which has a
// site-visit action for the site, and its card is opened; the visitor comes back after
// the demo site's 15 s visit gap, and the fired webhook shows on the open card, live, and
// in the Demo inbox. What the engine did with cookies, storage and fetch keepalive is
// printed at the end, and screenshots go to tests/artifacts/<engine>-*.png.
//
// GECKODRIVER, FIREFOX, WEBKIT_DRIVER and MINIBROWSER override the binaries' paths.

import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { Harness, ARTIFACTS, TOKEN, WAIT, api, check, pageViews, sleep, ROOT } from "./harness.mjs";
import { Session, startDriver } from "./webdriver.mjs";

const engine = process.argv[2];
const ENGINES = {
  firefox: {
    name: "Firefox",
    blocksThirdPartyCookies: false,
    driver: process.env.GECKODRIVER || path.join(ROOT, "tools/cargo/bin/geckodriver"),
    args: ["--log", "warn"],
    capabilities: {
      browserName: "firefox",
      "moz:firefoxOptions": {
        binary: process.env.FIREFOX || "/usr/bin/firefox-esr",
        args: ["-headless", "-width", "1440", "-height", "900"],
        // No calls home from the test machine's closed network.
        prefs: { "app.update.disabledForTesting": true, "browser.shell.checkDefaultBrowser": false, "datareporting.policy.dataSubmissionEnabled": false },
      },
    },
  },
  webkit: {
    name: "WebKit",
    blocksThirdPartyCookies: true,
    driver: process.env.WEBKIT_DRIVER || "/usr/bin/WebKitWebDriver",
    args: [],
    capabilities: {
      "webkitgtk:browserOptions": {
        binary: process.env.MINIBROWSER || "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser",
        args: ["--automation"],
      },
    },
  },
};
const E = ENGINES[engine];
if (!E) {
  console.error(`usage: node tests/browser/engines.mjs ${Object.keys(ENGINES).join("|")}`);
  process.exit(2);
}
const DEADLINE = 150_000; // the whole test
const NAME = "Anna Example";
const t = new Harness(engine);
const behaviour = []; // what the engine was seen to do
let session = null;
let siteWindowHandle = null;

async function shot(name) {
  if (!session) return;
  await writeFile(path.join(ARTIFACTS, `${engine}-${name}.png`), await session.screenshot());
}

async function run() {
  await mkdir(ARTIFACTS, { recursive: true });
  const ff = await t.step("start footfall with the shipped config.toml", () => t.startFootfall());
  const demo = await api(ff, "GET", "/api/v4/demo");
  const demoSite = await api(ff, "GET", `/api/v4/sites/${demo.site_id}`);
  const idle = demoSite.visit_idle_seconds;
  check(idle === 15, `the demo site's visit gap is ${idle} s, not 15 s`);
  const site = await t.step("serve the demo site from another site", () => t.startDemoSite(ff));
  t.log(`footfall ${ff}, demo site ${site}`);
  // The demo's own action is for footfall's /demo; this one is for the site on localhost.
  await api(ff, "POST", "/api/v4/actions", [{
    pipeline_id: 1, status_ids: [1002], event: "site_visit", handler: "demo-inbox",
    site_url: `${site}/demo`, delay_seconds: 0, settings: { message: "Hi {{contact.name}}, welcome back!" },
  }]);

  const driver = await t.step(`start ${E.name}'s WebDriver`, () => startDriver(E.driver, E.args));
  t.processes.push({ kill: driver.kill });
  t.cleanups.push(() => driver.stop());
  session = await t.step(`open ${E.name}`, () => Session.create(driver, E.capabilities));
  t.cleanups.push(() => session.quit());
  t.log(`${session.capabilities.browserName} ${session.capabilities.browserVersion}`);
  await session.setWindowRect({ width: 1440, height: 900 }).catch(() => {});
  const siteWindow = await session.window();
  siteWindowHandle = siteWindow;

  let formSentAt = 0;
  await t.step("the visitor browses the demo site (SPA navigation) and submits the form", async () => {
    await session.goto(`${site}/demo/home`);
    await session.waitUntil("return /(?:^|; )ff_vid=/.test(document.cookie)", "the tracker kept no first-party cookie (did /v1/collect answer?)");
    behaviour.push("first-party cookie set by t.js: kept");
    const stored = await session.run("try { return !!localStorage.getItem('ff_vid'); } catch (e) { return 'error: ' + e.message; }");
    check(stored === true, `localStorage did not keep the visitor id: ${stored}`);
    behaviour.push("localStorage: kept the visitor id");
    const transport = await session.run("return { keepalive: 'keepalive' in Request.prototype, sendBeacon: typeof navigator.sendBeacon == 'function' }");
    behaviour.push(`fetch keepalive: ${transport.keepalive ? "supported" : "not supported"}; sendBeacon: ${transport.sendBeacon ? "present" : "absent"} (t.js sends with fetch keepalive)`);
    await session.click(await session.waitFor('nav a[data-page="pricing"]'));
    await session.waitUntil("return location.pathname == '/demo/pricing'", "the Pricing link did not navigate");
    // A hash router's navigation: t.js hears it through popstate, which the engine fires
    // for a fragment navigation too (t.js has no hashchange listener).
    // The page's fetch is watched only for this step (a function the WebDriver script made
    // is not one the page may keep calling: Firefox runs such scripts in a sandbox).
    await session.run(`window.__beacons = [];
      window.__fetch = window.fetch;
      window.fetch = function (url, init) {
        if (String(url).includes("/v1/collect")) window.__beacons.push(JSON.parse(init.body).url);
        return window.__fetch.apply(window, arguments);
      };
      location.hash = "plans";`);
    await session.waitUntil("return window.__beacons.some((u) => u.endsWith('#plans'))", "a hash navigation sent no page view");
    await session.run("window.fetch = window.__fetch;");
    behaviour.push("hash navigation (location.hash): popstate fired, page view sent");
    await session.click(await session.waitFor('nav a[data-page="contact"]'));
    await session.type(await session.waitFor('input[name="name"]'), NAME);
    await session.type(await session.waitFor('input[name="phone"]'), "+7 900 123-45-67");
    await session.type(await session.waitFor('input[name="email"]'), "anna@example.com");
    await session.click(await session.waitFor('form[data-footfall-form] button'));
    await session.waitFor("#sent").catch(async (e) => {
      const why = await session.run("return document.querySelector('#failed').textContent").catch(() => "");
      throw new Error(`the form was not accepted: ${why || e.message}`);
    });
    formSentAt = Date.now();
    await shot("site");
  });

  const leadId = await t.step("the lead holds the anonymous page views, SPA ones included", async () => {
    const unsorted = (await api(ff, "GET", "/api/v4/leads/unsorted"))._embedded.unsorted;
    const entry = unsorted.find((u) => u.metadata && u.metadata.form_page && u.metadata.form_page.startsWith(site));
    check(entry, `no Unsorted entry from ${site}: ${JSON.stringify(unsorted)}`);
    const id = entry._embedded.leads[0].id;
    const paths = await pageViews(ff, id);
    for (const p of ["/demo/home", "/demo/pricing", "/demo/contact"]) check(paths.includes(p), `no page view of ${p} on the lead: ${paths.join(", ")}`);
    return id;
  });

  const consoleWindow = await t.step("sign in to the console in a new tab; footfall's cookie was not kept there", async () => {
    const probe = await t.startCookieProbe(site);
    const handle = await session.newWindow();
    await session.switchTo(handle);
    await session.goto(`${ff}/console`);
    const third = (await session.cookies()).map((c) => c.name);
    check(!third.includes("ff_vid"), `footfall's own origin holds ff_vid from the cross-site form post (${third.join(", ")})`);
    behaviour.push("footfall's own cookie from the cross-site form post: not kept (the shipped config's SameSite=Lax)");
    // The engine's default policy for a third-party SameSite=None cookie, as seen from
    // that site's own top-level page (Firefox keeps it partitioned under the site that
    // embedded it, so it is not there; MiniBrowser blocks it).
    await session.switchTo(siteWindowHandle);
    await session.cmd("POST", "/execute/async", { script: "const done = arguments[1]; fetch(arguments[0], { credentials: 'include' }).then(() => done(true), () => done(false))", args: [probe] });
    await session.switchTo(handle);
    await session.goto(probe);
    const probed = (await session.cookies()).map((c) => c.name).includes("probe");
    if (E.blocksThirdPartyCookies) {
      check(!probed, `${E.name} kept a third-party SameSite=None cookie: its default policy should block it`);
      behaviour.push("a third-party SameSite=None cookie (probe server on 127.0.0.1): blocked by the default policy");
    } else {
      // Firefox ESR 153 kept it here, even with network.cookie.cookieBehavior = 1: its
      // cookie policies were not seen to apply between loopback hosts. t.js does not
      // depend on either outcome.
      behaviour.push(`a third-party SameSite=None cookie (probe server on 127.0.0.1): ${probed ? "kept, unpartitioned (no third-party policy seen between loopback hosts)" : "not kept"}`);
    }
    await session.goto(`${ff}/console`);
    await session.type(await session.waitFor("#token"), TOKEN);
    await session.click(await session.waitFor("button", { text: "Sign in" }));
    await session.waitFor(`.column[data-status-id="1001"] .lead-card[data-lead-id="${leadId}"]`);
    await session.waitFor('.live-status[data-state="live"]');
    return handle;
  });

  await t.step("accept the lead from Unsorted into First contact and open its card", async () => {
    const card = `.column[data-status-id="1001"] .lead-card[data-lead-id="${leadId}"]`;
    await session.click(await session.waitFor(`${card} button`, { text: "Accept" }));
    await session.waitFor(`.column[data-status-id="1002"] .lead-card[data-lead-id="${leadId}"]`);
    const lead = await api(ff, "GET", `/api/v4/leads/${leadId}`);
    check(lead.status_id === 1002, `the lead is in status ${lead.status_id} on the server, not 1002`);
    // The board redraws from the server after the move: a click on the card being
    // replaced opens nothing, so click until the card opens.
    for (let attempt = 1; ; attempt++) {
      await session.click(await session.waitFor(`.column[data-status-id="1002"] .lead-card[data-lead-id="${leadId}"]`)).catch(() => {});
      try {
        await session.waitFor("#lead-drawer .drawer-title", { text: NAME, timeout: attempt < 5 ? 2000 : WAIT });
        break;
      } catch (e) {
        if (attempt >= 5) throw e;
      }
    }
    await session.waitFor('#lead-drawer .tl-item[data-type="moved"]', { text: "First contact" });
    const fired = await session.run(`return document.querySelectorAll('#lead-drawer .tl-item[data-type="event_fired"]').length`);
    check(fired === 0, "an event fired before the visitor came back");
    await session.run("window.__sameDocument = true");
  });

  await t.step(`the visitor comes back after the demo site's ${idle} s visit gap, and navigates (SPA)`, async () => {
    const wait = formSentAt + idle * 1000 + 600 - Date.now();
    if (wait > 0) await sleep(wait);
    await session.switchTo(siteWindow);
    await session.goto(`${site}/demo/pricing`);
    await session.click(await session.waitFor('nav a[data-page="home"]'));
    await session.waitUntil("return location.pathname == '/demo/home'", "the Home link did not navigate");
  });

  await t.step("the fired event and its delivery appear on the open card, live", async () => {
    await session.switchTo(consoleWindow);
    await session.waitFor('#lead-drawer .tl-item[data-type="event_fired"]', { text: "Site visit event fired" });
    await session.waitFor('#lead-drawer .tl-item[data-type="event_fired"][data-state="delivered"] .tl-attempt[data-type="delivery"][data-status="200"]');
    await session.waitFor('#lead-drawer .tl-item[data-type="visit"]', { text: "Visit 2" });
    check(await session.run("return window.__sameDocument === true"), "the console page was reloaded");
    const paths = await pageViews(ff, leadId);
    check(paths.slice(-2).join(" ") === "/demo/pricing /demo/home", `the return visit's page views (the SPA one included) are not all there: ${paths.join(", ")}`);
    await shot("lead-card");
  });

  await t.step("the webhook is in the Demo inbox, signed", async () => {
    await session.run("document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }))");
    await session.click(await session.waitFor('[data-tab="demo"]'));
    await session.waitFor('.inbox-item[data-signature-valid="true"]', { text: `lead #${leadId}` });
    const seconds = (Date.now() - formSentAt) / 1000;
    behaviour.push(`webhook in the Demo inbox ${seconds.toFixed(1)} s after the form`);
    await shot("demo");
  });

  await cookieMode();
}


/**
 * footfall on a subdomain of the site (t.shop.localhost for shop.localhost, which both
 * engines resolve to the loopback), with `cookies.domain`: the beacon's answer sets a
 * server-side, HttpOnly first-party cookie, which is what Safari's ITP leaves alone (it
 * caps cookies written by scripts at 7 days). The test deletes what t.js kept (cookie and
 * localStorage, as ITP would after 7 days) and the browser is still recognised.
 */
async function cookieMode() {
  const publicUrl = await t.step("cookie mode: footfall on t.shop.localhost with cookies.domain", () =>
    t.startFootfall((port) => ({
      FOOTFALL__SERVER__PUBLIC_URL: `http://t.shop.localhost:${port}`,
      FOOTFALL__COOKIES__DOMAIN: "shop.localhost",
      // Plain http here: WebKitGTK refuses Secure cookies over http (production is https).
      FOOTFALL__COOKIES__SECURE: "false",
    })));
  // Node does not resolve *.localhost: the test itself talks to the loopback address.
  const ff = publicUrl.replace("t.shop.localhost", "127.0.0.1");
  const site = await t.startDemoSite(ff, "shop.localhost");
  const demo = await api(ff, "GET", "/api/v4/demo");
  const { hosts } = await api(ff, "GET", `/api/v4/sites/${demo.site_id}`);
  await api(ff, "PATCH", `/api/v4/sites/${demo.site_id}`, { hosts: [...hosts, "shop.localhost"] });
  await t.step("cookie mode: the beacon's answer sets a server-side first-party cookie", async () => {
    await session.switchTo(siteWindowHandle);
    await session.goto(`${site}/demo/home`);
    const end = Date.now() + 15_000;
    let cookies = [];
    for (;;) {
      cookies = await session.cookies();
      // The server's cookie (HttpOnly, from the beacon's answer), and t.js done with the
      // body (its localStorage copy).
      const stored = await session.run("return !!localStorage.getItem('ff_vid')");
      if (stored && cookies.some((c) => c.name === "ff_vid" && c.httpOnly)) break;
      check(Date.now() < end, `no server-set HttpOnly ff_vid cookie on shop.localhost (or no localStorage copy): ${JSON.stringify(cookies)}`);
      await sleep(150);
    }
    const server = cookies.find((c) => c.name === "ff_vid" && c.httpOnly);
    const days = (server.expiry - Date.now() / 1000) / 86_400;
    check(server.domain.replace(/^\./, "") === "shop.localhost", `the server cookie's domain is ${server.domain}`);
    check(days > 7, `the server-set cookie expires in ${days.toFixed(1)} days, not more than ITP's 7`);
    const script = cookies.find((c) => c.name === "ff_vid" && !c.httpOnly);
    // A script may not write a cookie named like an HttpOnly one already there (RFC
    // 6265bis): WebKit refuses t.js's; in Firefox it depends on which comes first. t.js
    // then keeps its copy in localStorage only, and the server cookie carries the id.
    const scriptCookie = script ? `kept, expires in ${((script.expiry - Date.now() / 1000) / 86_400).toFixed(0)} days` : "refused (same name as the HttpOnly cookie)";
    behaviour.push(`cookie mode (t.shop.localhost → .shop.localhost): server-set HttpOnly cookie kept, expires in ${days.toFixed(0)} days; t.js's own cookie: ${scriptCookie}`);
  });
  await t.step("cookie mode: with t.js's cookie and localStorage gone, the browser is still known", async () => {
    await session.run("document.cookie = 'ff_vid=; path=/; max-age=0'; localStorage.removeItem('ff_vid');");
    check(await session.run("return !/ff_vid=/.test(document.cookie) && !localStorage.getItem('ff_vid')"), "t.js's copies could not be deleted");
    await session.goto(`${site}/demo/contact`);
    await session.type(await session.waitFor('input[name="name"]'), "Ben Subdomain");
    await session.type(await session.waitFor('input[name="email"]'), "ben@example.com");
    await session.click(await session.waitFor("form[data-footfall-form] button"));
    await session.waitFor("#sent");
    const unsorted = (await api(ff, "GET", "/api/v4/leads/unsorted"))._embedded.unsorted;
    const entry = unsorted.find((u) => u.metadata && u.metadata.form_page && u.metadata.form_page.startsWith(site));
    check(entry, "no Unsorted entry from the subdomain set-up");
    const paths = await pageViews(ff, entry._embedded.leads[0].id);
    check(paths.includes("/demo/home"), `the lead lacks the page view made before t.js's copies were deleted: ${paths.join(", ")}`);
    behaviour.push("cookie mode: t.js's cookie and localStorage deleted → recognised by the server cookie alone");
  });
}

const watchdog = setTimeout(() => {
  console.error(`${engine} browser test FAILED: no result after ${DEADLINE / 1000} s`);
  t.killAll();
  process.exit(1);
}, DEADLINE);

try {
  await run();
  await t.cleanup();
  clearTimeout(watchdog);
  for (const b of behaviour) t.log(`${E.name}: ${b}`);
  t.log(`screenshots: tests/artifacts/${engine}-{site,lead-card,demo}.png`);
  console.log(`${E.name} browser test: 1 passed, 0 failed (${((Date.now() - t.started) / 1000).toFixed(1)} s)`);
  process.exit(0);
} catch (e) {
  console.error(`\n${E.name} browser test FAILED: ${e.message}`);
  await shot("failure").catch(() => {});
  console.error(`screenshot of the page: ${ARTIFACTS}/${engine}-failure.png`);
  console.error("last lines of footfall's log:\n" + t.footfallLog.slice(-25).join("\n"));
  await t.cleanup();
  clearTimeout(watchdog);
  process.exit(1);
}
