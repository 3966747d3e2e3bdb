// Live updates: `GET /api/v4/stream` (server-sent events) read with fetch, because
// EventSource cannot send the Authorization header. The stream is parsed by hand
// (`event:`, `data:`, `retry:` fields, `:` comments) and reopened whenever it drops;
// after a reconnection the app is told to reload, since updates may have been missed.
// footfall sends a `: ping` comment every 15 s: a stream silent for 45 s is taken for a
// dead connection (a half-open one never errors), aborted and reopened.

import { session, UNAUTHORIZED, ApiError } from "./api.js";

/** How long the stream may stay silent: three of the server's 15 s pings. */
const SILENCE_MS = 45_000;

/**
 * Opens the stream. `onMessage({event, data})` gets each message (`lead` with
 * `{account_id, lead_id, what}`, `reload`); `onStatus("connecting"|"live"|"offline")`
 * follows the connection. Returns `{close()}`.
 */
export function connectLive({ onMessage, onStatus }) {
  let closed = false;
  let controller = null;
  let retryMs = 2000;
  let failures = 0;
  let connectedBefore = false;
  let silence = null;

  /** (Re)arms the silence timer: it aborts this connection unless something comes first. */
  function heard(connection) {
    clearTimeout(silence);
    silence = setTimeout(() => connection.abort(new Error(`nothing came for ${SILENCE_MS / 1000} s`)), SILENCE_MS);
  }

  async function run() {
    while (!closed) {
      onStatus(failures ? "offline" : "connecting");
      controller = new AbortController();
      const connection = controller;
      heard(connection);
      try {
        const token = session.token;
        const res = await fetch("/api/v4/stream", {
          headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
          cache: "no-store",
          signal: controller.signal,
        });
        if (res.status === 401) {
          const refused = new ApiError({ status: 401, detail: "The token is not valid any more.", token });
          window.dispatchEvent(new CustomEvent(UNAUTHORIZED, { detail: refused }));
          return;
        }
        if (!res.ok || !res.body) throw new Error(`the stream answered HTTP ${res.status}`);
        failures = 0;
        onStatus("live");
        if (connectedBefore) onMessage({ event: "reload", data: {} });
        connectedBefore = true;
        await read(res.body, () => heard(connection), (msg) => {
          if (msg.retry) retryMs = msg.retry;
          if (msg.event || msg.data) onMessage(msg);
        });
      } catch (e) {
        if (closed) return;
        console.warn("live updates interrupted:", e.message);
      } finally {
        clearTimeout(silence);
      }
      if (closed) return;
      failures++;
      onStatus("offline");
      // The server's retry hint, growing while the server stays away (at most 30 s).
      await sleep(Math.min(retryMs * 2 ** Math.min(failures - 1, 4), 30000));
    }
  }

  run();
  return {
    close() {
      closed = true;
      clearTimeout(silence);
      if (controller) controller.abort();
    },
  };
}

/**
 * Reads an event stream until it ends, calling `heard` for every chunk (a `: ping` comment
 * too) and `emit` for each complete message.
 */
async function read(body, heard, emit) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let msg = { event: "", data: "" };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    heard();
    buffer += value;
    let nl;
    while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith("\r\n", nl) ? 2 : 1));
      if (line === "") {
        if (msg.event || msg.data || msg.retry) emit(finish(msg));
        msg = { event: "", data: "" };
        continue;
      }
      if (line.startsWith(":")) continue; // a comment: keep-alive
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (name === "event") msg.event = value;
      else if (name === "data") msg.data = msg.data ? `${msg.data}\n${value}` : value;
      else if (name === "retry" && /^\d+$/.test(value)) msg.retry = Number(value);
    }
  }
}

function finish(msg) {
  let data = {};
  try {
    data = msg.data ? JSON.parse(msg.data) : {};
  } catch {
    data = { raw: msg.data };
  }
  return { event: msg.event || "message", data, retry: msg.retry };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
