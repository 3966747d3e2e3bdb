// The management API client: the bearer token (kept in sessionStorage only, so it goes
// away with the tab), JSON requests, problem+json errors turned into ApiError, and
// paging through lists via `_links.next`.

import { toast } from "./ui.js";

const TOKEN_KEY = "footfall.token";

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** An API failure as the server described it (RFC 9457), or a network failure. */
export class ApiError extends Error {
  /** `token`: the one a refused request carried (a 401), so that a late refusal of an
   * earlier session's token is no news about the one kept now. */
  constructor({ status = 0, title, detail, errors, token } = {}) {
    super(detail || title || `HTTP ${status}`);
    this.status = status;
    this.token = token;
    this.title = title || (status ? `HTTP ${status}` : "Network error");
    this.detail = detail || "";
    this.errors = Array.isArray(errors) ? errors : [];
  }
}

/** Fired on window when the token is refused, so the app can ask for it again. */
export const UNAUTHORIZED = "footfall:unauthorized";

export async function api(method, path, body, { signal } = {}) {
  const headers = { Accept: "application/json, application/problem+json" };
  const token = session.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError({ title: "footfall did not answer", detail: `The request ${method} ${path} failed before an answer came (${e.message}). Is footfall running?` });
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const problem = data && typeof data === "object" ? data : { detail: text.slice(0, 300) || res.statusText };
    const err = new ApiError({ ...problem, status: res.status, token });
    if (res.status === 401) window.dispatchEvent(new CustomEvent(UNAUTHORIZED, { detail: err }));
    throw err;
  }
  if (data === null && text) throw new ApiError({ status: res.status, title: "Unexpected answer", detail: `${method} ${path} did not answer JSON.` });
  return data;
}

export const get = (path, opts) => api("GET", path, undefined, opts);
export const post = (path, body) => api("POST", path, body ?? undefined);
export const patch = (path, body) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);

/**
 * The path and query of a list page's next page, or null: `_links` are built from
 * footfall's public URL, and the console follows them on its own origin (it may be
 * reached by another address).
 */
export function nextPath(page) {
  const href = page && page._links && page._links.next && page._links.next.href;
  if (!href) return null;
  const u = new URL(href, window.location.href);
  return u.pathname + u.search;
}

/**
 * Every item of a list, following `_links.next` — at most `maxPages` pages: a list longer
 * than that is cut, and a notice says so (the console shows the first items only).
 */
export async function listAll(path, name, params = {}, { maxPages = 40 } = {}) {
  const qs = new URLSearchParams({ limit: "250", ...params });
  let url = `${path}?${qs}`;
  const items = [];
  for (let i = 0; url && i < maxPages; i++) {
    const page = await get(url);
    items.push(...((page && page._embedded && page._embedded[name]) || []));
    url = nextPath(page);
  }
  if (url) {
    toast(`Showing the first ${items.length} ${name} only`, {
      timeout: 0,
      key: `list-cut:${path}`,
      lines: [`footfall has more; the console reads at most ${maxPages} pages of a list. The API (${path}) pages through all of them.`],
    });
  }
  return items;
}

/** The items of a creation's answer, `{"_embedded":{"<name>":[…]}}`. */
export function created(answer, name) {
  return (answer && answer._embedded && answer._embedded[name]) || [];
}
