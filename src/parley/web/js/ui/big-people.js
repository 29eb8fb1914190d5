// The people panel of a big room: the count, a "Search people" box, and a paged list
// ("Load more") so that only a page or a few of rows exist in the DOM, whatever the
// room's size.  Small rooms never see it (the panel stays as it was).  The state and its
// rules are in core/big-room.js; this module owns the elements and sends the requests.
import * as B from "../core/big-room.js";
import { h } from "./dom.js";

/** @typedef {import("../core/protocol.js").Participant} Participant */
/** @typedef {import("../core/protocol.js").ClientMessage} ClientMessage */

/** Milliseconds a search waits for the typing to pause before it asks the server. */
const SEARCH_DELAY = 300;

export class BigPeople {
  /**
   * @param {{ list: HTMLElement, send: (msg: ClientMessage) => boolean, onChange: () => void }} opts
   *   list: the people list (the controls go above it, the button below)
   */
  constructor({ list, send, onChange }) {
    this.list = list;
    this.send = send;
    this.onChange = onChange;
    this.state = B.initialState();
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.searchTimer = null;
    /** People the panel could show without asking the server. */
    this.known = 0;
    this.input = /** @type {HTMLInputElement} */ (
      h("input", { type: "search", id: "people-search", class: "people-search-input", maxlength: B.MAX_QUERY, autocomplete: "off", placeholder: "Search by name" })
    );
    this.input.addEventListener("input", () => this.searchChanged());
    this.countEl = h("p", { class: "people-total", role: "status", "aria-live": "polite" });
    this.controls = h(
      "div",
      { class: "people-big-controls", hidden: true },
      h("label", { for: "people-search", class: "people-search-label" }, "Search people"),
      this.input,
      this.countEl,
    );
    this.more = /** @type {HTMLButtonElement} */ (h("button", { type: "button", class: "btn btn-small btn-ghost people-more", hidden: true }, "Load more"));
    this.more.addEventListener("click", () => this.loadMore());
    this.empty = h("p", { class: "hint people-empty", hidden: true }, "Nobody by that name.");
    list.before(this.controls);
    list.after(this.more, this.empty);
  }

  get active() {
    return this.state.active;
  }

  get count() {
    return this.state.count;
  }

  /** @param {{ participants: Participant[], participant_count?: number | null, roster_next?: string | null }} msg */
  welcome(msg) {
    const query = this.state.query;
    this.state = B.fromWelcome(msg);
    this.controls.hidden = !this.state.active;
    if (!this.state.active) {
      this.more.hidden = this.empty.hidden = true;
      return;
    }
    if (query) this.applySearch(query); // after a reconnect, the same search again
  }

  /** @param {import("../core/big-room.js").Presence} msg */
  presence(msg) {
    this.state = B.onPresence(this.state, msg);
    this.controls.hidden = false;
  }

  /** @param {import("../core/big-room.js").RosterPage} msg */
  page(msg) {
    this.state = B.onPage(this.state, msg);
    this.onChange();
  }

  /**
   * The rows to render (at most a few pages), from the meeting's sorted roster.
   * @param {Participant[]} people
   * @param {Map<string, Participant>} roster
   */
  rows(people, roster) {
    const { rows, more } = B.visible(this.state, people, roster);
    this.known = people.length + [...this.state.listed.keys()].filter((id) => !roster.has(id)).length;
    this.more.hidden = !more;
    this.empty.hidden = !(this.state.query.trim() && this.state.results && rows.length === 0);
    return rows;
  }

  /** After the list is drawn: the count, which a page of rows does not show. */
  render() {
    const n = this.state.count;
    const text = `${n.toLocaleString()} ${n === 1 ? "person" : "people"} in the room`;
    if (this.countEl.textContent !== text) this.countEl.textContent = text;
    this.list.setAttribute("aria-label", `Participants (${n})`);
  }

  loadMore() {
    const { state, request } = B.loadMore(this.state, this.known ?? 0);
    this.state = state;
    if (request) this.send({ ...request, ref: "roster" });
    this.onChange();
  }

  searchChanged() {
    if (this.searchTimer) clearTimeout(this.searchTimer);
    this.searchTimer = setTimeout(() => this.applySearch(this.input.value), SEARCH_DELAY);
  }

  /** @param {string} text */
  applySearch(text) {
    const { state, request } = B.search(this.state, text);
    this.state = state;
    if (request) this.send({ ...request, ref: "roster-search" });
    this.onChange();
  }

  destroy() {
    if (this.searchTimer) clearTimeout(this.searchTimer);
  }
}
