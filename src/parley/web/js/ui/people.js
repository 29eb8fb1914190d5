// The participants panel: a role=list named "Participants (N)", one listitem per person.
import { initials } from "../core/text.js";
import { clear, h, icon } from "./dom.js";

function stateIcon(name, label, cls) {
  return h("span", { class: `state-icon ${cls}`, role: "img", "aria-label": label, title: label }, icon(name));
}

/**
 * @param {HTMLElement} list  the <ul role="list">
 * @param {Array} people      sorted participants
 * @param {{ selfId: string, labels: Object, handPos: Object, speaking: string|null }} ctx
 */
export function renderPeople(list, people, { selfId, labels, handPos }) {
  list.setAttribute("aria-label", `Participants (${people.length})`);
  clear(list);
  for (const p of people) {
    const label = labels[p.id] ?? p.name;
    const icons = h("span", { class: "person-icons" });
    if (p.hand) {
      icons.append(
        h(
          "span",
          { class: "state-icon hand", role: "img", "aria-label": "Hand raised", title: `Hand raised (#${handPos[p.id] ?? 1})` },
          icon("hand"),
        ),
      );
    }
    if (p.screen) icons.append(stateIcon("screen", "Sharing screen", "screen"));
    if (!p.cam) icons.append(stateIcon("camOff", "Camera off", "off"));
    if (!p.mic) icons.append(stateIcon("micOff", "Microphone off", "off"));
    list.append(
      h(
        "li",
        { class: `person${p.id === selfId ? " person--self" : ""}`, dataset: { id: p.id } },
        h("span", { class: "avatar-circle small", "aria-hidden": "true" }, initials(p.name)),
        h(
          "span",
          { class: "person-name" },
          h("span", { class: "person-label" }, label),
          p.id === selfId ? h("span", { class: "you" }, " (you)") : null,
        ),
        icons,
      ),
    );
  }
}
