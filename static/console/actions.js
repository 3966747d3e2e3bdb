// Actions: the triggers placed on pipeline stages. The list can switch an action off and
// on or delete it; the form creates one, with the handler's settings rendered from its
// schema and the macros a setting may use.

import { post, patch, del } from "./api.js";
import { catalog, eventLabel, stageColor, STATUS_UNSORTED } from "./catalog.js";
import {
  h, mount, icon, field, openDialog, confirmDialog, showFormError, clearFormErrors, busy,
  toast, reportError, errorBox, empty, badge, fmtDelay, shortUrl,
} from "./ui.js";
import { conditionsFields, conditionsSummary, openConditionsForm } from "./conditions.js";

export const MACROS = ["{{lead.id}}", "{{lead.name}}", "{{contact.name}}", "{{contact.phone}}", "{{contact.email}}",
  "{{lead.utm_source}}", "{{lead.utm_campaign}}", "{{visit.url}}", "{{visit.number}}", "{{visit.utm_source}}"];

const EVENTS = [
  ["site_visit", "Site visit — a known visitor comes back to the site"],
  ["lead_added", "Lead added — created in or accepted into the stage"],
  ["lead_status_changed", "Stage changed — the lead moves into the stage"],
];

export function actionsView(ctx) {
  const list = h("div");
  const pipelineSelect = h("select.input", { "aria-label": "Pipeline" });
  const el = h("section.view.page-view",
    h("div.toolbar",
      h("div.toolbar-title", h("h1", "Actions"), pipelineSelect),
      h("div.toolbar-actions",
        h("button.btn.btn-primary", { type: "button", onclick: () => ctx.newAction({ pipelineId: ctx.pipelineId }) }, icon("plus", 14), "New action"))),
    h("p.lead-text", "An action fires a webhook to its handler when something happens to a lead in its stage. A site-visit action fires on every later visit of the lead's browser — at once or after a delay."),
    list);

  pipelineSelect.addEventListener("change", () => {
    ctx.pipelineId = Number(pipelineSelect.value);
    render();
  });

  async function refresh() {
    try {
      await Promise.all([catalog.loadActions(), catalog.loadHandlers()]);
      render();
    } catch (e) {
      mount(list, errorBox(e, { title: "Could not load the actions", retry: refresh }));
    }
  }

  function render() {
    const pipeline = catalog.pipeline(ctx.pipelineId) || catalog.mainPipeline();
    if (!pipeline) return;
    ctx.pipelineId = pipeline.id;
    mount(pipelineSelect, catalog.pipelines.map((p) => h("option", { value: p.id, selected: p.id === pipeline.id }, p.name)));
    pipelineSelect.hidden = catalog.pipelines.length < 2;
    const stages = pipeline.statuses;
    const first = (a) => Math.min(...a.status_ids.map((id) => stages.findIndex((s) => s.id === id)));
    const actions = catalog.actions.filter((a) => a.pipeline_id === pipeline.id).sort((a, b) => first(a) - first(b) || a.id - b.id);
    if (!actions.length) {
      mount(list, empty("No action in this pipeline yet", "Put a site-visit action on a stage: leads in that stage fire it when they come back to the site.",
        h("button.btn.btn-primary", { type: "button", onclick: () => ctx.newAction({ pipelineId: pipeline.id }) }, icon("plus", 14), "New action")));
      return;
    }
    mount(list, h("div.table-wrap", h("table.table",
      h("thead", h("tr", ["Stage", "Trigger", "Handler", "Settings", "On", ""].map((t) => h("th", t)))),
      h("tbody", actions.map((a) => row(pipeline, a))))));
  }

  function row(pipeline, a) {
    const handler = catalog.handler(a.handler_id);
    const toggle = h("input.switch", { type: "checkbox", checked: a.enabled, "aria-label": a.enabled ? "Enabled" : "Disabled", title: a.enabled ? "Enabled: click to switch off" : "Disabled: click to switch on" });
    toggle.addEventListener("change", async () => {
      toggle.disabled = true;
      try {
        await patch(`/api/v4/actions/${a.id}`, { enabled: toggle.checked });
        toast(`Action #${a.id} ${toggle.checked ? "enabled" : "disabled"}`, { kind: "ok" });
        await refresh();
      } catch (e) {
        toggle.checked = !toggle.checked;
        reportError(`Could not ${toggle.checked ? "disable" : "enable"} action #${a.id}`, e);
      } finally {
        toggle.disabled = false;
      }
    });
    return h(`tr${a.enabled ? "" : ".row-off"}`, { dataset: { actionId: a.id } },
      h("td", a.status_ids.map((id) => h("span.stage-pill", { style: `--stage:${stageColor(pipeline.id, id)}` }, catalog.statusName(pipeline.id, id)))),
      h("td",
        h("div", h("strong", eventLabel(a.event)), a.event === "site_visit" ? ` · ${fmtDelay(a.delay_seconds)}` : ""),
        a.site_url ? h("div.muted", "on ", h("span.mono", shortUrl(a.site_url))) : null,
        a.event === "site_visit" ? h("div.muted.conditions-summary", conditionsSummary(a.conditions) || "no conditions", " ",
          h("button.btn.btn-ghost.btn-sm", { type: "button", title: `Edit the conditions of action #${a.id}`, onclick: () => openConditionsForm(a, refresh) }, "edit")) : null),
      h("td", handler ? h("div", h("strong", handler.name), " ", handler.failing ? badge("failing", "error") : null, h("div.muted.mono", handler.code)) : h("span.mono", a.handler)),
      h("td", h("dl.settings", Object.entries(a.settings || {}).map(([k, v]) => [
        h("dt", (handler && handler.settings[k] && handler.settings[k].name) || k),
        h("dd", typeof v === "boolean" ? (v ? "yes" : "no") : String(v)),
      ]))),
      h("td", toggle),
      h("td.cell-actions", h("button.icon-btn", { type: "button", title: `Delete action #${a.id}`, "aria-label": `Delete action #${a.id}`, onclick: () => remove(a) }, icon("trash", 16))));
  }

  async function remove(a) {
    if (!(await confirmDialog(`Delete action #${a.id} (${eventLabel(a.event)} → ${a.handler})? Its delayed webhooks that are not due yet will be cancelled.`, { confirm: "Delete", danger: true }))) return;
    try {
      await del(`/api/v4/actions/${a.id}`);
      toast(`Action #${a.id} deleted`, { kind: "ok" });
      await refresh();
    } catch (e) {
      reportError(`Could not delete action #${a.id}`, e);
    }
  }

  return { el, refresh, onLive() {} };
}

