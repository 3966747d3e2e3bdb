// Account webhooks (amoCRM's /api/v4/webhooks): subscribe a destination to chosen changes
// of the account, see each webhook's deliveries with their attempts, replay one, and
// unsubscribe. The signing secret is shown once, when the webhook is created.

import { api, get, post, nextPath } from "./api.js";
import { stateBadge } from "./lead.js";
import { h, mount, icon, toast, reportError, errorBox, empty, loading, ago, fmtTime, field, showFormError, clearFormErrors, busy, copyButton, confirmDialog } from "./ui.js";

const SETTINGS = [
  ["add_lead", "Lead added"], ["update_lead", "Lead changed"], ["status_lead", "Lead moved"],
  ["delete_lead", "Lead deleted"], ["note_lead", "Note added"], ["add_contact", "Contact added"],
  ["update_contact", "Contact changed"], ["delete_contact", "Contact deleted"],
  ["add_unsorted", "Unsorted entry added"], ["delete_unsorted", "Unsorted entry accepted or declined"],
];

export function webhooksView() {
  const list = h("div");
  const secret = h("div");
  const destination = h("input.input", { name: "destination", type: "url", placeholder: "https://crm-sync.example/amo", required: true });
  const sort = h("input.input", { name: "sort", type: "number", value: "10" });
  const boxes = SETTINGS.map(([code, label]) =>
    h("label.check", h("input", { type: "checkbox", name: "settings", value: code, checked: ["add_lead", "status_lead", "note_lead"].includes(code) }), " ", label, h("span.muted.mono", ` ${code}`)));
  const form = h("form.card.form-grid", { novalidate: true },
    h("h2", "Subscribe a destination"),
    field("Destination", destination, { name: "destination", hint: "A public http(s) URL; footfall posts each change there as amoCRM does (form-encoded, bracket keys), signed with Standard Webhooks headers." }),
    field("Changes", h("div.checks", boxes), { name: "settings" }),
    field("Sort", sort, { name: "sort" }),
    h("button.btn.btn-primary", { type: "submit" }, icon("plus", 14), "Subscribe"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    clearFormErrors(form);
    busy(form, async () => {
      const settings = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
      try {
        const hook = await post("/api/v4/webhooks", { destination: destination.value.trim(), settings, sort: Number(sort.value || 0) });
        mount(secret, hook.secret
          ? h("div.card.notice",
            h("strong", `Webhook ${hook.id} subscribed. Its signing secret, shown this once:`),
            h("div.mono", hook.secret), copyButton(hook.secret, "Copy secret"))
          : h("div.card.notice", h("strong", `Webhook ${hook.id} was subscribed already: it now gets the changes chosen here, signed with the secret shown when it was created.`)));
        destination.value = "";
        await refresh();
      } catch (err) {
        showFormError(form, err);
      }
    });
  });
  const el = h("section.view.page-view",
    h("div.toolbar",
      h("div.toolbar-title", h("h1", "Webhooks")),
      h("div.toolbar-actions", h("button.btn", { type: "button", onclick: () => refresh() }, icon("refresh", 14), "Refresh"))),
    h("p.lead-text", "An outside server told of the account's changes, as amoCRM's account webhooks. Failed deliveries are retried with backoff, then dead-lettered; replay sends one again."),
    form, secret, list);

  async function refresh() {
    if (!list.firstChild) mount(list, loading());
    try {
      const answer = (await get("/api/v4/webhooks")) || {};
      const hooks = (answer._embedded && answer._embedded.webhooks) || [];
      if (!hooks.length) {
        mount(list, empty("No webhook yet", "Subscribe a destination above."));
        return;
      }
      mount(list, ...hooks.map(card));
    } catch (e) {
      mount(list, errorBox(e, { title: "Could not load the webhooks", retry: refresh }));
    }
  }

  function card(hook) {
    const deliveries = h("div");
    const details = h("details.card", { dataset: { webhookId: String(hook.id) } },
      h("summary",
        h("strong.mono", hook.destination), " ",
        h("span.muted", hook.settings.join(", ")), " ",
        h("span.muted", `sort ${hook.sort} · since ${ago(hook.created_at * 1000)}`)),
      h("div.toolbar-actions",
        h("button.btn.btn-sm", { type: "button", onclick: () => load() }, icon("refresh", 14), "Deliveries"),
        h("button.btn.btn-sm.btn-danger", { type: "button", onclick: () => remove(hook) }, icon("trash", 14), "Unsubscribe")),
      deliveries);
    details.addEventListener("toggle", () => details.open && load());

    // The first 50 deliveries, newest first; "Load more" follows the page's `_links.next`.
    async function load() {
      mount(deliveries, loading());
      try {
        const answer = (await get(`/api/v4/webhooks/${hook.id}/deliveries?limit=50`)) || {};
        const events = (answer._embedded && answer._embedded.events) || [];
        if (!events.length) {
          mount(deliveries, empty("No delivery yet", "Deliveries appear here when a subscribed change happens."));
          return;
        }
        const rows = h("tbody", events.map((e) => row(e, load)));
        // Pages are by number, newest first: deliveries made since shift the next page,
        // whose rows already shown are skipped.
        const shown = new Set(events.map((e) => e.id));
        const more = h("div.toolbar-actions");
        mount(deliveries, h("div.table-wrap", h("table.table",
          h("thead", h("tr", ["Delivery", "Lead", "State", "Attempts", "Sent", ""].map((t) => h("th", t)))),
          rows)), more);
        offerMore(answer, rows, shown, more);
      } catch (err) {
        mount(deliveries, errorBox(err, { title: "Could not load the deliveries", retry: load }));
      }
    }

    /** A "Load more" button when the page has a next one; it appends that page's rows. */
    function offerMore(answer, rows, shown, more) {
      const next = nextPath(answer);
      if (!next) {
        more.replaceChildren();
        return;
      }
      const button = h("button.btn.btn-sm", { type: "button", dataset: { action: "load-more" } }, "Load more");
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          const page = (await get(next)) || {};
          const fresh = ((page._embedded && page._embedded.events) || []).filter((e) => !shown.has(e.id));
          fresh.forEach((e) => shown.add(e.id));
          rows.append(...fresh.map((e) => row(e, load)));
          offerMore(page, rows, shown, more);
        } catch (err) {
          button.disabled = false;
          reportError("Could not load more deliveries", err);
        }
      });
      mount(more, button);
    }
    return details;
  }

  function row(e, reload) {
    const last = e.attempts[e.attempts.length - 1];
    const replayable = e.state === "dead" || e.state === "delivered";
    return h("tr", { dataset: { eventId: e.id, state: e.state } },
      h("td", h("div.mono", e.id), e.body ? h("details", h("summary", "body"), h("pre.mono", decodeURIComponent(String(e.body).replace(/\+/g, " ")).split("&").join("\n"))) : null),
      h("td", e.lead_id ? `#${e.lead_id}` : "—"),
      h("td", stateBadge(e.state), e.reason ? h("div.muted", e.reason) : null,
        e.next_attempt_at && e.state === "retrying" ? h("div.muted", "next ", fmtTime(e.next_attempt_at * 1000)) : null),
      h("td", last ? `${e.attempts.length} · ${last.status ? `HTTP ${last.status}` : "no answer"}${last.error ? ` — ${last.error}` : ""}` : h("span.muted", "none yet")),
      h("td", ago(e.created_at * 1000)),
      h("td.cell-actions", replayable ? h("button.btn.btn-sm", { type: "button", onclick: () => replay(e, reload) }, icon("send", 14), "Replay") : null));
  }

  async function replay(e, reload) {
    try {
      await post(`/api/v4/webhook_events/${encodeURIComponent(e.id)}/replay`);
      toast(`Delivery ${e.id} queued again`, { kind: "ok" });
      await reload();
    } catch (err) {
      reportError(`Could not replay ${e.id}`, err);
    }
  }

  async function remove(hook) {
    if (!(await confirmDialog(`Unsubscribe ${hook.destination}?`, { confirm: "Unsubscribe", danger: true }))) return;
    try {
      await api("DELETE", "/api/v4/webhooks", { destination: hook.destination });
      toast("Unsubscribed", { kind: "ok" });
      await refresh();
    } catch (err) {
      reportError("Could not unsubscribe", err);
    }
  }

  return { el, refresh, onLive() {} };
}
