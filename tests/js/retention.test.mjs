// "Keep chat history": the choices, the summary, the REST answer, the message sent.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  daysText,
  parseRetention,
  retentionChoices,
  retentionMessage,
  retentionSummary,
} from "../../src/parley/web/js/core/retention.js";

test("the REST answer is checked", () => {
  assert.deepEqual(parseRetention({ days: 30, default_days: 0 }), { days: 30, defaultDays: 0 });
  assert.deepEqual(parseRetention({ days: null, default_days: 90 }), { days: null, defaultDays: 90 });
  for (const bad of [null, "30", {}, { days: 0, default_days: 0 }, { days: 1.5, default_days: 0 }, { days: 36_501, default_days: 0 }, { days: null, default_days: -1 }, { days: "7", default_days: 0 }]) {
    assert.equal(parseRetention(bad), null, JSON.stringify(bad));
  }
});

test("the choices say what the server's default is and keep an unusual current value", () => {
  const keep = retentionChoices({ days: null, defaultDays: 0 });
  assert.deepEqual(keep[0], { value: "", label: "Server default (keep everything)" });
  assert.deepEqual(
    keep.slice(1).map((c) => c.label),
    ["1 day", "7 days", "30 days", "90 days", "365 days"],
  );
  assert.equal(retentionChoices({ days: null, defaultDays: 90 })[0].label, "Server default (90 days)");
  const odd = retentionChoices({ days: 14, defaultDays: 0 });
  assert.deepEqual(
    odd.map((c) => c.value),
    ["", "1", "7", "14", "30", "90", "365"],
  );
});

test("the summary says what happens to old messages", () => {
  assert.equal(retentionSummary({ days: 30, defaultDays: 0 }), "Messages older than 30 days are deleted.");
  assert.equal(retentionSummary({ days: 1, defaultDays: 90 }), "Messages older than 1 day are deleted.");
  assert.equal(retentionSummary({ days: null, defaultDays: 90 }), "Messages older than 90 days are deleted (the server's default).");
  assert.match(retentionSummary({ days: null, defaultDays: 0 }), /kept until someone deletes it/);
  assert.equal(daysText(2), "2 days");
});

test("a select value becomes a set-retention message, or nothing", () => {
  assert.deepEqual(retentionMessage(""), { type: "set-retention", days: null });
  assert.deepEqual(retentionMessage("30"), { type: "set-retention", days: 30 });
  for (const bad of ["0", "36501", "-1", "1e3", " 7", "x"]) assert.equal(retentionMessage(bad), null, bad);
});
