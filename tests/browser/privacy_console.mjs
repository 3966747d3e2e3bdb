// The console's privacy tools in a real browser (headless Chromium through playwright-core)
// against the real footfall binary with the shipped config.toml: a lead made by the demo
// form is opened on the board; "Export data" downloads its JSON; "Delete lead and its
// data" asks, naming the contact, and erases it; the Privacy view lists the erasure
// without the contact, and turns the demo site's consent on (the script tag follows).
//
// Run: node tests/browser/privacy_console.mjs (scripts/test.sh does, after `cargo build`).

import { readFile } from "node:fs/promises";
import { Harness, WAIT, TOKEN, api, check } from "./harness.mjs";

const NAME = "Privacy Probe";
const EMAIL = "privacy.probe@example.com";

const t = new Harness("privacy console");
const step = (name, work) => t.step(name, work);

async function run() {
  const ff = await step("start footfall with the shipped config.toml", () => t.startFootfall());
  const demo = await api(ff, "GET", "/api/v4/demo");
  const leadId = await step("a lead from the demo form", async () => {
    const res = await fetch(`${ff}/v1/forms/${demo.form_id}/submit`, {
      method: "POST", headers: { "Content-Type": "text/plain" },
      body: JSON.stringify({ page: "", fields: { name: NAME, email: EMAIL, phone: "+7 900 111-22-33" } }),
    });
    const body = await res.json();
    check(res.status === 201, `the form answered ${res.status}: ${JSON.stringify(body)}`);
    return body.lead_id;
  });

  const browser = await t.chromium();
  const context = await browser.newContext({ acceptDownloads: true });
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();
  const drawer = page.locator("#lead-drawer");

  await step("sign in and open the lead card", async () => {
    await page.goto(`${ff}/console`);
    await page.locator("#token").fill(TOKEN);
    await page.getByRole("button", { name: "Sign in" }).click();
    for (let attempt = 1; ; attempt++) {
      await page.locator(`.lead-card[data-lead-id="${leadId}"]`).click();
      try {
        await drawer.locator(".drawer-title", { hasText: NAME }).waitFor({ timeout: attempt < 5 ? 2000 : WAIT });
        break;
      } catch (e) {
        if (attempt >= 5) throw e;
      }
    }
  });

  await step("Export data downloads the lead's JSON", async () => {
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      drawer.getByRole("button", { name: "Export data" }).click(),
    ]);
    const data = JSON.parse(await readFile(await download.path(), "utf8"));
    check(data.leads.length === 1 && data.leads[0].id === leadId, `exported leads: ${JSON.stringify(data.leads)}`);
    check(data.contacts[0].email === EMAIL, `exported contacts: ${JSON.stringify(data.contacts)}`);
  });

  await step("Delete lead and its data asks, naming what goes, then erases", async () => {
    await drawer.getByRole("button", { name: "Delete lead and its data" }).click();
    const dialog = page.locator("dialog[open]");
    await dialog.getByText(EMAIL, { exact: false }).waitFor();
    await dialog.getByRole("button", { name: "Delete lead and its data" }).click();
    await drawer.waitFor({ state: "hidden" });
    const res = await fetch(`${ff}/api/v4/leads/${leadId}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    check(res.status === 404, `the lead still answers ${res.status}`);
  });

  await step("the Privacy view lists the erasure, without the contact", async () => {
    await page.goto(`${ff}/console#/privacy`);
    const row = page.locator("table tr", { hasText: "Lead deleted" });
    await row.waitFor();
    const text = await page.locator("table").innerText();
    check(!text.includes(EMAIL) && !text.includes(NAME), `the audit shows the contact: ${text}`);
  });

  await step("consent turned on for the demo site: its script tag asks for consent", async () => {
    const select = page.locator(`select[data-site-id="${demo.site_id}"]`);
    await select.selectOption("required");
    await page.locator(`[data-privacy-site="${demo.site_id}"] code`, { hasText: 'data-consent="395"' }).waitFor();
    await page.locator(`[data-privacy-site="${demo.site_id}"] code`, { hasText: "footfall('consent', true);" }).waitFor();
    const site = await api(ff, "GET", `/api/v4/sites/${demo.site_id}`);
    check(site.consent === "required", `the site says ${site.consent}`);
  });
}

await t.main(120, run);
