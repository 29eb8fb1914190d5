// The chat panel: a role=log named "Chat", the "Message" box, "Send", the "To" picker.
// Messages are rendered from the server's `chat` fan-out only (single source of truth).
import { describePrivacy, formatTime } from "../core/chat.js";
import { charCount, checkChat, splitLinks } from "../core/text.js";
import { h, icon } from "./dom.js";

/** @typedef {import("../core/protocol.js").ChatMessage} ChatMessage */
/** @typedef {import("../core/protocol.js").Participant} Participant */

/**
 * @typedef {object} ChatViewOptions
 * @property {HTMLElement} log the role=log
 * @property {HTMLTextAreaElement} input the "Message" box
 * @property {HTMLElement} form
 * @property {HTMLElement} sendBtn
 * @property {HTMLSelectElement} toSelect the "To" picker (first option: everyone)
 * @property {HTMLElement} errorEl
 * @property {HTMLElement} countEl
 * @property {HTMLElement} moreBtn
 * @property {HTMLElement} emptyEl
 * @property {HTMLElement | null} [noteEl] why the chat box is limited (the room's chat setting)
 * @property {AbortSignal} [signal] ends the listeners
 * @property {(text: string, to: string | null) => string | null} onSend returns the message's ref, or null when not sent
 * @property {() => void} onLoadMore
 * @property {(msg: ChatMessage) => void} onDelete the "Delete message" button of a message
 */

