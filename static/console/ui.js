// Small DOM helpers shared by every view: an element builder that never parses HTML
// (all text goes in as text), icons, toasts, dialogs, field errors and formatting.

/** Builds an element: h("a.link", {href, onclick}, "text", child, [more]). */
export function h(tag, props, ...children) {
  // The props may be left out: h("p", "text") and h("div", child) work too.
  if (props !== undefined && (props === null || typeof props !== "object" || props instanceof Node || Array.isArray(props))) {
    children.unshift(props);
    props = null;
  }
  const [name, ...classes] = tag.split(".");
  const el = name === "svg" || name === "path" || name === "circle" || name === "polyline" || name === "line" || name === "rect"
    ? document.createElementNS("http://www.w3.org/2000/svg", name)
    : document.createElement(name || "div");
  if (classes.length) el.setAttribute("class", classes.join(" "));
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.setAttribute("class", [el.getAttribute("class"), v].filter(Boolean).join(" "));
    else if (k === "dataset") Object.assign(el.dataset, v);
    // Through the CSSOM: the console's Content-Security-Policy refuses style attributes.
    else if (k === "style") el.style.cssText = String(v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "value" || k === "checked" || k === "selected" || k === "disabled" || k === "hidden") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Feather-style icons (24×24, stroked).
const ICONS = {
  board: "M3 3h7v18H3zM14 3h7v11h-7z",
  zap: "M13 2 3 14h9l-1 8 10-12h-9l1-8z",
  webhook: "M18 16.98h-5.99c-1.1 0-1.95.94-2.48 1.9A4 4 0 0 1 2 17c.01-.7.2-1.4.57-2M6 17l3.13-5.78c.53-.97.1-2.18-.5-3.1a4 4 0 1 1 6.89-4.06M12 6l3.13 5.73C15.66 12.7 16.9 13 18 13a4 4 0 0 1 0 8",
  send: "M22 2 11 13M22 2l-7 20-4-9-9-4 20-7z",
  globe: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zM2 12h20M12 2a15 15 0 0 1 4 10 15 15 0 0 1-4 10 15 15 0 0 1-4-10 15 15 0 0 1 4-10z",
  play: "M5 3l14 9-14 9V3z",
  x: "M18 6 6 18M6 6l12 12",
  plus: "M12 5v14M5 12h14",
  copy: "M9 9h11v11H9zM5 15H4V4h11v1",
  check: "M20 6 9 17l-5-5",
  eye: "M1 12s4-8 11-8 11 8 11 8-4 8-11 8-11-8-11-8zM12 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6z",
  arrow: "M5 12h14M12 5l7 7-7 7",
  user: "M20 21v-2a4 4 0 0 0-4-4H8a4 4 0 0 0-4 4v2M12 3a4 4 0 1 0 0 8 4 4 0 0 0 0-8z",
  link: "M10 13a5 5 0 0 0 7.54.54l3-3a5 5 0 0 0-7.07-7.07l-1.72 1.71M14 11a5 5 0 0 0-7.54-.54l-3 3a5 5 0 0 0 7.07 7.07l1.71-1.71",
  inbox: "M22 12h-6l-2 3h-4l-2-3H2M5.45 5.11 2 12v6a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2v-6l-3.45-6.89A2 2 0 0 0 16.76 4H7.24a2 2 0 0 0-1.79 1.11z",
  note: "M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8zM14 2v6h6M8 13h8M8 17h5",
  ban: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zM4.9 4.9l14.2 14.2",
  star: "M12 2l3.09 6.26L22 9.27l-5 4.87 1.18 6.88L12 17.77l-6.18 3.25L7 14.14 2 9.27l6.91-1.01z",
  clock: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zM12 6v6l4 2",
  refresh: "M23 4v6h-6M1 20v-6h6M3.51 9a9 9 0 0 1 14.85-3.36L23 10M1 14l4.64 4.36A9 9 0 0 0 20.49 15",
  trash: "M3 6h18M8 6V4h8v2M19 6l-1 14H6L5 6",
  search: "M11 4a7 7 0 1 0 0 14 7 7 0 0 0 0-14zM21 21l-4.35-4.35",
  logout: "M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4M16 17l5-5-5-5M21 12H9",
  alert: "M12 9v4M12 17h.01M10.29 3.86 1.82 18a2 2 0 0 0 1.71 3h16.94a2 2 0 0 0 1.71-3L13.71 3.86a2 2 0 0 0-3.42 0z",
  footprint: "M8 3c1.7 0 3 1.8 3 4.5S9.9 13 8 13s-3-2.8-3-5.5S6.3 3 8 3zM6 15h4v2.5a2 2 0 0 1-4 0zM16 7c1.7 0 3 1.8 3 4.5S17.9 17 16 17s-3-2.8-3-5.5S14.3 7 16 7zM14 19h4v.5a2 2 0 0 1-4 0z",
};

export function icon(name, size = 16) {
  return h("svg", {
    class: "icon", width: size, height: size, viewBox: "0 0 24 24", fill: "none",
    stroke: "currentColor", "stroke-width": 2, "stroke-linecap": "round", "stroke-linejoin": "round",
    "aria-hidden": "true",
  }, h("path", { d: ICONS[name] || ICONS.x }));
}

// ---- errors -------------------------------------------------------------------------

/** The lines that describe an error: the problem's detail, then each field error. */
export function errorLines(err) {
  const lines = [];
  const detail = err && (err.detail || err.message);
  const fields = (err && err.errors) || [];
  // A problem's detail often repeats its single field error; show it once.
  if (detail && !(fields.length === 1 && detail.includes(fields[0].message))) lines.push(detail);
  for (const f of fields) lines.push(`${f.field}: ${f.message}`);
  if (!lines.length) lines.push("Something went wrong.");
  return lines;
}

/** An error box to put inside a view or a form. */
export function errorBox(err, { title, retry } = {}) {
  const lines = errorLines(err);
  return h("div.alert.alert-error", { role: "alert" },
    icon("alert", 18),
    h("div.alert-body",
      h("strong", title || (err && err.title) || "Error"),
      lines.length === 1 ? h("p", lines[0]) : h("ul", lines.map((l) => h("li", l)))),
    retry ? h("button.btn.btn-sm", { type: "button", onclick: retry }, "Retry") : null);
}

// ---- toasts -------------------------------------------------------------------------

function toastRoot() {
  let root = document.getElementById("toasts");
  if (!root) {
    root = h("div.toasts", { id: "toasts", "aria-live": "polite" });
    document.body.append(root);
  }
  return root;
}

/**
 * A short message in the corner; errors stay until dismissed. A toast with a `key`
 * replaces the one shown with the same key, so that a repeated notice shows once.
 */
/** Removes every toast (a sign-out: none outlives the session). */
export function clearToasts() {
  toastRoot().replaceChildren();
}

export function toast(message, { kind = "info", lines = [], timeout, key } = {}) {
  const close = () => el.remove();
  if (key) for (const old of toastRoot().querySelectorAll(".toast")) if (old.dataset.key === key) old.remove();
  const el = h(`div.toast.toast-${kind}`, { role: kind === "error" ? "alert" : "status", dataset: key ? { key } : {} },
    icon(kind === "error" ? "alert" : kind === "ok" ? "check" : "zap", 18),
    h("div.toast-body", h("strong", message), lines.length ? h("ul", lines.map((l) => h("li", l))) : null),
    h("button.icon-btn", { type: "button", title: "Dismiss", "aria-label": "Dismiss", onclick: close }, icon("x", 14)));
  toastRoot().append(el);
  const ms = timeout ?? (kind === "error" ? 0 : 3500);
  if (ms) setTimeout(close, ms);
  return el;
}

/** Tells the user what failed, in words: "Could not move the lead" + detail + fields. */
export function reportError(what, err) {
  console.error(what, err);
  // A refused token signs the console out, and the sign-in form says why: no toast over it.
  if (err && err.status === 401) return;
  toast(what, { kind: "error", lines: errorLines(err) });
}

// ---- dialogs ------------------------------------------------------------------------

/** A modal <dialog>; `body` is an element. Returns {dialog, close}. */
export function openDialog({ title, body, wide = false, onClose }) {
  const dialog = h(`dialog.dialog${wide ? ".dialog-wide" : ""}`, { "aria-label": title });
  const close = () => dialog.close();
  dialog.append(
    h("header.dialog-head", h("h2", title),
      h("button.icon-btn", { type: "button", "aria-label": "Close", title: "Close", onclick: close }, icon("x", 18))),
    h("div.dialog-body", body));
  dialog.addEventListener("close", () => { dialog.remove(); onClose && onClose(); });
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, close };
}

