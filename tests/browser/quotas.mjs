// The console's Quotas tab, in a real browser (headless Chromium through playwright-core)
// against the real footfall binary with the shipped config.toml: a site gets page views of
// three new browsers, and the tab shows the site's new-visitor bucket holding three, read
// from GET /api/v4/quotas; and, in a 1280-pixel window, every tab of the console is in
// sight. (The site's new visitors are set to 100 an hour, so that the bucket drains one
// every 36 s: the shipped 200 000 drain three in 54 ms.)
//
// Run: node tests/browser/quotas.mjs (after `cargo build`).

import { Harness, WAIT, TOKEN, api, check, USER_AGENT } from "./harness.mjs";


const t = new Harness("quotas");
const step = (name, work) => t.step(name, work);

async function run() {
  const ff = await step("start footfall with the shipped config.toml", () =>
    t.startFootfall(() => ({ FOOTFALL__QUOTAS__NEW_VISITORS_PER_HOUR_PER_SITE: "100" })));
  const created = await api(ff, "POST", "/api/v4/sites", [{ name: "Quota shop", url: "https://quota.example" }]);
  const site = created._embedded.sites[0];
  await step("three new browsers view a page of the site", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${ff}/v1/collect`, {
        method: "POST",
        headers: { "content-type": "text/plain;charset=UTF-8", "user-agent": USER_AGENT },
        body: JSON.stringify({ site: site.key, url: `https://quota.example/${i}` }),
      });
      check(r.status === 200, `beacon answered ${r.status}`);
    }
  });
  const browser = await t.chromium();
  const page = await browser.newPage();
  await step("sign in and open the Quotas tab", async () => {
    await page.goto(`${ff}/console`);
    await page.locator("#token").fill(TOKEN);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("[data-tab=quotas]").click({ timeout: WAIT });
  });
  await step("every tab is in sight in a 1280-pixel window (Playwright's default)", async () => {
    const width = page.viewportSize().width;
    const nav = await page.locator("nav.tabs-main").evaluate((n) => ({ need: n.scrollWidth, have: n.clientWidth }));
    check(width === 1280, `the window is ${width} pixels wide`);
    check(nav.need <= nav.have, `the tabs need ${nav.need} pixels and have ${nav.have}`);
  });
  await step("the site's new-visitor bucket holds the three browsers", async () => {
    const row = page.locator(`tr[data-quota=new_visitors][data-scope=site][data-site-id="${site.id}"]`);
    await row.waitFor({ timeout: WAIT });
    const used = (await row.locator("td.quota-used").textContent()).trim();
    check(used === "3 / 100", `the tab shows ${used}`);
    check((await row.textContent()).includes("Quota shop"), "the row names the site");
    const views = page.locator(`tr[data-quota=page_views][data-scope=site][data-site-id="${site.id}"] td.quota-used`);
    const pv = (await views.textContent()).trim();
    check(pv.endsWith("/ 8000"), `page views: ${pv}`);
  });
}

await t.main(90, run);
