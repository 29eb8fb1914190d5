import assert from "node:assert/strict";
import { test } from "node:test";

import { checkPollForm, mergePoll, recordVote, resultRows, votesText } from "../../src/parley/web/js/core/polls.js";

const form = (over) => ({ question: "Lunch?", options: ["Pizza", "Soup", ""], multiple: false, anonymous: true, ...over });

test("checkPollForm: trims, drops blank rows, keeps the choices", () => {
  assert.deepEqual(checkPollForm(form({ question: " Lunch? ", options: [" Pizza ", "", "Soup"] })), {
    ok: true,
    msg: { question: "Lunch?", options: ["Pizza", "Soup"], multiple: false, anonymous: true },
  });
});

test("checkPollForm: the server's limits, said plainly", () => {
  assert.equal(checkPollForm(form({ question: " " })).ok, false);
  assert.deepEqual(checkPollForm(form({ options: ["Only", ""] })), { ok: false, error: "Give at least 2 options." });
  const eleven = Array.from({ length: 11 }, (_, i) => `o${i}`);
  assert.deepEqual(checkPollForm(form({ options: eleven })), { ok: false, error: "A poll has at most 10 options." });
  assert.equal(checkPollForm(form({ options: ["a", "a"] })).ok, false);
  assert.equal(checkPollForm(form({ options: ["a", "b".repeat(101)] })).ok, false);
  assert.equal(checkPollForm(form({ question: "q".repeat(301) })).ok, false);
});

test("mergePoll keeps our vote through a host's live counts; recordVote sets it", () => {
  const base = { id: "p1", question: "Q", options: ["a", "b"], multiple: false, anonymous: true, by: "h" };
  let polls = mergePoll(new Map(), base);
  polls = recordVote(polls, "p1", [1]);
  polls = mergePoll(polls, { ...base, counts: [0, 1], voters: 1 });
  assert.deepEqual(polls.get("p1")?.mine, [1]);
  assert.deepEqual(polls.get("p1")?.counts, [0, 1]);
  polls = mergePoll(polls, base); // a participant's copy without counts: the counts stay
  assert.deepEqual(polls.get("p1")?.counts, [0, 1]);
  assert.equal(recordVote(polls, "nope", [0]), polls);
});

test("resultRows: count, share and names per option; nothing without counts", () => {
  const poll = { id: "p", question: "Q", options: ["a", "b"], multiple: true, anonymous: false, by: "h" };
  assert.deepEqual(resultRows(poll), []);
  assert.deepEqual(resultRows({ ...poll, counts: [2, 1], voters: 2, names: [["Ann", "Bob"], ["Bob"]] }), [
    { option: "a", count: 2, percent: 100, names: ["Ann", "Bob"] },
    { option: "b", count: 1, percent: 50, names: ["Bob"] },
  ]);
  assert.equal(votesText(1), "1 vote");
  assert.equal(votesText(0), "0 votes");
});