/** Resolves true when the user confirms. */
export function confirmDialog(message, { confirm = "Confirm", danger = false } = {}) {
  return new Promise((resolve) => {
    let answer = false;
    const body = h("div",
      h("p.dialog-text", message),
      h("div.form-actions",
        h("button.btn", { type: "button", onclick: () => d.close() }, "Cancel"),
        h(`button.btn.${danger ? "btn-danger" : "btn-primary"}`, { type: "button", onclick: () => { answer = true; d.close(); } }, confirm)));
    const d = openDialog({ title: "Please confirm", body, onClose: () => resolve(answer) });
  });
}

// ---- forms --------------------------------------------------------------------------

/** A labelled field; `name` ties it to the API's field errors (data-field). */
export function field(label, control, { hint, name, className } = {}) {
  if (name) control.dataset.field = name;
  return h(`label.field${className ? "." + className : ""}`, { dataset: name ? { fieldWrap: name } : undefined },
    h("span.field-label", label),
    control,
    hint ? h("span.field-hint", hint) : null,
    h("span.field-error"));
}

/**
 * Shows an API error on a form: each field error under its field (names like
 * `[0].settings.message` lose the item prefix), the rest in the form's error box.
 */
export function showFormError(form, err) {
  clearFormErrors(form);
  const rest = [];
  for (const e of err.errors || []) {
    const name = e.field.replace(/^\[\d+\]\./, "");
    const wrap = form.querySelector(`[data-field-wrap="${CSS.escape(name)}"]`);
    if (wrap) {
      wrap.classList.add("has-error");
      wrap.querySelector(".field-error").textContent = e.message;
    } else {
      rest.push(e);
    }
  }
  const box = form.querySelector(".form-error");
  const shown = { ...err, errors: rest };
  if (!rest.length && (err.errors || []).length) shown.detail = "Please correct the fields marked below.";
  if (box) mount(box, errorBox(shown, { title: err.status === 422 || err.status === 400 ? "Could not save" : err.title || "Could not save" }));
}

