// Entry point of /r/<room>: pre-join, then the meeting, then the "you left" screen.
import { isValidRoom } from "./core/text.js";
import { $ } from "./ui/dom.js";
import { Meeting } from "./ui/meeting.js";
import { PreJoin } from "./ui/prejoin.js";

function roomFromPath(pathname) {
  const m = /^\/r\/([^/]+)\/?$/.exec(pathname);
  if (!m) return "";
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return "";
  }
}

function debugging() {
  try {
    return Boolean(localStorage.getItem("parley.debug"));
  } catch {
    return false;
  }
}

const room = roomFromPath(window.location.pathname);
const left = $("#left");
let last = { micOn: true, camOn: true };
let meeting = null;

document.title = room ? `${room} · Parley` : "Parley";

async function join(choice) {
  last = { micOn: choice.micOn, camOn: choice.camOn };
  const m = new Meeting({ room, choice, onEnd: showLeft });
  await m.join(); // throws { code, message } when the server refuses
  meeting = m;
  prejoin.close();
  if (debugging()) window.parleyMeeting = m; // for poking around in the console
}

function showLeft({ title, detail }) {
  meeting = null;
  $("#left-title").textContent = title;
  $("#left-detail").textContent = detail || "";
  left.hidden = false;
  document.title = `Left ${room} · Parley`;
  $("#btn-rejoin").focus();
}

const prejoin = new PreJoin({ room, onJoin: join });

$("#btn-rejoin").addEventListener("click", () => {
  left.hidden = true;
  prejoin.open(last).then(() => prejoin.submit());
});

async function whoIsHere() {
  const el = $("#pj-who");
  try {
    const res = await fetch(`/api/v1/rooms/${encodeURIComponent(room)}`, { headers: { accept: "application/json" } });
    if (res.status === 404) {
      el.textContent = "No one is here yet. You'll be the first.";
      return;
    }
    if (!res.ok) return;
    const info = await res.json();
    const names = (info.participants || []).map((p) => p.name);
    if (!names.length) el.textContent = "No one is here yet. You'll be the first.";
    else if (names.length <= 3) el.textContent = `${names.join(", ")} ${names.length === 1 ? "is" : "are"} in this meeting.`;
    else el.textContent = `${names.slice(0, 2).join(", ")} and ${names.length - 2} more are in this meeting.`;
  } catch {
    /* informational only */
  }
}

if (!isValidRoom(room)) {
  $("#pj-room").textContent = room || "(none)";
  const err = $("#join-error");
  err.textContent = "This room name is not valid. Use letters, digits, '-', '_' or '.' (up to 64).";
  err.hidden = false;
  $("#join-btn").disabled = true;
} else {
  prejoin.open();
  whoIsHere();
}

// Back from the back/forward cache after pagehide sent `leave`: show that we left.
window.addEventListener("pageshow", (ev) => {
  if (ev.persisted && meeting) meeting.end({ title: "You left the meeting", detail: "" });
});
