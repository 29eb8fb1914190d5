// Breakout rooms, the pure part: the hosts' plan (checked against the server's limits,
// docs/protocol.md) and the texts of the breakout bar (name, time left, return warning).

/** @typedef {import("./protocol.js").BreakoutHere} BreakoutHere */
/** @typedef {import("./protocol.js").BreakoutsState} BreakoutsState */

export const MAX_BREAKOUTS = 20;
export const MAX_TITLE_CHARS = 40;
export const MAX_MINUTES = 24 * 60;

/**
 * Check the dialog's plan; returns the `breakouts-open` fields, or an error text.
 * @param {{ count: number, titles: string[], auto: boolean, assign: Record<string, number>, minutes: string }} form
 * @returns {{ ok: true, msg: { names: string[], auto: boolean, assign: Record<string, number>, duration: number | null } } | { ok: false, error: string }}
 */
export function checkPlan(form) {
  const count = Math.trunc(form.count);
  if (!(count >= 1 && count <= MAX_BREAKOUTS)) return { ok: false, error: `Choose 1 to ${MAX_BREAKOUTS} rooms.` };
  const names = Array.from({ length: count }, (_, i) => (form.titles[i] || "").trim() || `Room ${i + 1}`);
  if (names.some((n) => n.length > MAX_TITLE_CHARS)) return { ok: false, error: `A room name is at most ${MAX_TITLE_CHARS} characters.` };
  /** @type {Record<string, number>} */
  const assign = {};
  for (const [pid, index] of Object.entries(form.assign)) {
    if (index >= 0 && index < count) assign[pid] = index;
  }
  let duration = null;
  if (form.minutes.trim() !== "") {
    const minutes = Number(form.minutes);
    if (!Number.isFinite(minutes) || minutes < 1 || minutes > MAX_MINUTES) return { ok: false, error: `A duration is 1 to ${MAX_MINUTES} minutes.` };
    duration = Math.round(minutes * 60);
  }
  return { ok: true, msg: { names, auto: form.auto, assign, duration } };
}

/**
 * "12:05" (minutes:seconds; hours when needed) for a time left in ms (never negative).
 * @param {number} ms
 */
export function clockText(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/**
 * What the breakout bar says: where we are and how long is left.
 * @param {BreakoutHere} here
 * @param {number} now ms since the epoch
 */
export function barText(here, now) {
  if (here.closing_at) return `Breakout room: ${here.title} · back to the main room in ${clockText(here.closing_at - now)}`;
  if (here.ends_at) return `Breakout room: ${here.title} · ${clockText(here.ends_at - now)} left`;
  return `Breakout room: ${here.title}`;
}

/**
 * The breakout details of `here` brought up to date by a `breakouts` message.
 * @param {BreakoutHere} here
 * @param {BreakoutsState} state
 * @returns {BreakoutHere}
 */
export function updateHere(here, state) {
  if (!state.open || state.main !== here.main) return here;
  return { ...here, ends_at: state.ends_at ?? null, closing_at: state.closing_at ?? null };
}
