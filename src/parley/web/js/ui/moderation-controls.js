// Moderation in the meeting: the hosts' actions on a participant (with "Remove <name>?"
// asking first), "Mute everyone", the lobby (admit/deny), the room settings dialog, the
// room's flags in the header ("Room locked", "Lobby on", "Password"), and what a role
// change tells us.
import { roomSettings, newlyWaiting } from "../core/moderation.js";
import { confirmDialog, closeConfirm, SettingsDialog } from "./dialogs.js";
import { clear, h, icon, setIcon } from "./dom.js";
import { renderLobby } from "./people.js";

/** @typedef {import("../core/protocol.js").ClientMessage} ClientMessage */
/** @typedef {import("../core/protocol.js").LobbyEntry} LobbyEntry */
/** @typedef {import("../core/protocol.js").RawRoomSettings} RawRoomSettings */
/** @typedef {import("../core/protocol.js").Role} Role */
/** @typedef {ReturnType<typeof roomSettings>} RoomSettings */
/** @typedef {{ id: string, label: string, message?: ClientMessage, confirm?: boolean }} HostAction */

/**
 * The page's elements this part owns.
 * @typedef {object} ModerationElements
 * @property {HTMLButtonElement} muteAll
 * @property {HTMLButtonElement} settingsBtn
 * @property {HTMLElement} lobbySection
 * @property {HTMLElement} lobbyList
 * @property {HTMLButtonElement} peopleBtn
 * @property {HTMLElement} roomFlags
 */

/**
 * What the moderation part needs from the meeting.
 * @typedef {object} ModerationPorts
 * @property {(msg: ClientMessage) => boolean} send a request with a fresh ref; false when not connected
 * @property {(text: string, opts?: { timeout?: number }) => void} toast
 * @property {(pid: string) => string | null} labelOf the participant's label, null when gone
 * @property {() => boolean} isEnded
 * @property {() => void} [onSettingsOpen] the settings dialog opened (it lists the recordings)
 */

export class ModerationControls {
  /**
   * @param {ModerationElements} el
   * @param {ModerationPorts} ports
   */
  constructor(el, ports) {
    this.el = el;
    this.ports = ports;
    this.settings = roomSettings(null);
    /** @type {RawRoomSettings | null | undefined} */
    this.raw = null;
    /** @type {LobbyEntry[]} hosts: who waits in the lobby */
    this.lobby = [];
    /** @type {SettingsDialog | null} */
    this.settingsDialog = null;
  }

  /** @param {AbortSignal} signal ends every listener with the meeting */
  mount(signal) {
    const o = { signal };
    const el = this.el;
    setIcon(el.settingsBtn, "settings");
    const dialog = new SettingsDialog({
      send: (/** @type {ClientMessage} */ msg) => this.moderate(msg),
      onEndMeeting: () => this.confirmEndMeeting(),
      onOpen: () => this.ports.onSettingsOpen?.(),
      signal,
    });
    this.settingsDialog = dialog;
    dialog.update(this.raw);
    el.settingsBtn.addEventListener("click", () => dialog.open(), o);
    el.muteAll.addEventListener("click", () => this.moderate({ type: "mute-all", kind: "mic" }), o);
  }

  /** @param {RawRoomSettings | null | undefined} raw from welcome.room.settings or room-updated */
  setSettings(raw) {
    this.settings = roomSettings(raw);
    this.raw = raw; // (stage mode and who may chat: the dialog reads them, core/stage.js)
    this.settingsDialog?.update(raw);
  }

  /**
   * A new waiting list; hosts get a toast for each newcomer.
   * @param {LobbyEntry[]} waiting
   * @param {boolean} selfIsHost
   */
  setLobby(waiting, selfIsHost) {
    const fresh = newlyWaiting(this.lobby, waiting);
    this.lobby = waiting;
    if (selfIsHost) {
      for (const w of fresh) this.ports.toast(`${w.name} is waiting to join`, { timeout: 8000 });
    }
  }

