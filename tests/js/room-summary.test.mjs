import assert from "node:assert/strict";
import { test } from "node:test";

import { recordingNotice, whoIsHereText } from "../../src/parley/web/js/core/room-summary.js";

test("whoIsHereText: a new room", () => {
  assert.equal(whoIsHereText(null), "No one is here yet. You'll be the first.");
  assert.equal(whoIsHereText({ participant_count: 0, participants: [] }), "No one is here yet. You'll be the first.");
});

test("whoIsHereText: names of an open room", () => {
  const p = (name) => ({ id: name, name });
  assert.equal(whoIsHereText({ participants: [p("Ada")] }), "Ada is in this meeting.");
  assert.equal(whoIsHereText({ participants: [p("Ada"), p("Bob")] }), "Ada, Bob are in this meeting.");
  assert.equal(
    whoIsHereText({ participants: ["A", "B", "C", "D", "E"].map(p) }),
    "A, B and 3 more are in this meeting.",
  );
});

test("whoIsHereText: a protected room shows a count, and what joining needs", () => {
  assert.equal(
    whoIsHereText({ participant_count: 3, password: true }),
    "3 people are in this meeting. Joining needs the room password.",
  );
  assert.equal(
    whoIsHereText({ participant_count: 1, password: true, lobby: true }),
    "1 person is in this meeting. Joining needs the room password and a host to let you in.",
  );
  assert.equal(
    whoIsHereText({ participant_count: 2, locked: true, password: true }),
    "2 people are in this meeting. The room is locked: only hosts can join now.",
  );
});

test("recordingNotice: said before joining a room that records, nothing otherwise", () => {
  assert.match(recordingNotice({ recording: true }), /^This meeting is being recorded\./);
  assert.equal(recordingNotice({ recording: false }), "");
  assert.equal(recordingNotice({}), "");
  assert.equal(recordingNotice(null), "");
});
