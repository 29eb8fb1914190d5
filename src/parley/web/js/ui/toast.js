// Small transient notices ("Ada joined", "Invite link copied") in a role=status region.
import { h } from "./dom.js";

export class Toasts {
  /** @param {HTMLElement} container a role=status region */
  constructor(container) {
    this.container = container;
  }

  /**
   * @param {string} text
   * @param {{ timeout?: number }} [opts] how long it stays, in ms
   */
  show(text, { timeout = 4000 } = {}) {
    const el = h("div", { class: "toast" }, text);
    this.container.append(el);
    while (this.container.children.length > 4) this.container.firstElementChild?.remove();
    setTimeout(() => {
      el.classList.add("toast--out");
      setTimeout(() => el.remove(), 300);
    }, timeout);
  }
}