  /** Not a host (any more): forget the lobby. */
  clearLobby() {
    this.lobby = [];
  }

  /**
   * A host changed our role: say so; a former host loses the lobby and the settings.
   * @param {Role | undefined} before
   * @param {Role | undefined} now
   */
  ownRoleChanged(before, now) {
    const toast = this.ports.toast;
    if (now === "observer") {
      toast("A host made you an observer: you can watch, listen and chat");
    } else if (now === "host") {
      toast("You are now a host");
    } else if (before === "observer") {
      toast("You can now turn on your microphone and camera");
    } else if (before === "host") {
      toast("You are no longer a host");
    }
    if (now !== "host") {
      this.lobby = [];
      this.settingsDialog?.close();
    }
  }

  /**
   * Send a host request; a refusal comes back as an error toast.
   * @param {ClientMessage} msg
   */
  moderate(msg) {
    const ok = this.ports.send(msg);
    if (!ok) this.ports.toast("Not connected right now.");
    return ok;
  }

  /**
   * A host button of a participant's row; "Remove" asks first.
   * @param {string} pid
   * @param {HostAction} action
   */
  async hostAction(pid, action) {
    if (!action.confirm) {
      if (action.message) this.moderate(action.message);
      return;
    }
    const label = this.ports.labelOf(pid);
    if (label === null) return;
    const choice = await confirmDialog({
      title: `Remove ${label}?`,
      text: `${label} will leave the meeting. "Remove and bar" also keeps them from coming back while the meeting lasts.`,
      actions: [
        { label: "Remove", value: "remove", kind: "danger" },
        { label: "Remove and bar", value: "ban", kind: "danger" },
      ],
    });
    if (choice && !this.ports.isEnded() && this.ports.labelOf(pid) !== null) {
      this.moderate({ type: "remove", to: pid, ban: choice === "ban" });
    }
  }

  async confirmEndMeeting() {
    const ok = await confirmDialog({
      title: "End the meeting for everyone?",
      text: "Everyone will be disconnected, including you.",
      actions: [{ label: "End meeting", value: true, kind: "danger" }],
    });
    if (ok && !this.ports.isEnded()) this.moderate({ type: "end-meeting" });
  }

  /** @param {boolean} host whether we are a host now */
  render(host) {
    const el = this.el;
    el.muteAll.hidden = !host;
    el.settingsBtn.hidden = !host;
    const waiting = host ? this.lobby : [];
    renderLobby(el.lobbySection, el.lobbyList, waiting, {
      onAdmit: (w) => this.moderate({ type: "admit", to: w.id }),
      onDeny: (w) => this.moderate({ type: "deny", to: w.id }),
    });
    el.peopleBtn.classList.toggle("knock", waiting.length > 0);
    el.peopleBtn.title = waiting.length ? `Participants (${waiting.length} waiting to join)` : "Participants";
    if (!host && this.settingsDialog?.isOpen) this.settingsDialog.close();
    this.renderRoomFlags();
  }

  renderRoomFlags() {
    const box = this.el.roomFlags;
    const s = this.settings;
    const key = `${s.locked}|${s.lobby}|${s.has_password}`;
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    clear(box);
    if (s.locked) box.append(h("span", { class: "room-flag locked", role: "img", "aria-label": "Room locked", title: "Room locked" }, icon("lock", "icon tiny")));
    if (s.lobby) box.append(h("span", { class: "room-flag", title: "New people wait in the lobby" }, "Lobby on"));
    if (s.has_password) box.append(h("span", { class: "room-flag", title: "The room has a password" }, "Password"));
  }

  /** The meeting is over: the dialogs go, the hosts' controls hide. */
  teardown() {
    this.settingsDialog?.destroy();
    this.settingsDialog = null;
    closeConfirm();
    this.el.muteAll.hidden = true;
    this.el.settingsBtn.hidden = true;
    this.el.lobbySection.hidden = true;
    clear(this.el.roomFlags);
    delete this.el.roomFlags.dataset.key;
  }
}
