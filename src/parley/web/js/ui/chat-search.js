// The chat panel's "Search messages" box: asks the server's search API (with our resume
// token: the same right as reading history) and lists the results; picking one shows it in
// the chat log, in context (meeting-chat.js loads older history until it is there).
import { formatTime } from "../core/chat.js";
import { excerpt, highlight, queryWords } from "../core/search.js";
import { clear, h } from "./dom.js";

/** @typedef {import("../core/protocol.js").ChatMessage} ChatMessage */

/**
 * @typedef {object} ChatSearchOptions
 * @property {HTMLInputElement} input the searchbox "Search messages"
 * @property {HTMLElement} results the results region
 * @property {HTMLElement} list the results list
 * @property {HTMLElement} status the results' role=status line
 * @property {string} room
 * @property {() => string | null} token our resume token (the right to read this room)
 * @property {(id: number) => void} onPick show message `id` in the chat log
 * @property {AbortSignal} signal
 */

const ATTENDANCE = new Set(["joined", "left"]);

export class ChatSearch {
  /** @param {ChatSearchOptions} opts */
  constructor(opts) {
    this.opts = opts;
    /** @type {AbortController | null} */
    this.inflight = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    const o = { signal: opts.signal };
    opts.input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        ev.preventDefault();
        clearTimeout(this.timer);
        void this.search();
      } else if (ev.key === "Escape") {
        this.close();
      } else if (ev.key === "ArrowDown") {
        const first = /** @type {HTMLElement | null} */ (opts.list.querySelector("button"));
        if (first) {
          ev.preventDefault();
          first.focus();
        }
      }
    }, o);
    opts.input.addEventListener("input", () => {
      clearTimeout(this.timer);
      if (!opts.input.value.trim()) this.close();
      else this.timer = setTimeout(() => void this.search(), 350);
    }, o);
    opts.list.addEventListener("keydown", (ev) => {
      const buttons = /** @type {HTMLElement[]} */ ([...opts.list.querySelectorAll("button")]);
      const at = buttons.indexOf(/** @type {HTMLElement} */ (document.activeElement));
      if (ev.key === "ArrowDown" && at >= 0) buttons[Math.min(at + 1, buttons.length - 1)].focus();
      else if (ev.key === "ArrowUp" && at > 0) buttons[at - 1].focus();
      else if (ev.key === "ArrowUp" && at === 0) opts.input.focus();
      else if (ev.key === "Escape") {
        opts.input.focus();
        this.close();
      } else return;
      ev.preventDefault();
    }, o);
  }

  close() {
    this.inflight?.abort();
    this.opts.results.hidden = true;
    clear(this.opts.list);
    this.opts.status.textContent = "";
  }

  async search() {
    const { input, results, list, status, room, token } = this.opts;
    const query = input.value.trim();
    const words = queryWords(query);
    if (!words.length) {
      this.close();
      return;
    }
    this.inflight?.abort();
    const ctl = new AbortController();
    this.inflight = ctl;
    results.hidden = false;
    status.textContent = "Searching…";
    /** @type {Record<string, string>} */
    const headers = {};
    const bearer = token();
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    const url = `/api/v1/rooms/${encodeURIComponent(room)}/messages/search?q=${encodeURIComponent(query)}&limit=50`;
    try {
      const r = await fetch(url, { headers, signal: ctl.signal, cache: "no-store" });
      const body = await r.json();
      if (ctl.signal.aborted) return;
      if (!r.ok) {
        clear(list);
        status.textContent = body?.error?.message ? `Search failed: ${body.error.message}` : "Search failed.";
        return;
      }
      /** @type {ChatMessage[]} */
      const found = (body.messages || []).filter((/** @type {ChatMessage} */ m) => !ATTENDANCE.has(m.kind ?? ""));
      this.render(found, words, Boolean(body.more));
    } catch (err) {
      if (ctl.signal.aborted) return;
      status.textContent = "Search failed: not connected.";
    }
  }

  /**
   * @param {ChatMessage[]} found newest first
   * @param {string[]} words
   * @param {boolean} more
   */
  render(found, words, more) {
    const { list, status, onPick } = this.opts;
    clear(list);
    status.textContent = found.length
      ? `${found.length}${more ? "+" : ""} message${found.length === 1 ? "" : "s"} found`
      : "No messages found";
    for (const m of found) {
      const text = h("span", { class: "search-hit-text" });
      for (const seg of highlight(excerpt(m.text, words), words)) {
        text.append(seg.match ? h("mark", null, seg.text) : document.createTextNode(seg.text));
      }
      list.append(
        h(
          "li",
          null,
          h(
            "button",
            { type: "button", class: "search-hit", onclick: () => onPick(m.id) },
            h("span", { class: "search-hit-head" }, h("b", null, m.system ? "Parley" : (m.name ?? "")), " ", formatTime(m.ts)),
            text,
          ),
        ),
      );
    }
  }
}
