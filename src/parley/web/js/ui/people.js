// The participants panel: a role=list named "Participants (N)", one listitem per person,
// with a role badge ("Host", "Observer", "Bot") and, for hosts, a row of moderation buttons
// ("Mute Ada", "Lower hand of Ada", "Remove Ada", …).  Also the raised-hand queue.
//
// Rows are keyed by participant id and rebuilt only when what they show changed, so a
// focused button survives unrelated updates (someone else raising a hand, say).
import { hostActions, roleLabel } from "../core/moderation.js";
import { initials } from "../core/text.js";
import { clear, h, icon } from "./dom.js";

/** @typedef {import("../core/protocol.js").Participant} Participant */
/** @typedef {import("../core/protocol.js").LobbyEntry} LobbyEntry */
/** @typedef {import("../core/moderation.js").HostAction} HostAction */

/**
 * @typedef {object} PeopleContext
 * @property {string | null} selfId
 * @property {string} selfRole
 * @property {Record<string, string>} labels everyone's label (namesakes told apart)
 * @property {Record<string, number>} handPos place in the raised-hand queue
 * @property {boolean} [stage] the room is in stage mode (core/stage.js)
 * @property {(id: string, action: HostAction) => void} [onAction] a host button was clicked
 */

/**
 * @param {string} name
 * @param {string} label
 * @param {string} cls
 */
function stateIcon(name, label, cls) {
  return h("span", { class: `state-icon ${cls}`, role: "img", "aria-label": label, title: label }, icon(name));
}

/** @type {Record<string, string>} */
const ACTION_ICONS = {
  "mute-mic": "micOff",
  "mute-cam": "camOff",
  "mute-screen": "screen",
  "lower-hand": "hand",
  "make-host": "star",
  "make-observer": "eye",
  "make-participant": "person",
  "invite-stage": "mic",
  "move-audience": "eye",
  remove: "personRemove",
};

/**
 * All host actions, with those that make no sense right now present but disabled.
 * @param {Participant} p
 * @param {PeopleContext} ctx
 * @param {string} label
 */
function actionRow(p, ctx, label) {
  const actions = hostActions(p, { selfId: ctx.selfId, selfRole: ctx.selfRole, label, stage: ctx.stage });
  if (!actions.length) return null;
  const byId = new Map(actions.map((a) => [a.id, a]));
  // Keep the layout stable: mute/camera/hand buttons stay, disabled when not applicable.
  /** @type {[string, string][]} */
  const placeholders = [
    ["mute-mic", `Mute ${label}`],
    ["mute-cam", `Turn off camera of ${label}`],
    ["lower-hand", `Lower hand of ${label}`],
  ];
  const buttons = [];
  for (const [id, text] of placeholders) {
    const a = byId.get(id);
    buttons.push(actionButton(p.id, a || { id, label: text }, ctx, !a));
  }
  for (const a of actions) {
    if (!placeholders.some(([id]) => id === a.id)) buttons.push(actionButton(p.id, a, ctx, false));
  }
  return h("div", { class: "person-actions", role: "group", "aria-label": `Host actions for ${label}` }, buttons);
}

/**
 * @param {string} pid
 * @param {HostAction} action
 * @param {PeopleContext} ctx
 * @param {boolean} disabled
 */
function actionButton(pid, action, ctx, disabled) {
  return h(
    "button",
    {
      type: "button",
      class: `mini-btn${action.id === "remove" ? " danger" : ""}`,
      "aria-label": action.label,
      title: action.label,
      disabled,
      dataset: { key: `${pid}:${action.id}` },
      onclick: () => ctx.onAction?.(pid, action),
    },
    icon(ACTION_ICONS[action.id] || "settings"),
  );
}

/**
 * @param {Participant} p
 * @param {PeopleContext} ctx
 * @param {string} label
 * @param {number | undefined} pos
 */
function rowSignature(p, ctx, label, pos) {
  return JSON.stringify([
    label, p.name, p.role, p.mic, p.cam, p.screen, p.hand, pos ?? 0, p.id === ctx.selfId, ctx.selfRole, ctx.stage,
  ]);
}

/**
 * @param {Participant} p
 * @param {PeopleContext} ctx
 * @param {string} label
 * @param {number | undefined} pos
 */
