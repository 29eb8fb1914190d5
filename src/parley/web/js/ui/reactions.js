// Reactions: the emoji menu and the floating emoji animation.
import { h } from "./dom.js";

/** The allowed set (docs/protocol.md). */
export const REACTIONS = ["👍", "👏", "❤️", "😂", "😮", "🎉", "🤔", "👋"];

/** @type {Record<string, string>} */
const NAMES = {
  "👍": "Thumbs up",
  "👏": "Clapping",
  "❤️": "Heart",
  "😂": "Laughing",
  "😮": "Surprised",
  "🎉": "Celebrate",
  "🤔": "Thinking",
  "👋": "Wave",
};

/**
 * Fill `menu` with one button per emoji; `onPick(emoji)` when one is chosen.
 * @param {HTMLElement} menu
 * @param {(emoji: string) => void} onPick
 */
export function buildReactionMenu(menu, onPick) {
  for (const emoji of REACTIONS) {
    menu.append(
      h(
        "button",
        { type: "button", class: "reaction-btn", "aria-label": NAMES[emoji], title: NAMES[emoji], onclick: () => onPick(emoji) },
        emoji,
      ),
    );
  }
}

/**
 * Float `emoji` (with the sender's name) up the stage and fade it out.
 * @param {HTMLElement} layer
 * @param {string} emoji
 * @param {string} name
 */
export function floatReaction(layer, emoji, name) {
  const el = h("div", { class: "float-reaction" }, h("span", { class: "float-emoji" }, emoji), h("span", { class: "float-name" }, name));
  el.style.left = `${8 + Math.random() * 76}%`;
  el.style.setProperty("--drift", `${Math.round((Math.random() - 0.5) * 80)}px`);
  layer.append(el);
  el.addEventListener("animationend", () => el.remove());
  setTimeout(() => el.remove(), 5000);
  while (layer.children.length > 30) layer.firstElementChild?.remove();
}
