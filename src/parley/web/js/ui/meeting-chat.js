// Chat in the meeting: the messages we hold (from welcome, `chat`, `history`), paging back
// through older ones, sending, and the unread badge on the "Chat" button.  The panel's
// widgets are ChatView's (chat-view.js).
import { isFromOthers, mergeMessages, oldestId } from "../core/chat.js";
import { $ } from "./dom.js";
import { ChatView } from "./chat-view.js";
import { ChatExport } from "./chat-export.js";
import { ChatSearch } from "./chat-search.js";
import { confirmDialog } from "./dialogs.js";

/** Older pages loaded, at most, to show a search result in context (200 messages each). */
const REVEAL_MAX_PAGES = 50;

/** @typedef {import("../core/protocol.js").ChatMessage} ChatMessage */
/** @typedef {import("../core/protocol.js").ClientMessage} ClientMessage */
/** @typedef {import("../core/protocol.js").Participant} Participant */

/**
 * What the chat part needs from the meeting.
 * @typedef {object} ChatPorts
 * @property {(msg: ClientMessage) => boolean} send false when not connected
 * @property {(prefix: string) => string} nextRef a fresh request ref ("c12")
 * @property {() => { selfId: string | null, labels: Record<string, string> }} context who we are, everyone's label
 * @property {() => Participant[]} recipients the people of the "To" picker, in display order
 * @property {() => boolean} panelHidden whether the chat panel is closed (messages count as unread)
 * @property {string} room the room's name (for the REST API)
 * @property {() => string | null} token our resume token: the right to read the room over REST
 * @property {() => boolean} isHost whether we are a host (hosts delete any public message)
 * @property {(text: string) => void} notify a transient notice
 */

export class MeetingChat {
  /**
   * @param {{ unread: HTMLElement, chatBtn: HTMLElement }} el the badge and the panel toggle
   * @param {ChatPorts} ports
   */
  constructor(el, ports) {
    this.el = el;
    this.ports = ports;
    /** @type {ChatMessage[]} sorted by id */
    this.messages = [];
    this.historyMore = false;
    this.loadingHistory = false;
    this.limit = 4000;
    this.unread = 0;
    /** @type {ChatView | null} */
    this.view = null;
    /** A search result being brought into view: its id, and older pages asked for it. */
    /** @type {{ id: number, pages: number } | null} */
    this.revealing = null;
  }

  /** @param {AbortSignal} signal ends every listener with the meeting */
  mount(signal) {
    this.view = new ChatView({
      log: $("#chat-log"),
      input: /** @type {HTMLTextAreaElement} */ ($("#chat-input")),
      form: $("#chat-form"),
      sendBtn: $("#chat-send"),
      toSelect: /** @type {HTMLSelectElement} */ ($("#chat-to")),
      errorEl: $("#chat-error"),
      countEl: $("#chat-count"),
      moreBtn: $("#chat-more"),
      emptyEl: $("#chat-empty"),
      noteEl: document.getElementById("chat-note"),
      signal,
      onSend: (text, to) => this.send(text, to),
      onLoadMore: () => this.loadOlder(),
      onDelete: (msg) => void this.askDelete(msg),
    });
    $("#chat-to").addEventListener("change", () => this.renderRecipients(), { signal });
    const { room, token, notify } = this.ports;
    new ChatSearch({
      input: /** @type {HTMLInputElement} */ ($("#chat-search")),
      results: $("#chat-search-results"),
      list: $("#chat-search-list"),
      status: $("#chat-search-status"),
      room,
      token,
      onPick: (id) => this.reveal(id),
      signal,
    });
    new ChatExport({
      button: /** @type {HTMLButtonElement} */ ($("#chat-download")),
      format: /** @type {HTMLSelectElement} */ ($("#chat-download-format")),
      room,
      token,
      notify,
      signal,
    });
  }

  /**
   * Send a message; returns its ref, or null when not connected.
   * @param {string} text
   * @param {string | null} to a participant id for a private message
   */
  send(text, to) {
    const ref = this.ports.nextRef("c");
    /** @type {ClientMessage} */
    const msg = { type: "chat", text, ref };
    if (to) msg.to = to;
    return this.ports.send(msg) ? ref : null;
  }

  /**
   * Ask for the page before the oldest message we have (scrolling up, "Load earlier").
   * @param {number} [limit]
   */
  loadOlder(limit = 50) {
    if (!this.historyMore || this.loadingHistory) return;
    const before = oldestId(this.messages);
    if (before === null) return;
    if (this.ports.send({ type: "history", before, limit, ref: this.ports.nextRef("h") })) this.loadingHistory = true;
  }