export function clearFormErrors(form) {
  form.querySelectorAll(".has-error").forEach((w) => {
    w.classList.remove("has-error");
    w.querySelector(".field-error").textContent = "";
  });
  const box = form.querySelector(".form-error");
  if (box) box.replaceChildren();
}

/** Disables a form's buttons while `work` runs. */
export async function busy(form, work) {
  const buttons = [...form.querySelectorAll("button")];
  buttons.forEach((b) => (b.disabled = true));
  try {
    return await work();
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

// ---- small widgets ------------------------------------------------------------------

export function copyButton(text, label = "Copy") {
  const btn = h("button.btn.btn-sm", { type: "button" }, icon("copy", 14), h("span", label));
  btn.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      btn.lastChild.textContent = "Copied";
    } catch {
      // No clipboard (plain http on another host): select the text for Ctrl+C instead.
      const pre = btn.closest(".snippet")?.querySelector("pre");
      if (pre) getSelection().selectAllChildren(pre);
      btn.lastChild.textContent = "Press Ctrl+C";
    }
    setTimeout(() => (btn.lastChild.textContent = label), 1800);
  });
  return btn;
}

export function snippet(title, code) {
  return h("div.snippet", h("div.snippet-head", h("span", title), copyButton(code)), h("pre", h("code", code)));
}

export function badge(text, kind = "neutral", title) {
  return h(`span.badge.badge-${kind}`, { title }, text);
}

export function empty(title, text, action) {
  return h("div.empty", h("strong", title), text ? h("p", text) : null, action || null);
}

export function loading(text = "Loading…") {
  return h("div.loading", h("span.spinner"), text);
}

// ---- formatting ---------------------------------------------------------------------

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const dateFmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short" });

export const fmtTime = (ms) => (ms == null ? "" : timeFmt.format(new Date(ms)));
export const fmtDate = (ms) => (ms == null ? "" : dateFmt.format(new Date(ms)));
export const fmtDay = (ms) => dayFmt.format(new Date(ms));

/** "just now", "5 min ago", "3 h ago", else the date. */
export function fmtAgo(ms) {
  if (ms == null) return "";
  const d = (Date.now() - ms) / 1000;
  if (d < 45) return "just now";
  if (d < 3600) return `${Math.round(d / 60)} min ago`;
  if (d < 86400) return `${Math.round(d / 3600)} h ago`;
  return fmtDate(ms);
}

/** A <time> showing "5 min ago" with the full date on hover. */
export function ago(ms) {
  return h("time", { datetime: new Date(ms).toISOString(), title: fmtDate(ms) }, fmtAgo(ms));
}

export function fmtDelay(s) {
  if (!s) return "at once";
  for (const [unit, n] of [["day", 86400], ["h", 3600], ["min", 60]]) {
    if (s % n === 0) {
      const v = s / n;
      return unit === "day" ? `after ${v} day${v === 1 ? "" : "s"}` : `after ${v} ${unit}`;
    }
  }
  return `after ${s} s`;
}

/** A URL without its scheme, for display. */
export function shortUrl(url) {
  try {
    const u = new URL(url);
    return u.host + (u.pathname === "/" ? "" : u.pathname) + u.search + u.hash;
  } catch {
    return url || "";
  }
}

export function debounce(fn, ms) {
  let t;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}
