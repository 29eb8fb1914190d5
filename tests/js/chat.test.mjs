import assert from "node:assert/strict";
import { test } from "node:test";

import {
  describePrivacy,
  isFromOthers,
  mergeMessages,
  oldestId,
  sameGroup,
} from "../../src/parley/web/js/core/chat.js";

const M = (id, extra = {}) => ({ id, ts: id * 1000, room: "r", sender: "p_a", name: "Ada", text: `m${id}`, ...extra });

test("mergeMessages dedupes by id and orders by id", () => {
  const merged = mergeMessages([M(3), M(5)], [M(4), M(5), M(1)]);
  assert.deepEqual(
    merged.map((m) => m.id),
    [1, 3, 4, 5],
  );
});

test("mergeMessages: a newer copy of the same id replaces the old", () => {
  const merged = mergeMessages([M(1, { text: "old" })], [M(1, { text: "new" })]);
  assert.equal(merged.length, 1);
  assert.equal(merged[0].text, "new");
});

test("mergeMessages ignores junk and handles empty input", () => {
  assert.deepEqual(mergeMessages(null, undefined), []);
  assert.deepEqual(
    mergeMessages([], [null, { id: "x" }, M(2)]).map((m) => m.id),
    [2],
  );
});

test("oldestId", () => {
  assert.equal(oldestId([]), null);
  assert.equal(oldestId([M(7), M(9)]), 7);
});

test("describePrivacy", () => {
  const names = { p_b: "Bob" };
  assert.equal(describePrivacy(M(1), "p_a", names), null);
  assert.equal(describePrivacy(M(1, { to: "p_b" }), "p_a", names), "Privately to Bob");
  assert.equal(describePrivacy(M(1, { sender: "p_b", to: "p_a" }), "p_a", names), "Privately to you");
  assert.equal(describePrivacy(M(1, { to: "p_gone" }), "p_a", names), "Privately to someone who left");
});

test("isFromOthers and sameGroup", () => {
  assert.equal(isFromOthers(M(1), "p_a"), false);
  assert.equal(isFromOthers(M(1), "p_b"), true);
  assert.equal(sameGroup(M(1), M(2)), true);
  assert.equal(sameGroup(M(1), M(2, { sender: "p_b" })), false);
  assert.equal(sameGroup(M(1), M(1000)), false);
  assert.equal(sameGroup(null, M(1)), false);
});
