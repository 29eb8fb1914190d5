// Pure logic of a room's chat history retention (the room settings dialog's "Keep chat
// history"): the choices offered, what the current setting means, the REST answer read
// back. No DOM.

/** Longest retention a room may ask for (the server's MAX_RETENTION_DAYS: 100 years). */
export const MAX_RETENTION_DAYS = 36_500;

/** The day counts offered besides the server's default. */
export const RETENTION_PRESETS = Object.freeze([1, 7, 30, 90, 365]);

/**
 * A room's retention as `GET /api/v1/rooms/{room}/retention` gives it.
 * @typedef {object} Retention
 * @property {number | null} days the room's own setting (null: the server's default)
 * @property {number} defaultDays the server's `--history-retention-days` (0: keep)
 */

/**
 * One choice of the "Keep chat history" select: `value` "" is the server's default.
 * @typedef {{ value: string, label: string }} RetentionChoice
 */

/** @param {number} days */
export function daysText(days) {
  return days === 1 ? "1 day" : `${days} days`;
}

/** @param {unknown} n */
const isDays = (n) => Number.isInteger(n) && /** @type {number} */ (n) >= 1 && /** @type {number} */ (n) <= MAX_RETENTION_DAYS;

/**
 * The REST answer, checked; null when it is not one.
 * @param {unknown} body
 * @returns {Retention | null}
 */
export function parseRetention(body) {
  if (!body || typeof body !== "object") return null;
  const { days, default_days: defaultDays } = /** @type {{ days?: unknown, default_days?: unknown }} */ (body);
  if (days !== null && !isDays(days)) return null;
  if (!Number.isInteger(defaultDays) || /** @type {number} */ (defaultDays) < 0) return null;
  return { days: /** @type {number | null} */ (days), defaultDays: /** @type {number} */ (defaultDays) };
}

/**
 * The select's choices: the server's default (saying what it is), the presets, and the
 * room's own value when it is none of them (set by another tool).
 * @param {Retention} r
 * @returns {RetentionChoice[]}
 */
export function retentionChoices(r) {
  const fallback = r.defaultDays > 0 ? daysText(r.defaultDays) : "keep everything";
  /** @type {RetentionChoice[]} */
  const choices = [{ value: "", label: `Server default (${fallback})` }];
  const days = [...RETENTION_PRESETS];
  if (r.days !== null && !days.includes(r.days)) days.push(r.days);
  days.sort((a, b) => a - b);
  for (const d of days) choices.push({ value: String(d), label: daysText(d) });
  return choices;
}

/**
 * What the current setting means, in a sentence.
 * @param {Retention} r
 */
export function retentionSummary(r) {
  if (r.days !== null) return `Messages older than ${daysText(r.days)} are deleted.`;
  if (r.defaultDays > 0) return `Messages older than ${daysText(r.defaultDays)} are deleted (the server's default).`;
  return "The chat history is kept until someone deletes it (the server's default).";
}

/**
 * The `set-retention` message for a select value ("" is the server's default); null for a
 * value that is not a retention.
 * @param {string} value
 * @returns {{ type: "set-retention", days: number | null } | null}
 */
export function retentionMessage(value) {
  if (value === "") return { type: "set-retention", days: null };
  if (!/^[0-9]{1,6}$/.test(value)) return null;
  const days = Number(value);
  return isDays(days) ? { type: "set-retention", days } : null;
}
