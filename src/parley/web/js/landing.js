// Landing page: start a new room or go to a named one.
import { MEDIA_CLAIMS, pageMediaMode } from "./core/media-mode.js";
import { generateRoomName, isValidRoom, slugRoom } from "./core/text.js";
import { $, h } from "./ui/dom.js";

const RECENT_KEY = "parley.recent";

/** @param {number} n */
function random(n) {
  const buf = new Uint32Array(1);
  crypto.getRandomValues(buf);
  return buf[0] % n;
}

function recentRooms() {
  try {
    const list = JSON.parse(localStorage.getItem(RECENT_KEY) || "[]");
    return Array.isArray(list) ? list.filter(isValidRoom).slice(0, 5) : [];
  } catch {
    return [];
  }
}

/** @param {string} room */
function go(room) {
  try {
    const list = [room, ...recentRooms().filter((r) => r !== room)].slice(0, 5);
    localStorage.setItem(RECENT_KEY, JSON.stringify(list));
  } catch {
    /* private mode */
  }
  window.location.assign(`/r/${encodeURIComponent(room)}`);
}

const input = /** @type {HTMLInputElement} */ ($("#room-input"));
const error = $("#room-error");

$("#new-meeting").addEventListener("click", () => go(generateRoomName(random)));

$("#room-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const room = slugRoom(input.value);
  if (!isValidRoom(room)) {
    error.textContent = input.value.trim()
      ? "That room name can't be used. Use letters, digits, “-”, “_” or “.”."
      : "Enter a room name, or start a new meeting.";
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  go(room);
});

input.addEventListener("input", () => {
  error.hidden = true;
  input.removeAttribute("aria-invalid");
});

const recent = recentRooms();
if (recent.length) {
  $("#recent").hidden = false;
  const list = $("#recent-list");
  for (const room of recent) {
    list.append(h("li", {}, h("a", { href: `/r/${encodeURIComponent(room)}` }, room)));
  }
}

// Where audio and video go, as this server runs them (its page says which).
const mode = pageMediaMode(document.documentElement.dataset.media);
if (mode) {
  $("#media-heading").textContent = MEDIA_CLAIMS[mode].heading;
  $("#media-about").textContent = MEDIA_CLAIMS[mode].about;
  $("#media-claim").hidden = false;
}
