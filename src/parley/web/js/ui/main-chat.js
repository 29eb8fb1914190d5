// From a breakout, the main room's chat stays readable: a dialog listing its messages
// (fetched with `history` naming the main room; the server allows that room only).
import { formatTime, mergeMessages } from "../core/chat.js";
import { clear, h } from "./dom.js";

/** @typedef {import("../core/protocol.js").ChatMessage} ChatMessage */
/** @typedef {import("../core/protocol.js").ClientMessage} ClientMessage */

export class MainChatDialog {
  /** @param {(msg: ClientMessage) => boolean} send */
  constructor(send) {
    this.send = send;
    /** @type {ChatMessage[]} */
    this.messages = [];
    this.main = "";
    this.log = h("ol", { class: "main-chat-log", role: "log", "aria-label": "Main room messages", tabindex: "0" });
    this.empty = h("p", { class: "hint" }, "Loading…");
    this.dialog = /** @type {HTMLDialogElement} */ (
      h(
        "dialog",
        { class: "dialog dialog--wide", "aria-labelledby": "main-chat-title" },
        h(
          "div",
          { class: "dialog-body" },
          h("h2", { id: "main-chat-title" }, "Main room chat"),
          this.empty,
          this.log,
          h("div", { class: "dialog-row dialog-row--end" }, h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => this.close() }, "Close")),
        ),
      )
    );
    document.body.append(this.dialog);
  }

  /** @param {string} main the main room's name */
  open(main) {
    this.main = main;
    this.messages = [];
    this.render();
    this.empty.textContent = "Loading…";
    this.send({ type: "history", room: main, ref: "mc" });
    if (typeof this.dialog.showModal === "function") this.dialog.showModal();
    else this.dialog.setAttribute("open", "");
  }

  /** @param {{ messages: ChatMessage[] }} msg a `history` answer for the main room */
  history(msg) {
    this.messages = mergeMessages(this.messages, msg.messages || []);
    this.empty.textContent = this.messages.length ? "" : "No messages in the main room.";
    this.render();
  }

  render() {
    clear(this.log);
    for (const m of this.messages) {
      this.log.append(
        h(
          "li",
          { class: m.system ? "main-chat-msg main-chat-msg--system" : "main-chat-msg" },
          h("span", { class: "main-chat-meta" }, `${m.system ? "" : `${m.name} · `}${formatTime(m.ts)}`),
          h("span", { class: "main-chat-text" }, m.text),
        ),
      );
    }
  }

  close() {
    if (typeof this.dialog.close === "function") this.dialog.close();
    else this.dialog.removeAttribute("open");
  }

  remove() {
    this.close();
    this.dialog.remove();
  }
}
