// Pure logic for roles, host controls, the lobby, join options and final screens. No DOM.

/** @typedef {import("./protocol.js").Participant} Participant */
/** @typedef {import("./protocol.js").Role} Role */
/** @typedef {import("./protocol.js").ClientMessage} ClientMessage */
/** @typedef {import("./protocol.js").RawRoomSettings} RawRoomSettings */

/**
 * A host button: `message` is what it sends; "remove" has `confirm` instead (it asks first).
 * @typedef {{ id: string, label: string, message?: ClientMessage, confirm?: boolean }} HostAction
 */

/** @type {Record<string, string>} */
export const ROLE_LABELS = { host: "Host", observer: "Observer", bot: "Bot" };

/**
 * The badge shown next to a participant's name ("Host", "Observer", "Bot"), or null.
 * In stage mode observers are the "Audience" and participants are "On stage".
 * @param {string | undefined} role
 * @param {boolean} [stage]
 */
export function roleLabel(role, stage = false) {
  if (stage && role === "observer") return "Audience";
  if (stage && role === "participant") return "On stage";
  return role === undefined ? null : (ROLE_LABELS[role] ?? null);
}

/** @param {Participant | null | undefined} p */
export const isHost = (p) => Boolean(p && p.role === "host");
/** @param {Participant | null | undefined} p */
export const isObserver = (p) => Boolean(p && p.role === "observer");

/**
 * What a host may do to `target`, as menu entries:
 * { id, label, message } where `message` is the protocol message to send (without ref),
 * or { id: "remove", label, confirm: true } for the removal that asks first.
 * Empty when the viewer is not a host or the target is the viewer.
 * @param {Participant | null | undefined} target
 * In stage mode (`stage`), moving between the audience and the stage reads
 * "Invite NAME to stage" / "Move NAME to audience".
 * @param {{ selfId: string | null, selfRole: string, label?: string, stage?: boolean }} viewer
 * @returns {HostAction[]}
 */
export function hostActions(target, { selfId, selfRole, label, stage }) {
  if (selfRole !== "host" || !target || target.id === selfId) return [];
  const name = label ?? target.name;
  const to = target.id;
  /** @type {HostAction[]} */
  const out = [];
  if (target.mic) out.push({ id: "mute-mic", label: `Mute ${name}`, message: { type: "mute", to, kind: "mic" } });
  if (target.cam) out.push({ id: "mute-cam", label: `Turn off camera of ${name}`, message: { type: "mute", to, kind: "cam" } });
  if (target.screen) {
    out.push({ id: "mute-screen", label: `Stop screen sharing of ${name}`, message: { type: "mute", to, kind: "screen" } });
  }
  if (target.hand) out.push({ id: "lower-hand", label: `Lower hand of ${name}`, message: { type: "lower-hand", to } });
  if (target.role !== "host") {
    out.push({ id: "make-host", label: `Make ${name} host`, message: { type: "set-role", to, role: "host" } });
  }
  if (stage && target.role === "observer") {
    out.push({ id: "invite-stage", label: `Invite ${name} to stage`, message: { type: "set-role", to, role: "participant" } });
  } else if (stage && target.role !== "host") {
    out.push({ id: "move-audience", label: `Move ${name} to audience`, message: { type: "set-role", to, role: "observer" } });
  } else if (target.role === "observer") {
    out.push({ id: "make-participant", label: `Make ${name} participant`, message: { type: "set-role", to, role: "participant" } });
  } else {
    out.push({ id: "make-observer", label: `Make ${name} observer`, message: { type: "set-role", to, role: "observer" } });
  }
  if (target.role === "host") {
    out.push({ id: "make-participant", label: `Make ${name} participant`, message: { type: "set-role", to, role: "participant" } });
  }
  out.push({ id: "remove", label: `Remove ${name}`, confirm: true });
  return out;
}

/**
 * Raised hands in the order they went up (by hand_at, then id).
 * @template {Participant} P
 * @param {Iterable<P>} people
 */