/** The "new action" dialog; `onCreated` runs after a successful creation. */
export function openActionForm({ pipelineId, statusId } = {}, onCreated) {
  const handlers = catalog.handlers;
  const pipelineSelect = h("select.input", { name: "pipeline_id" }, catalog.pipelines.map((p) => h("option", { value: p.id, selected: p.id === pipelineId }, p.name)));
  const stageSelect = h("select.input", { name: "status_from" });
  const throughSelect = h("select.input", { name: "status_to" });
  const eventSelect = h("select.input", { name: "event" }, EVENTS.map(([code, label]) => h("option", { value: code }, label)));
  const handlerSelect = h("select.input", { name: "handler" },
    handlers.map((hd) => h("option", { value: hd.code }, `${hd.name} (${hd.code})${hd.failing ? " — failing" : ""}`)));
  const siteUrl = h("input.input", { name: "site_url", type: "text", inputmode: "url", placeholder: "https://shop.example", list: "site-urls", autocomplete: "off" });
  const siteList = h("datalist", { id: "site-urls" }, catalog.sites.map((s) => h("option", { value: s.url }, s.name)));
  const delayValue = h("input.input", { name: "delay", type: "number", min: 0, step: 1, value: 0, "aria-label": "Delay" });
  const delayUnit = h("select.input", { name: "delay_unit", "aria-label": "Delay unit" },
    [["1", "seconds"], ["60", "minutes"], ["3600", "hours"], ["86400", "days"]].map(([v, t]) => h("option", { value: v, selected: v === "60" }, t)));
  const settingsBox = h("div.settings-fields");
  let lastText = null;
  // Shown only for handlers whose actions may span adjacent stages.
  const through = field("Through stage", throughSelect, { className: "grow" });
  through.title = "This handler allows one action over adjacent stages";

  const conditions = conditionsFields(null);
  const siteRow = h("div",
    h("div.field-row",
    field("Site URL", siteUrl, { name: "site_url", hint: "Pages on this host, under this path, fire the action.", className: "grow" }),
    h("div.field", { dataset: { fieldWrap: "delay_seconds" } },
      h("span.field-label", "Delay"),
      h("div.input-group", delayValue, delayUnit),
      h("span.field-hint", "0 fires at the visit's start; at most 30 days."),
      h("span.field-error"))),
    conditions.el);

  const form = h("form.form", { novalidate: true },
    h("div.form-error"),
    h("div.field-row",
      field("Pipeline", pipelineSelect, { name: "pipeline_id", className: "grow" }),
      field("Stage", stageSelect, { name: "status_ids", className: "grow" }),
      through),
    field("When", eventSelect, { name: "event" }),
    siteRow,
    handlers.length
      ? field("Handler", handlerSelect, { name: "handler", hint: "The webhook receiver that gets the event." })
      : h("div.alert.alert-warn", icon("alert", 16), h("div", "There is no handler yet. Create one under Handlers first.")),
    h("fieldset.fieldset", h("legend", "Handler settings"), settingsBox,
      h("div.macros", h("span.field-hint", "Text settings may use these macros (click to insert):"),
        MACROS.map((m) => h("button.chip.chip-code", { type: "button", onmousedown: (e) => e.preventDefault(), onclick: () => insertMacro(m) }, m)))),
    h("div.form-actions",
      h("button.btn", { type: "button", onclick: () => dialog.close() }, "Cancel"),
      h("button.btn.btn-primary", { type: "submit", disabled: !handlers.length }, "Create action")));

  function stagesOf() {
    const p = catalog.pipeline(Number(pipelineSelect.value));
    return p ? p.statuses.filter((s) => s.type !== STATUS_UNSORTED) : [];
  }

  function fillStages(selected) {
    const stages = stagesOf();
    mount(stageSelect, stages.map((s) => h("option", { value: s.id, selected: s.id === selected }, s.name)));
    fillThrough();
  }

  function fillThrough() {
    const stages = stagesOf();
    const from = stages.findIndex((s) => s.id === Number(stageSelect.value));
    mount(throughSelect, stages.slice(Math.max(from, 0)).map((s) => h("option", { value: s.id }, s.name)));
  }

  function currentHandler() {
    return catalog.handler(handlerSelect.value);
  }

  function fillSettings() {
    const hd = currentHandler();
    through.hidden = !(hd && hd.action_multiple);
    const schema = (hd && hd.settings) || {};
    const keys = Object.keys(schema);
    mount(settingsBox, keys.length ? keys.map((k) => settingField(k, schema[k])) : h("p.muted", "This handler has no settings."));
  }

  function settingField(key, spec) {
    const name = `settings.${key}`;
    let control;
    switch (spec.type) {
      case "textarea":
        control = h("textarea.input", { rows: 3, required: spec.required });
        break;
      case "checkbox":
        control = h("input", { type: "checkbox" });
        break;
      case "select":
        control = h("select.input", h("option", { value: "" }, spec.required ? "Choose…" : "—"), (spec.options || []).map((o) => h("option", { value: o }, o)));
        break;
      case "number":
        control = h("input.input", { type: "number", step: "any" });
        break;
      case "url":
        control = h("input.input", { type: "text", inputmode: "url", placeholder: "https://…" });
        break;
      default:
        control = h("input.input", { type: "text" });
    }
    control.dataset.setting = key;
    control.dataset.type = spec.type;
    if (spec.type === "text" || spec.type === "textarea" || spec.type === "url") control.addEventListener("focus", () => (lastText = control));
    if (spec.type === "checkbox") {
      return h("label.field.field-check", { dataset: { fieldWrap: name } }, control, h("span", spec.name), h("span.field-error"));
    }
    return field(`${spec.name}${spec.required ? " *" : ""}`, control, { name });
  }

  function insertMacro(m) {
    const target = lastText || settingsBox.querySelector("[data-type=text], [data-type=textarea], [data-type=url]");
    if (!target) return;
    const start = target.selectionStart ?? target.value.length;
    const end = target.selectionEnd ?? target.value.length;
    target.value = target.value.slice(0, start) + m + target.value.slice(end);
    target.focus();
    target.setSelectionRange(start + m.length, start + m.length);
  }

  function settings() {
    const out = {};
    settingsBox.querySelectorAll("[data-setting]").forEach((c) => {
      const key = c.dataset.setting;
      if (c.dataset.type === "checkbox") out[key] = c.checked;
      else if (c.dataset.type === "number") {
        if (c.value !== "") out[key] = Number(c.value);
      } else if (c.value !== "") out[key] = c.value;
    });
    return out;
  }

  function statusIds() {
    const stages = stagesOf();
    const from = stages.findIndex((s) => s.id === Number(stageSelect.value));
    const hd = currentHandler();
    if (!(hd && hd.action_multiple)) return [Number(stageSelect.value)];
    const to = stages.findIndex((s) => s.id === Number(throughSelect.value));
    return stages.slice(from, Math.max(from, to) + 1).map((s) => s.id);
  }

  pipelineSelect.addEventListener("change", () => fillStages());
  stageSelect.addEventListener("change", fillThrough);
  handlerSelect.addEventListener("change", fillSettings);
  eventSelect.addEventListener("change", () => (siteRow.hidden = eventSelect.value !== "site_visit"));

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    clearFormErrors(form);
    const isVisit = eventSelect.value === "site_visit";
    const delay = Math.round(Number(delayValue.value || 0) * Number(delayUnit.value));
    const body = {
      pipeline_id: Number(pipelineSelect.value),
      status_ids: statusIds(),
      event: eventSelect.value,
      handler: handlerSelect.value,
      settings: settings(),
    };
    if (isVisit) {
      body.site_url = siteUrl.value.trim();
      body.delay_seconds = delay;
      const c = conditions.value();
      if (c) body.conditions = c;
    }
    busy(form, async () => {
      try {
        const answer = await post("/api/v4/actions", [body]);
        const made = answer && answer._embedded && answer._embedded.actions && answer._embedded.actions[0];
        toast(`Action${made ? ` #${made.id}` : ""} created on ${body.status_ids.map((id) => catalog.statusName(body.pipeline_id, id)).join(" → ")}`, { kind: "ok" });
        dialog.close();
        await catalog.loadActions().catch((err) => reportError("Could not reload the actions", err));
        onCreated && onCreated();
      } catch (err) {
        showFormError(form, err);
      }
    });
  });

  fillStages(statusId);
  const demoHandler = catalog.demo && catalog.handler(catalog.demo.handler);
  if (demoHandler) handlerSelect.value = demoHandler.code;
  fillSettings();
  if (catalog.sites[0]) siteUrl.value = catalog.sites[0].url;
  const { dialog } = openDialog({ title: "New action", body: h("div", form, siteList), wide: true });
  form.querySelector("select").focus();
}
