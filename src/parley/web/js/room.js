// Entry point of /r/<room>: pre-join, then the meeting, then the "you left" screen.
import { pageOptions, peekTokenClaims } from "./core/moderation.js";
import { recordingNotice, whoIsHereText } from "./core/room-summary.js";
import { isValidRoom } from "./core/text.js";
import { $ } from "./ui/dom.js";
import { Meeting } from "./ui/meeting.js";
import { PreJoin } from "./ui/prejoin.js";

/** @typedef {import("./ui/meeting.js").JoinChoice} JoinChoice */
/** @typedef {import("./ui/meeting.js").FinalScreen} FinalScreen */

/** @param {string} pathname */
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
// ?token= (a join token, sent with every join) and ?relay=1 (test/diagnostic only).
const options = pageOptions(window.location.search);
const invite = options.token ? peekTokenClaims(options.token) : null;
const left = $("#left");
const waitScreen = $("#lobby-wait");
let last = { micOn: true, camOn: true };
/** @type {Meeting | null} */
let meeting = null;

document.title = room ? `${room} · Parley` : "Parley";

/** @type {Meeting | null} */
let knocking = null; // the Meeting waiting in the lobby

/** @param {JoinChoice} choice */
async function join(choice) {
  last = { micOn: choice.micOn, camOn: choice.camOn };
  const m = new Meeting({
    room,
    choice,
    token: options.token,
    relay: options.relay,
    onEnd: showLeft,
    onWaiting: (waiting) => showWaiting(waiting ? m : null),
  });
  try {
    await m.join(); // throws { code, message } when the server refuses
  } finally {
    showWaiting(null);
  }
  meeting = m;
  prejoin.close();
  if (debugging()) /** @type {any} */ (window).parleyMeeting = m; // for poking around in the console
}

/**
 * The lobby's waiting screen (m: the knocking meeting) or back to the pre-join screen (null).
 * @param {Meeting | null} m
 */
function showWaiting(m) {
  if (m === knocking) return;
  knocking = m;
  waitScreen.hidden = !m;
  $("#prejoin").hidden = Boolean(m);
  if (m) {
    $("#wait-status").textContent = "Waiting for a host to let you in";
    $("#wait-detail").textContent = `You asked to join ${room}. A host will let you in soon.`;
    document.title = `Waiting · ${room} · Parley`;
    $("#btn-wait-cancel").focus();
  } else {
    $("#wait-status").textContent = "";
    document.title = `${room} · Parley`;
  }
}

$("#btn-wait-cancel").addEventListener("click", () => knocking?.cancelWaiting());

/** @param {FinalScreen} screen */
function showLeft({ title, detail, rejoin = true }) {
  meeting = null;
  $("#left-title").textContent = title;
  $("#left-detail").textContent = detail || "";
  $("#btn-rejoin").hidden = !rejoin;
  left.hidden = false;
  document.title = `${title} · Parley`;
  if (rejoin) {
    $("#btn-rejoin").focus();
  } else {
    $("#left-title").setAttribute("tabindex", "-1");
    $("#left-title").focus();
  }
}

const prejoin = new PreJoin({ room, onJoin: join, invite });

$("#btn-rejoin").addEventListener("click", () => {
  left.hidden = true;
  prejoin.open(last).then(() => prejoin.submit());
});

async function whoIsHere() {
  const el = $("#pj-who");
  try {
    const res = await fetch(`/api/v1/rooms/${encodeURIComponent(room)}`, { headers: { accept: "application/json" } });
    if (res.status === 404) {
      el.textContent = whoIsHereText(null);
      return;
    }
    if (!res.ok) return;
    const info = await res.json();
    el.textContent = whoIsHereText(info);
    const notice = $("#pj-recording");
    notice.textContent = recordingNotice(info);
    notice.hidden = !notice.textContent;
  } catch {
    /* informational only */
  }
}

if (!isValidRoom(room)) {
  $("#pj-room").textContent = room || "(none)";
  const err = $("#join-error");
  err.textContent = "This room name is not valid. Use letters, digits, '-', '_' or '.' (up to 64).";
  err.hidden = false;
  /** @type {HTMLButtonElement} */ ($("#join-btn")).disabled = true;
} else {
  prejoin.open();
  whoIsHere();
}

// Back from the back/forward cache after pagehide sent `leave`: show that we left.
window.addEventListener("pageshow", (ev) => {
  if (ev.persisted && meeting) meeting.end({ title: "You left the meeting", detail: "" });
  else if (ev.persisted && knocking) knocking.cancelWaiting();
});
