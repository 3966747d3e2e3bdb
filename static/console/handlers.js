// Handlers: the webhook receivers, with their failing state. Creating one shows its
// signing secret once; dead-lettered events of a handler can be replayed at once.

import { post, created } from "./api.js";
import { catalog } from "./catalog.js";
import {
  h, mount, icon, field, openDialog, confirmDialog, showFormError, clearFormErrors, busy,
  toast, reportError, errorBox, empty, badge, ago, snippet,
} from "./ui.js";

const TYPES = ["text", "textarea", "checkbox", "select", "url", "number"];

export function handlersView() {
  const list = h("div");
  const el = h("section.view.page-view",
    h("div.toolbar",
      h("div.toolbar-title", h("h1", "Handlers")),
      h("div.toolbar-actions", h("button.btn.btn-primary", { type: "button", onclick: () => openHandlerForm(refresh) }, icon("plus", 14), "New handler"))),
    h("p.lead-text", "A handler receives the webhooks of the actions that name it, signed with its secret (Standard Webhooks). Its settings schema is the form a marketer fills in for each action."),
    list);

  async function refresh() {
    try {
      await Promise.all([catalog.loadHandlers(), catalog.loadActions()]);
      render();
    } catch (e) {
      mount(list, errorBox(e, { title: "Could not load the handlers", retry: refresh }));
    }
  }

  function render() {
    if (!catalog.handlers.length) {
      mount(list, empty("No handler yet", "Register the URL that should receive the webhooks.",
        h("button.btn.btn-primary", { type: "button", onclick: () => openHandlerForm(refresh) }, icon("plus", 14), "New handler")));
      return;
    }
    mount(list, h("div.table-wrap", h("table.table",
      h("thead", h("tr", ["Handler", "Webhook URL", "Settings", "Actions", "Status", ""].map((t) => h("th", t)))),
      h("tbody", catalog.handlers.map(row)))));
  }

  function row(hd) {
    const uses = catalog.actions.filter((a) => a.handler_id === hd.id).length;
    const schema = Object.entries(hd.settings || {});
    return h("tr", { dataset: { handlerId: hd.id } },
      h("td", h("strong", hd.name), h("div.muted.mono", hd.code), hd.action_multiple ? h("div.muted", "spans adjacent stages") : null),
      h("td.mono.cell-url", hd.webhook_url),
      h("td", schema.length ? h("ul.plain", schema.map(([k, s]) => h("li", h("span", s.name), " ", h("span.muted.mono", `${k}: ${s.type}${s.required ? ", required" : ""}`)))) : h("span.muted", "none")),
      h("td", String(uses)),
      h("td", hd.failing
        ? h("div", badge("failing", "error"), h("div.muted", "since ", ago(hd.failing_since * 1000)))
        : hd.failing_since
          ? h("div", badge("errors", "warn"), h("div.muted", "failing since ", ago(hd.failing_since * 1000)))
          : badge("healthy", "ok")),
      h("td.cell-actions", h("button.btn.btn-sm", { type: "button", title: "Send every dead-lettered event of this handler again", onclick: () => replayDead(hd) }, icon("refresh", 14), "Replay dead")));
  }

  async function replayDead(hd) {
    if (!(await confirmDialog(`Send every dead-lettered event of “${hd.name}” again?`, { confirm: "Replay" }))) return;
    try {
      const events = created(await post(`/api/v4/handlers/${hd.id}/replay`), "events");
      toast(events.length ? `${events.length} event${events.length === 1 ? "" : "s"} queued again` : "No dead event to replay", { kind: "ok" });
    } catch (e) {
      reportError(`Could not replay the dead events of “${hd.name}”`, e);
    }
  }

  return {
    el,
    refresh,
    onLive(msg) {
      // A delivery may change a handler's failing state.
      if (msg.event === "reload" || (msg.event === "lead" && msg.data.what === "delivery")) refreshSoon();
    },
  };

  function refreshSoon() {
    clearTimeout(refreshSoon.t);
    refreshSoon.t = setTimeout(refresh, 1000);
  }
}

