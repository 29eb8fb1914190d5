// Polls, the pure part: the form's checks (the server's limits, docs/protocol.md), merging
// the server's `poll` / `poll-voted` messages into what the page shows, results rows.

/** @typedef {import("./protocol.js").PollInfo} PollInfo */

export const MIN_OPTIONS = 2;
export const MAX_OPTIONS = 10;
export const MAX_QUESTION_CHARS = 300;
export const MAX_OPTION_CHARS = 100;

/**
 * Check a poll form; returns the `poll-create` fields, or an error text for the host.
 * Blank option rows are left out (the form always shows a spare one).
 * @param {{ question: string, options: string[], multiple: boolean, anonymous: boolean }} form
 * @returns {{ ok: true, msg: { question: string, options: string[], multiple: boolean, anonymous: boolean } } | { ok: false, error: string }}
 */
export function checkPollForm(form) {
  const question = form.question.trim();
  const options = form.options.map((o) => o.trim()).filter((o) => o !== "");
  if (!question) return { ok: false, error: "Write a question." };
  if (question.length > MAX_QUESTION_CHARS) return { ok: false, error: `The question is at most ${MAX_QUESTION_CHARS} characters.` };
  if (options.length < MIN_OPTIONS) return { ok: false, error: `Give at least ${MIN_OPTIONS} options.` };
  if (options.length > MAX_OPTIONS) return { ok: false, error: `A poll has at most ${MAX_OPTIONS} options.` };
  if (options.some((o) => o.length > MAX_OPTION_CHARS)) return { ok: false, error: `An option is at most ${MAX_OPTION_CHARS} characters.` };
  if (new Set(options).size !== options.length) return { ok: false, error: "Two options are the same." };
  return { ok: true, msg: { question, options, multiple: form.multiple, anonymous: form.anonymous } };
}

/**
 * Merge a `poll` message into the known polls.  Our own choices survive updates that do
 * not carry them (a host's live counts), and counts survive a later message without them.
 * @param {Map<string, PollInfo>} polls
 * @param {PollInfo} poll
 * @returns {Map<string, PollInfo>}
 */
export function mergePoll(polls, poll) {
  const next = new Map(polls);
  const old = polls.get(poll.id);
  next.set(poll.id, {
    ...poll,
    mine: poll.mine ?? old?.mine ?? null,
    counts: poll.counts ?? (poll.closed ? null : old?.counts) ?? null,
    voters: poll.voters ?? old?.voters ?? null,
    names: poll.names ?? old?.names ?? null,
  });
  return next;
}

/**
 * Our vote counted (`poll-voted`).
 * @param {Map<string, PollInfo>} polls
 * @param {string} id
 * @param {number[]} choices
 */
export function recordVote(polls, id, choices) {
  const old = polls.get(id);
  if (!old) return polls;
  const next = new Map(polls);
  next.set(id, { ...old, mine: choices });
  return next;
}

/**
 * Results rows: each option with its count, its share of voters (0-100) and, for a named
 * poll, who chose it.  Empty when the counts are not ours to see.
 * @param {PollInfo} poll
 * @returns {{ option: string, count: number, percent: number, names: string[] }[]}
 */
export function resultRows(poll) {
  if (!poll.counts) return [];
  const voters = poll.voters ?? 0;
  return poll.options.map((option, i) => {
    const count = poll.counts?.[i] ?? 0;
    return { option, count, percent: voters ? Math.round((100 * count) / voters) : 0, names: poll.names?.[i] ?? [] };
  });
}

/** @param {number} n */
export function votesText(n) {
  return `${n} ${n === 1 ? "vote" : "votes"}`;
}

/** @param {PollInfo} poll */
export function pollKind(poll) {
  return `${poll.multiple ? "Choose any" : "Choose one"} · ${poll.anonymous ? "anonymous" : "names shown"}`;
}
