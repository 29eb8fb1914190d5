// Small transient notices ("Ada joined", "Invite link copied") in a role=status region.
import { h } from "./dom.js";

export class Toasts {
  constructor(container) {
    this.container = container;
  }

  show(text, { timeout = 4000 } = {}) {
    const el = h("div", { class: "toast" }, text);
    this.container.append(el);
    while (this.container.children.length > 4) this.container.firstChild.remove();
    setTimeout(() => {
      el.classList.add("toast--out");
      setTimeout(() => el.remove(), 300);
    }, timeout);
  }
}