export class ChatView {
  /** @param {ChatViewOptions} opts */
  constructor(opts) {
    this.log = opts.log;
    this.input = opts.input;
    this.form = opts.form;
    this.sendBtn = opts.sendBtn;
    this.toSelect = opts.toSelect;
    this.errorEl = opts.errorEl;
    this.countEl = opts.countEl;
    this.moreBtn = opts.moreBtn;
    this.emptyEl = opts.emptyEl;
    this.noteEl = opts.noteEl ?? null;
    /** What the room's chat setting lets this viewer do (core/stage.js chatState). */
    this.restriction = { allowed: true, question: false, note: "" };
    this.signal = opts.signal;
    this.onSend = opts.onSend;
    this.onLoadMore = opts.onLoadMore;
    this.onDelete = opts.onDelete;
    /** @type {Map<number, HTMLElement>} message id -> element */
    this.entries = new Map();
    this.limit = 4000;
    /** @type {string | null} */
    this.selfId = null;
    /** @type {Record<string, string>} */
    this.labels = {};
    /** @type {{ ref: string, timer: ReturnType<typeof setTimeout> } | null} */
    this.pending = null;
    const o = { signal: opts.signal };

    this.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.submit();
    }, o);
    this.input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        this.submit();
      }
    }, o);
    this.input.addEventListener("input", () => {
      this.autosize();
      this.updateCount();
    }, o);
    this.log.addEventListener("scroll", () => {
      if (this.log.scrollTop < 40) this.onLoadMore();
    }, o);
    this.moreBtn.addEventListener("click", () => this.onLoadMore(), o);
  }

  /** @param {{ selfId?: string | null, labels?: Record<string, string>, limit?: number, host?: boolean }} ctx */
  setContext({ selfId, labels, limit, host }) {
    if (selfId !== undefined) this.selfId = selfId;
    if (labels !== undefined) this.labels = labels;
    if (limit !== undefined) this.limit = limit;
    // Hosts may delete any public message: CSS shows those buttons (entries are reused).
    if (host !== undefined) this.log.classList.toggle("chat-log--host", host);
  }

  /**
   * Replace a message by its tombstone.
   * @param {number} id
   */
  tombstone(id) {
    const el = this.entries.get(id);
    if (!el) return;
    const time = el.querySelector("time");
    const stone = h(
      "div",
      { class: "msg msg--deleted", dataset: { id: String(id) } },
      h("span", { class: "msg-system-text" }, icon("trash", "icon tiny"), "Message deleted"),
      time ? time.cloneNode(true) : null,
    );
    el.replaceWith(stone);
    this.entries.set(id, stone);
  }

  /**
   * Bring a message into view and mark it for a moment (a search result).
   * @param {number} id
   */
  highlight(id) {
    const el = this.entries.get(id);
    if (!el) return;
    el.scrollIntoView({ block: "center" });
    el.classList.remove("msg--found");
    void el.offsetWidth; // restart the animation
    el.classList.add("msg--found");
    el.setAttribute("tabindex", "-1");
    el.focus({ preventScroll: true });
  }

  autosize() {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, 160)}px`;
  }

  updateCount() {
    const n = charCount(this.input.value);
    const near = n > this.limit * 0.9;
    this.countEl.textContent = near ? `${n.toLocaleString("en")} / ${this.limit.toLocaleString("en")}` : "";
    this.countEl.classList.toggle("over", n > this.limit);
  }

  /** @param {string} text */
  showError(text) {
    this.errorEl.textContent = text;
    this.errorEl.hidden = false;
  }

  clearError() {
    this.errorEl.hidden = true;
    this.errorEl.textContent = "";
  }

  submit() {
    if (this.pending) return;
    const text = this.input.value;
    const check = checkChat(text, this.limit);
    if (!check.ok) {
      if (check.code === "too_long") this.showError(check.message);
      else this.input.focus();
      return;
    }
    this.clearError();
    const to = this.toSelect.value || null;
    const ref = this.onSend(text, to);
    if (!ref) {
      this.showError("Not connected right now; your message was not sent. Try again in a moment.");
      return;
    }
    this.pending = { ref, timer: setTimeout(() => this.releasePending(), 10000) };
    this.form.classList.add("pending");
    this.sendBtn.setAttribute("aria-busy", "true");
    this.input.readOnly = true;
  }

  releasePending() {
    if (!this.pending) return;
    clearTimeout(this.pending.timer);
    this.pending = null;
    this.form.classList.remove("pending");
    this.sendBtn.removeAttribute("aria-busy");
    this.input.readOnly = false;
  }

  /**
   * The server stored our message: clear the box.
   * @param {string} ref
   */
  acked(ref) {
    if (!this.pending || this.pending.ref !== ref) return;
    this.releasePending();
    this.input.value = "";
    this.autosize();
    this.updateCount();
  }

  /**
   * The server refused our message: say why, keep the text.
   * @param {string} ref
   * @param {string} text
   */
  refused(ref, text) {
    if (this.pending && this.pending.ref === ref) this.releasePending();
    this.showError(text);
  }

  /** Connection dropped: whatever was pending may not have been delivered; keep the text. */
  connectionLost() {
    this.releasePending();
  }

  /** @param {Participant[]} people */
  setRecipients(people) {
    const current = this.toSelect.value;
    while (this.toSelect.options.length > 1) this.toSelect.remove(1);
    for (const p of people) {
      if (p.id === this.selfId) continue;
      this.toSelect.add(new Option(this.labels[p.id] ?? p.name, p.id));
    }
    const stillThere = [...this.toSelect.options].some((o) => o.value === current);
    this.toSelect.value = stillThere && !this.restriction.question ? current : "";
    this.placeholder();
  }

  placeholder() {
    const r = this.restriction;
    if (!r.allowed) this.input.placeholder = "Chat is limited to the stage";
    else if (r.question) this.input.placeholder = "Ask the people on stage a question";
    else this.input.placeholder = this.toSelect.value ? "Send a private message" : "Send a message to everyone";
  }

  /**
   * The room's chat setting for this viewer: the box is off (with the reason, which the
   * box names as its description), or sends questions to the stage (no private messages).
   * @param {{ allowed: boolean, question: boolean, note: string }} state
   */
  setRestriction(state) {
    const r = this.restriction;
    if (r.allowed === state.allowed && r.question === state.question && r.note === state.note) return;
    this.restriction = state;
    this.input.disabled = !state.allowed;
    /** @type {HTMLButtonElement} */ (this.sendBtn).disabled = !state.allowed;
    this.toSelect.disabled = !state.allowed || state.question;
    if (state.question) this.toSelect.value = "";
    if (this.noteEl) {
      this.noteEl.textContent = state.note;
      this.noteEl.hidden = !state.note;
    }
    if (state.note && this.noteEl) this.input.setAttribute("aria-describedby", this.noteEl.id);
    else this.input.removeAttribute("aria-describedby");
    this.placeholder();
  }

  /** @param {boolean} more */
  setMore(more) {
    this.moreBtn.hidden = !more;
  }

  /**
   * Render `messages` (sorted by id), reusing existing entries; keeps the scroll position sensible.
   * @param {ChatMessage[]} messages
   */
  render(messages) {
    const log = this.log;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 60;
    const fromBottom = log.scrollHeight - log.scrollTop;
    const firstBefore = this.firstId();
    let cursor = this.emptyEl.nextSibling;
    let appendedOwn = false;
    for (const msg of messages) {
      let el = this.entries.get(msg.id);
      if (!el) {
        el = this.entry(msg);
        this.entries.set(msg.id, el);
        if (msg.sender === this.selfId) appendedOwn = true;
      }
      if (el !== cursor) log.insertBefore(el, cursor);
      cursor = el.nextSibling;
    }
    this.emptyEl.hidden = messages.length > 0;
    const prepended = firstBefore !== null && messages.length && messages[0].id < firstBefore;
    if (prepended) log.scrollTop = log.scrollHeight - fromBottom;
    else if (atBottom || appendedOwn) log.scrollTop = log.scrollHeight;
  }

  firstId() {
    /** @type {number | null} */
    let min = null;
    for (const id of this.entries.keys()) if (min === null || id < min) min = id;
    return min;
  }

  /** @param {ChatMessage} msg */
  entry(msg) {
    if (msg.deleted) {
      const stone = h("div", { class: "msg msg--deleted", dataset: { id: String(msg.id) } });
      stone.append(h("span", { class: "msg-system-text" }, icon("trash", "icon tiny"), "Message deleted"));
      return stone;
    }
    if (msg.system) {
      // A line written by the server (moderation, host changes): no sender bubble.
      const time = new Date(msg.ts);
      return h(
        "div",
        { class: "msg msg--system", dataset: { id: String(msg.id) } },
        h("span", { class: "msg-system-text" }, String(msg.text ?? "")),
        h("time", { class: "msg-time", datetime: time.toISOString(), title: time.toLocaleString() }, formatTime(msg.ts)),
      );
    }
    const mine = msg.sender === this.selfId;
    const privacy = describePrivacy(msg, this.selfId, this.labels);
    const body = h("div", { class: "msg-text" });
    for (const seg of splitLinks(msg.text)) {
      if (seg.type === "link") {
        body.append(h("a", { href: seg.href, target: "_blank", rel: "noopener noreferrer" }, seg.text));
      } else {
        body.append(document.createTextNode(seg.text));
      }
    }
    const time = new Date(msg.ts);
    return h(
      "div",
      { class: `msg${mine ? " msg--mine" : ""}${msg.to ? " msg--private" : ""}`, dataset: { id: String(msg.id) } },
      h(
        "div",
        { class: "msg-head" },
        h("span", { class: "msg-name" }, msg.name),
        h("time", { class: "msg-time", datetime: time.toISOString(), title: time.toLocaleString() }, formatTime(msg.ts)),
        privacy ? h("span", { class: "msg-private" }, icon("lock", "icon tiny"), privacy) : null,
        h(
          "button",
          {
            type: "button",
            class: "icon-btn msg-delete",
            "aria-label": "Delete message",
            title: "Delete message",
            onclick: () => this.onDelete(msg),
          },
          icon("trash", "icon tiny"),
        ),
      ),
      body,
    );
  }

  clear() {
    for (const el of this.entries.values()) el.remove();
    this.entries.clear();
    this.emptyEl.hidden = false;
    this.releasePending();
    this.clearError();
    while (this.toSelect.options.length > 1) this.toSelect.remove(1);
    this.toSelect.value = "";
  }
}