function openHandlerForm(onCreated) {
  const rows = h("div.schema-rows");
  const form = h("form.form", { novalidate: true },
    h("div.form-error"),
    h("div.field-row",
      field("Name", h("input.input", { name: "name", placeholder: "Notify the sales team", required: true }), { name: "name", className: "grow" }),
      field("Code", h("input.input.mono", { name: "code", placeholder: "notify", pattern: "[a-z0-9_-]{1,64}", required: true }), { name: "code", hint: "a-z, 0-9, _ and -; actions name the handler by it" })),
    field("Webhook URL", h("input.input", { name: "webhook_url", type: "url", placeholder: "https://hooks.example.com/footfall", required: true }), { name: "webhook_url", hint: "Must answer 2xx within the timeout. Private addresses are refused unless allowed in the configuration." }),
    h("label.field.field-check", h("input", { type: "checkbox", name: "action_multiple" }), h("span", "One action may span several adjacent stages")),
    h("fieldset.fieldset", h("legend", "Settings schema"),
      h("p.field-hint", "The fields a marketer fills in for each action; the values arrive in the webhook under action.settings.widget.settings."),
      h("div.schema-head", h("span", "Key"), h("span", "Label"), h("span", "Type"), h("span", "Required"), h("span")),
      rows,
      h("button.btn.btn-sm", { type: "button", onclick: () => rows.append(schemaRow()) }, icon("plus", 14), "Add a setting")),
    h("div.form-actions",
      h("button.btn", { type: "button", onclick: () => dialog.close() }, "Cancel"),
      h("button.btn.btn-primary", { type: "submit" }, "Create handler")));
  rows.append(schemaRow({ key: "message", name: "Message", type: "text", required: true }));

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    clearFormErrors(form);
    const settings = {};
    rows.querySelectorAll(".schema-row").forEach((r) => {
      const key = r.querySelector("[name=key]").value.trim();
      if (!key) return;
      const spec = { name: r.querySelector("[name=label]").value.trim() || key, type: r.querySelector("[name=type]").value, required: r.querySelector("[name=required]").checked };
      if (spec.type === "select") spec.options = r.querySelector("[name=options]").value.split(",").map((s) => s.trim()).filter(Boolean);
      settings[key] = spec;
    });
    const body = {
      name: form.elements.name.value,
      code: form.elements.code.value.trim(),
      webhook_url: form.elements.webhook_url.value.trim(),
      action_multiple: form.elements.action_multiple.checked,
      settings,
    };
    busy(form, async () => {
      try {
        const [made] = created(await post("/api/v4/handlers", [body]), "handlers");
        dialog.close();
        onCreated && (await onCreated());
        if (made) showSecret(made);
      } catch (err) {
        showFormError(form, err);
      }
    });
  });
  const { dialog } = openDialog({ title: "New handler", body: form, wide: true });
}

function schemaRow(spec = { key: "", name: "", type: "text", required: false }) {
  const type = h("select.input", { name: "type", "aria-label": "Type" }, TYPES.map((t) => h("option", { value: t, selected: t === spec.type }, t)));
  const options = h("input.input", { name: "options", placeholder: "Options, comma-separated", hidden: spec.type !== "select", "aria-label": "Options" });
  type.addEventListener("change", () => (options.hidden = type.value !== "select"));
  const row = h("div.schema-row",
    h("input.input.mono", { name: "key", value: spec.key, placeholder: "message", "aria-label": "Key" }),
    h("input.input", { name: "label", value: spec.name, placeholder: "Message", "aria-label": "Label" }),
    type,
    h("label.check", h("input", { type: "checkbox", name: "required", checked: spec.required }), "required"),
    h("button.icon-btn", { type: "button", title: "Remove", "aria-label": "Remove this setting", onclick: () => row.remove() }, icon("x", 14)),
    options);
  return row;
}

/** The secret appears in the creation's answer only: show it once, with a copy button. */
function showSecret(handler) {
  openDialog({
    title: `Handler “${handler.name}” created`,
    body: h("div",
      h("div.alert.alert-warn", icon("alert", 18), h("div", h("strong", "Copy the signing secret now."), h("p", "footfall shows it only this once. The receiver verifies each webhook's signature with it."))),
      snippet("Signing secret", handler.secret),
      h("p.muted", "Lost it? Rotate it with PATCH /api/v4/handlers/", String(handler.id), " and {\"rotate_secret\": true}.")),
  });
}
