// Pure chat state: merge/dedupe messages by id, keep them ordered.

/** Merge `incoming` messages into `list` (both sorted by id); dedupe by id; result sorted. */
export function mergeMessages(list, incoming) {
  const byId = new Map();
  for (const m of list || []) byId.set(m.id, m);
  for (const m of incoming || []) {
    if (m && typeof m.id === "number") byId.set(m.id, m);
  }
  return [...byId.values()].sort((a, b) => a.id - b.id);
}

/** The id to ask older messages before (the smallest id we have), or null. */
export function oldestId(list) {
  return list && list.length ? list[0].id : null;
}

/** Who a message is "to"/"from" for display; `names` maps id -> label. */
export function describePrivacy(msg, selfId, names) {
  if (!msg.to) return null;
  if (msg.sender === selfId) return `Privately to ${names[msg.to] ?? "someone who left"}`;
  return "Privately to you";
}

/** Whether a message should count as unread for `selfId`. */
export function isFromOthers(msg, selfId) {
  return msg.sender !== selfId;
}

/** "14:05" in the user's locale for a millisecond timestamp. */
export function formatTime(ts, locale) {
  const d = new Date(ts);
  return d.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
}

/** Whether two consecutive messages can be grouped under one header (same sender, < 5 min). */
export function sameGroup(prev, msg) {
  return Boolean(
    prev && prev.sender === msg.sender && (prev.to ?? null) === (msg.to ?? null) && msg.ts - prev.ts < 5 * 60 * 1000,
  );
}
