// "Keep chat history" in the room settings dialog (hosts): reads the room's retention from
// GET /api/v1/rooms/{room}/retention (with the host's resume token) each time the dialog
// opens, and sends `set-retention` when the host picks another value.  In the main room
// only: from a breakout, the message would set the breakout's own.
import { parseRetention, retentionChoices, retentionMessage, retentionSummary } from "../core/retention.js";
import { clear, h } from "./dom.js";

/** @typedef {import("../core/retention.js").Retention} Retention */
/** @typedef {import("../core/protocol.js").ClientMessage} ClientMessage */

/**
 * @typedef {object} RetentionPorts
 * @property {(msg: ClientMessage) => boolean} send a host request; false when not connected
 * @property {string} room the meeting's main room (our resume token's room)
 * @property {() => boolean} inBreakout we are in one of its breakouts now
 * @property {() => string | null} token our resume token
 */

export class RetentionSetting {
  /** @param {RetentionPorts} ports */
  constructor(ports) {
    this.ports = ports;
    /** @type {Retention | null} */
    this.current = null;
    /** Answers to an older load are dropped (the dialog was reopened meanwhile). */
    this.loads = 0;
  }

  /** The select and its status line, once the settings dialog is in the page. */
  elements() {
    const select = document.querySelector("#set-retention");
    const state = document.querySelector("#retention-state");
    if (!(select instanceof HTMLSelectElement) || !(state instanceof HTMLElement)) return null;
    if (!select.dataset.wired) {
      select.dataset.wired = "1";
      select.addEventListener("change", () => this.choose(select.value));
    }
    return { select, state };
  }

  /** The dialog opened: show the room's setting as the server has it now. */
  async load() {
    const el = this.elements();
    if (!el) return;
    const load = ++this.loads;
    el.select.disabled = true;
    if (this.ports.inBreakout()) {
      // `set-retention` acts on the room we are in: a breakout's chat is its own record.
      this.current = null;
      clear(el.select);
      el.state.textContent = "Set how long the chat history is kept from the main room.";
      return;
    }
    el.state.textContent = "Loading…";
    /** @type {Record<string, string>} */
    const headers = { accept: "application/json" };
    const bearer = this.ports.token();
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    /** @type {Retention | null} */
    let found = null;
    try {
      const r = await fetch(`/api/v1/rooms/${encodeURIComponent(this.ports.room)}/retention`, { headers, cache: "no-store" });
      if (r.ok) found = parseRetention(await r.json());
    } catch {
      found = null;
    }
    if (load !== this.loads) return;
    if (!found) {
      el.state.textContent = "The chat history setting could not be read.";
      return;
    }
    this.current = found;
    this.render();
  }

  render() {
    const el = this.elements();
    const r = this.current;
    if (!el || !r) return;
    clear(el.select);
    for (const c of retentionChoices(r)) el.select.append(h("option", { value: c.value }, c.label));
    el.select.value = r.days === null ? "" : String(r.days);
    el.select.disabled = false;
    el.state.textContent = retentionSummary(r);
  }

  /** @param {string} value the select's new value */
  choose(value) {
    const msg = retentionMessage(value);
    if (!msg || !this.current || this.ports.inBreakout()) return;
    if (this.ports.send(msg)) {
      this.current = { ...this.current, days: msg.days };
    }
    this.render(); // on failure (not connected), back to what the server has
  }
}
