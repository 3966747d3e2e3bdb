// The lead card: a side panel with the lead's stage, contacts, linked browsers and its
// timeline — page views grouped by visit, fired events with their delivery attempts,
// cancelled delayed actions, notes and moves. It reloads itself when a live update
// concerns its lead, and marks what is new.

import { get, listAll } from "./api.js";
import { catalog, stageColor, eventLabel, STATUS_UNSORTED } from "./catalog.js";
import { moveLead, declineEntry } from "./moves.js";
import { exportLead, deleteLead } from "./privacy.js";
import {
  h, mount, icon, ago, badge, errorBox, loading, confirmDialog, debounce,
  fmtTime, fmtDate, fmtDay, shortUrl,
} from "./ui.js";
import { sourceSection } from "./source.js";
import { sparkline } from "./insights.js";

export function leadDrawer(ctx) {
  const body = h("div.drawer-content");
  const el = h("aside.drawer", { id: "lead-drawer", role: "dialog", "aria-modal": "false", "aria-labelledby": "lead-title", hidden: true }, body);
  const backdrop = h("div.drawer-backdrop", { hidden: true, onclick: () => close() });
  let leadId = null;
  let seen = null; // timeline keys already shown (new ones are highlighted)
  let seq = 0;

  function open(id) {
    if (leadId !== id) {
      leadId = id;
      seen = null;
      mount(body, h("div.drawer-head", closeButton()), loading("Loading the lead…"));
    }
    el.hidden = false;
    backdrop.hidden = false;
    load();
  }

  function close() {
    leadId = null;
    el.hidden = true;
    backdrop.hidden = true;
  }

  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && leadId !== null && !document.querySelector("dialog[open]")) close();
  });

  function closeButton() {
    return h("button.icon-btn.drawer-close", { type: "button", title: "Close (Esc)", "aria-label": "Close the lead card", onclick: close }, icon("x", 18));
  }

  async function load() {
    const id = leadId;
    const mine = ++seq;
    try {
      const lead = await get(`/api/v4/leads/${id}`);
      const inUnsorted = catalog.status(lead.pipeline_id, lead.status_id)?.type === STATUS_UNSORTED;
      const [timeline, unsorted] = await Promise.all([
        listAll(`/api/v4/leads/${id}/timeline`, "timeline"),
        inUnsorted ? listAll("/api/v4/leads/unsorted", "unsorted", { pipeline_id: lead.pipeline_id }) : [],
      ]);
      if (mine !== seq || id !== leadId) return; // a newer load or another lead
      const entry = unsorted.find((u) => u._embedded.leads[0].id === lead.id) || null;
      render(lead, timeline, entry);
    } catch (e) {
      if (mine !== seq || id !== leadId) return;
      mount(body, h("div.drawer-head", closeButton()), errorBox(e, { title: `Could not load lead #${id}`, retry: load }));
    }
  }

  function render(lead, timeline, entry) {
    const scroll = body.scrollTop;
    const status = catalog.status(lead.pipeline_id, lead.status_id);
    const pipeline = catalog.pipeline(lead.pipeline_id);
    const contacts = lead._embedded.contacts || [];
    const visitors = lead._embedded.visitors || [];
    const stageSelect = h("select.input", { "aria-label": "Move to stage" },
      status && status.type === STATUS_UNSORTED ? h("option", { value: "", selected: true, disabled: true }, "Unsorted — choose a stage") : null,
      (pipeline ? pipeline.statuses : []).filter((s) => s.type !== STATUS_UNSORTED).map((s) =>
        h("option", { value: s.id, selected: s.id === lead.status_id }, s.name)));
    stageSelect.addEventListener("change", async () => {
      stageSelect.disabled = true;
      await moveLead(lead, Number(stageSelect.value), entry);
      ctx.leadChanged(lead.id); // reloads this card (and the board), also after a failure
    });
    const items = buildTimeline(timeline);
    const isFirst = seen === null;
    const keys = new Set();
    const list = h("ol.timeline", items.map((it) => renderItem(it, isFirst, keys)));
    seen = keys;
    mount(body,
      h("div.drawer-head",
        h("span.stage-pill", { style: `--stage:${stageColor(lead.pipeline_id, lead.status_id)}` }, status ? status.name : `stage ${lead.status_id}`),
        h("span.muted", `Lead #${lead.id}`),
        closeButton()),
      h("h2.drawer-title", { id: "lead-title" }, lead.name),
      h("p.muted.drawer-sub", `Created ${fmtDate(lead.created_at * 1000)} · updated `, ago(lead.updated_at * 1000)),
      h("div.drawer-actions",
        h("label.inline-field", h("span", "Stage"), stageSelect),
        entry ? h("button.btn", { type: "button", onclick: () => decline(lead, entry) }, icon("ban", 14), "Decline") : null,
        h("button.btn", { type: "button", dataset: { action: "export" }, onclick: () => exportLead(lead) }, "Export data"),
        h("button.btn.btn-danger", { type: "button", dataset: { action: "erase" }, onclick: () => erase(lead) }, icon("trash", 14), "Delete lead and its data")),
      h("section.drawer-section",
        h("h3", "Contacts"),
        contacts.length ? h("div.contacts", contacts.map(contactCard)) : h("p.muted", "No contact.")),
      sourceSection(lead),
      h("section.drawer-section.lead-visits",
        h("h3", "Visits per day", h("span.muted", " · last 30 days")),
        sparkline(timeline.filter((it) => it.type === "visit").map((it) => (it.at < 1e12 ? it.at * 1000 : it.at)))),
      h("section.drawer-section",
        h("h3", "Browsers", h("span.section-count", String(visitors.length))),
        visitors.length ? h("ul.visitors", visitors.map(visitorRow)) : h("p.muted", "No browser is linked to this lead.")),
      h("section.drawer-section",
        h("h3", "Timeline", h("span.live-note", { title: "Updates arrive without reloading" }, h("span.dot"), "live")),
        items.length ? list : h("p.muted", "Nothing has happened yet.")));
    body.scrollTop = scroll;
  }

  async function erase(lead) {
    if (!(await deleteLead(lead))) return;
    close();
    ctx.leadChanged(lead.id);
  }

  async function decline(lead, entry) {
    const ok = await confirmDialog(`Decline “${lead.name}”? The lead is closed as Lost and leaves Unsorted.`, { confirm: "Decline", danger: true });
    if (ok && (await declineEntry(lead, entry))) ctx.leadChanged(lead.id);
  }

  /** Marks an element new when its key was not shown before (not on the first load). */
  function track(el, key, isFirst, keys) {
    keys.add(key);
    if (!isFirst && !seen.has(key)) el.classList.add("fresh");
    return el;
  }

  function renderItem(it, isFirst, keys) {
    if (it.kind === "visit") return renderVisit(it, isFirst, keys);
    if (it.kind === "event") return renderEvent(it, isFirst, keys);
    const e = it.item;
    return track(entry(e.type, iconFor(e.type), it.at, describe(e)), `${e.type}:${e.at}:${e.id || e.event_id || e.visitor || ""}`, isFirst, keys);
  }

  function renderVisit(g, isFirst, keys) {
    const v = g.visit;
    const title = v ? `Visit ${v.number}` : "Page views";
    const first = v || g.views[0];
    const pages = h("ol.tl-pages", g.views.map((pv) =>
      track(h("li.tl-page", { dataset: { type: "page_view" } },
        h("time", { title: fmtDate(pv.at) }, fmtTime(pv.at)),
        h("span.tl-page-title", pv.title || shortUrl(pv.url)),
        h("a.tl-url", { href: pv.url, target: "_blank", rel: "noopener" }, shortUrl(pv.url))),
      `pv:${pv.visitor}:${pv.at}:${pv.url}`, isFirst, keys)));
    const meta = [];
    if (first && first.referrer) meta.push(h("span", "from ", h("a.tl-url", { href: first.referrer, target: "_blank", rel: "noopener" }, shortUrl(first.referrer))));
    meta.push(h("span.mono", { title: `browser ${first ? first.visitor : ""}` }, short(first && first.visitor)));
    return track(entry("visit", "eye", g.at,
      h("div", h("strong", title), ` · ${g.views.length} page${g.views.length === 1 ? "" : "s"}`),
      h("div.tl-meta", meta), pages), `visit:${g.key}`, isFirst, keys);
  }

  function renderEvent(g, isFirst, keys) {
    const f = g.fired;
    const action = f ? catalog.action(f.action_id) : null;
    const handler = action ? catalog.handler(action.handler_id) : null;
    const state = f ? f.state : g.cancelled ? "cancelled" : "";
    const lines = [];
    if (f) {
      const target = handler ? handler.name : action ? action.handler : `action #${f.action_id}`;
      lines.push(h("div.tl-meta", `Action #${f.action_id} → ${target}`,
        f.delayed_by > 0 || f.due_at > f.at ? ` · delayed ${Math.round((f.due_at - f.at) / 1000)} s, due ${fmtTime(f.due_at)}` : ""));
    }
    if (g.cancelled) {
      lines.push(h("div.tl-cancelled", { dataset: { type: "event_cancelled" } }, icon("ban", 13),
        `Cancelled at ${fmtTime(g.cancelled.at)}: ${g.cancelled.reason}`));
    }
    const attempts = g.deliveries.map((d) => track(h(`li.tl-attempt${ok(d.status) ? ".ok" : ".failed"}`, {
      dataset: { type: "delivery", status: d.status ?? "none" },
    },
    h("span.attempt-n", `Attempt ${d.attempt}`),
    h("span.attempt-status", d.status ? `HTTP ${d.status}` : "no answer"),
    h("span.attempt-latency", `${d.latency_ms} ms`),
    h("time", { title: fmtDate(d.at) }, fmtTime(d.at)),
    d.error ? h("div.attempt-error", d.error) : null), `d:${g.id}:${d.attempt}`, isFirst, keys));
    const title = f ? `${eventLabel(f.event_type)} event fired` : "Delayed action cancelled";
    const el = entry(f ? "event_fired" : "event_cancelled", f ? "zap" : "ban", g.at,
      h("div.tl-event-title", h("strong", title), state ? stateBadge(state) : null),
      lines,
      attempts.length ? h("ol.tl-attempts", attempts) : null,
      h("div.tl-meta.mono", g.id));
    el.dataset.eventId = g.id;
    if (state) el.dataset.state = state;
    return track(el, `event:${g.id}:${state}`, isFirst, keys);
  }

  function entry(type, iconName, at, ...content) {
    return h(`li.tl-item.tl-${type}`, { dataset: { type } },
      h("span.tl-icon", icon(iconName, 14)),
      h("div.tl-body", h("time.tl-time", { title: fmtDate(at) }, `${fmtDay(at)}, ${fmtTime(at)}`), content));
  }

  function describe(e) {
    switch (e.type) {
      case "lead_created": {
        const form = catalog.form(e.form_id);
        return h("div", h("strong", "Lead created"), ` from the form “${form ? form.name : e.form_id}”`);
      }
      case "moved": {
        const from = e.from ? catalog.statusName(e.from.pipeline_id, e.from.status_id) : null;
        const to = catalog.statusName(e.to.pipeline_id, e.to.status_id);
        const by = { accept: "accepted from Unsorted", api: "moved", decline: "declined", console: "moved in the console" }[e.by] || e.by;
        return h("div", h("strong", from ? `${from} → ${to}` : `Moved to ${to}`), h("div.tl-meta", by));
      }
      case "declined":
        return h("div", h("strong", "Declined"), " — removed from Unsorted");
      case "visitor_linked":
        return h("div", h("strong", "Browser linked "), h("span.mono", short(e.visitor)),
          e.previous_lead ? h("div.tl-meta", "It belonged to ", leadLink(e.previous_lead), " before") : null);
      case "visitor_moved":
        return h("div", h("strong", "Browser moved away "), h("span.mono", short(e.visitor)),
          h("div.tl-meta", "It submitted a form again and now belongs to ", leadLink(e.to_lead)));
      case "event_cancelled":
        return h("div", h("strong", "Delayed action cancelled"), h("div.tl-meta", e.reason));
      case "note": {
        const p = e.params || {};
        return h("div", h("strong", p.service ? `Note from ${p.service}` : "Note"), h("p.tl-note", p.text || JSON.stringify(p)));
      }
      default:
        return h("div", h("strong", e.type), h("pre.tl-raw", JSON.stringify(e, null, 1)));
    }
  }

  function leadLink(id) {
    return h("a", { href: "#", onclick: (ev) => { ev.preventDefault(); open(id); } }, `lead #${id}`);
  }

  function contactCard(c) {
    return h("div.contact",
      h("div.contact-name", icon("user", 14), h("strong", c.name || "No name"), c.is_main ? badge("main", "brand") : null),
      c.phone ? h("a.contact-line", { href: `tel:${c.phone}` }, c.phone) : null,
      c.email ? h("a.contact-line", { href: mailtoHref(c.email) }, c.email) : null);
  }

  function visitorRow(v) {
    const window = v.until ? `until ${fmtDate(v.until * 1000)}` : v.since ? `since ${fmtDate(v.since * 1000)}` : "all its history";
    return h("li", h("span.mono", { title: v.visitor }, short(v.visitor)), h("span.muted", `linked `, ago(v.linked_at * 1000), ` · ${window}`));
  }

  const reloadSoon = debounce(() => leadId !== null && load(), 200);

  return {
    el,
    backdrop,
    open,
    close,
    get leadId() {
      return leadId;
    },
    refresh() {
      if (leadId !== null) load();
    },
    onLive(msg) {
      if (leadId === null) return;
      if (msg.event === "lead" && msg.data.lead_id === leadId && msg.data.what === "erased") {
        // Erased (this lead, or one of its browsers): reload; a lead that is gone closes.
        get(`/api/v4/leads/${leadId}`).then(() => reloadSoon(), () => close());
        return;
      }
      if (msg.event === "reload" || (msg.event === "lead" && msg.data.lead_id === leadId)) reloadSoon();
    },
  };
}

