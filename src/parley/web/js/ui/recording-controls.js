// Recording in the meeting: the hosts' "Record" toggle (aria-pressed), the "Recording"
// indicator everyone sees (role=status), and, on a mesh server, why there is no recording.
import { $, clear, h, setIcon, setPressed } from "./dom.js";
import { showRecordings } from "./recordings-list.js";

/** @typedef {import("../core/protocol.js").ClientMessage} ClientMessage */

/** Why a mesh server cannot record (the button says so instead of recording). */
export const MESH_REASON =
  "Recording is not available here: this server sends media directly between browsers (mesh mode), so it never receives the audio and video to record. It needs a server in SFU mode.";

/**
 * @typedef {object} RecordingElements
 * @property {HTMLButtonElement} button the hosts' "Record" toggle
 * @property {HTMLElement} indicator role=status, shown to everyone while the room records
 */

/**
 * @typedef {object} RecordingPorts
 * @property {(msg: ClientMessage) => boolean} send a request with a fresh ref; false when not connected
 * @property {(text: string, opts?: { timeout?: number }) => void} toast
 * @property {string} room
 * @property {() => string | null} token the resume token (a host's lists the recordings)
 */

export class RecordingControls {
  /**
   * @param {RecordingElements} el
   * @param {RecordingPorts} ports
   */
  constructor(el, ports) {
    this.el = el;
    this.ports = ports;
    this.recording = false;
    /** @type {"sfu" | "mesh"} */
    this.mode = "sfu";
  }

  /** @param {AbortSignal} signal ends the listener with the meeting */
  mount(signal) {
    setIcon(this.el.button, "record");
    this.el.button.addEventListener("click", () => this.toggle(), { signal });
  }

  toggle() {
    if (this.mode === "mesh") {
      this.ports.toast(MESH_REASON, { timeout: 10000 });
      return;
    }
    const action = this.recording ? "stop" : "start";
    if (!this.ports.send({ type: "record", action })) this.ports.toast("Not connected right now.");
  }

  /** @param {string} mode the server's media mode ("sfu" or "mesh") */
  setMode(mode) {
    this.mode = mode === "mesh" ? "mesh" : "sfu";
    const b = this.el.button;
    if (this.mode === "mesh") {
      b.setAttribute("aria-disabled", "true");
      b.title = MESH_REASON;
      b.setAttribute("aria-description", MESH_REASON);
    } else {
      b.removeAttribute("aria-disabled");
      b.removeAttribute("aria-description");
      b.title = "Record the meeting";
    }
  }

  /** @param {boolean | undefined} on the room's recording state (welcome.room, room-updated) */
  setRecording(on) {
    const was = this.recording;
    this.recording = Boolean(on);
    setPressed(this.el.button, this.recording);
    this.el.button.title = this.mode === "mesh" ? MESH_REASON : this.recording ? "Stop recording" : "Record the meeting";
    const ind = this.el.indicator;
    if (this.recording !== was || ind.hidden === this.recording) {
      clear(ind);
      if (this.recording) {
        ind.setAttribute("aria-label", "Recording: this meeting is being recorded");
        ind.title = "This meeting is being recorded";
        ind.append(h("span", { class: "rec-dot", "aria-hidden": "true" }), "Recording");
      } else {
        ind.removeAttribute("aria-label");
      }
      ind.hidden = !this.recording;
    }
  }

  /** Hosts: the room's recordings, in the settings dialog (once it is in the page). */
  showList() {
    const list = document.querySelector("#recordings-list");
    if (!(list instanceof HTMLElement)) return;
    const section = $("#recordings-section");
    section.hidden = this.mode === "mesh";
    if (this.mode !== "mesh") showRecordings(list, $("#recordings-status"), this.ports.room, this.ports.token());
  }

  /** @param {boolean} host whether we are a host now */
  render(host) {
    this.el.button.hidden = !host;
  }

  teardown() {
    this.el.button.hidden = true;
    this.el.indicator.hidden = true;
    clear(this.el.indicator);
    this.recording = false;
  }
}
