// The video stage: one tile per participant camera, extra large tiles for shared screens.
import { gridShape } from "../core/rules.js";
import { h, icon } from "./dom.js";

const GAP = 10; // px, as .grid's gap in parley.css

/**
 * @typedef {object} Tile
 * @property {HTMLElement} el
 * @property {HTMLVideoElement} video
 * @property {HTMLElement} nameEl
 * @property {HTMLElement} avatarEl
 * @property {HTMLElement} micEl
 * @property {HTMLElement} handEl
 * @property {MediaStream | null} stream
 * @property {boolean} self
 * @property {boolean} screen
 */

export class Stage {
  /**
   * @param {{ stage: HTMLElement, main: HTMLElement, grid: HTMLElement, onAutoplayBlocked?: () => void }} opts
   */
  constructor({ stage, main, grid, onAutoplayBlocked }) {
    this.stage = stage;
    this.main = main;
    this.grid = grid;
    /** @type {Map<string, Tile>} key -> tile */
    this.tiles = new Map();
    this.sinkId = "";
    this.onAutoplayBlocked = onAutoplayBlocked || (() => {});
    this.resizeObserver = new ResizeObserver(() => this.layout());
    this.resizeObserver.observe(grid);
    this.resizeObserver.observe(stage);
  }

  /**
   * Create or update a tile. key: participant id, or "<id>:screen" for a shared screen.
   * @param {string} key
   * @param {{ label: string, initials: string, self?: boolean, screen?: boolean }} opts
   */
  upsert(key, { label, initials, self = false, screen = false }) {
    let t = this.tiles.get(key);
    if (!t) {
      const video = /** @type {HTMLVideoElement} */ (h("video", { autoplay: true, playsinline: true, class: self && !screen ? "mirror" : null }));
      video.autoplay = true;
      video.playsInline = true;
      if (self || screen) video.muted = true;
      const avatarEl = h("span", { class: "avatar-circle" });
      const nameEl = h("span", { class: "tile-name" });
      const micEl = h("span", { class: "tile-mic", hidden: true }, icon("micOff"));
      const handEl = h("span", { class: "tile-hand", hidden: true }, icon("hand"), h("span", { class: "hand-pos" }));
      const el = h(
        "div",
        { class: `tile${screen ? " tile--screen" : ""}${self ? " tile--self" : ""} tile--nocam`, dataset: { key } },
        video,
        h("div", { class: "tile-avatar" }, avatarEl),
        handEl,
        h("div", { class: "tile-label" }, micEl, nameEl),
      );
      t = { el, video, nameEl, avatarEl, micEl, handEl, stream: null, self, screen };
      this.tiles.set(key, t);
      (screen ? this.main : this.grid).append(el);
      if (this.sinkId) this._applySink(video);
      this.layout();
    }
    t.nameEl.textContent = screen ? label : self ? `${label} (you)` : label;
    t.avatarEl.textContent = initials;
    return t;
  }

  /** @param {string} key */
  has(key) {
    return this.tiles.has(key);
  }

  keys() {
    return [...this.tiles.keys()];
  }

  /**
   * Play `stream` (or nothing) in the tile.
   * @param {string} key
   * @param {MediaStream | null} stream
   */
  setStream(key, stream) {
    const t = this.tiles.get(key);
    if (!t || t.stream === stream) return;
    t.stream = stream;
    t.video.srcObject = stream || null;
    if (stream) this._play(t.video);
  }

  /** @param {HTMLVideoElement} video */
  _play(video) {
    const p = video.play();
    if (p && p.catch) {
      p.catch((err) => {
        if (err && err.name === "NotAllowedError" && !video.muted) {
          video.muted = true;
          video.dataset.wantsSound = "1";
          video.play().catch(() => {});
          this.onAutoplayBlocked();
        }
      });
    }
  }

  /** After a user gesture: unmute videos that were muted only because autoplay was blocked. */
  enableSound() {
    for (const t of this.tiles.values()) {
      if (t.video.dataset.wantsSound) {
        delete t.video.dataset.wantsSound;
        t.video.muted = false;
        t.video.play().catch(() => {});
      }
    }
  }

  /**
   * What a tile shows besides the video; an absent field is left as it is.
   * @param {string} key
   * @param {{ cam?: boolean, mic?: boolean, hand?: boolean, handPos?: number }} state
   */
  setState(key, { cam, mic, hand, handPos }) {
    const t = this.tiles.get(key);
    if (!t) return;
    if (cam !== undefined) t.el.classList.toggle("tile--nocam", !cam);
    if (mic !== undefined) t.micEl.hidden = mic;
    if (hand !== undefined) {
      t.handEl.hidden = !hand;
      t.el.classList.toggle("tile--hand", Boolean(hand));
      /** @type {HTMLElement} */ (t.handEl.querySelector(".hand-pos")).textContent = hand && handPos ? String(handPos) : "";
    }
  }

  /** @param {string | null} key the speaking tile, or none */
  setSpeaking(key) {
    for (const [k, t] of this.tiles) t.el.classList.toggle("tile--speaking", k === key);
  }

  /** @param {string} key */
  remove(key) {
    const t = this.tiles.get(key);
    if (!t) return;
    t.video.srcObject = null;
    t.el.remove();
    this.tiles.delete(key);
    this.layout();
  }

  clear() {
    for (const key of [...this.tiles.keys()]) this.remove(key);
  }

  /**
   * Route audio of every tile to the speaker `sinkId` (where supported).
   * @param {string} sinkId
   */
  setSinkId(sinkId) {
    this.sinkId = sinkId || "";
    for (const t of this.tiles.values()) this._applySink(t.video);
  }

  /** @param {HTMLVideoElement} video */
  _applySink(video) {
    if (typeof video.setSinkId === "function") video.setSinkId(this.sinkId).catch(() => {});
  }

  layout() {
    const screens = this.main.children.length;
    this.stage.classList.toggle("stage--presenting", screens > 0);
    const n = this.grid.children.length;
    this.grid.dataset.count = String(n);
    if (screens > 0) {
      this.grid.style.removeProperty("--tile-w");
      this.grid.style.removeProperty("--tile-h");
      return;
    }
    const rect = this.grid.getBoundingClientRect();
    const { tileWidth, tileHeight } = gridShape(n, rect.width || 800, rect.height || 450, 16 / 9, GAP);
    this.grid.style.setProperty("--tile-w", `${tileWidth}px`);
    this.grid.style.setProperty("--tile-h", `${tileHeight}px`);
  }

  destroy() {
    this.resizeObserver.disconnect();
    this.clear();
  }
}