  /**
   * Show message `id` in the log (a search result): load older pages until it is there.
   * @param {number} id
   */
  reveal(id) {
    this.revealing = { id, pages: 0 };
    this.continueReveal();
  }

  continueReveal() {
    const target = this.revealing;
    if (!target) return;
    if (this.messages.some((m) => m.id === target.id)) {
      this.revealing = null;
      this.view?.highlight(target.id);
      return;
    }
    const oldest = oldestId(this.messages);
    if (!this.historyMore || (oldest !== null && oldest < target.id) || target.pages >= REVEAL_MAX_PAGES) {
      this.revealing = null;
      this.ports.notify("That message is no longer in the chat (deleted, or too far back to show here).");
      return;
    }
    if (this.loadingHistory) return; // the page on its way continues it
    target.pages += 1;
    this.loadOlder(200);
  }

  /**
   * Delete one of our messages (a host: any public one), once confirmed.
   * @param {ChatMessage} msg
   */
  async askDelete(msg) {
    const ok = await confirmDialog({
      title: "Delete this message?",
      text: "It is removed for everyone, and from the chat's history, downloads and search.",
      actions: [{ label: "Delete", value: true, kind: "danger" }],
    });
    if (ok) this.ports.send({ type: "delete-message", id: msg.id, ref: this.ports.nextRef("x") });
  }

  /**
   * A message was deleted (`message-deleted`): a tombstone in its place.
   * @param {number} id
   */
  deleted(id) {
    let found = false;
    this.messages = this.messages.map((m) => {
      if (m.id !== id) return m;
      found = true;
      return { ...m, text: "", deleted: true };
    });
    if (found) this.view?.tombstone(id);
  }

  /**
   * The latest page from a welcome (a resumed one merges with what we have).
   * @param {ChatMessage[] | undefined} history
   * @param {boolean} more older messages exist
   * @param {number | undefined} limit welcome.limits.chat_max_chars
   */
  welcome(history, more, limit) {
    if (limit !== undefined) this.limit = limit;
    this.messages = mergeMessages(this.messages, history);
    this.historyMore = more;
    this.render();
  }

  /** We moved to another room of the meeting (a breakout, or back): its chat only. */
  changedRoom() {
    this.messages = [];
    this.historyMore = false;
    this.view?.clear();
  }

  /** @param {ChatMessage} message a `chat` fan-out */
  received(message) {
    this.messages = mergeMessages(this.messages, [message]);
    if (isFromOthers(message, this.ports.context().selfId) && this.ports.panelHidden()) {
      this.unread += 1;
      this.renderUnread();
    }
    this.render();
  }

  /** @param {{ messages: ChatMessage[], more?: boolean }} msg a `history` page */
  history(msg) {
    this.loadingHistory = false;
    this.messages = mergeMessages(this.messages, msg.messages);
    this.historyMore = Boolean(msg.more);
    this.render();
    this.continueReveal();
  }

  /** A `history` request was refused: scrolling up may ask again. */
  historyFailed() {
    this.loadingHistory = false;
    this.revealing = null;
  }

  /** @param {string} ref */
  acked(ref) {
    this.view?.acked(ref);
  }

  /**
   * @param {string} ref
   * @param {string} text why
   */
  refused(ref, text) {
    this.view?.refused(ref, text);
  }

  connectionLost() {
    this.view?.connectionLost();
  }

  /** The chat panel was opened: nothing is unread. */
  markRead() {
    this.unread = 0;
    this.renderUnread();
  }

  render() {
    if (!this.view) return;
    const { selfId, labels } = this.ports.context();
    this.view.setContext({ selfId, labels, limit: this.limit, host: this.ports.isHost() });
    this.view.render(this.messages);
    this.view.setMore(this.historyMore);
  }

  /** @param {{ allowed: boolean, question: boolean, note: string }} state the room's chat setting for us */
  setRestriction(state) {
    this.view?.setRestriction(state);
  }

  renderRecipients() {
    this.view?.setContext({ host: this.ports.isHost() }); // roles change with the roster
    this.view?.setRecipients(this.ports.recipients());
  }

  renderUnread() {
    const u = this.el.unread;
    u.hidden = this.unread === 0;
    u.textContent = this.unread > 99 ? "99+" : String(this.unread);
    this.el.chatBtn.title = this.unread ? `Chat (${this.unread} unread)` : "Chat";
  }

  teardown() {
    this.view?.clear();
  }
}
