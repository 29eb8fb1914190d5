// The chat panel's "Download chat": the room's record from the export API (with our resume
// token: the same right as reading history), saved as a file in the chosen format.
import { icon } from "./dom.js";
/**
 * @typedef {object} ChatExportOptions
 * @property {HTMLButtonElement} button "Download chat"
 * @property {HTMLSelectElement} format md | html | json
 * @property {string} room
 * @property {() => string | null} token
 * @property {(text: string) => void} notify a transient notice (what went wrong)
 * @property {AbortSignal} signal
 */

/**
 * The file name the server chose (Content-Disposition), or a safe one of our own.
 * @param {string | null} disposition
 * @param {string} fmt
 */
export function downloadName(disposition, fmt) {
  const m = /filename="([A-Za-z0-9._-]+)"/.exec(disposition || "");
  return m ? m[1] : `parley-chat.${fmt}`;
}

export class ChatExport {
  /** @param {ChatExportOptions} opts */
  constructor(opts) {
    this.opts = opts;
    if (!opts.button.querySelector("svg")) opts.button.prepend(icon("download", "icon tiny"));
    opts.button.addEventListener("click", () => void this.download(), { signal: opts.signal });
  }

  async download() {
    const { button, format, room, token, notify } = this.opts;
    const fmt = format.value || "md";
    /** @type {Record<string, string>} */
    const headers = {};
    const bearer = token();
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    button.setAttribute("aria-busy", "true");
    button.disabled = true;
    try {
      const r = await fetch(`/api/v1/rooms/${encodeURIComponent(room)}/export?format=${encodeURIComponent(fmt)}`, {
        headers,
        cache: "no-store",
      });
      if (!r.ok) {
        notify(r.status === 401 ? "You may not read this room's chat right now." : "The chat could not be downloaded.");
        return;
      }
      const blob = await r.blob();
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = downloadName(r.headers.get("Content-Disposition"), fmt);
      a.hidden = true;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch {
      notify("The chat could not be downloaded: not connected.");
    } finally {
      button.removeAttribute("aria-busy");
      button.disabled = false;
    }
  }
}
