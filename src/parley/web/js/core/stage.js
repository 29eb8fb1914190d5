// Stage and audience (issue 16), pure logic: in stage mode only the stage (hosts and the
// people a host invited up) sends media; the audience watches, chats (as the room's
// `chat` setting allows), reacts and raises a hand.  The audience is the "observer" role.
// No DOM.

/** @typedef {import("./protocol.js").RawRoomSettings} RawRoomSettings */
/** @typedef {import("./protocol.js").Participant} Participant */

/** `to` of an audience member's question (the room's chat is "questions"). */
export const QUESTION_TO = "stage";

/** @typedef {"everyone" | "stage" | "questions"} ChatMode */

/**
 * Stage mode and who may chat, from welcome.room.settings / room-updated (both fields are
 * absent when off / everyone).
 * @param {RawRoomSettings | null | undefined} s
 * @returns {{ stage: boolean, chat: ChatMode }}
 */
export function stageSettings(s) {
  const chat = s?.chat === "stage" || s?.chat === "questions" ? s.chat : "everyone";
  return { stage: Boolean(s?.stage), chat };
}

/**
 * The viewer is in the audience: stage mode is on and its role is observer.
 * @param {Participant | null | undefined} self
 * @param {RawRoomSettings | null | undefined} settings
 */
export function inAudience(self, settings) {
  return Boolean(self && self.role === "observer" && stageSettings(settings).stage);
}

/**
 * What the viewer's chat box may do under the room's chat setting: `allowed` (may send at
 * all), `question` (a message goes to the stage as a question), `note` (why, for the
 * composer; "" when chat is open to them).
 * @param {Participant | null | undefined} self
 * @param {RawRoomSettings | null | undefined} settings
 */
export function chatState(self, settings) {
  const { chat } = stageSettings(settings);
  const audience = Boolean(self && self.role === "observer");
  if (!audience || chat === "everyone") return { allowed: true, question: false, note: "" };
  if (chat === "stage") {
    return { allowed: false, question: false, note: "The hosts limited the chat to the people on stage." };
  }
  return { allowed: true, question: true, note: "Your messages go to the people on stage as questions." };
}
