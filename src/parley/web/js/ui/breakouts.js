// Breakout rooms on the meeting page: the hosts' "Breakout rooms" button and dialog (plan
// and open them; then visit, assign late joiners, message every room, close them all), and
// the bar everyone in a breakout sees (its name and time left, "Ask for help").  Moving
// between rooms is the server's: this socket gets a welcome for the new room.
import { barText, checkPlan, clockText, MAX_BREAKOUTS, MAX_TITLE_CHARS, updateHere } from "../core/breakouts.js";
import { clear, h, setIcon } from "./dom.js";
import { MainChatDialog } from "./main-chat.js";

/** @typedef {import("../core/protocol.js").BreakoutHere} BreakoutHere */
/** @typedef {import("../core/protocol.js").BreakoutsState} BreakoutsState */
/** @typedef {import("../core/protocol.js").ClientMessage} ClientMessage */
/** @typedef {import("../core/protocol.js").Welcome} Welcome */

/**
 * @typedef {object} BreakoutsDeps
 * @property {(msg: ClientMessage) => boolean} send
 * @property {(text: string, opts?: { timeout?: number }) => void} toast
 * @property {() => boolean} isHost
 * @property {() => { id: string, label: string, host: boolean }[]} others people in our room but us
 */

const RESUME_KEY = "parley-breakout-resume:";

/**
 * A page reloaded in a breakout comes back into it: the resume token is kept in this
 * tab's sessionStorage on the way out (instead of leaving), and taken (once) on the way in.
 * @param {string} room the meeting's (main) room
 * @param {string} token
 */
export function keepResume(room, token) {
  try {
    sessionStorage.setItem(RESUME_KEY + room, token);
  } catch {
    /* storage off: a reload joins afresh */
  }
}

/** @param {string} room */
export function takeKeptResume(room) {
  try {
    const token = sessionStorage.getItem(RESUME_KEY + room);
    sessionStorage.removeItem(RESUME_KEY + room);
    return token;
  } catch {
    return null;
  }
}

export class MeetingBreakouts {
  /**
   * @param {{ button: HTMLButtonElement, bar: HTMLElement }} el
   * @param {BreakoutsDeps} deps
   */
  constructor(el, deps) {
    this.el = el;
    this.deps = deps;
    /** @type {BreakoutHere | null} */
    this.here = null;
    /** @type {BreakoutsState | null} */
    this.state = null;
    /** @type {BreakoutsDialog | null} */
    this.dialog = null;
    /** @type {ReturnType<typeof setInterval> | null} */
    this.timer = null;
    /** @type {MainChatDialog | null} */
    this.mainChat = null;
    this.status = h("span", { class: "breakout-status", role: "status" });
    this.helpBtn = /** @type {HTMLButtonElement} */ (
      h("button", { type: "button", class: "btn btn-small btn-primary", onclick: () => this.askForHelp() }, "Ask for help")
    );
    this.backBtn = /** @type {HTMLButtonElement} */ (
      h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => this.deps.send({ type: "breakout-visit", room: null, ref: "bo" }) }, "Return to main room")
    );
  }

  /** @param {AbortSignal} signal */
  mount(signal) {
    setIcon(this.el.button, "breakouts");
    this.dialog = new BreakoutsDialog(this);
    this.el.button.addEventListener("click", () => this.dialog?.open(), { signal });
    clear(this.el.bar);
    this.mainChat = new MainChatDialog(this.deps.send);
    const mainChatBtn = h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => this.here && this.mainChat?.open(this.here.main) }, "Main room chat");
    this.el.bar.append(this.status, this.helpBtn, this.backBtn, mainChatBtn);
    this.timer = setInterval(() => this.renderBar(), 1000);
  }

  /** @param {Welcome} msg a welcome: into the main room, or into a breakout */
  welcome(msg) {
    this.here = msg.breakout ?? null;
    if (!this.here && this.state && !this.state.open) this.state = null;
    this.renderBar();
    this.dialog?.render();
  }

  /** @param {BreakoutsState} state */
  received(state) {
    this.state = state.open ? state : null;
    if (this.here) this.here = updateHere(this.here, state);
    if (!state.open && this.here) this.here = null;
    this.renderBar();
    this.dialog?.render();
  }

  /** @param {{ name: string, title: string }} call */
  helpCalled(call) {
    this.deps.toast(`${call.name} asks for help in ${call.title}`, { timeout: 15_000 });
  }

  /** @param {{ name: string, text: string }} msg */
  broadcast(msg) {
    this.deps.toast(`${msg.name} to all rooms: ${msg.text}`, { timeout: 15_000 });
  }

  askForHelp() {
    if (this.deps.send({ type: "breakout-help", ref: "bo" })) this.deps.toast("The hosts were told you asked for help.");
  }

  /** @param {boolean} host */
  render(host) {
    this.el.button.hidden = !host;
    this.helpBtn.hidden = host;
    this.backBtn.hidden = !host;
    this.dialog?.render();
  }

  renderBar() {
    const here = this.here;
    this.el.bar.hidden = !here;
    if (here) this.status.textContent = barText(here, Date.now());
  }

  teardown() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.dialog?.remove();
    this.dialog = null;
    this.mainChat?.remove();
    this.mainChat = null;
    this.el.bar.hidden = true;
    this.el.button.hidden = true;
  }
}

