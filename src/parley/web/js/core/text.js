// Pure text helpers: link splitting, initials, input validation. No DOM.

/** @typedef {{ type: "text", text: string } | { type: "link", text: string, href: string }} Segment */

const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const TRAILING = /[.,;:!?'"\]}>]+$/;

/**
 * Trim punctuation that usually ends a sentence rather than a URL; keep balanced ")".
 * @param {string} raw
 */
function trimUrl(raw) {
  let url = raw.replace(TRAILING, "");
  while (url.endsWith(")")) {
    const open = (url.match(/\(/g) || []).length;
    const close = (url.match(/\)/g) || []).length;
    if (close <= open) break;
    url = url.slice(0, -1).replace(TRAILING, "");
  }
  return url;
}

/** @param {string} candidate */
function safeHref(candidate) {
  try {
    const u = new URL(candidate);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch {
    return null;
  }
}

/**
 * Split chat text into segments: {type:"text", text} and {type:"link", text, href}.
 * Only http(s) URLs become links; everything else stays plain text.
 * @param {unknown} text
 * @returns {Segment[]}
 */
export function splitLinks(text) {
  /** @type {Segment[]} */
  const out = [];
  const src = String(text ?? "");
  let last = 0;
  URL_RE.lastIndex = 0;
  for (let m = URL_RE.exec(src); m; m = URL_RE.exec(src)) {
    const url = trimUrl(m[0]);
    const href = safeHref(url);
    if (!href) continue;
    const start = m.index;
    if (start > last) out.push({ type: "text", text: src.slice(last, start) });
    out.push({ type: "link", text: url, href });
    last = start + url.length;
    URL_RE.lastIndex = last;
  }
  if (last < src.length) out.push({ type: "text", text: src.slice(last) });
  return mergeText(out);
}

/** @param {Segment[]} segments */
function mergeText(segments) {
  /** @type {Segment[]} */
  const out = [];
  for (const s of segments) {
    const prev = out[out.length - 1];
    if (s.type === "text" && prev && prev.type === "text") prev.text += s.text;
    else out.push({ ...s });
  }
  return out;
}

/**
 * Up to two initials from a display name ("Ada Lovelace" -> "AL"); "?" if none.
 * @param {unknown} name
 */
export function initials(name) {
  const words = String(name ?? "")
    .trim()
    .split(/[\s\-_.]+/u)
    .filter(Boolean);
  if (words.length === 0) return "?";
  const first = (/** @type {string} */ w) => Array.from(w)[0] ?? "";
  const letters = words.length === 1 ? first(words[0]) : first(words[0]) + first(words[words.length - 1]);
  return letters.toLocaleUpperCase();
}

/**
 * Number of characters the way the server counts them (Unicode code points).
 * @param {unknown} text
 */
export function charCount(text) {
  let n = 0;
  for (const _ of String(text)) n += 1;
  return n;
}

/**
 * Check chat text before sending.
 * Returns {ok:true, text} or {ok:false, code:"empty"|"too_long", message}.
 * @param {unknown} text
 * @returns {{ ok: true, text: string } | { ok: false, code: "empty" | "too_long", message: string }}
 */
export function checkChat(text, maxChars = 4000) {
  const s = String(text ?? "");
  if (s.trim() === "") return { ok: false, code: "empty", message: "Type a message first." };
  const n = charCount(s);
  if (n > maxChars) {
    return {
      ok: false,
      code: "too_long",
      message: `Message is too long: ${n.toLocaleString("en")} characters (the limit is ${maxChars.toLocaleString("en")}).`,
    };
  }
  return { ok: true, text: s };
}

/**
 * Check a display name; returns {ok:true, name} (trimmed) or {ok:false, message}.
 * @param {unknown} name
 * @returns {{ ok: true, name: string } | { ok: false, message: string }}
 */
export function checkName(name, maxChars = 64) {
  const s = String(name ?? "").trim();
  if (s === "") return { ok: false, message: "Enter your name to join." };
  if (charCount(s) > maxChars) return { ok: false, message: `Your name can be at most ${maxChars} characters.` };
  return { ok: true, name: s };
}

const ROOM_RE = /^[A-Za-z0-9._-]{1,64}$/;

/** @param {unknown} name */
export function isValidRoom(name) {
  return typeof name === "string" && ROOM_RE.test(name);
}

/**
 * Turn free text into a room name: spaces to "-", drop other characters.
 * @param {unknown} text
 */
export function slugRoom(text) {
  return String(text ?? "")
    .trim()
    .replace(/\s+/g, "-")
    .replace(/[^A-Za-z0-9._-]/g, "")
    .slice(0, 64);
}

/**
 * A Meet-style room name "abc-defg-hij"; `random(n)` returns an int in [0, n).
 * @param {(n: number) => number} random
 */
export function generateRoomName(random) {
  const letters = "abcdefghijkmnopqrstuvwxyz";
  const part = (/** @type {number} */ len) => Array.from({ length: len }, () => letters[random(letters.length)]).join("");
  return `${part(3)}-${part(4)}-${part(3)}`;
}

/**
 * Messages users see for server error codes.
 * @param {string | null | undefined} code
 * @param {string} [fallback]
 * @returns {string}
 */
export function errorText(code, fallback) {
  switch (code) {
    case "room_full":
      return "This room is full. Try again when someone leaves.";
    case "bad_name":
      return "That name can't be used. Use 1–64 characters.";
    case "bad_room":
      return "This room name is not valid. Use letters, digits, '-', '_' or '.'.";
    case "too_long":
      return "Message is too long.";
    case "empty":
      return "Type a message first.";
    case "rate_limited":
      return "You're sending too fast. Wait a moment and try again.";
    case "no_such_participant":
      return "That person is no longer in the meeting.";
    case "unavailable":
      return "The message could not be saved. Try again.";
    case "bad_version":
      return "This page is out of date. Reload it.";
    case "forbidden":
      return "Only hosts can do that.";
    case "locked":
      return "This room is locked. No one else can join right now.";
    case "password_required":
      return "This room has a password. Enter it to join.";
    case "bad_password":
      return "That password is not right. Check it and try again.";
    case "token_required":
      return "This meeting is invitation only. Open the invitation link you were sent (it contains a join token).";
    case "banned":
      return "A host removed you from this meeting. You can't rejoin it.";
    case "denied":
      return "A host declined your request";
    case "too_many":
      return fallback || "The server is busy. Try again later.";
    default:
      return fallback || "Something went wrong.";
  }
}

/**
 * Messages for a refused `join` (the pre-join screen); the server's detail where it helps.
 * @param {string | null | undefined} code
 * @param {string} [message]
 * @returns {string}
 */
export function joinErrorText(code, message) {
  switch (code) {
    case "rate_limited":
      return `Too many attempts. ${message ? `${capitalize(message)}.` : "Wait a minute and try again."}`;
    case "bad_token":
      return `Your invitation link is not valid${message ? ` (${message})` : ""}. Ask the organiser for a new one.`;
    case "token_required":
    case "password_required":
    case "bad_password":
    case "locked":
    case "banned":
    case "denied":
    case "room_full":
      return errorText(code, message);
    case "bad_name":
      // the server says which character it refused (e.g. "U+202E RIGHT-TO-LEFT OVERRIDE")
      return message ? `That name can't be used: ${message}.` : errorText(code);
    case "bad_room":
    case "bad_version":
    case "too_many":
      return errorText(code, message);
    default:
      return message || errorText(code, "Could not join the meeting.");
  }
}

/** @param {string} s */
function capitalize(s) {
  const t = String(s).trim().replace(/[.]+$/, "");
  return t.charAt(0).toUpperCase() + t.slice(1);
}
