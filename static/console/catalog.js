// What several views need at once and what changes rarely: pipelines and their stages,
// handlers, actions, sites, forms and the demo. Loaded after sign-in; each part is
// reloaded by the view that changes it.

import { get, listAll, ApiError } from "./api.js";

export const STATUS_UNSORTED = 1;

/** A closing stage (won or lost), as the API marks it. */
export const isClosing = (status) => Boolean(status && status.closing);

export const catalog = {
  pipelines: [],
  handlers: [],
  actions: [],
  sites: [],
  forms: [],
  /** `{site_id, site_key, form_id, handler_id, handler, inbox_url}` or null when off. */
  demo: null,

  async load() {
    await Promise.all([this.loadPipelines(), this.loadHandlers(), this.loadActions(), this.loadSites(), this.loadDemo()]);
  },
  async loadPipelines() {
    this.pipelines = await listAll("/api/v4/leads/pipelines", "pipelines");
    for (const p of this.pipelines) {
      p.statuses = [...((p._embedded && p._embedded.statuses) || [])].sort((a, b) => a.sort - b.sort);
    }
  },
  async loadHandlers() {
    this.handlers = await listAll("/api/v4/handlers", "handlers");
  },
  async loadActions() {
    this.actions = await listAll("/api/v4/actions", "actions");
  },
  async loadSites() {
    [this.sites, this.forms] = await Promise.all([listAll("/api/v4/sites", "sites"), listAll("/api/v4/forms", "forms")]);
  },
  async loadDemo() {
    try {
      this.demo = await get("/api/v4/demo");
    } catch (e) {
      // 404: the demo is off (or belongs to another account); anything else is an error.
      if (e instanceof ApiError && e.status === 404) this.demo = null;
      else throw e;
    }
  },

  pipeline(id) {
    return this.pipelines.find((p) => p.id === id) || null;
  },
  mainPipeline() {
    return this.pipelines.find((p) => p.is_main) || this.pipelines[0] || null;
  },
  /** A stage of a pipeline (Won and Lost have the same ids in every pipeline). */
  status(pipelineId, statusId) {
    const p = this.pipeline(pipelineId);
    return (p && p.statuses.find((s) => s.id === statusId)) || null;
  },
  statusName(pipelineId, statusId) {
    const s = this.status(pipelineId, statusId);
    return s ? s.name : `stage ${statusId}`;
  },
  unsortedStatus(pipelineId) {
    const p = this.pipeline(pipelineId);
    return (p && p.statuses.find((s) => s.type === STATUS_UNSORTED)) || null;
  },
  /** The first stage a lead can be accepted into. */
  firstWorkingStatus(pipelineId) {
    const p = this.pipeline(pipelineId);
    return (p && p.statuses.find((s) => s.type !== STATUS_UNSORTED)) || null;
  },
  handler(idOrCode) {
    return this.handlers.find((h) => h.id === idOrCode || h.code === idOrCode) || null;
  },
  action(id) {
    return this.actions.find((a) => a.id === id) || null;
  },
  actionsOn(pipelineId, statusId) {
    return this.actions.filter((a) => a.pipeline_id === pipelineId && a.status_ids.includes(statusId));
  },
  form(id) {
    return this.forms.find((f) => f.id === id) || null;
  },
  site(id) {
    return this.sites.find((s) => s.id === id) || null;
  },
};

// Stage colours: Unsorted grey, working stages from a palette, Won green, Lost red.
const PALETTE = ["#2f6fed", "#7a5af8", "#0ba5ec", "#ee46bc", "#f79009", "#15b79e", "#6172f3"];

export function stageColor(pipelineId, statusId) {
  const p = catalog.pipeline(pipelineId);
  const s = p && p.statuses.find((x) => x.id === statusId);
  if (s && s.closing === "won") return "#12b76a";
  if (s && s.closing === "lost") return "#f04438";
  if (!s || s.type === STATUS_UNSORTED) return "#98a2b3";
  const working = p.statuses.filter((x) => x.type !== STATUS_UNSORTED && !isClosing(x));
  return PALETTE[Math.max(0, working.indexOf(s)) % PALETTE.length];
}

export const EVENT_LABELS = {
  site_visit: "Site visit",
  lead_added: "Lead added",
  lead_status_changed: "Stage changed",
  lead_appeared_in_status: "Lead appeared in stage",
  account_webhook: "Account webhook notice",
};

export const eventLabel = (code) => EVENT_LABELS[code] || code;
