// Pure chat state: merge/dedupe messages by id, keep them ordered.

/** @typedef {import("./protocol.js").ChatMessage} ChatMessage */

/**
 * Merge `incoming` messages into `list` (both sorted by id); dedupe by id; result sorted.
 * @param {ChatMessage[] | null | undefined} list
 * @param {ChatMessage[] | null | undefined} incoming
 * @returns {ChatMessage[]}
 */
export function mergeMessages(list, incoming) {
  /** @type {Map<number, ChatMessage>} */
  const byId = new Map();
  for (const m of list || []) byId.set(m.id, m);
  for (const m of incoming || []) {
    if (m && typeof m.id === "number") byId.set(m.id, m);
  }
  return [...byId.values()].sort((a, b) => a.id - b.id);
}

/**
 * The id to ask older messages before (the smallest id we have), or null.
 * @param {ChatMessage[] | null | undefined} list
 */
export function oldestId(list) {
  return list && list.length ? list[0].id : null;
}

/**
 * Who a message is "to"/"from" for display; `names` maps id -> label.
 * @param {ChatMessage} msg
 * @param {string | null} selfId
 * @param {Record<string, string>} names
 */
export function describePrivacy(msg, selfId, names) {
  if (!msg.to) return null;
  if (msg.to === "stage") return msg.sender === selfId ? "Your question to the stage" : "Question to the stage";
  if (msg.sender === selfId) return `Privately to ${names[msg.to] ?? "someone who left"}`;
  return "Privately to you";
}

/**
 * Whether a message should count as unread for `selfId`.
 * @param {ChatMessage} msg
 * @param {string | null} selfId
 */
export function isFromOthers(msg, selfId) {
  return msg.sender !== selfId;
}

/**
 * "14:05" in the user's locale for a millisecond timestamp.
 * @param {number} ts
 * @param {string} [locale]
 */
export function formatTime(ts, locale) {
  const d = new Date(ts);
  return d.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
}

/**
 * Whether two consecutive messages can be grouped under one header (same sender, < 5 min).
 * @param {ChatMessage | null | undefined} prev
 * @param {ChatMessage} msg
 */
export function sameGroup(prev, msg) {
  return Boolean(
    prev && prev.sender === msg.sender && (prev.to ?? null) === (msg.to ?? null) && msg.ts - prev.ts < 5 * 60 * 1000,
  );
}
