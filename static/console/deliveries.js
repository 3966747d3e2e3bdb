// Deliveries: every fired event with its state and attempts, filtered by state, newest
// first as the API lists them; delivered and dead events can be sent again (replay).

import { get, post } from "./api.js";
import { catalog, eventLabel } from "./catalog.js";
import { stateBadge } from "./lead.js";
import { h, mount, icon, toast, reportError, errorBox, empty, loading, ago, fmtTime, fmtDate, debounce } from "./ui.js";

const STATES = ["", "scheduled", "retrying", "delivered", "dead", "cancelled"];

export function deliveriesView(ctx) {
  const tabs = h("div.tabs", { role: "tablist" });
  const list = h("div");
  const more = h("div.load-more");
  const el = h("section.view.page-view",
    h("div.toolbar",
      h("div.toolbar-title", h("h1", "Deliveries")),
      h("div.toolbar-actions", h("button.btn", { type: "button", onclick: () => refresh() }, icon("refresh", 14), "Refresh"))),
    h("p.lead-text", "Each fired event is delivered at least once; failed attempts are retried with backoff, then dead-lettered. Replay sends an event again with the same id."),
    tabs, list, more);
  let state = "";
  let pages = 1;

  function renderTabs() {
    mount(tabs, STATES.map((s) => h(`button.tab${s === state ? ".active" : ""}`, {
      type: "button", role: "tab", "aria-selected": String(s === state),
      onclick: () => { state = s; pages = 1; renderTabs(); refresh(); },
    }, s ? s[0].toUpperCase() + s.slice(1) : "All")));
  }

  async function refresh() {
    if (!list.firstChild) mount(list, loading());
    try {
      const events = [];
      let next = false;
      for (let page = 1; page <= pages; page++) {
        const qs = new URLSearchParams({ page: String(page), limit: "50" });
        if (state) qs.set("state", state);
        // An empty list is a 204, answered as null.
        const answer = (await get(`/api/v4/webhook_events?${qs}`)) || {};
        events.push(...((answer._embedded && answer._embedded.events) || []));
        next = !!(answer._links && answer._links.next);
        if (!next) break;
      }
      render(events, next);
    } catch (e) {
      mount(list, errorBox(e, { title: "Could not load the deliveries", retry: refresh }));
      more.replaceChildren();
    }
  }

  function render(events, next) {
    if (!events.length) {
      mount(list, empty(state ? `No ${state} event` : "No event yet", "Events appear here when an action fires."));
    } else {
      mount(list, h("div.table-wrap", h("table.table",
        h("thead", h("tr", ["Event", "Lead", "Handler", "State", "Attempts", "Fired", ""].map((t) => h("th", t)))),
        h("tbody", events.map(row)))));
    }
    mount(more, next ? h("button.btn", { type: "button", onclick: () => { pages++; refresh(); } }, "Load more") : null);
  }

  function row(e) {
    const handler = catalog.handler(e.handler_id);
    const last = e.attempts[e.attempts.length - 1];
    const replayable = e.state === "dead" || e.state === "delivered";
    return h("tr", { dataset: { eventId: e.id, state: e.state } },
      h("td", h("strong", eventLabel(e.type_code)), h("div.muted.mono", e.id)),
      h("td", h("a", { href: "#", onclick: (ev) => { ev.preventDefault(); ctx.openLead(e.lead_id); } }, `#${e.lead_id}`),
        h("div.muted", catalog.statusName(e.pipeline_id, e.status_id))),
      h("td", handler ? handler.name : e.webhook_id ? `Account webhook #${e.webhook_id}` : `#${e.handler_id}`),
      h("td", stateBadge(e.state),
        e.next_attempt_at && (e.state === "retrying" || e.state === "scheduled") ? h("div.muted", "next ", fmtTime(e.next_attempt_at * 1000)) : null,
        e.delayed_by ? h("div.muted", `delayed ${e.delayed_by} s`) : null,
        e.reason ? h("div.muted", e.reason) : null),
      h("td", e.attempts.length
        ? h("details.attempts",
          h("summary", `${e.attempts.length} · `, last.status ? `HTTP ${last.status}` : "no answer", ` · ${last.latency_ms} ms`),
          h("ol", e.attempts.map((a, i) => h("li", { title: fmtDate(a.at_ms) },
            `#${i + 1} ${fmtTime(a.at_ms)} — ${a.status ? `HTTP ${a.status}` : "no answer"}, ${a.latency_ms} ms${a.error ? ` — ${a.error}` : ""}`))))
        : h("span.muted", e.state === "cancelled" ? "none" : "none yet")),
      h("td", ago(e.created_at * 1000)),
      h("td.cell-actions", replayable ? h("button.btn.btn-sm", { type: "button", onclick: () => replay(e) }, icon("send", 14), "Replay") : null));
  }

  async function replay(e) {
    try {
      await post(`/api/v4/webhook_events/${encodeURIComponent(e.id)}/replay`);
      toast(`Event ${e.id} queued again`, { kind: "ok" });
      await refresh();
    } catch (err) {
      reportError(`Could not replay event ${e.id}`, err);
    }
  }

  const refreshSoon = debounce(refresh, 400);
  renderTabs();
  return {
    el,
    refresh,
    onLive(msg) {
      if (msg.event === "reload" || (msg.event === "lead" && ["event", "delivery"].includes(msg.data.what))) refreshSoon();
    },
  };
}
