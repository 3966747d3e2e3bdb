// Conditions of a site-visit action: the fields of the action form, the summary shown in
// the actions list and the dialog that edits them on an existing action. Every field is
// optional; an empty form means "no conditions" (the action fires at each visit's start).

import { patch } from "./api.js";
import { h, field, openDialog, showFormError, clearFormErrors, busy, toast } from "./ui.js";

const MATCHES = [
  ["", "any page"],
  ["is", "is"],
  ["starts_with", "starts with"],
  ["contains", "contains"],
  ["glob", "matches (* = anything)"],
];

const NUMBERS = [
  ["min_visit_number", "At least the n-th visit", "Counting the browser's visits before the form."],
  ["min_pages_in_visit", "At least pages in the visit", "Fires at the page view that reaches it."],
  ["min_seconds_in_stage", "Seconds in the stage", "How long the lead has stood in the stage."],
  ["cooldown_seconds", "Cooldown (seconds)", "After firing for a lead, stay quiet this long."],
];

/** The conditions fieldset; `value()` gives the API's `conditions` (or null). */
export function conditionsFields(current) {
  const c = current || {};
  const match = h("select.input", { "aria-label": "Page match" },
    MATCHES.map(([v, t]) => h("option", { value: v, selected: (c.page ? c.page.match : "") === v }, t)));
  const value = h("input.input", { type: "text", placeholder: "/pricing", value: c.page ? c.page.value : "", "aria-label": "Page" });
  const numbers = NUMBERS.map(([key, label, hint]) => {
    const input = h("input.input", { type: "number", min: 0, step: 1, value: c[key] ?? "" });
    input.dataset.condition = key;
    return field(label, input, { name: `conditions.${key}`, hint, className: "grow" });
  });
  const el = h("fieldset.fieldset.conditions", h("legend", "Conditions (all optional, all must hold)"),
    h("div.field-row",
      field("Page (path and query)", match, { name: "conditions.page.match", className: "grow" }),
      field("\u00a0", value, { name: "conditions.page.value", className: "grow" })),
    h("div.field-row", numbers.slice(0, 2)),
    h("div.field-row", numbers.slice(2)),
    h("span.field-hint", "The action fires at the first page view of a visit at which all hold, once per visit."));

  function read() {
    const out = {};
    if (match.value) out.page = { match: match.value, value: value.value.trim() };
    el.querySelectorAll("[data-condition]").forEach((i) => {
      if (i.value !== "") out[i.dataset.condition] = Number(i.value);
    });
    return Object.keys(out).length ? out : null;
  }

  return { el, value: read };
}

/** A short line describing an action's conditions, or null. */
export function conditionsSummary(c) {
  if (!c) return null;
  const parts = [];
  if (c.page) parts.push(`page ${MATCHES.find(([v]) => v === c.page.match)?.[1] || c.page.match} ${c.page.value}`);
  if (c.min_visit_number) parts.push(`visit ≥ ${c.min_visit_number}`);
  if (c.min_pages_in_visit) parts.push(`≥ ${c.min_pages_in_visit} pages`);
  if (c.min_seconds_in_stage != null) parts.push(`in stage ≥ ${c.min_seconds_in_stage}s`);
  if (c.cooldown_seconds != null) parts.push(`cooldown ${c.cooldown_seconds}s`);
  return parts.join(" · ");
}

/** The dialog that edits an action's conditions; `onSaved` runs after a change. */
export function openConditionsForm(action, onSaved) {
  const fields = conditionsFields(action.conditions);
  const form = h("form.form", { novalidate: true },
    h("div.form-error"),
    fields.el,
    h("div.form-actions",
      h("button.btn", { type: "button", onclick: () => dialog.close() }, "Cancel"),
      h("button.btn.btn-primary", { type: "submit" }, "Save conditions")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    clearFormErrors(form);
    busy(form, async () => {
      try {
        await patch(`/api/v4/actions/${action.id}`, { conditions: fields.value() });
        toast(`Conditions of action #${action.id} saved`, { kind: "ok" });
        dialog.close();
        onSaved && (await onSaved());
      } catch (err) {
        showFormError(form, err);
      }
    });
  });
  const { dialog } = openDialog({ title: `Conditions of action #${action.id}`, body: form, wide: true });
}
