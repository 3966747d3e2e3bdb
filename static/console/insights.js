// Insights: what visitors do on a site, per day — a chart of visits and page views drawn
// here as SVG (no chart library, nothing from a CDN), the period's totals, top pages and
// top sources (GET /api/v4/sites/{id}/stats). Also the lead card's visits sparkline.

import { get } from "./api.js";
import { catalog } from "./catalog.js";
import { h, mount, errorBox, empty, loading } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
const PERIODS = [[7, "Last 7 days"], [30, "Last 30 days"], [90, "Last 90 days"], [400, "Last 400 days"]];
const TOTALS = [
  ["visits", "Visits"], ["page_views", "Page views"], ["unique_browsers", "Unique browsers"],
  ["new_browsers", "New browsers"], ["linked_browsers", "Linked browsers"],
  ["form_submissions", "Form submissions"], ["site_visit_events", "Site-visit events"],
];

/** An SVG element (the console's `h` builds HTML and a few SVG shapes only). */
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c != null) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

/** Bars of visits per day with a line of page views; each bar tells its day on hover. */
export function dayChart(days) {
  const W = 760, H = 240, left = 44, right = 12, top = 14, bottom = 30;
  const plotW = W - left - right, plotH = H - top - bottom;
  const max = Math.max(1, ...days.map((d) => Math.max(d.visits, d.page_views)));
  const step = plotW / Math.max(days.length, 1);
  const y = (v) => top + plotH - (v / max) * plotH;
  const bars = days.map((d, i) => s("rect", {
    class: "chart-bar", x: left + i * step + step * 0.15, y: y(d.visits), width: Math.max(step * 0.7, 1),
    height: Math.max(top + plotH - y(d.visits), 0), "data-date": d.date, "data-visits": d.visits,
  }, s("title", {}, `${d.date}: ${d.visits} visits, ${d.page_views} page views, ${d.unique_browsers} unique browsers`)));
  const line = s("polyline", {
    class: "chart-line", fill: "none",
    points: days.map((d, i) => `${(left + i * step + step / 2).toFixed(1)},${y(d.page_views).toFixed(1)}`).join(" "),
  });
  const grid = [0, 0.5, 1].map((f) => {
    const v = Math.round(max * f);
    return s("g", {}, s("line", { class: "chart-grid", x1: left, x2: W - right, y1: y(v), y2: y(v) }),
      s("text", { class: "chart-label", x: left - 6, y: y(v) + 4, "text-anchor": "end" }, v));
  });
  const labels = days.length ? [
    s("text", { class: "chart-label", x: left, y: H - 8 }, days[0].date),
    s("text", { class: "chart-label", x: W - right, y: H - 8, "text-anchor": "end" }, days[days.length - 1].date),
  ] : [];
  return s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Visits (bars) and page views (line) per day" },
    grid, bars, line, labels);
}

/** A small line of a lead's visits per day over the last `n` days. */
export function sparkline(visitTimes, n = 30) {
  const today = new Date();
  const start = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate()) - (n - 1) * 86_400_000;
  const counts = new Array(n).fill(0);
  for (const t of visitTimes) {
    const i = Math.floor((t - start) / 86_400_000);
    if (i >= 0 && i < n) counts[i]++;
  }
  const W = 120, H = 28, max = Math.max(1, ...counts);
  const points = counts.map((c, i) => `${(i * (W / (n - 1))).toFixed(1)},${(H - 2 - (c / max) * (H - 4)).toFixed(1)}`).join(" ");
  const total = counts.reduce((a, b) => a + b, 0);
  return s("svg", { class: "sparkline", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img",
    "aria-label": `${total} visits in the last ${n} days`, "data-visits": total },
  s("title", {}, `${total} visits in the last ${n} days`),
  s("polyline", { fill: "none", points }));
}

function topTable(title, rows) {
  return h("div.panel.insights-top",
    h("h3", title),
    rows.length
      ? h("table.table", h("tbody", rows.map((r) => h("tr", h("td.mono", r.name), h("td.num", String(r.count))))))
      : h("p.muted", "Nothing yet."));
}

export function insightsView() {
  const siteSelect = h("select.input", { "aria-label": "Site" });
  const periodSelect = h("select.input", { "aria-label": "Period" },
    PERIODS.map(([n, label]) => h("option", { value: n, selected: n === 30 }, label)));
  const body = h("div.insights");
  const el = h("section.view.page-view",
    h("div.toolbar",
      h("div.toolbar-title", h("h1", "Insights"), siteSelect, periodSelect)),
    h("p.lead-text", "What visitors do on a site, per day (UTC): visits, page views, unique browsers (HyperLogLog), new and linked browsers, forms sent and site-visit events fired."),
    body);
  siteSelect.addEventListener("change", load);
  periodSelect.addEventListener("change", load);
  let seq = 0;

  async function refresh() {
    try {
      await catalog.loadSites();
    } catch (e) {
      mount(body, errorBox(e, { title: "Could not load the sites", retry: refresh }));
      return;
    }
    const chosen = Number(siteSelect.value);
    mount(siteSelect, catalog.sites.map((x) => h("option", { value: x.id, selected: x.id === chosen }, x.name)));
    if (!catalog.sites.length) {
      mount(body, empty("No site yet", "Add a site under Sites & forms; its visitors show up here."));
      return;
    }
    await load();
  }

  async function load() {
    const mine = ++seq;
    const days = Number(periodSelect.value);
    const to = new Date();
    const from = new Date(to.getTime() - (days - 1) * 86_400_000);
    mount(body, loading("Loading the figures…"));
    try {
      const stats = await get(`/api/v4/sites/${siteSelect.value}/stats?from=${isoDay(from)}&to=${isoDay(to)}&interval=day`);
      if (mine !== seq) return;
      render(stats);
    } catch (e) {
      if (mine !== seq) return;
      mount(body, errorBox(e, { title: "Could not load the figures", retry: load }));
    }
  }

  function render(stats) {
    mount(body,
      h("div.insights-totals", TOTALS.map(([key, label]) =>
        h("div.stat", { dataset: { stat: key } }, h("div.stat-value", String(stats.total[key] ?? 0)), h("div.stat-label", label)))),
      h("div.panel.insights-chart",
        h("div.chart-legend", h("span.legend-bar", "Visits"), h("span.legend-line", "Page views"), h("span.muted", `${stats.from} – ${stats.to}`)),
        dayChart(stats.days)),
      h("div.insights-tops", topTable("Top pages", stats.top_pages), topTable("Top sources", stats.top_sources)));
  }

  return { el, refresh, onLive() {} };
}
