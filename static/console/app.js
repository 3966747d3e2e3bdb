// footfall's console: sign-in with the account's API token, then a shell with one view
// per tab (board, actions, handlers, deliveries, account webhooks, sites and forms, privacy, demo), the lead card as
// a side panel over any view, and the live stream feeding all of them.

import { session, get, UNAUTHORIZED } from "./api.js";
import { catalog } from "./catalog.js";
import { connectLive } from "./live.js";
import { boardView } from "./board.js";
import { leadDrawer } from "./lead.js";
import { actionsView, openActionForm } from "./actions.js";
import { handlersView } from "./handlers.js";
import { deliveriesView } from "./deliveries.js";
import { webhooksView } from "./webhooks.js";
import { sitesView } from "./sites.js";
import { insightsView } from "./insights.js";
import { demoView } from "./demo.js";
import { privacyView } from "./privacy.js";
import { quotasView } from "./quotas.js";
import { h, mount, icon, errorBox, errorLines, loading, reportError, clearToasts } from "./ui.js";

const root = document.getElementById("app");

const TABS = [
  ["board", "Pipeline", "board", boardView],
  ["actions", "Actions", "zap", actionsView],
  ["handlers", "Handlers", "webhook", handlersView],
  ["deliveries", "Deliveries", "send", deliveriesView],
  ["webhooks", "Webhooks", "link", webhooksView],
  ["sites", "Sites & forms", "globe", sitesView],
  ["privacy", "Privacy", "ban", privacyView],
  ["insights", "Insights", "eye", insightsView],
  ["quotas", "Quotas", "clock", quotasView],
  ["demo", "Demo", "play", demoView],
];

let live = null;
let shell = null;

// True while the sign-in form checks a token: the form shows that refusal itself.
let checkingToken = false;

window.addEventListener(UNAUTHORIZED, (e) => {
  // Any other refusal, while the shell is up or while it loads from a token kept in the
  // tab, forgets the token and asks for it again. A second refusal of the same token (the
  // account loads in several requests at once) finds it forgotten already.
  if (checkingToken || !session.token) return;
  // A request of an earlier session, answered after a new token was accepted.
  if (e.detail && e.detail.token !== session.token) return;
  signOut(`footfall refused the token: ${errorLines(e.detail).join(" ")}`);
});

function signOut(message) {
  session.token = null;
  if (live) live.close();
  live = null;
  shell = null;
  document.querySelectorAll("dialog[open]").forEach((d) => d.close());
  // Toasts live outside #app, and errors stay until dismissed: none outlives the session.
  clearToasts();
  showSignIn(message);
}

// ---- sign-in --------------------------------------------------------------------------

function showSignIn(message) {
  document.title = "Sign in · footfall";
  const token = h("input.input", { id: "token", name: "token", type: "password", autocomplete: "current-password", placeholder: "Account API token", required: true, spellcheck: "false" });
  const error = h("div.form-error");
  if (message) mount(error, errorBox({ detail: message }, { title: "Signed out" }));
  const form = h("form.signin-card", { novalidate: true },
    h("div.brand.brand-lg", icon("footprint", 28), h("span", "footfall")),
    h("h1", "Sign in to the console"),
    h("p.muted", "Paste your account's API token. It is kept in this browser tab only (sessionStorage) and sent as a Bearer token."),
    error,
    h("label.field", h("span.field-label", "API token"), token),
    h("button.btn.btn-primary.btn-block", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = token.value.trim();
    if (!value) {
      mount(error, errorBox({ detail: "Enter the token of your account (the `token` of an [[accounts]] entry in footfall's configuration)." }, { title: "Token needed" }));
      return;
    }
    form.querySelector("button").disabled = true;
    session.token = value;
    checkingToken = true;
    try {
      await get("/api/v4/leads/pipelines?limit=1");
    } catch (err) {
      session.token = null;
      form.querySelector("button").disabled = false;
      mount(error, errorBox(err, { title: err.status === 401 ? "The token was refused" : "Could not sign in" }));
      return;
    } finally {
      checkingToken = false;
    }
    start();
  });
  mount(root, h("main.signin", form));
  token.focus();
}

