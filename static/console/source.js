// Where a lead came from, on the lead card: its first touch (the earliest visit of any of
// its browsers) and last touch (the visit of the form), each with the landing page, the
// referrer and the campaign parameters.

import { h, fmtDate, shortUrl } from "./ui.js";

const PARAMS = ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "gclid", "yclid", "fbclid"];

function touch(label, t) {
  if (!t) return h("div.touch", h("div.touch-label", label), h("p.muted", "No visit recorded."));
  const params = PARAMS.filter((p) => t[p]);
  return h("div.touch", { dataset: { touch: label.toLowerCase().replace(" ", "_") } },
    h("div.touch-label", label, h("span.muted", ` · ${fmtDate(t.started_at * 1000)}`)),
    h("div.mono.touch-url", { title: t.url }, shortUrl(t.url)),
    t.referrer ? h("div.muted", "from ", h("span.mono", shortUrl(t.referrer))) : h("div.muted", "direct or internal"),
    params.length
      ? h("dl.settings.touch-params", params.map((p) => [h("dt", p), h("dd", t[p])]))
      : h("div.muted", "no campaign parameters"));
}

/** The "Source" section of the lead card, or null when the lead has no source. */
export function sourceSection(lead) {
  const s = lead.source;
  if (!s) return null;
  return h("section.drawer-section.lead-source",
    h("h3", "Source"),
    h("div.touches", touch("First touch", s.first_touch), touch("Last touch", s.last_touch)));
}
