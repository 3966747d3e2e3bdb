// The pipeline board: a column per stage, a card per lead. Cards are dragged from
// Unsorted into a stage (accepting the Unsorted entry) and between stages (a PATCH).
// Each stage shows the actions placed on it. Refreshed by live updates.

import { listAll } from "./api.js";
import { catalog, stageColor, eventLabel, STATUS_UNSORTED, isClosing } from "./catalog.js";
import { moveLead, declineEntry } from "./moves.js";
import { h, mount, icon, ago, errorBox, loading, confirmDialog, debounce, shortUrl, fmtDelay } from "./ui.js";

export function boardView(ctx) {
  const columns = h("div.board", { "aria-label": "Pipeline board" });
  const count = h("span.muted");
  const search = h("input.input.search-input", { type: "search", placeholder: "Search leads, contacts…", "aria-label": "Search leads" });
  const pipelineSelect = h("select.input", { "aria-label": "Pipeline" });
  const el = h("section.view.board-view",
    h("div.toolbar",
      h("div.toolbar-title", h("h1", "Pipeline"), pipelineSelect, count),
      h("div.toolbar-actions",
        h("label.search", icon("search", 16), search),
        h("button.btn", { type: "button", onclick: () => refresh(), title: "Reload the board" }, icon("refresh", 14), "Refresh"))),
    columns);

  let leads = [];
  let entries = new Map(); // lead id → its Unsorted entry
  let known = null; // lead ids already shown (new ones are highlighted)
  let dragging = null;
  let stale = false;
  let loaded = false;

  pipelineSelect.addEventListener("change", () => {
    ctx.pipelineId = Number(pipelineSelect.value);
    known = null;
    refresh();
  });
  search.addEventListener("input", () => applyFilter());

  async function refresh() {
    if (dragging) {
      stale = true; // after the drop
      return;
    }
    const pipeline = catalog.pipeline(ctx.pipelineId) || catalog.mainPipeline();
    if (!pipeline) {
      mount(columns, errorBox({ detail: "This account has no pipeline." }));
      return;
    }
    ctx.pipelineId = pipeline.id;
    mount(pipelineSelect, catalog.pipelines.map((p) => h("option", { value: p.id, selected: p.id === pipeline.id }, p.name)));
    pipelineSelect.hidden = catalog.pipelines.length < 2;
    if (!loaded) mount(columns, loading("Loading the board…"));
    try {
      const [l, u] = await Promise.all([
        listAll("/api/v4/leads", "leads", { pipeline_id: pipeline.id }),
        listAll("/api/v4/leads/unsorted", "unsorted", { pipeline_id: pipeline.id }),
      ]);
      leads = l;
      entries = new Map(u.map((e) => [e._embedded.leads[0].id, e]));
      loaded = true;
      render(pipeline);
    } catch (e) {
      mount(columns, errorBox(e, { title: "Could not load the board", retry: refresh }));
    }
  }

  function render(pipeline) {
    // Keep the scroll positions across a re-render.
    const scrollLeft = columns.scrollLeft;
    const scrolls = new Map([...columns.querySelectorAll(".column")].map((c) => [c.dataset.statusId, c.querySelector(".column-body").scrollTop]));
    const fresh = known;
    known = new Set(leads.map((l) => l.id));
    mount(columns, pipeline.statuses.map((s) => column(pipeline, s, fresh)));
    columns.scrollLeft = scrollLeft;
    columns.querySelectorAll(".column").forEach((c) => {
      c.querySelector(".column-body").scrollTop = scrolls.get(c.dataset.statusId) || 0;
    });
    applyFilter();
  }

  function column(pipeline, status, fresh) {
    const unsorted = status.type === STATUS_UNSORTED;
    const closed = isClosing(status);
    const inStage = leads.filter((l) => l.status_id === status.id).sort((a, b) => b.updated_at - a.updated_at);
    const actions = catalog.actionsOn(pipeline.id, status.id);
    const body = h("div.column-body",
      inStage.map((l) => card(l, fresh && !fresh.has(l.id))),
      h("div.column-empty", unsorted ? "New form submissions land here" : "Drop a lead here"));
    const col = h(`section.column${unsorted ? ".column-unsorted" : ""}${closed ? ".column-closed" : ""}`, {
      dataset: { statusId: status.id },
      style: `--stage:${stageColor(pipeline.id, status.id)}`,
      "aria-label": status.name,
    },
    h("header.column-head",
      h("div.column-title",
        h("h2", status.name),
        h("span.column-count", String(inStage.length)),
        unsorted ? null : h("button.icon-btn.column-add", {
          type: "button", title: `Add an action to “${status.name}”`, "aria-label": `Add an action to ${status.name}`,
          onclick: () => ctx.newAction({ pipelineId: pipeline.id, statusId: status.id }),
        }, icon("plus", 14))),
      actions.length ? h("div.column-actions", actions.map(actionChip)) : null),
    body);
    col.addEventListener("dragover", (e) => {
      if (!dragging || !canDrop(status)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = "move";
      col.classList.add("drop-over");
    });
    col.addEventListener("dragleave", (e) => {
      if (!col.contains(e.relatedTarget)) col.classList.remove("drop-over");
    });
    col.addEventListener("drop", (e) => {
      e.preventDefault();
      col.classList.remove("drop-over");
      if (dragging && canDrop(status)) drop(dragging, status, body);
    });
    return col;
  }

  function actionChip(a) {
    const handler = catalog.handler(a.handler_id);
    const what = a.event === "site_visit" ? `${eventLabel(a.event)} ${fmtDelay(a.delay_seconds)}` : eventLabel(a.event);
    return h(`button.chip${a.enabled ? "" : ".chip-off"}`, {
      type: "button",
      title: `${what} → ${handler ? handler.name : a.handler}${a.site_url ? ` on ${shortUrl(a.site_url)}` : ""}${a.enabled ? "" : " (disabled)"}`,
      onclick: () => ctx.go("actions"),
    }, icon("zap", 12), h("span", `${a.event === "site_visit" && a.site_url ? `Visit ${host(a.site_url)}` : eventLabel(a.event)} → ${handler ? handler.name : a.handler}`));
  }

  function host(url) {
    try {
      return new URL(url).hostname;
    } catch {
      return url;
    }
  }

  function canDrop(status) {
    return status.type !== STATUS_UNSORTED && status.id !== dragging.lead.status_id;
  }

  function card(lead, isNew) {
    const entry = entries.get(lead.id);
    const contact = (lead._embedded.contacts || []).find((c) => c.is_main) || (lead._embedded.contacts || [])[0];
    const inUnsorted = catalog.status(lead.pipeline_id, lead.status_id)?.type === STATUS_UNSORTED;
    const el = h(`article.lead-card${isNew ? ".fresh" : ""}`, {
      draggable: "true", tabindex: "0", dataset: { leadId: lead.id, search: searchText(lead) },
      "aria-label": `Lead ${lead.name}`,
    },
    h("div.card-title", lead.name),
    contact ? h("div.card-contact", icon("user", 13), h("span", contactLine(lead, contact))) : null,
    h("div.card-meta",
      h("span", `#${lead.id}`),
      ago(lead.created_at * 1000),
      entry && entry.metadata && entry.metadata.form_page ? h("span.card-source", { title: entry.metadata.form_page }, shortUrl(entry.metadata.form_page)) : null),
    inUnsorted && entry ? h("div.card-actions",
      h("button.btn.btn-xs.btn-soft", { type: "button", title: "Accept into the first stage", onclick: (e) => { e.stopPropagation(); accept(lead, entry); } }, "Accept"),
      h("button.btn.btn-xs", { type: "button", onclick: (e) => { e.stopPropagation(); decline(lead, entry); } }, "Decline")) : null);
    el.addEventListener("click", () => ctx.openLead(lead.id));
    el.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && e.target === el) ctx.openLead(lead.id);
    });
    el.addEventListener("dragstart", (e) => {
      dragging = { lead, entry };
      e.dataTransfer.effectAllowed = "move";
      e.dataTransfer.setData("text/plain", String(lead.id));
      el.classList.add("dragging");
      columns.classList.add("is-dragging");
      columns.querySelectorAll(".column").forEach((c) => {
        const s = catalog.status(lead.pipeline_id, Number(c.dataset.statusId));
        if (s && canDrop(s)) c.classList.add("drop-ok");
      });
    });
    el.addEventListener("dragend", () => {
      el.classList.remove("dragging");
      columns.classList.remove("is-dragging");
      columns.querySelectorAll(".drop-ok, .drop-over").forEach((c) => c.classList.remove("drop-ok", "drop-over"));
      // A drop's own refresh clears `dragging`; a cancelled drag just ends here.
      if (dragging && !dragging.dropped) dragging = null;
      if (stale && !dragging) {
        stale = false;
        refresh();
      }
    });
    return el;
  }

  /** The main contact in one line; its name only when the lead's name does not say it. */
  function contactLine(lead, c) {
    const name = c.name && !lead.name.includes(c.name) ? c.name : null;
    return [name, c.phone || c.email].filter(Boolean).join(" · ") || c.name;
  }

  function searchText(lead) {
    const c = (lead._embedded.contacts || []).flatMap((x) => [x.name, x.phone, x.email]);
    return [lead.name, `#${lead.id}`, ...c].filter(Boolean).join(" ").toLowerCase();
  }

  async function drop(drag, status, body) {
    drag.dropped = true;
    // Show the move at once; the board is reloaded from the server afterwards.
    const el = columns.querySelector(`.lead-card[data-lead-id="${drag.lead.id}"]`);
    if (el) {
      el.classList.add("saving");
      body.prepend(el);
      recount();
    }
    await moveLead(drag.lead, status.id, drag.entry);
    dragging = null;
    stale = false;
    ctx.leadChanged(drag.lead.id); // reloads the board (and the lead card if open)
  }

  async function accept(lead, entry) {
    const first = catalog.firstWorkingStatus(lead.pipeline_id);
    if (first && (await moveLead(lead, first.id, entry))) ctx.leadChanged(lead.id);
  }

  async function decline(lead, entry) {
    const ok = await confirmDialog(`Decline “${lead.name}”? The lead is closed as Lost and leaves Unsorted.`, { confirm: "Decline", danger: true });
    if (ok && (await declineEntry(lead, entry))) ctx.leadChanged(lead.id);
  }

  function recount() {
    columns.querySelectorAll(".column").forEach((c) => {
      c.querySelector(".column-count").textContent = String(c.querySelectorAll(".lead-card:not([hidden])").length);
    });
  }

  function applyFilter() {
    const q = search.value.trim().toLowerCase();
    let shown = 0;
    columns.querySelectorAll(".lead-card").forEach((c) => {
      c.hidden = !!q && !c.dataset.search.includes(q);
      if (!c.hidden) shown++;
    });
    recount();
    count.textContent = `${shown} lead${shown === 1 ? "" : "s"}`;
  }

  const refreshSoon = debounce(refresh, 250);

  return {
    el,
    refresh,
    onLive(msg) {
      if (msg.event === "reload") refreshSoon();
      else if (msg.event === "lead" && ["created", "moved", "visitor_moved", "note", "erased"].includes(msg.data.what)) refreshSoon();
    },
  };
}
