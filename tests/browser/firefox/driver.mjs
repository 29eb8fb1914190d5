// Firefox for Parley's browser tests: Debian's firefox-esr driven over WebDriver BiDi by
// puppeteer-core (never a downloaded browser), answering pytest over stdin/stdout.
//
// One JSON request per line in, one JSON reply per line out, in order:
//   {"id":1,"op":"launch","executablePath":"/usr/bin/firefox-esr","prefs":{…}}
//   {"id":2,"op":"page","url":…,"scripts":[js…],"width":1280,"height":800} -> {"value":"p1"}
//   {"id":3,"op":"eval","page":"p1","fn":"(arg) => …","arg":…}     -> {"value":result}
//   {"id":4,"op":"click","page":"p1","selector":"#join-btn"}       (real pointer input)
//   {"id":5,"op":"type","page":"p1","selector":"#name-input","text":"Ada"}
//   {"id":6,"op":"console","page":"p1"}                             -> {"value":[lines]}
//   {"id":7,"op":"close_page","page":"p1"} / {"id":8,"op":"close"}
// Replies: {"id","ok":true,"value"} or {"id","ok":false,"error"}.  Each page has its own
// browser context (separate storage, like a separate person).  The process runs inside
// the tests' network namespace (tests/browser/conftest.py), so Firefox's BiDi WebSocket on
// 127.0.0.1 is reachable and every packet stays in that namespace.

import { createInterface } from "node:readline";
import puppeteer from "puppeteer-core";

let browser = null;
const pages = new Map(); // id -> { page, context, console: [] }
let seq = 0;

function page(id) {
  const entry = pages.get(id);
  if (!entry) throw new Error(`no page ${id}`);
  return entry;
}

const ops = {
  async launch({ executablePath, prefs = {}, headless = true }) {
    browser = await puppeteer.launch({
      browser: "firefox",
      executablePath,
      headless,
      extraPrefsFirefox: prefs,
      protocolTimeout: 60_000,
      timeout: 60_000,
    });
    return (await browser.version()) || "firefox";
  },

  async page({ url, scripts = [], width = 1280, height = 800 }) {
    const context = await browser.createBrowserContext();
    const p = await context.newPage();
    const id = `p${++seq}`;
    const entry = { page: p, context, console: [] };
    pages.set(id, entry);
    p.on("console", (m) => entry.console.push(`[${m.type()}] ${m.text()}`));
    p.on("pageerror", (e) => entry.console.push(`[pageerror] ${e?.message ?? e}`));
    await p.setViewport({ width, height });
    for (const script of scripts) await p.evaluateOnNewDocument(script);
    await p.goto(url, { waitUntil: "load" });
    return id;
  },

  async eval({ page: id, fn, arg = null }) {
    return page(id).page.evaluate(`(${fn})(${JSON.stringify(arg)})`);
  },

  async click({ page: id, selector }) {
    const p = page(id).page;
    await p.waitForSelector(selector, { visible: true, timeout: 30_000 });
    await p.click(selector);
    return null;
  },

  async type({ page: id, selector, text }) {
    const p = page(id).page;
    await p.waitForSelector(selector, { visible: true, timeout: 30_000 });
    await p.$eval(selector, (el) => {
      el.value = "";
    });
    await p.type(selector, text);
    return null;
  },

  async console({ page: id }) {
    return page(id).console.slice(-200);
  },

  async close_page({ page: id }) {
    const entry = pages.get(id);
    pages.delete(id);
    if (entry) await entry.context.close();
    return null;
  },

  async close() {
    if (browser) await browser.close();
    browser = null;
    return null;
  },
};

const rl = createInterface({ input: process.stdin });
let queue = Promise.resolve();
rl.on("line", (line) => {
  queue = queue.then(async () => {
    let req;
    try {
      req = JSON.parse(line);
    } catch {
      return;
    }
    let reply;
    try {
      const op = ops[req.op];
      if (!op) throw new Error(`unknown op ${req.op}`);
      const value = await op(req);
      reply = { id: req.id, ok: true, value: value === undefined ? null : value };
    } catch (err) {
      reply = { id: req.id, ok: false, error: String(err?.stack || err) };
    }
    process.stdout.write(JSON.stringify(reply) + "\n");
    if (req.op === "close") process.exit(0);
  });
});
rl.on("close", async () => {
  await queue;
  if (browser) await browser.close().catch(() => {});
  process.exit(0);
});
