// Big rooms (more people than the server's presence threshold): pure state for the people
// panel.  The welcome lists a first page (hosts, raised hands, the earliest to join) with
// `participant_count` and `roster_next`; `presence` frames bring the joins, leaves and
// changes of each window (0.5 s, up to 2 s in the biggest rooms) at once; `roster-page` answers bring further pages and name
// searches.  Only PAGE rows are shown at first, PAGE more per "Load more".

/** @typedef {import("./protocol.js").Participant} Participant */
/** @typedef {Map<string, Participant>} Roster */

/** Rows shown at first, and added by each "Load more". */
export const PAGE = 100;
/** Longest name search the server accepts (core/roster.py MAX_QUERY). */
export const MAX_QUERY = 64;

/**
 * @typedef {object} Presence a `presence` frame
 * @property {Participant[]} joined
 * @property {{ id: string, reason: string }[]} left
 * @property {Participant[]} updated
 * @property {number} count
 * @property {boolean} [truncated]
 */

/**
 * @typedef {object} RosterPage a `roster-page` frame
 * @property {Participant[]} participants
 * @property {number} count
 * @property {string | null} [next]
 * @property {string | null} [q]
 * @property {string} [ref]
 */

/**
 * @typedef {object} BigState
 * @property {boolean} active a big room (the welcome had `participant_count`)
 * @property {number} count people in the room, as the server last said
 * @property {Roster} listed people from roster pages (not necessarily in the meeting's roster)
 * @property {string | null} next cursor of the next page (null: everyone is listed)
 * @property {number} shown rows to show
 * @property {string} query the name search ("" when none)
 * @property {Participant[] | null} results the search's answer (null: none yet)
 * @property {boolean} stale a presence frame was too big to list: pages may be out of date
 */

/** @returns {BigState} */
export function initialState() {
  return { active: false, count: 0, listed: new Map(), next: null, shown: PAGE, query: "", results: null, stale: false };
}

/**
 * The state after a welcome (a big room's, or a small one's: then inactive).
 * @param {{ participants: Participant[], participant_count?: number | null, roster_next?: string | null }} welcome
 * @returns {BigState}
 */
export function fromWelcome(welcome) {
  const state = initialState();
  if (welcome.participant_count == null) return state;
  return { ...state, active: true, count: welcome.participant_count, next: welcome.roster_next ?? null };
}

/**
 * Apply a presence frame to a roster: left first, then joined, then updated.
 * @param {Roster} roster
 * @param {Presence} msg
 * @returns {Roster}
 */
export function applyPresence(roster, msg) {
  const next = new Map(roster);
  for (const gone of msg.left || []) next.delete(gone.id);
  for (const p of msg.joined || []) next.set(p.id, { ...p });
  for (const p of msg.updated || []) next.set(p.id, { ...p });
  return next;
}

/**
 * The panel's state after a presence frame (the roster is the meeting's, updated apart).
 * @param {BigState} state
 * @param {Presence} msg
 * @returns {BigState}
 */
export function onPresence(state, msg) {
  const listed = new Map(state.listed);
  for (const gone of msg.left || []) listed.delete(gone.id);
  for (const p of msg.updated || []) if (listed.has(p.id)) listed.set(p.id, { ...p });
  const gone = new Set((msg.left || []).map((d) => d.id));
  const results = state.results && state.results.filter((p) => !gone.has(p.id));
  return { ...state, active: true, count: msg.count, listed, results, stale: state.stale || Boolean(msg.truncated) };
}

/**
 * The panel's state after a roster page (a search's answer, or the next page).
 * @param {BigState} state
 * @param {RosterPage} msg
 * @returns {BigState}
 */
export function onPage(state, msg) {
  if (msg.q) {
    // Only the answer to the current search counts (an older one may arrive late).
    if (msg.q.trim().toLocaleLowerCase() !== state.query.trim().toLocaleLowerCase()) return { ...state, count: msg.count };
    return { ...state, count: msg.count, results: msg.participants.map((p) => ({ ...p })) };
  }
  const listed = new Map(state.listed);
  for (const p of msg.participants) listed.set(p.id, { ...p });
  return { ...state, count: msg.count, listed, next: msg.next ?? null, stale: false };
}

/**
 * Who the panel shows: the search's answer, or the meeting's roster (already sorted: self,
 * hands, join order) followed by the listed pages' people, up to `shown` rows.
 * @param {BigState} state
 * @param {Participant[]} people the meeting's roster, sorted
 * @param {Roster} roster the same, by id (fresher than the pages for those in it)
 * @returns {{ rows: Participant[], more: boolean }}
 */
export function visible(state, people, roster) {
  if (state.query.trim()) {
    const rows = (state.results || []).map((p) => roster.get(p.id) || p);
    return { rows, more: false };
  }
  const rows = people.slice(0, state.shown);
  if (rows.length < state.shown) {
    const extra = [...state.listed.values()]
      .filter((p) => !roster.has(p.id))
      .sort((a, b) => (a.joined_at ?? 0) - (b.joined_at ?? 0) || (a.id < b.id ? -1 : 1));
    rows.push(...extra.slice(0, state.shown - rows.length));
  }
  const known = people.length + [...state.listed.keys()].filter((id) => !roster.has(id)).length;
  return { rows, more: known > rows.length || state.next !== null };
}

/**
 * "Load more": PAGE more rows, and the roster request that fetches them if they are not
 * known yet (null: nothing to ask).
 * @param {BigState} state
 * @param {number} known people the panel could show without asking
 * @returns {{ state: BigState, request: { type: "roster", after: string, limit: number } | null }}
 */
export function loadMore(state, known) {
  const shown = state.shown + PAGE;
  const request = known < shown && state.next ? { type: /** @type {"roster"} */ ("roster"), after: state.next, limit: PAGE } : null;
  return { state: { ...state, shown }, request };
}

/**
 * A new search text: the state, and the request to send (null: the search was cleared).
 * @param {BigState} state
 * @param {string} text
 * @returns {{ state: BigState, request: { type: "roster", q: string, limit: number } | null }}
 */
export function search(state, text) {
  const query = text.slice(0, MAX_QUERY);
  if (!query.trim()) return { state: { ...state, query: "", results: null }, request: null };
  return { state: { ...state, query, results: null }, request: { type: "roster", q: query.trim(), limit: PAGE } };
}

/** Tiles a big room's stage shows at most (a tile per person of thousands would not do). */
export const STAGE_MAX = 49;

/**
 * Who gets a tile in a big room: oneself, then people sharing a screen, on camera, hosts,
 * on mic, with a hand up, up to `max`; in the roster's order (no reshuffling).
 * @param {Participant[]} people sorted
 * @param {string | null} selfId
 * @param {number} [max]
 * @returns {Participant[]}
 */
export function stagePeople(people, selfId, max = STAGE_MAX) {
  if (people.length <= max) return people;
  const rank = (/** @type {Participant} */ p) =>
    p.id === selfId ? 0 : p.screen ? 1 : p.cam ? 2 : p.role === "host" ? 3 : p.mic ? 4 : p.hand ? 5 : 6;
  const chosen = new Set(
    people
      .map((p, i) => ({ p, i, r: rank(p) }))
      .sort((a, b) => a.r - b.r || a.i - b.i)
      .slice(0, max)
      .map((x) => x.p.id),
  );
  return people.filter((p) => chosen.has(p.id));
}
