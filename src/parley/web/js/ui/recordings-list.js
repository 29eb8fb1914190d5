// The room's recordings, for hosts (in the room settings dialog): GET /api/v1/recordings
// with the host's resume token, each file downloaded with the same credential.
import { clear, h } from "./dom.js";

/**
 * @typedef {object} RecordingFile
 * @property {string} name
 * @property {number} size
 * @property {string} [kind]
 * @property {string} [track]
 * @property {number | null} [duration]
 */
/**
 * @typedef {object} RecordingEntry
 * @property {string} id
 * @property {number | null} [started_at]
 * @property {number | null} [stopped_at]
 * @property {string | null} [stop_reason]
 * @property {RecordingFile[]} files
 */

/** @param {number} bytes */
export function sizeText(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * Fill `list` with the room's recordings (newest first); `status` says what happened.
 * @param {HTMLElement} list
 * @param {HTMLElement} status
 * @param {string} room
 * @param {string | null} token the host's resume token
 */
export async function showRecordings(list, status, room, token) {
  clear(list);
  if (!token) {
    status.textContent = "Not connected right now.";
    return;
  }
  status.textContent = "Loading…";
  /** @type {RecordingEntry[]} */
  let found;
  try {
    const res = await fetch(`/api/v1/recordings?room=${encodeURIComponent(room)}`, {
      headers: { Authorization: `Bearer ${token}`, accept: "application/json" },
    });
    if (!res.ok) {
      status.textContent = "The recordings could not be listed.";
      return;
    }
    found = (await res.json()).recordings || [];
  } catch {
    status.textContent = "The recordings could not be listed.";
    return;
  }
  status.textContent = found.length ? "" : "No recordings of this room yet.";
  for (const rec of found) {
    const when = rec.started_at ? new Date(rec.started_at * 1000).toLocaleString() : rec.id;
    const state = rec.stop_reason ? "" : " (recording)";
    const files = h("ul", { class: "recording-files" });
    for (const f of rec.files) {
      const label = `Download ${f.name} (${sizeText(f.size)})`;
      const btn = h("button", { type: "button", class: "link-btn" }, label);
      btn.addEventListener("click", () => download(rec.id, f.name, token));
      files.append(h("li", {}, btn));
    }
    list.append(h("li", { class: "recording-entry" }, h("strong", {}, when + state), files));
  }
}

/**
 * Save one file of a recording (fetched with the credential, then handed to the browser).
 * @param {string} id
 * @param {string} name
 * @param {string} token
 */
async function download(id, name, token) {
  const res = await fetch(`/api/v1/recordings/${encodeURIComponent(id)}/files/${encodeURIComponent(name)}`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  if (!res.ok) return;
  const url = URL.createObjectURL(await res.blob());
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
