// What every browser test shares: the real footfall binary started with the shipped
// config.toml (only the port and the public URL set through FOOTFALL__ variables, so the
// demo is exactly what a new user gets), the demo site served from another site
// (http://localhost:<port>, while footfall is http://127.0.0.1:<port>), the management
// API, and named steps with a clock.

import { spawn } from "node:child_process";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./webdriver.mjs";
import { chromium } from "../../tools/node_modules/playwright-core/index.mjs";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const BIN = process.env.FOOTFALL_BIN || path.join(ROOT, "target/debug/footfall");
export const ARTIFACTS = path.join(ROOT, "tests/artifacts");
/** The API token of the shipped config.toml's account. */
export const TOKEN = "demo-token-change-me";
export const WAIT = 15_000; // the longest any single UI state may take to appear
/** How long a page is watched for a request that must not come. */
export const QUIET_MS = 1500;
/** A person's Chromium (headless Chromium's own says HeadlessChrome: footfall drops it as a bot). */
export const USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36";
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Harness {
  constructor(label) {
    this.label = label;
    this.started = Date.now();
    this.cleanups = [];
    this.processes = [];
    this.footfallLog = [];
  }

  log(message) {
    console.log(`[${this.label} ${((Date.now() - this.started) / 1000).toFixed(1).padStart(5)} s] ${message}`);
  }

  /** Runs one step; a failure names the step. */
  async step(name, work) {
    this.log(name);
    try {
      return await work();
    } catch (e) {
      e.message = `step "${name}" failed: ${e.message}`;
      throw e;
    }
  }

  /** Runs the cleanups, newest first. */
  /** Runs a test script's `run` under a watchdog of `seconds`: prints the verdict, the
   * error and footfall's last log lines on a failure, and cleans up either way. */
  async main(seconds, run) {
    const watchdog = setTimeout(() => {
      console.error(`${this.label} browser test: over ${seconds} s, stopping`);
      this.killAll();
      process.exit(1);
    }, seconds * 1000);
    try {
      await run();
      console.log(`${this.label} browser test passed`);
    } catch (e) {
      console.error(e.stack || String(e));
      console.error(this.footfallLog.slice(-20).join("\n"));
      process.exitCode = 1;
    } finally {
      clearTimeout(watchdog);
      await this.cleanup();
    }
  }

  async cleanup() {
    for (const c of this.cleanups.reverse()) {
      await Promise.resolve().then(c).catch(() => {});
    }
    this.cleanups = [];
  }

  /** Kills every process outright (the watchdog's last resort). */
  killAll() {
    for (const child of this.processes) child.kill("SIGKILL");
  }

  /**
   * Starts footfall with the shipped config.toml on a free port; resolves with its base
   * URL once it listens. `env(port)` adds FOOTFALL__ overrides (the cookie-mode test's
   * domain and public URL).
   */
  async startFootfall(env = () => ({})) {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      // Only the shipped file counts: drop FOOTFALL__ overrides from the environment.
      const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("FOOTFALL__")));
      Object.assign(childEnv, {
        FOOTFALL__SERVER__BIND: `127.0.0.1:${port}`,
        FOOTFALL__SERVER__PUBLIC_URL: `http://127.0.0.1:${port}`,
        FOOTFALL__SERVER__JSON_LOGS: "true",
        RUST_LOG: process.env.RUST_LOG || "info,actix_server=warn",
        ...env(port),
      });
      const child = spawn(BIN, ["--config", path.join(ROOT, "config.toml")], { cwd: ROOT, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
      this.processes.push(child);
      const listening = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("footfall did not say it listens within 20 s")), 20_000);
        const onLine = (line) => {
          this.footfallLog.push(line);
          if (line.includes("footfall is listening")) {
            clearTimeout(timer);
            const m = line.match(/"port":\s*(\d+)/);
            resolve(m ? Number(m[1]) : port);
          }
        };
        for (const stream of [child.stdout, child.stderr]) {
          let buf = "";
          stream.setEncoding("utf8");
          stream.on("data", (chunk) => {
            buf += chunk;
            let i;
            while ((i = buf.indexOf("\n")) >= 0) {
              onLine(buf.slice(0, i));
              buf = buf.slice(i + 1);
            }
          });
        }
        child.on("error", (e) => { clearTimeout(timer); reject(new Error(`cannot run ${BIN}: ${e.message} (run cargo build first)`)); });
        child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`footfall exited with ${code} before listening`)); });
      });
      try {
        const actual = await listening;
        if (actual !== port) throw new Error(`footfall listens on ${actual}, not on the configured ${port}`);
        this.cleanups.push(() => stop(child));
        return childEnv.FOOTFALL__SERVER__PUBLIC_URL;
      } catch (e) {
        child.kill("SIGKILL");
        // Another process may have taken the port between the probe and the bind.
        if (attempt >= 3 || !this.footfallLog.some((l) => /address.*in use/i.test(l))) throw e;
      }
    }
  }

  /** Serves footfall's rendered demo pages from http://<host>:<port>/demo/…. */
  async startDemoSite(ff, host = "localhost") {
    const server = http.createServer(async (req, res) => {
      const m = req.url.match(/^\/demo(?:\/([a-z]+))?\/?(?:\?.*)?$/);
      if (req.method !== "GET" || !m) {
        res.writeHead(req.url === "/favicon.ico" ? 204 : 404, { "content-type": "text/plain" });
        res.end();
        return;
      }
      try {
        const upstream = await fetch(`${ff}/demo/${m[1] || "home"}`);
        const html = await upstream.text();
        res.writeHead(upstream.status, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
        res.end(html);
      } catch (e) {
        res.writeHead(502, { "content-type": "text/plain" });
        res.end(String(e));
      }
    });
    return `http://${host}:${await this.listen(server)}`;
  }
}

