// Sites and forms: what a site owner pastes. Each site shows its script tag, each form
// its HTML snippet, both as the API returns them (`snippet`), ready to copy.

import { post, created } from "./api.js";
import { catalog } from "./catalog.js";
import { h, mount, icon, field, openDialog, showFormError, clearFormErrors, busy, toast, errorBox, empty, snippet, badge } from "./ui.js";

export function sitesView() {
  const list = h("div.stack");
  const el = h("section.view.page-view",
    h("div.toolbar",
      h("div.toolbar-title", h("h1", "Sites & forms")),
      h("div.toolbar-actions",
        h("button.btn", { type: "button", onclick: () => openFormForm(refresh) }, icon("plus", 14), "New form"),
        h("button.btn.btn-primary", { type: "button", onclick: () => openSiteForm(refresh) }, icon("plus", 14), "New site"))),
    h("p.lead-text", "Paste the script tag into every page of the site, and a form marked data-footfall-form where visitors leave their contacts. A submission becomes an Unsorted lead linked to the visitor's browser."),
    list);

  async function refresh() {
    try {
      await catalog.loadSites();
      render();
    } catch (e) {
      mount(list, errorBox(e, { title: "Could not load the sites", retry: refresh }));
    }
  }

  function render() {
    if (!catalog.sites.length) {
      mount(list, empty("No site yet", "Add the site whose visitors footfall should follow.",
        h("button.btn.btn-primary", { type: "button", onclick: () => openSiteForm(refresh) }, icon("plus", 14), "New site")));
      return;
    }
    mount(list, catalog.sites.map((s) => {
      const forms = catalog.forms.filter((f) => f.site_id === s.id);
      return h("article.panel", { dataset: { siteId: s.id } },
        h("header.panel-head",
          h("div", h("h2", s.name), h("a.muted", { href: s.url, target: "_blank", rel: "noopener" }, s.url)),
          h("div.panel-meta", h("span.muted", "Key "), h("code", s.key), s.respect_opt_out ? badge("respects opt-outs", "info") : null,
            s.consent === "required" ? badge("consent required", "info") : null)),
        h("div.hosts", h("span.muted", "Allowed hosts:"), s.hosts.map((x) => h("span.chip.chip-static", x))),
        snippet("Script tag — paste into every page", s.snippet),
        h("h3.subhead", "Forms"),
        forms.length
          ? forms.map((f) => {
            const p = catalog.pipeline(f.pipeline_id);
            return h("div.form-item", { dataset: { formId: f.id } },
              h("div.form-item-head",
                h("strong", f.name), h("span.muted.mono", f.id),
                h("span.muted", `→ ${p ? p.name : `pipeline ${f.pipeline_id}`}`),
                h("span.muted", `required: ${(f.required || []).join(", ") || "nothing"}`),
                f.success_url ? h("span.muted", "then ", h("a", { href: f.success_url, target: "_blank", rel: "noopener" }, f.success_url)) : null),
              snippet("Form snippet", f.snippet));
          })
          : h("p.muted", "No form on this site yet. ", h("a", { href: "#", onclick: (e) => { e.preventDefault(); openFormForm(refresh, s.id); } }, "Add one")));
    }));
  }

  return { el, refresh, onLive() {} };
}

function openSiteForm(onCreated) {
  const form = h("form.form", { novalidate: true },
    h("div.form-error"),
    field("Name", h("input.input", { name: "name", placeholder: "Shop", required: true }), { name: "name" }),
    field("URL", h("input.input", { name: "url", type: "url", placeholder: "https://shop.example", required: true }), { name: "url" }),
    field("Allowed hosts", h("input.input", { name: "hosts", placeholder: "shop.example, www.shop.example" }), { name: "hosts", hint: "Comma-separated. Empty: the URL's host. Only these hosts may report page views and submit forms." }),
    h("label.field.field-check", h("input", { type: "checkbox", name: "respect_dnt" }), h("span", "Honour Do-Not-Track and Global Privacy Control")),
    h("div.form-actions",
      h("button.btn", { type: "button", onclick: () => dialog.close() }, "Cancel"),
      h("button.btn.btn-primary", { type: "submit" }, "Create site")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    clearFormErrors(form);
    const hosts = form.elements.hosts.value.split(",").map((x) => x.trim()).filter(Boolean);
    const body = { name: form.elements.name.value, url: form.elements.url.value.trim(), respect_dnt: form.elements.respect_dnt.checked };
    if (hosts.length) body.hosts = hosts;
    busy(form, async () => {
      try {
        const [site] = created(await post("/api/v4/sites", [body]), "sites");
        toast(`Site “${site ? site.name : body.name}” created`, { kind: "ok" });
        dialog.close();
        await onCreated();
      } catch (err) {
        showFormError(form, err);
      }
    });
  });
  const { dialog } = openDialog({ title: "New site", body: form });
}

function openFormForm(onCreated, siteId) {
  if (!catalog.sites.length) {
    toast("Create a site first", { kind: "error", lines: ["A form belongs to a site."] });
    return;
  }
  const main = catalog.mainPipeline();
  const form = h("form.form", { novalidate: true },
    h("div.form-error"),
    field("Name", h("input.input", { name: "name", placeholder: "Contact", required: true }), { name: "name" }),
    h("div.field-row",
      field("Site", h("select.input", { name: "site_id" }, catalog.sites.map((s) => h("option", { value: s.id, selected: s.id === siteId }, s.name))), { name: "site_id", className: "grow" }),
      field("Pipeline", h("select.input", { name: "pipeline_id" }, catalog.pipelines.map((p) => h("option", { value: p.id, selected: main && p.id === main.id }, p.name))), { name: "pipeline_id", className: "grow" })),
    field("Success URL", h("input.input", { name: "success_url", type: "url", placeholder: "https://shop.example/thanks" }), { name: "success_url", hint: "Where a plain HTML post is redirected. Optional." }),
    h("div.field", { dataset: { fieldWrap: "required" } },
      h("span.field-label", "Required fields"),
      h("div.checks", ["name", "phone", "email"].map((f) => h("label.check", h("input", { type: "checkbox", name: "required", value: f, checked: f === "name" }), f))),
      h("span.field-error")),
    h("div.form-actions",
      h("button.btn", { type: "button", onclick: () => dialog.close() }, "Cancel"),
      h("button.btn.btn-primary", { type: "submit" }, "Create form")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    clearFormErrors(form);
    const body = {
      name: form.elements.name.value,
      site_id: Number(form.elements.site_id.value),
      pipeline_id: Number(form.elements.pipeline_id.value),
      required: [...form.querySelectorAll("[name=required]:checked")].map((c) => c.value),
    };
    const success = form.elements.success_url.value.trim();
    if (success) body.success_url = success;
    busy(form, async () => {
      try {
        const [made] = created(await post("/api/v4/forms", [body]), "forms");
        toast(`Form “${made ? made.name : body.name}” created`, { kind: "ok" });
        dialog.close();
        await onCreated();
      } catch (err) {
        showFormError(form, err);
      }
    });
  });
  const { dialog } = openDialog({ title: "New form", body: form });
}
