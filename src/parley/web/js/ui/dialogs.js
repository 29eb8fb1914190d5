// Modal dialogs: a confirmation ("Remove" / "Remove and bar" / "Cancel") and the hosts'
// room settings (lock, lobby, password, end the meeting).  Native <dialog>: focus is
// trapped and Escape cancels; all text goes in as text.
import { roomSettings } from "../core/moderation.js";
import { stageSettings } from "../core/stage.js";
import { $, clear, h } from "./dom.js";

/** @typedef {import("../core/protocol.js").ClientMessage} ClientMessage */
/** @typedef {import("../core/protocol.js").RawRoomSettings} RawRoomSettings */

/** @param {HTMLDialogElement} dialog */
function openModal(dialog) {
  if (dialog.open) return;
  if (typeof dialog.showModal === "function") dialog.showModal();
  else dialog.setAttribute("open", "");
}

/** @param {HTMLDialogElement} dialog */
function closeModal(dialog) {
  if (!dialog.open) return;
  if (typeof dialog.close === "function") dialog.close();
  else dialog.removeAttribute("open");
}

/**
 * Ask for confirmation.  `actions`: [{ label, value, kind: "danger" | "primary" }]; a
 * "Cancel" button is added.  Resolves with the chosen value, or null if cancelled.
 * @template V
 * @param {{ title: string, text?: string, actions: { label: string, value: V, kind?: string }[] }} opts
 * @returns {Promise<V | null>}
 */
export function confirmDialog({ title, text, actions }) {
  const dialog = /** @type {HTMLDialogElement} */ ($("#confirm-dialog"));
  const box = $("#confirm-actions");
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text || "";
  clear(box);
  return new Promise((resolve) => {
    let done = false;
    const finish = (/** @type {V | null} */ value) => {
      if (done) return;
      done = true;
      dialog.removeEventListener("close", onClose);
      closeModal(dialog);
      resolve(value);
    };
    const onClose = () => finish(null);
    dialog.addEventListener("close", onClose);
    for (const a of actions) {
      box.append(
        h("button", { type: "button", class: `btn btn-small btn-${a.kind || "primary"}`, onclick: () => finish(a.value) }, a.label),
      );
    }
    const cancel = h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => finish(null) }, "Cancel");
    box.append(cancel);
    openModal(dialog);
    cancel.focus();
  });
}

export function closeConfirm() {
  closeModal(/** @type {HTMLDialogElement} */ ($("#confirm-dialog")));
}

/** The room settings dialog.  `send(msg)` sends a protocol message; `onEnd()` ends the meeting. */
export class SettingsDialog {
  /**
   * @param {{ send: (msg: ClientMessage) => boolean, onEndMeeting: () => void, onOpen?: () => void, signal: AbortSignal }} opts
   */
  constructor({ send, onEndMeeting, onOpen, signal }) {
    this.send = send;
    this.onEndMeeting = onEndMeeting;
    this.onOpen = onOpen;
    $("#settings-dialog")?.remove();
    document.body.append(/** @type {HTMLTemplateElement} */ ($("#settings-template")).content.cloneNode(true));
    this.dialog = /** @type {HTMLDialogElement} */ ($("#settings-dialog"));
    this.locked = /** @type {HTMLInputElement} */ ($("#set-locked"));
    this.lobby = /** @type {HTMLInputElement} */ ($("#set-lobby"));
    this.stage = /** @type {HTMLInputElement | null} */ (document.getElementById("set-stage"));
    this.chat = /** @type {HTMLSelectElement | null} */ (document.getElementById("set-chat"));
    this.stageState = stageSettings(null);
    this.password = /** @type {HTMLInputElement} */ ($("#set-password"));
    this.passwordState = $("#password-state");
    this.setBtn = /** @type {HTMLButtonElement} */ ($("#btn-set-password"));
    this.clearBtn = /** @type {HTMLButtonElement} */ ($("#btn-clear-password"));
    this.error = $("#settings-error");
    this.settings = roomSettings(null);
    const o = { signal };
    this.locked.addEventListener("change", () => this.change({ locked: this.locked.checked }), o);
    this.lobby.addEventListener("change", () => this.change({ lobby: this.lobby.checked }), o);
    const stage = this.stage;
    const chat = this.chat;
    stage?.addEventListener("change", () => this.change({ stage: stage.checked }), o);
    chat?.addEventListener("change", () => {
      const value = chat.value;
      if (value === "everyone" || value === "stage" || value === "questions") this.change({ chat: value });
    }, o);
    this.setBtn.addEventListener("click", () => this.setPassword(), o);
    this.clearBtn.addEventListener("click", () => this.change({ password: "" }), o);
    $("#settings-form").addEventListener(
      "submit",
      (ev) => {
        ev.preventDefault(); // Enter in the password box sets it
        this.setPassword();
      },
      o,
    );
    $("#btn-settings-close").addEventListener("click", () => this.close(), o);
    $("#btn-end-all").addEventListener("click", () => this.onEndMeeting(), o);
    this.password.addEventListener("input", () => this.hideError(), o);
  }

  open() {
    this.hideError();
    this.render();
    openModal(this.dialog);
    this.locked.focus();
    this.onOpen?.(); // e.g. list the room's recordings
  }

  close() {
    closeModal(this.dialog);
  }

  /** Take the dialog out of the page (the meeting is over). */
  destroy() {
    closeModal(this.dialog);
    this.dialog.remove();
  }

  get isOpen() {
    return this.dialog.open;
  }

  /** @param {RawRoomSettings | null | undefined} settings */
  update(settings) {
    this.settings = roomSettings(settings);
    this.stageState = stageSettings(settings);
    this.render();
  }

  render() {
    const s = this.settings;
    this.locked.checked = s.locked;
    this.lobby.checked = s.lobby;
    if (this.stage) this.stage.checked = this.stageState.stage;
    if (this.chat) this.chat.value = this.stageState.chat;
    this.passwordState.textContent = s.has_password ? "This room has a password." : "This room has no password.";
    this.clearBtn.disabled = !s.has_password;
  }

  /** @param {{ locked?: boolean, lobby?: boolean, password?: string, stage?: boolean, chat?: "everyone" | "stage" | "questions" }} fields */
  change(fields) {
    this.hideError();
    if (!this.send({ type: "room-settings", ...fields })) {
      this.showError("Not connected right now; try again in a moment.");
      this.render();
    }
  }

  setPassword() {
    const value = this.password.value;
    if (!value) {
      this.showError("Type a password first.");
      this.password.focus();
      return;
    }
    if ([...value].length > 128) {
      this.showError("A room password can be at most 128 characters.");
      return;
    }
    this.change({ password: value });
    this.password.value = "";
  }

  /** @param {string} text */
  showError(text) {
    this.error.textContent = text;
    this.error.hidden = false;
  }

  hideError() {
    this.error.hidden = true;
    this.error.textContent = "";
  }
}