/**
 * A third-party cookie probe: a server on another site that answers a credentialed fetch
 * with `probe=1; SameSite=None; Secure` — a cookie any browser that allows third-party
 * cookies keeps (http://127.0.0.1 counts as secure). The page calls `probe(url)`.
 */
Harness.prototype.startCookieProbe = async function (allowOrigin) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, {
      "access-control-allow-origin": allowOrigin,
      "access-control-allow-credentials": "true",
      "set-cookie": "probe=1; Path=/; Max-Age=600; SameSite=None; Secure",
      "content-type": "text/plain",
    });
    res.end("ok");
  });
  return `http://127.0.0.1:${await this.listen(server)}`;
};

/** Chromium's switches for a quiet test browser (no background traffic, no QUIC). */
export const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

/** Starts `server` on a free loopback port, closed at cleanup; resolves with the port. */
Harness.prototype.listen = async function (server) {
  await new Promise((resolve, reject) => {
    server.on("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  this.cleanups.push(() => new Promise((r) => server.close(r)));
  return server.address().port;
};

/** Debian's Chromium, headless through playwright-core; closed at cleanup. */
Harness.prototype.chromium = async function () {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  this.cleanups.push(() => browser.close());
  return browser;
};

/** Asks footfall to stop; kills it when its graceful shutdown takes longer than 3 s. */
function stop(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  return Promise.race([exited, sleep(3000).then(() => child.kill("SIGKILL"))]);
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

export async function api(ff, method, pathname, body) {
  const res = await fetch(ff + pathname, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  check(res.ok, `${method} ${pathname} answered ${res.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

/** The paths of the page views on a lead's timeline, oldest first. */
export async function pageViews(ff, leadId) {
  const tl = await api(ff, "GET", `/api/v4/leads/${leadId}/timeline`);
  const items = (tl && tl._embedded && (tl._embedded.timeline || tl._embedded.items)) || tl || [];
  return (Array.isArray(items) ? items : []).filter((i) => i.type === "page_view").map((i) => new URL(i.url).pathname);
}
