// What the pre-join page says about a room, from GET /api/v1/rooms/{room}. Pure logic, no DOM.

/**
 * @typedef {object} RoomInfo
 * @property {number} [participant_count]
 * @property {{id: string, name: string}[]} [participants] only for rooms the caller may see
 * @property {boolean} [password]
 * @property {boolean} [lobby]
 * @property {boolean} [locked]
 * @property {boolean} [token_required]
 * @property {boolean} [recording] the meeting is being recorded
 */

const EMPTY = "No one is here yet. You'll be the first.";

/**
 * One or two sentences for the pre-join page: who is in (names when the server shows them,
 * else only how many: a protected room keeps its names for members), then what joining
 * takes (lock, password, lobby).
 * @param {RoomInfo | null} info null: the room does not exist yet (404)
 * @returns {string}
 */
export function whoIsHereText(info) {
  if (!info) return EMPTY;
  const names = (info.participants || []).map((p) => p.name);
  const count = info.participants ? names.length : info.participant_count || 0;
  let who;
  if (!count) who = EMPTY;
  else if (!info.participants) who = `${count} ${count === 1 ? "person is" : "people are"} in this meeting.`;
  else if (names.length <= 3) who = `${names.join(", ")} ${names.length === 1 ? "is" : "are"} in this meeting.`;
  else who = `${names.slice(0, 2).join(", ")} and ${names.length - 2} more are in this meeting.`;
  if (info.locked) return `${who} The room is locked: only hosts can join now.`;
  const needs = [];
  if (info.password) needs.push("the room password");
  if (info.lobby) needs.push("a host to let you in");
  return needs.length ? `${who} Joining needs ${needs.join(" and ")}.` : who;
}

/**
 * What the pre-join page says when the meeting is being recorded (people must know before
 * they join), or "" when it is not.
 * @param {RoomInfo | null} info
 * @returns {string}
 */
export function recordingNotice(info) {
  return info?.recording ? "This meeting is being recorded. If you join, your voice, video and chat messages will be in the recording." : "";
}
