// The meeting's frame: the bottom bar's buttons ("Microphone", "Camera", "Share screen",
// "Raise hand" with aria-pressed, reactions, "Leave", invite), the side panels
// ("Participants", "Chat": both open at >= 900 px, one at a time below), the clock and the
// "Media: …" badge.  It shows state; what the buttons do is the meeting's.
import { mediaModeInfo } from "../core/media-mode.js";
import { canShareScreen } from "../media/devices.js";
import { $, clear, h, setIcon, setPressed } from "./dom.js";
import { buildReactionMenu } from "./reactions.js";

const WIDE = "(min-width: 900px)";

/** @typedef {"people" | "chat"} PanelName */

/**
 * @typedef {object} BarElements
 * @property {HTMLButtonElement} mic
 * @property {HTMLButtonElement} cam
 * @property {HTMLButtonElement} screen
 * @property {HTMLButtonElement} hand
 * @property {HTMLButtonElement} react
 * @property {HTMLElement} reactMenu
 * @property {HTMLButtonElement} leave
 * @property {HTMLButtonElement} invite
 * @property {HTMLButtonElement} peopleBtn
 * @property {HTMLButtonElement} chatBtn
 * @property {HTMLElement} peoplePanel
 * @property {HTMLElement} chatPanel
 * @property {HTMLElement} sidebar
 * @property {HTMLElement} clock
 * @property {HTMLElement | null} mediaMode
 * @property {HTMLElement} observerNote
 * @property {HTMLElement | null} [audienceNote] "You're in the audience…" (stage mode)
 */

/**
 * What the bar's buttons do, and who hears of the panels.
 * @typedef {object} BarActions
 * @property {() => void} mic
 * @property {() => void} cam
 * @property {() => void} screen
 * @property {() => void} hand
 * @property {() => void} leave
 * @property {() => void} invite
 * @property {(emoji: string) => void} react
 * @property {() => void} chatOpened the chat panel was opened (nothing is unread then)
 * @property {() => void} panelsChanged the stage's room changed
 */

/**
 * What the toggles show.
 * @typedef {object} ControlsState
 * @property {boolean} micOn
 * @property {boolean} camOn
 * @property {boolean} sharing
 * @property {boolean} hand
 * @property {boolean} observer observers' media buttons are disabled, with a note saying why
 * @property {boolean} [audience] in the audience of a stage: the media buttons are not shown
 *   at all (they cannot work), and a note says why and how to ask to speak
 */

export class MeetingBar {
  /**
   * @param {BarElements} el
   * @param {BarActions} actions
   */
  constructor(el, actions) {
    this.el = el;
    this.actions = actions;
  }

  /** @param {AbortSignal} signal ends every listener with the meeting */
  mount(signal) {
    const o = { signal };
    const el = this.el;
    const act = this.actions;
    setIcon(el.screen, "screen");
    setIcon(el.hand, "hand");
    setIcon(el.react, "smile");
    setIcon(el.leave, "leave");
    setIcon(el.invite, "link");
    setIcon(el.peopleBtn, "people");
    setIcon(el.chatBtn, "chat");
    setIcon($("#chat-send"), "send");
    const closers = /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll(".panel-close"));
    for (const b of closers) setIcon(b, "close");
    el.screen.hidden = !canShareScreen();

    el.mic.addEventListener("click", () => act.mic(), o);
    el.cam.addEventListener("click", () => act.cam(), o);
    el.screen.addEventListener("click", () => act.screen(), o);
    el.hand.addEventListener("click", () => act.hand(), o);
    el.leave.addEventListener("click", () => act.leave(), o);
    el.invite.addEventListener("click", () => act.invite(), o);
    el.peopleBtn.addEventListener("click", () => this.setPanel("people", el.peoplePanel.hidden), o);
    el.chatBtn.addEventListener("click", () => this.setPanel("chat", el.chatPanel.hidden), o);
    for (const b of closers) {
      b.addEventListener("click", () => this.setPanel(/** @type {PanelName} */ (b.dataset.close), false), o);
    }

