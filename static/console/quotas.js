// Quotas: the account's use of its shared quotas (GET /api/v4/quotas) — page views per
// second, new visitors and form posts per hour, for the account and each of its sites.
// A bucket holds its burst at once and refills at its rate; a full one answers 429.

import { get } from "./api.js";
import { catalog } from "./catalog.js";
import { h, mount, icon, errorBox, loading, debounce } from "./ui.js";

const LABELS = { page_views: "Page views", new_visitors: "New visitors", form_posts: "Form posts" };

function siteName(id) {
  const site = (catalog.sites || []).find((s) => s.id === id);
  return site ? site.name || site.url || `Site ${id}` : `Site ${id}`;
}

export function quotasView() {
  const list = h("div");
  const el = h("section.view.page-view",
    h("div.toolbar",
      h("div.toolbar-title", h("h1", "Quotas")),
      h("div.toolbar-actions", h("button.btn", { type: "button", onclick: () => refresh() }, icon("refresh", 14), "Refresh"))),
    h("p.lead-text", "What your sites may send, shared by every footfall instance. Each bucket holds its burst at once and refills at its rate; a full bucket answers 429 with Retry-After."),
    list);

  function row(q) {
    const share = q.burst ? Math.round((100 * q.used) / q.burst) : 0;
    const per = q.period_seconds === 1 ? "s" : "h";
    return h("tr", { dataset: { quota: q.quota, scope: q.scope, siteId: q.site_id == null ? "" : String(q.site_id) } },
      h("td", LABELS[q.quota] || q.quota),
      h("td", q.scope === "site" ? siteName(q.site_id) : "Account"),
      h("td.quota-used", `${q.used} / ${q.burst}`),
      h("td", h("progress", { max: "100", value: String(share) })),
      h("td.muted", `${q.rate}/${per}`));
  }

  async function refresh() {
    if (!list.firstChild) mount(list, loading());
    try {
      const answer = await get("/api/v4/quotas");
      const quotas = (answer && answer.quotas) || [];
      mount(list, h("table.table.quotas",
        h("thead", h("tr", h("th", "Quota"), h("th", "Scope"), h("th", "In the bucket"), h("th", "Use"), h("th", "Rate"))),
        h("tbody", quotas.map(row))));
    } catch (e) {
      mount(list, errorBox(e, { title: "Could not load the quotas", retry: refresh }));
    }
  }

  const refreshSoon = debounce(refresh, 1000);
  return {
    el,
    refresh,
    onLive(msg) {
      if (msg.event === "lead") refreshSoon();
    },
  };
}
