// A small W3C WebDriver client over plain HTTP (Node's fetch): enough to drive Firefox
// (geckodriver) and WebKitGTK's MiniBrowser (WebKitWebDriver) through the browser test,
// without a client library. Every call has a time limit: WebKitWebDriver's session
// creation hangs, rather than fails, when the browser cannot start.

import { spawn } from "node:child_process";
import net from "node:net";

const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Starts a WebDriver server on a free port; resolves once it answers /status. */
export async function startDriver(binary, args, { log = () => {} } = {}) {
  const port = await freePort();
  const child = spawn(binary, [`--port=${port}`, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const lines = [];
  for (const s of [child.stdout, child.stderr]) {
    s.setEncoding("utf8");
    s.on("data", (d) => lines.push(...d.split("\n").filter(Boolean)));
  }
  const exited = new Promise((r) => child.once("exit", r));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`${binary} exited: ${lines.slice(-5).join(" | ")}`);
    try {
      const res = await fetch(`${base}/status`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) break;
    } catch {}
    if (i > 100) throw new Error(`${binary} did not answer on port ${port}`);
    await sleep(100);
  }
  log(`${binary} on port ${port}`);
  return {
    base,
    lines,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      await Promise.race([exited, sleep(3000).then(() => child.kill("SIGKILL"))]);
    },
    kill: () => child.kill("SIGKILL"),
  };
}

async function call(base, method, path, body, timeoutMs = 30_000) {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  }).catch((e) => {
    throw new Error(`WebDriver ${method} ${path}: ${e.name === "TimeoutError" ? `no answer in ${timeoutMs / 1000} s` : e.message}`);
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) {
    const v = json.value || {};
    const err = new Error(`WebDriver ${method} ${path}: ${v.error || res.status}: ${(v.message || "").split("\n")[0]}`);
    err.webdriver = v.error;
    throw err;
  }
  return json.value;
}

/** A WebDriver session with the few commands the test uses. */
export class Session {
  static async create(driver, capabilities, timeoutMs = 60_000) {
    const value = await call(driver.base, "POST", "/session", { capabilities: { alwaysMatch: capabilities } }, timeoutMs);
    return new Session(driver.base, value.sessionId, value.capabilities);
  }

  constructor(base, id, capabilities) {
    this.base = base;
    this.id = id;
    this.capabilities = capabilities;
  }

  cmd(method, path, body) {
    return call(this.base, method, `/session/${this.id}${path}`, body);
  }

  goto(url) { return this.cmd("POST", "/url", { url }); }
  url() { return this.cmd("GET", "/url"); }
  windows() { return this.cmd("GET", "/window/handles"); }
  window() { return this.cmd("GET", "/window"); }
  switchTo(handle) { return this.cmd("POST", "/window", { handle }); }
  async newWindow() {
    const v = await this.cmd("POST", "/window/new", { type: "window" });
    return v.handle;
  }
  setWindowRect(rect) { return this.cmd("POST", "/window/rect", rect); }
  cookies() { return this.cmd("GET", "/cookie"); }
  /** Runs a function body in the page; `arguments` are the args. */
  run(script, ...args) { return this.cmd("POST", "/execute/sync", { script, args }); }
  async screenshot() { return Buffer.from(await this.cmd("GET", "/screenshot"), "base64"); }
  quit() { return call(this.base, "DELETE", `/session/${this.id}`, undefined, 15_000).catch(() => {}); }

  /**
   * Waits until `css` (with `text` in its text, when given) is in the page and visible;
   * returns the element's reference.
   */
  async waitFor(css, { text = null, timeout = 15_000, hidden = false } = {}) {
    const end = Date.now() + timeout;
    for (;;) {
      const found = await this.run(
        `const [css, text, hidden] = arguments;
         const visible = (e) => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length);
         const all = [...document.querySelectorAll(css)].filter((e) => text === null || e.textContent.includes(text));
         if (hidden) return all.some(visible) ? null : true;
         return all.find(visible) || null;`,
        css, text, hidden,
      ).catch((e) => (e.webdriver === "stale element reference" || e.webdriver === "no such window" ? null : Promise.reject(e)));
      if (found) return found;
      if (Date.now() > end) throw new Error(`${css}${text ? ` with "${text}"` : ""} ${hidden ? "did not go away" : "did not appear"} within ${timeout / 1000} s`);
      await sleep(150);
    }
  }

  /** Waits until the page function returns something truthy; returns it. */
  async waitUntil(script, what, timeout = 15_000, ...args) {
    const end = Date.now() + timeout;
    for (;;) {
      const v = await this.run(script, ...args).catch(() => null);
      if (v) return v;
      if (Date.now() > end) throw new Error(`${what} within ${timeout / 1000} s`);
      await sleep(150);
    }
  }

  click(element) { return this.cmd("POST", `/element/${element[ELEMENT]}/click`, {}); }
  async type(element, text) {
    await this.cmd("POST", `/element/${element[ELEMENT]}/clear`, {});
    return this.cmd("POST", `/element/${element[ELEMENT]}/value`, { text });
  }
}