function buildRow(p, ctx, label, pos) {
  const self = p.id === ctx.selfId;
  const icons = h("span", { class: "person-icons" });
  if (p.hand) {
    icons.append(
      h("span", { class: "state-icon hand", role: "img", "aria-label": "Hand raised", title: `Hand raised (#${pos ?? 1})` }, icon("hand")),
    );
  }
  if (p.screen) icons.append(stateIcon("screen", "Sharing screen", "screen"));
  if (!p.cam) icons.append(stateIcon("camOff", "Camera off", "off"));
  if (!p.mic) icons.append(stateIcon("micOff", "Microphone off", "off"));
  const badge = roleLabel(p.role, ctx.stage);
  return [
    h(
      "div",
      { class: "person-main" },
      h("span", { class: "avatar-circle small", "aria-hidden": "true" }, initials(p.name)),
      h(
        "span",
        { class: "person-name" },
        h("span", { class: "person-label" }, label),
        self ? h("span", { class: "you" }, " (you)") : null,
      ),
      badge ? h("span", { class: `role-badge role-${p.role}` }, badge) : null,
      icons,
    ),
    actionRow(p, ctx, label),
  ];
}

/**
 * @param {HTMLElement} list  the <ul role="list">
 * @param {Participant[]} people sorted participants
 * @param {PeopleContext} ctx
 */
export function renderPeople(list, people, ctx) {
  const { labels, handPos } = ctx;
  list.setAttribute("aria-label", `Participants (${people.length})`);
  const active = /** @type {HTMLElement | null} */ (document.activeElement);
  const focusedKey = list.contains(active) ? active?.dataset?.key : null;
  /** @type {Map<string | undefined, HTMLElement>} */
  const existing = new Map();
  for (const li of /** @type {HTMLCollectionOf<HTMLElement>} */ (list.children)) existing.set(li.dataset.id, li);
  let cursor = list.firstChild;
  for (const p of people) {
    const label = labels[p.id] ?? p.name;
    const sig = rowSignature(p, ctx, label, handPos[p.id]);
    let li = existing.get(p.id);
    existing.delete(p.id);
    if (!li) li = h("li", { dataset: { id: p.id } });
    if (li.dataset.sig !== sig) {
      li.dataset.sig = sig;
      li.className = `person${p.id === ctx.selfId ? " person--self" : ""}${p.hand ? " person--hand" : ""}`;
      clear(li);
      li.append(.../** @type {HTMLElement[]} */ (buildRow(p, ctx, label, handPos[p.id]).filter(Boolean)));
    }
    if (li !== cursor) list.insertBefore(li, cursor);
    cursor = li.nextSibling;
  }
  for (const li of existing.values()) li.remove();
  if (focusedKey && !list.contains(document.activeElement)) {
    const again = [.../** @type {NodeListOf<HTMLButtonElement>} */ (list.querySelectorAll("[data-key]"))].find((el) => el.dataset.key === focusedKey);
    if (again && !again.disabled) again.focus();
  }
}

/**
 * The raise-hand queue: an ordered list, in the order the hands went up.
 * @param {HTMLElement} section
 * @param {HTMLElement} list
 * @param {Participant[]} raised
 * @param {Record<string, string>} labels
 */
export function renderHands(section, list, raised, labels) {
  section.hidden = raised.length === 0;
  list.setAttribute("aria-label", `Raised hands (${raised.length})`);
  clear(list);
  raised.forEach((p, i) => {
    list.append(
      h(
        "li",
        { class: "hand-item", dataset: { id: p.id } },
        h("span", { class: "hand-pos", "aria-hidden": "true" }, `${i + 1}`),
        icon("hand", "icon tiny"),
        h("span", { class: "hand-name" }, labels[p.id] ?? p.name),
      ),
    );
  });
}

/**
 * The lobby (hosts only): who waits, with "Admit <name>" / "Deny <name>".
 * @param {HTMLElement} section
 * @param {HTMLElement} list
 * @param {LobbyEntry[]} waiting
 * @param {{ onAdmit: (w: LobbyEntry) => void, onDeny: (w: LobbyEntry) => void }} handlers
 */
export function renderLobby(section, list, waiting, { onAdmit, onDeny }) {
  section.hidden = waiting.length === 0;
  list.setAttribute("aria-label", `Waiting to join (${waiting.length})`);
  const title = section.querySelector("h3");
  if (title) title.textContent = `Waiting to join (${waiting.length})`;
  clear(list);
  for (const w of waiting) {
    list.append(
      h(
        "li",
        { class: "lobby-item", dataset: { id: w.id } },
        h("span", { class: "avatar-circle small", "aria-hidden": "true" }, initials(w.name)),
        h("span", { class: "person-name" }, w.name),
        h("button", { type: "button", class: "btn btn-small btn-primary", "aria-label": `Admit ${w.name}`, onclick: () => onAdmit(w) }, "Admit"),
        h("button", { type: "button", class: "btn btn-small btn-ghost", "aria-label": `Deny ${w.name}`, onclick: () => onDeny(w) }, "Deny"),
      ),
    );
  }
}
