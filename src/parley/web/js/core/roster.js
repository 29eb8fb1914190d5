// Pure participant state: a Map id -> Participant, updated from protocol messages.

/** @typedef {import("./protocol.js").Participant} Participant */
/** @typedef {Map<string, Participant>} Roster */

/**
 * A new roster from welcome.participants.
 * @param {Participant[] | null | undefined} participants
 * @returns {Roster}
 */
export function rosterFrom(participants) {
  const m = new Map();
  for (const p of participants || []) m.set(p.id, { ...p });
  return m;
}

/**
 * Returns a new Map with `p` inserted or replaced.
 * @param {Roster} roster
 * @param {Participant} p
 * @returns {Roster}
 */
export function upsert(roster, p) {
  const m = new Map(roster);
  m.set(p.id, { ...p });
  return m;
}

/**
 * @param {Roster} roster
 * @param {string} id
 * @returns {Roster}
 */
export function remove(roster, id) {
  const m = new Map(roster);
  m.delete(id);
  return m;
}

/**
 * Apply a server message to the roster (unknown types leave it unchanged).
 * @param {Roster} roster
 * @param {{ type: string, participants?: Participant[], participant?: Participant, id?: string }} msg
 * @returns {Roster}
 */
export function applyMessage(roster, msg) {
  switch (msg.type) {
    case "welcome":
      return rosterFrom(msg.participants);
    case "participant-joined":
    case "participant-updated":
      return upsert(roster, /** @type {Participant} */ (msg.participant));
    case "participant-left":
      return remove(roster, /** @type {string} */ (msg.id));
    default:
      return roster;
  }
}

/**
 * Ids in `next` not in `prev` (added) and in `prev` not in `next` (removed).
 * @param {Iterable<string>} prevIds
 * @param {Iterable<string>} nextIds
 */
export function diffIds(prevIds, nextIds) {
  const prev = new Set(prevIds);
  const next = new Set(nextIds);
  return {
    added: [...next].filter((id) => !prev.has(id)),
    removed: [...prev].filter((id) => !next.has(id)),
    kept: [...next].filter((id) => prev.has(id)),
  };
}

/**
 * Display order: self first, raised hands by hand_at, then by join time, then name, id.
 * @param {Roster} roster
 * @param {string | null} selfId
 */
export function sortedParticipants(roster, selfId) {
  return [...roster.values()].sort((a, b) => {
    if (a.id === selfId) return -1;
    if (b.id === selfId) return 1;
    if (a.hand !== b.hand) return a.hand ? -1 : 1;
    if (a.hand && b.hand && a.hand_at !== b.hand_at) return (a.hand_at ?? 0) - (b.hand_at ?? 0);
    if (a.joined_at !== b.joined_at) return (a.joined_at ?? 0) - (b.joined_at ?? 0);
    const byName = String(a.name).localeCompare(String(b.name));
    return byName || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  });
}

/**
 * Labels that tell people with the same name apart: {id: "Ada", id2: "Ada (2)"},
 * numbered by join order among the namesakes.
 * @param {Roster} roster
 * @returns {Record<string, string>}
 */
export function distinctLabels(roster) {
  /** @type {Map<string, Participant[]>} */
  const groups = new Map();
  for (const p of roster.values()) {
    const key = String(p.name).trim().toLocaleLowerCase();
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)?.push(p);
  }
  /** @type {Record<string, string>} */
  const labels = {};
  for (const members of groups.values()) {
    members.sort((a, b) => (a.joined_at ?? 0) - (b.joined_at ?? 0) || (a.id < b.id ? -1 : 1));
    members.forEach((p, i) => {
      labels[p.id] = members.length > 1 && i > 0 ? `${p.name} (${i + 1})` : p.name;
    });
  }
  return labels;
}

/**
 * Position (1-based) of each raised hand in the queue, by hand_at.
 * @param {Roster} roster
 */
export function handQueue(roster) {
  const raised = [...roster.values()].filter((p) => p.hand).sort((a, b) => (a.hand_at ?? 0) - (b.hand_at ?? 0));
  /** @type {Record<string, number>} */
  const pos = {};
  raised.forEach((p, i) => {
    pos[p.id] = i + 1;
  });
  return pos;
}