/** The hosts' dialog: a plan while none are open; the rooms and their controls once open. */
class BreakoutsDialog {
  /** @param {MeetingBreakouts} owner */
  constructor(owner) {
    this.owner = owner;
    const send = owner.deps.send;
    this.send = send;
    // -- the plan
    this.count = /** @type {HTMLInputElement} */ (h("input", { id: "bo-count", type: "number", min: "1", max: String(MAX_BREAKOUTS), value: "2" }));
    this.count.addEventListener("input", () => this.renderTitles());
    this.titlesBox = h("div", { class: "bo-titles" });
    /** @type {HTMLInputElement[]} */
    this.titles = [];
    this.auto = /** @type {HTMLInputElement} */ (h("input", { type: "radio", name: "bo-assign", id: "bo-auto", value: "auto", checked: true }));
    this.byHand = /** @type {HTMLInputElement} */ (h("input", { type: "radio", name: "bo-assign", id: "bo-hand", value: "hand" }));
    for (const r of [this.auto, this.byHand]) r.addEventListener("change", () => this.renderPicks());
    this.picksBox = h("div", { class: "bo-picks" });
    /** @type {Map<string, HTMLSelectElement>} */
    this.picks = new Map();
    this.minutes = /** @type {HTMLInputElement} */ (h("input", { id: "bo-minutes", type: "number", min: "1", max: "1440", placeholder: "No limit" }));
    this.error = h("div", { class: "form-error", role: "alert", hidden: true });
    this.planBox = h(
      "form",
      { class: "bo-plan", novalidate: true, onsubmit: (/** @type {Event} */ e) => this.submit(e) },
      h("div", { class: "field" }, h("label", { for: "bo-count" }, "Number of rooms"), this.count),
      this.titlesBox,
      h(
        "fieldset",
        { class: "bo-assign" },
        h("legend", {}, "Assign people"),
        h("div", { class: "check-row" }, this.auto, h("label", { for: "bo-auto" }, "Automatically (evenly, at random)")),
        h("div", { class: "check-row" }, this.byHand, h("label", { for: "bo-hand" }, "By hand")),
      ),
      this.picksBox,
      h("div", { class: "field" }, h("label", { for: "bo-minutes" }, "Duration in minutes (optional)"), this.minutes),
      this.error,
      h(
        "div",
        { class: "dialog-row dialog-row--end" },
        h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => this.close() }, "Cancel"),
        h("button", { type: "submit", class: "btn btn-small btn-primary" }, "Open breakout rooms"),
      ),
    );
    // -- while open
    this.summary = h("p", { class: "hint bo-summary" });
    this.roomsList = h("ul", { class: "bo-rooms", "aria-label": "Breakout rooms" });
    this.mainList = h("div", { class: "bo-main" });
    this.message = /** @type {HTMLInputElement} */ (h("input", { id: "bo-message", type: "text", maxlength: "4000", autocomplete: "off" }));
    this.runBox = h(
      "div",
      { class: "bo-running" },
      this.summary,
      this.roomsList,
      this.mainList,
      h(
        "form",
        { class: "bo-broadcast", novalidate: true, onsubmit: (/** @type {Event} */ e) => this.sendToAll(e) },
        h("div", { class: "field" }, h("label", { for: "bo-message" }, "Message to all rooms"), this.message),
        h("div", { class: "dialog-row dialog-row--end" }, h("button", { type: "submit", class: "btn btn-small btn-ghost" }, "Send to all rooms")),
      ),
      h(
        "div",
        { class: "dialog-row dialog-row--end" },
        h("button", { type: "button", class: "btn btn-small btn-danger", onclick: () => this.closeAll() }, "Close all rooms"),
        h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => this.close() }, "Done"),
      ),
    );
    this.dialog = /** @type {HTMLDialogElement} */ (
      h(
        "dialog",
        { id: "breakouts-dialog", class: "dialog dialog--wide", "aria-labelledby": "breakouts-title" },
        h("div", { class: "dialog-body" }, h("h2", { id: "breakouts-title" }, "Breakout rooms"), this.planBox, this.runBox),
      )
    );
    document.body.append(this.dialog);
    this.renderTitles();
  }

  open() {
    if (!this.dialog.open) {
      this.error.hidden = true;
      this.render();
      if (typeof this.dialog.showModal === "function") this.dialog.showModal();
      else this.dialog.setAttribute("open", "");
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

  count_() {
    const n = Math.trunc(Number(this.count.value));
    return Number.isFinite(n) ? Math.min(Math.max(n, 1), MAX_BREAKOUTS) : 1;
  }

  renderTitles() {
    const n = this.count_();
    while (this.titles.length < n) {
      const i = this.titles.length + 1;
      const input = /** @type {HTMLInputElement} */ (h("input", { id: `bo-title-${i}`, type: "text", maxlength: String(MAX_TITLE_CHARS), placeholder: `Room ${i}`, autocomplete: "off" }));
      this.titles.push(input);
    }
    clear(this.titlesBox);
    this.titles.slice(0, n).forEach((input, i) => {
      this.titlesBox.append(h("div", { class: "field" }, h("label", { for: input.id }, `Name of room ${i + 1}`), input));
    });
    this.renderPicks();
  }

  /** One "Room for <name>" select per person in our room (by hand). */
  renderPicks() {
    const n = this.count_();
    const names = this.titles.slice(0, n).map((t, i) => t.value.trim() || `Room ${i + 1}`);
    clear(this.picksBox);
    this.picksBox.hidden = !this.byHand.checked;
    if (!this.byHand.checked) return;
    for (const person of this.owner.deps.others()) {
      const old = this.picks.get(person.id);
      const select = /** @type {HTMLSelectElement} */ (h("select", { id: `bo-pick-${person.id}` }, h("option", { value: "-1" }, "Main room"), names.map((name, i) => h("option", { value: String(i) }, name))));
      select.value = old && Number(old.value) < n ? old.value : "-1";
      this.picks.set(person.id, select);
      this.picksBox.append(h("div", { class: "field bo-pick" }, h("label", { for: select.id }, `Room for ${person.label}`), select));
    }
  }

  /** @param {Event} e */
  submit(e) {
    e.preventDefault();
    /** @type {Record<string, number>} */
    const assign = {};
    if (this.byHand.checked) {
      for (const [pid, select] of this.picks) if (Number(select.value) >= 0) assign[pid] = Number(select.value);
    }
    const plan = checkPlan({
      count: Number(this.count.value),
      titles: this.titles.map((t) => t.value),
      auto: this.auto.checked,
      assign,
      minutes: this.minutes.value,
    });
    if (!plan.ok) {
      this.error.textContent = plan.error;
      this.error.hidden = false;
      return;
    }
    if (!this.send({ type: "breakouts-open", ...plan.msg, ref: "bo" })) {
      this.error.textContent = "Not connected right now.";
      this.error.hidden = false;
      return;
    }
    this.close();
  }

  /** @param {Event} e */
  sendToAll(e) {
    e.preventDefault();
    const text = this.message.value.trim();
    if (text && this.send({ type: "breakout-broadcast", text, ref: "bo" })) this.message.value = "";
  }

  /** @param {number} index */
  visit(index) {
    if (this.send({ type: "breakout-visit", room: index, ref: "bo" })) this.close();
  }

  closeAll() {
    this.send({ type: "breakouts-close", ref: "bo" });
    this.close();
  }

  render() {
    const state = this.owner.state;
    const open = Boolean(state?.open);
    this.planBox.hidden = open;
    this.runBox.hidden = !open;
    if (!open || !state) {
      this.renderPicks();
      return;
    }
    const rooms = state.rooms || [];
    const here = this.owner.here;
    let summary = `${rooms.length} ${rooms.length === 1 ? "room is" : "rooms are"} open.`;
    if (state.closing_at) summary += " Everyone returns to the main room within 30 seconds.";
    else if (state.ends_at) summary += ` Everyone returns in ${clockText(state.ends_at - Date.now())}.`;
    this.summary.textContent = summary;
    clear(this.roomsList);
    for (const room of rooms) {
      const inThisOne = here?.index === room.index;
      this.roomsList.append(
        h(
          "li",
          { class: "bo-room" },
          h("h3", {}, room.title),
          h("p", { class: "bo-members" }, room.names.length ? room.names.join(", ") : "Nobody yet"),
          inThisOne
            ? h("span", { class: "hint" }, "You are here")
            : h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => this.visit(room.index) }, `Join ${room.title}`),
        ),
      );
    }
    // Whoever is in our room (the main room) may be sent to a breakout: late joiners too.
    clear(this.mainList);
    if (!here) {
      const waiting = this.owner.deps.others().filter((p) => !p.host);
      if (waiting.length) {
        this.mainList.append(h("h3", {}, "In the main room"));
        for (const person of waiting) {
          const select = /** @type {HTMLSelectElement} */ (
            h("select", { id: `bo-move-${person.id}` }, h("option", { value: "-1" }, "Main room"), rooms.map((r) => h("option", { value: String(r.index) }, r.title)))
          );
          select.addEventListener("change", () => {
            const index = Number(select.value);
            if (index >= 0) this.send({ type: "breakout-assign", to: person.id, room: index, ref: "bo" });
          });
          this.mainList.append(h("div", { class: "field bo-pick" }, h("label", { for: select.id }, `Room for ${person.label}`), select));
        }
      }
    }
  }
}