    el.reactMenu.replaceChildren();
    buildReactionMenu(el.reactMenu, (emoji) => {
      act.react(emoji);
      this.setReactMenu(false);
      el.react.focus();
    });
    el.react.addEventListener("click", () => this.setReactMenu(el.reactMenu.hidden), o);
    document.addEventListener(
      "click",
      (ev) => {
        const target = /** @type {Element} */ (ev.target);
        if (!el.reactMenu.hidden && !target.closest(".popover-wrap")) this.setReactMenu(false);
      },
      o,
    );
    document.addEventListener(
      "keydown",
      (ev) => {
        if (ev.key === "Escape" && !el.reactMenu.hidden) {
          this.setReactMenu(false);
          el.react.focus();
        }
      },
      o,
    );
  }

  /** Both side panels open on a wide screen, closed on a narrow one. */
  openPanelsToFit() {
    const wide = window.matchMedia(WIDE).matches;
    this.setPanel("people", wide);
    this.setPanel("chat", wide);
  }

  /**
   * @param {PanelName} which
   * @param {boolean} open
   */
  setPanel(which, open) {
    const el = this.el;
    const panel = which === "people" ? el.peoplePanel : el.chatPanel;
    const btn = which === "people" ? el.peopleBtn : el.chatBtn;
    panel.hidden = !open;
    btn.setAttribute("aria-expanded", open ? "true" : "false");
    btn.classList.toggle("active", open);
    if (!window.matchMedia(WIDE).matches && open) {
      // Small screens: one panel at a time.
      const other = which === "people" ? "chat" : "people";
      const otherPanel = other === "people" ? el.peoplePanel : el.chatPanel;
      if (!otherPanel.hidden) this.setPanel(other, false);
    }
    el.sidebar.hidden = el.peoplePanel.hidden && el.chatPanel.hidden;
    if (which === "chat" && open) this.actions.chatOpened();
    this.actions.panelsChanged();
  }

  /** @param {boolean} open */
  setReactMenu(open) {
    this.el.reactMenu.hidden = !open;
    this.el.react.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) this.el.reactMenu.querySelector("button")?.focus();
  }

  /** Start the clock; returns its timer. */
  startClock() {
    const tick = () => {
      this.el.clock.textContent = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    };
    tick();
    return setInterval(tick, 10_000);
  }

  /** @param {ControlsState} s */
  render(s) {
    const { mic, cam, screen, hand } = this.el;
    const observer = s.observer;
    const audience = Boolean(s.audience) && Boolean(this.el.audienceNote);
    this.el.observerNote.hidden = !observer || audience;
    if (this.el.audienceNote) this.el.audienceNote.hidden = !audience;
    for (const b of [mic, cam, screen]) {
      b.hidden = audience;
      b.disabled = observer;
      if (observer) b.setAttribute("aria-describedby", "observer-note");
      else b.removeAttribute("aria-describedby");
    }
    setPressed(mic, s.micOn);
    setIcon(mic, s.micOn ? "mic" : "micOff");
    mic.classList.toggle("off", !s.micOn);
    mic.title = s.micOn ? "Turn off microphone" : "Turn on microphone";
    setPressed(cam, s.camOn);
    setIcon(cam, s.camOn ? "cam" : "camOff");
    cam.classList.toggle("off", !s.camOn);
    cam.title = s.camOn ? "Turn off camera" : "Turn on camera";
    setPressed(screen, s.sharing);
    screen.classList.toggle("on", s.sharing);
    screen.title = s.sharing ? "Stop sharing" : "Share screen";
    setPressed(hand, s.hand);
    hand.classList.toggle("on", s.hand);
    hand.title = s.hand ? "Lower hand" : "Raise hand";
    if (observer) {
      mic.title = "Observers can't use a microphone";
      cam.title = "Observers can't use a camera";
      screen.title = "Observers can't share their screen";
    }
  }

  /**
   * The "Media: peer-to-peer" / "Media: via server" badge (the session in use).
   * @param {string} mode "mesh" or "sfu"
   */
  renderMediaMode(mode) {
    const box = this.el.mediaMode;
    if (!box) return;
    const info = mediaModeInfo(mode);
    box.dataset.mode = info.mode;
    box.title = info.title;
    box.replaceChildren(h("span", { class: "visually-hidden" }, info.prefix), info.text);
    box.hidden = false;
  }

  /** The meeting is over: menus close, the badge and the observer note go. */
  teardown() {
    this.setReactMenu(false);
    this.el.observerNote.hidden = true;
    if (this.el.audienceNote) this.el.audienceNote.hidden = true;
    const badge = this.el.mediaMode;
    if (badge) {
      badge.hidden = true;
      clear(badge);
      delete badge.dataset.mode;
    }
    for (const b of [this.el.mic, this.el.cam, this.el.screen]) b.disabled = false;
  }
}