export function raisedHands(people) {
  return [...people]
    .filter((p) => p.hand)
    .sort((a, b) => (a.hand_at ?? 0) - (b.hand_at ?? 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * Lobby entries in `next` that were not in `prev` (someone new knocked).
 * @template {{ id: string }} E
 * @param {E[] | null | undefined} prev
 * @param {E[] | null | undefined} next
 */
export function newlyWaiting(prev, next) {
  const known = new Set((prev || []).map((e) => e.id));
  return (next || []).filter((e) => !known.has(e.id));
}

/**
 * Normalise room settings from welcome.room.settings / room-updated.
 * @param {RawRoomSettings | null | undefined} s
 */
export function roomSettings(s) {
  return {
    locked: Boolean(s && s.locked),
    lobby: Boolean(s && s.lobby),
    has_password: Boolean(s && s.has_password),
    max_participants: s && Number.isInteger(s.max_participants) ? s.max_participants : null,
  };
}

/**
 * The short state line for the header ("Locked · Lobby on · Password"), or "".
 * @param {RawRoomSettings | null | undefined} settings
 */
export function settingsSummary(settings) {
  const s = roomSettings(settings);
  const parts = [];
  if (s.locked) parts.push("Locked");
  if (s.lobby) parts.push("Lobby on");
  if (s.has_password) parts.push("Password");
  return parts.join(" · ");
}

/**
 * Join errors for which the pre-join screen asks for the room password.
 * @param {string | null | undefined} code
 */
export function needsPassword(code) {
  return code === "password_required" || code === "bad_password";
}

/**
 * Options the page takes from its URL: `?token=` (join token) and `?relay=1` (test only).
 * @param {string | null | undefined} search
 */
export function pageOptions(search) {
  const params = new URLSearchParams(search || "");
  const token = params.get("token");
  const relay = params.get("relay");
  return {
    token: token && token.trim() ? token.trim() : null,
    relay: relay === "1" || relay === "true",
  };
}

/** @param {string} part */
function base64UrlDecode(part) {
  let s = part.replace(/-/g, "+").replace(/_/g, "/");
  while (s.length % 4) s += "=";
  const bin = atob(s);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/**
 * The claims of a join token, read WITHOUT verifying it (only the server can): used to
 * prefill the name and to skip the camera for observers.  null if it is not a JWT.
 * @param {unknown} token
 * @returns {{ name: string | null, role: Role, room: string | null, exp: number | null } | null}
 */
export function peekTokenClaims(token) {
  if (typeof token !== "string") return null;
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const claims = JSON.parse(base64UrlDecode(parts[1]));
    if (!claims || typeof claims !== "object" || Array.isArray(claims)) return null;
    return {
      name: typeof claims.name === "string" ? claims.name : null,
      role: ["host", "participant", "observer"].includes(claims.role) ? claims.role : "participant",
      room: typeof claims.room === "string" ? claims.room : null,
      exp: typeof claims.exp === "number" ? claims.exp : null,
    };
  } catch {
    return null;
  }
}

/**
 * The final screen after the meeting ends for us: { title, detail, rejoin }.
 * @param {string | number} reason a server message type, or a close code
 * @param {{ ban?: boolean }} [opts]
 * @returns {{ title: string, detail: string, rejoin: boolean }}
 */
export function finalScreen(reason, { ban = false } = {}) {
  switch (reason) {
    case "removed":
    case 4001:
      return {
        title: "You were removed from the meeting",
        detail: ban ? "A host removed you. You can't rejoin this meeting." : "A host removed you from the meeting.",
        rejoin: false,
      };
    case "meeting-ended":
    case 4002:
      return { title: "The host ended the meeting", detail: "The meeting has ended for everyone.", rejoin: false };
    case 4000:
      return {
        title: "You joined from another tab/window",
        detail: "This meeting is open in another tab or window, so this one was disconnected.",
        rejoin: true,
      };
    case 4003:
      return { title: "A host declined your request", detail: "", rejoin: true };
    default:
      return { title: "You are no longer in the meeting", detail: "", rejoin: true };
  }
}

/**
 * Toast text when a host turned one of our devices off.
 * @param {string} kind
 */
export function mutedText(kind) {
  switch (kind) {
    case "mic":
      return "A host turned off your microphone";
    case "cam":
      return "A host turned off your camera";
    case "screen":
      return "A host stopped your screen sharing";
    default:
      return "A host turned off one of your devices";
  }
}
