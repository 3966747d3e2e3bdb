// Privacy: a lead's data exported (one JSON file) or erased from the lead card, and the
// Privacy view — each site's consent setting with the snippet the site's consent banner
// calls, and the audit of erasures (when, which token, what kind, how many; never whose).

import { get, del, patch, listAll } from "./api.js";
import { catalog } from "./catalog.js";
import { h, mount, icon, badge, errorBox, loading, confirmDialog, empty, snippet, toast, errorLines, fmtDate } from "./ui.js";

/** Downloads everything footfall holds about the lead as a JSON file. */
export async function exportLead(lead) {
  try {
    const data = await get(`/api/v4/privacy/export?lead_id=${lead.id}`);
    const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
    const a = h("a", { href: url, download: `footfall-lead-${lead.id}.json`, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (e) {
    toast(`Could not export lead #${lead.id}`, { kind: "error", lines: errorLines(e) });
  }
}

/** Asks, naming what goes, then erases the lead and its data; resolves true when erased. */
export async function deleteLead(lead) {
  const contacts = (lead._embedded.contacts || []).map((c) => [c.name, c.phone, c.email].filter(Boolean).join(", "));
  const browsers = (lead._embedded.visitors || []).length;
  const message = `Delete lead #${lead.id} “${lead.name}” and its data? This erases, for good: ` +
    `its contact${contacts.length === 1 ? "" : "s"} (${contacts.join("; ") || "none"}), its Unsorted entry, ` +
    `its notes and timeline, its webhook events and deliveries (delayed ones will not be sent), ` +
    `and the page views and links of its ${browsers} browser${browsers === 1 ? "" : "s"}. ` +
    "The erasure is recorded in the Privacy audit without any of this data.";
  if (!(await confirmDialog(message, { confirm: "Delete lead and its data", danger: true }))) return false;
  try {
    await del(`/api/v4/leads/${lead.id}`);
    toast(`Lead #${lead.id} and its data were erased`);
    return true;
  } catch (e) {
    toast(`Could not delete lead #${lead.id}`, { kind: "error", lines: errorLines(e) });
    return false;
  }
}

const KINDS = { lead: "Lead deleted", visitor: "Browser deleted", email: "Erased by email", phone: "Erased by phone", retention: "Retention" };

export function privacyView() {
  const sites = h("div.stack");
  const audit = h("div");
  const el = h("section.view.page-view",
    h("div.toolbar", h("div.toolbar-title", h("h1", "Privacy"))),
    h("p.lead-text", "With consent required, t.js sends and stores nothing until your consent banner calls footfall('consent', true); footfall('consent', false) withdraws it and removes footfall's cookie and storage. Sites that respect opt-outs ignore browsers with Global Privacy Control or Do Not Track. After changing a setting, paste the site's script tag again."),
    h("h2.subhead", "Consent by site"), sites,
    h("h2.subhead", "Erasures"), audit);

  async function refresh() {
    mount(audit, loading("Loading the audit…"));
    try {
      await catalog.loadSites();
      renderSites();
    } catch (e) {
      mount(sites, errorBox(e, { title: "Could not load the sites", retry: refresh }));
    }
    try {
      const records = await listAll("/api/v4/privacy/audit", "audit");
      renderAudit(records);
    } catch (e) {
      mount(audit, errorBox(e, { title: "Could not load the audit", retry: refresh }));
    }
  }

  async function change(site, body) {
    try {
      await patch(`/api/v4/sites/${site.id}`, body);
      await catalog.loadSites();
      renderSites();
      toast(`${site.name}: saved — paste its script tag again`);
    } catch (e) {
      toast(`Could not change ${site.name}`, { kind: "error", lines: errorLines(e) });
      renderSites();
    }
  }

  function renderSites() {
    if (!catalog.sites.length) {
      mount(sites, empty("No site yet", "Add a site under Sites & forms."));
      return;
    }
    mount(sites, catalog.sites.map((s) => {
      const required = s.consent === "required";
      const consent = h("select.input", { "aria-label": `Consent on ${s.name}`, dataset: { siteId: s.id } },
        h("option", { value: "none", selected: !required }, "Not asked: track from the first page view"),
        h("option", { value: "required", selected: required }, "Required: wait for footfall('consent', true)"));
      consent.addEventListener("change", () => change(s, { consent: consent.value }));
      const optOut = h("input", { type: "checkbox", checked: !!s.respect_opt_out });
      optOut.addEventListener("change", () => change(s, { respect_opt_out: optOut.checked }));
      return h("article.panel", { dataset: { privacySite: s.id } },
        h("header.panel-head", h("div", h("h2", s.name), h("span.muted", s.url)),
          h("div.panel-meta", required ? badge(`consent required · remembered ${s.consent_days} days`, "info") : badge("no consent asked"))),
        h("label.inline-field", h("span", "Consent"), consent),
        h("label.field.field-check", optOut, h("span", "Respect opt-outs (Global Privacy Control, Do Not Track)")),
        snippet("Script tag — paste into every page", s.snippet),
        required ? snippet("In your consent banner — when the visitor accepts", "footfall('consent', true);") : null,
        required ? snippet("…and when the visitor declines or withdraws", "footfall('consent', false);") : null);
    }));
  }

  function renderAudit(records) {
    if (!records.length) {
      mount(audit, empty("No erasure yet", "Erasures through the API, the lead card and the retention show here — what kind, how many, by which token; never whose."));
      return;
    }
    mount(audit, h("table.table",
      h("thead", h("tr", ["When", "What", "Token", "Leads", "Contacts", "Unsorted", "Browsers", "Page views", "Events"].map((c) => h("th", c)))),
      h("tbody", records.map((r) => h("tr",
        h("td", fmtDate(r.at * 1000)), h("td", KINDS[r.kind] || r.kind), h("td", h("code", r.token)),
        ["leads", "contacts", "unsorted", "visitors", "page_views", "events"].map((k) => h("td", String(r.erased[k]))))))));
  }

  return {
    el,
    refresh,
    onLive(msg) {
      if (msg.event === "lead" && msg.data && msg.data.what === "erased") refresh();
    },
  };
}