/**
 * Turns the flat timeline (oldest first) into what the card shows, newest first:
 * page views inside their visit, delivery attempts and cancellations inside their event.
 */
export function buildTimeline(items) {
  const visits = new Map();
  const events = new Map();
  const out = [];
  const visitGroup = (visitor, number, at) => {
    const key = `${visitor}:${number ?? "?"}`;
    let g = visits.get(key);
    if (!g) {
      g = { kind: "visit", key, at, visit: null, views: [] };
      visits.set(key, g);
      out.push(g);
    }
    return g;
  };
  const eventGroup = (id, at) => {
    let g = events.get(id);
    if (!g) {
      g = { kind: "event", id, at, fired: null, deliveries: [], cancelled: null };
      events.set(id, g);
      out.push(g);
    }
    return g;
  };
  for (const it of items) {
    switch (it.type) {
      case "visit": {
        const g = visitGroup(it.visitor, it.number, it.at);
        g.visit = it;
        g.at = it.at;
        break;
      }
      case "page_view":
        visitGroup(it.visitor, it.visit, it.at).views.push(it);
        break;
      case "event_fired": {
        const g = eventGroup(it.event_id, it.at);
        g.fired = it;
        g.at = it.at;
        break;
      }
      case "delivery":
        eventGroup(it.event_id, it.at).deliveries.push(it);
        break;
      case "event_cancelled":
        eventGroup(it.event_id, it.at).cancelled = it;
        break;
      default:
        out.push({ kind: "single", at: it.at, item: it });
    }
  }
  for (const g of visits.values()) g.views.sort((a, b) => b.at - a.at);
  // Newest first; entries of the same moment keep their order.
  return out.map((x, i) => [x, i]).sort((a, b) => b[0].at - a[0].at || b[1] - a[1]).map(([x]) => x);
}

const ok = (status) => status >= 200 && status < 300;
const short = (vid) => (vid ? `${String(vid).slice(0, 8)}…` : "");

function iconFor(type) {
  return { lead_created: "star", moved: "arrow", declined: "ban", visitor_linked: "link", visitor_moved: "link", note: "note", event_cancelled: "ban" }[type] || "clock";
}

/**
 * A mailto: link to exactly one address. footfall's email check lets `?`, `&` and `%`
 * through, so an address put in the link as it is could add header fields
 * (`jane@x.com?bcc=…&subject=…`) to the marketer's mail: each side of the last `@` is
 * percent-encoded, which leaves an ordinary address as it is.
 */
export function mailtoHref(email) {
  const at = email.lastIndexOf("@");
  if (at < 0) return `mailto:${encodeURIComponent(email)}`;
  return `mailto:${encodeURIComponent(email.slice(0, at))}@${encodeURIComponent(email.slice(at + 1))}`;
}

export function stateBadge(state) {
  const kind = { delivered: "ok", dead: "error", retrying: "warn", scheduled: "info", cancelled: "neutral" }[state] || "neutral";
  return badge(state, kind);
}
