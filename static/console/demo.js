// The demo (when footfall runs with demo.enabled): the five steps in a browser, a link to
// the sample site, and the sample handler's inbox — each webhook as it arrived, with
// its signature checked — updated live.

import { get } from "./api.js";
import { catalog, eventLabel } from "./catalog.js";
import { h, mount, icon, badge, errorBox, empty, ago, fmtDate, debounce } from "./ui.js";

/** The demo site's visit gap in words: 15 seconds when footfall created the demo. */
function gapText() {
  const site = catalog.demo && catalog.site(catalog.demo.site_id);
  const seconds = (site && site.visit_idle_seconds) || 15;
  return seconds < 120 ? `${seconds} seconds` : `${Math.round(seconds / 60)} minutes`;
}

export function demoView(ctx) {
  const inbox = h("div");
  const details = h("div");
  const el = h("section.view.page-view",
    h("div.toolbar", h("div.toolbar-title", h("h1", "Demo"))),
    h("div.demo-grid",
      h("article.panel",
        h("h2", "Walk through the five steps"),
        h("ol.steps",
          h("li", h("a", { href: "/demo/contact", target: "_blank", rel: "noopener" }, "Open the sample site"), " and browse a page or two: it carries footfall's script tag."),
          h("li", "Submit its contact form. The lead appears in ", h("a", { href: "#/board" }, "Unsorted"), " at once."),
          h("li", "Drag the lead into ", h("strong", "First contact"), ", which has a site-visit action to the demo inbox."),
          h("li", `Wait ${gapText()}, then come back to the sample site: that is the demo site's visit gap (other sites use tracking.visit_idle_seconds, 30 minutes by default), so this is a new visit.`),
          h("li", "The webhook lands below, signed, and on the lead's timeline.")),
        h("div.form-actions.left",
          h("a.btn.btn-primary", { href: "/demo", target: "_blank", rel: "noopener" }, icon("globe", 14), "Open the sample site"),
          h("a.btn", { href: "#/board" }, icon("board", 14), "Go to the board"))),
      details),
    h("h2.section-title", "Demo inbox", h("span.live-note", h("span.dot"), "live")),
    inbox);

  function renderDetails() {
    const d = catalog.demo;
    if (!d) return;
    const handler = catalog.handler(d.handler_id);
    mount(details, h("article.panel",
      h("h2", "What the demo set up"),
      h("dl.kv",
        h("dt", "Site"), h("dd", (catalog.site(d.site_id) || {}).name || `#${d.site_id}`, " · key ", h("code", d.site_key)),
        h("dt", "Form"), h("dd", h("code", d.form_id)),
        h("dt", "Handler"), h("dd", handler ? handler.name : d.handler, " ", h("code", d.handler)),
        h("dt", "Inbox URL"), h("dd", h("code", d.inbox_url)))));
  }

  async function refresh() {
    renderDetails();
    try {
      const answer = await get("/api/v4/demo/inbox");
      render((answer._embedded && answer._embedded.inbox) || []);
    } catch (e) {
      mount(inbox, errorBox(e, { title: "Could not load the demo inbox", retry: refresh }));
    }
  }

  function render(items) {
    if (!items.length) {
      mount(inbox, empty("No webhook received yet", "Follow the steps above; the first site-visit webhook shows up here."));
      return;
    }
    mount(inbox, h("ol.inbox", items.map((it) => {
      const ev = (it.body && it.body.event) || {};
      const leadId = ev.data && ev.data.id;
      const settings = it.body && it.body.action && it.body.action.settings && it.body.action.settings.widget && it.body.action.settings.widget.settings;
      const visit = it.body && it.body.meta && it.body.meta.visit;
      return h("li.inbox-item", { dataset: { webhookId: it.webhook_id, signatureValid: String(it.signature_valid) } },
        h("div.inbox-head",
          h("span.tl-icon", icon("inbox", 14)),
          h("strong", eventLabel(ev.type_code || "webhook")),
          leadId ? h("a", { href: "#", onclick: (e) => { e.preventDefault(); ctx.openLead(leadId); } }, `lead #${leadId}`) : null,
          it.signature_valid ? badge("signature valid", "ok") : badge("signature invalid", "error"),
          h("span.grow"),
          h("time.muted", { title: fmtDate(it.received_at) }, ago(it.received_at))),
        settings && settings.message ? h("p.inbox-message", settings.message) : null,
        visit ? h("p.muted", `Visit ${visit.number} · ${visit.title || visit.url}`) : null,
        h("details", h("summary", "Body ", h("span.mono.muted", it.webhook_id)), h("pre.code", JSON.stringify(it.body, null, 2))));
    })));
  }

  const refreshSoon = debounce(refresh, 200);
  return {
    el,
    refresh,
    onLive(msg) {
      if (msg.event === "reload" || (msg.event === "lead" && msg.data.what === "inbox")) refreshSoon();
    },
  };
}
