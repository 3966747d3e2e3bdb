// The console's Webhooks tab in a real browser (headless Chromium through playwright-core)
// against the real footfall binary: subscribe a local server to lead changes, see the
// secret once, a lead added through the API arrives at the server as amoCRM's form body,
// the delivery shows on the webhook with its attempt, and Replay sends it again.
//
// Run: node tests/browser/webhooks.mjs (after `cargo build`).

import http from "node:http";
import { Harness, WAIT, TOKEN, api, check, sleep } from "./harness.mjs";


const t = new Harness("webhooks");
const step = (name, work) => t.step(name, work);

/** A subscriber: every POST it gets, headers and body. */
async function startSubscriber() {
  const received = [];
  const server = http.createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    received.push({ headers: req.headers, body });
    res.writeHead(204);
    res.end();
  });
  return { url: `http://127.0.0.1:${await t.listen(server)}/amo`, received };
}

async function waitFor(what, probe) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    const value = await probe();
    if (value) return value;
    check(Date.now() < deadline, `timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function run() {
  // The subscriber listens on 127.0.0.1: private destinations allowed for this test.
  const ff = await step("start footfall (private destinations allowed)", () =>
    t.startFootfall(() => ({ FOOTFALL__DELIVERY__ALLOW_PRIVATE_TARGETS: "true" })));
  const subscriber = await step("start a local subscriber", () => startSubscriber());

  const browser = await t.chromium();
  const context = await browser.newContext();
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();

  await step("sign in and open the Webhooks tab", async () => {
    await page.goto(`${ff}/console`);
    await page.locator("#token").fill(TOKEN);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator('[data-tab="webhooks"]').click();
    await page.getByText("No webhook yet").waitFor();
  });

  await step("subscribe the destination to added and moved leads; the secret is shown once", async () => {
    await page.locator('input[name="destination"]').fill(subscriber.url);
    await page.getByRole("button", { name: "Subscribe" }).click();
    await page.getByText("Its signing secret, shown this once").waitFor();
    const secret = await page.locator(".notice .mono").first().textContent();
    check(secret.startsWith("whsec_"), `no secret shown: ${secret}`);
    await page.locator(`[data-webhook-id] summary`).getByText(subscriber.url).waitFor();
    const listed = await api(ff, "GET", "/api/v4/webhooks");
    check(listed._embedded.webhooks[0].settings.join() === "add_lead,status_lead,note_lead", JSON.stringify(listed));
  });

  const lead = await step("a lead added through the API reaches the subscriber as amoCRM's form body", async () => {
    const added = await api(ff, "POST", "/api/v4/leads", [{ name: "Order from the console test" }]);
    const id = added._embedded.leads[0].id;
    const got = await waitFor("the add_lead delivery", () => subscriber.received[0]);
    check(got.headers["content-type"] === "application/x-www-form-urlencoded", JSON.stringify(got.headers));
    const form = new URLSearchParams(got.body);
    check(form.get("leads[add][0][id]") === String(id), got.body);
    check(got.headers["webhook-signature"].startsWith("v1,"), JSON.stringify(got.headers));
    return id;
  });

  await step("the delivery shows on the webhook; Replay sends it again with the same id", async () => {
    await page.locator(`[data-webhook-id] summary`).click();
    const row = page.locator("tr[data-state=delivered]");
    await row.first().waitFor();
    await row.first().getByRole("button", { name: "Replay" }).click();
    await waitFor("the replayed delivery", () => subscriber.received.length >= 2);
    const [first, again] = subscriber.received;
    check(again.headers["webhook-id"] === first.headers["webhook-id"], "the replay has another id");
    check(again.body === first.body, "the replay's body differs");
    check(lead > 0, "no lead");
  });
}

await t.main(90, run);