// ---- the shell ------------------------------------------------------------------------

async function start() {
  document.title = "footfall console";
  mount(root, h("div.boot", loading("Loading the account…")));
  try {
    await catalog.load();
  } catch (e) {
    // A refused token: the UNAUTHORIZED handler has shown the sign-in form already.
    if (e.status === 401 || !session.token) return;
    mount(root, h("div.boot", errorBox(e, { title: "Could not load the account", retry: start })));
    return;
  }
  shell = buildShell();
  mount(root, shell.el);
  live = connectLive({
    onStatus: shell.setLive,
    onMessage: (msg) => shell.dispatch(msg),
  });
  route();
}

function buildShell() {
  const status = h("span.live-status", { "data-state": "connecting", title: "Live updates" }, h("span.dot"), h("span.live-text", "Connecting…"));
  const nav = h("nav.tabs-main", { "aria-label": "Sections" });
  const main = h("main.main");
  const account = (catalog.pipelines[0] || {}).account_id;
  const ctx = {
    pipelineId: (catalog.mainPipeline() || {}).id,
    openLead: (id) => drawer.open(id),
    go: (tab) => (location.hash = `#/${tab}`),
    /** A lead changed through this console: refresh whatever shows it. */
    leadChanged(id) {
      if (drawer.leadId === id) drawer.refresh();
      if (current && current.name === "board") current.view.refresh();
    },
    newAction: (preset) => openActionForm(preset, () => current && current.view.refresh()),
  };
  const drawer = leadDrawer(ctx);
  const views = new Map();
  let current = null;

  const el = h("div.shell",
    h("header.topbar",
      h("a.brand", { href: "#/board" }, icon("footprint", 22), h("span", "footfall")),
      nav,
      h("div.topbar-right",
        status,
        account ? h("span.muted.account", `Account ${account}`) : null,
        h("a.btn.btn-ghost", { href: "/api/docs", target: "_blank", rel: "noopener", dataset: { link: "api-docs" } }, "API reference"),
        h("button.btn.btn-ghost", { type: "button", onclick: () => signOut() }, icon("logout", 14), "Sign out"))),
    main, drawer.backdrop, drawer.el);

  function renderNav(active) {
    mount(nav, TABS.filter(([name]) => name !== "demo" || catalog.demo).map(([name, label, ic]) =>
      h(`a.tab-main${name === active ? ".active" : ""}`, { href: `#/${name}`, "aria-current": name === active ? "page" : null, dataset: { tab: name } }, icon(ic, 16), label)));
  }

  function show(name) {
    const tab = TABS.find(([n]) => n === name && (n !== "demo" || catalog.demo)) || TABS[0];
    if (current && current.name === tab[0]) return;
    let view = views.get(tab[0]);
    if (!view) {
      view = tab[3](ctx);
      views.set(tab[0], view);
    }
    current = { name: tab[0], view };
    renderNav(tab[0]);
    mount(main, view.el);
    document.title = `${tab[1]} · footfall`;
    view.refresh();
  }

  return {
    el,
    show,
    setLive(state) {
      status.dataset.state = state;
      status.querySelector(".live-text").textContent = { live: "Live", connecting: "Connecting…", offline: "Reconnecting…" }[state] || state;
    },
    dispatch(msg) {
      if (msg.event === "reload") {
        catalog.load().catch((e) => reportError("Could not reload the account", e));
      }
      drawer.onLive(msg);
      if (current) current.view.onLive(msg);
    },
  };
}

function route() {
  if (!shell) return;
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1] || "board";
  shell.show(name);
}

window.addEventListener("hashchange", route);

if (session.token) start();
else showSignIn();
