import assert from "node:assert/strict";
import { test } from "node:test";

import {
  applyMessage,
  diffIds,
  distinctLabels,
  handQueue,
  rosterFrom,
  sortedParticipants,
} from "../../src/parley/web/js/core/roster.js";

const P = (id, name, extra = {}) => ({
  id,
  name,
  mic: true,
  cam: true,
  screen: false,
  hand: false,
  hand_at: null,
  joined_at: 0,
  ...extra,
});

test("applyMessage: welcome, joined, updated, left", () => {
  let r = applyMessage(new Map(), { type: "welcome", participants: [P("p_1", "Ada", { joined_at: 1 })] });
  assert.equal(r.size, 1);
  r = applyMessage(r, { type: "participant-joined", participant: P("p_2", "Bob", { joined_at: 2 }) });
  assert.deepEqual([...r.keys()], ["p_1", "p_2"]);
  const before = r;
  r = applyMessage(r, { type: "participant-updated", participant: P("p_2", "Bob", { mic: false }) });
  assert.equal(r.get("p_2").mic, false);
  assert.equal(before.get("p_2").mic, true, "previous state is not mutated");
  r = applyMessage(r, { type: "participant-left", id: "p_1", reason: "left" });
  assert.deepEqual([...r.keys()], ["p_2"]);
  assert.equal(applyMessage(r, { type: "chat" }), r);
});

test("diffIds", () => {
  assert.deepEqual(diffIds(["a", "b", "c"], ["b", "c", "d"]), { added: ["d"], removed: ["a"], kept: ["b", "c"] });
});

test("sortedParticipants: self first, raised hands in order, then join time", () => {
  const r = rosterFrom([
    P("p_c", "Cy", { joined_at: 3 }),
    P("p_a", "Ada", { joined_at: 1 }),
    P("p_me", "Me", { joined_at: 5 }),
    P("p_b", "Bob", { joined_at: 2, hand: true, hand_at: 20 }),
    P("p_d", "Di", { joined_at: 4, hand: true, hand_at: 10 }),
  ]);
  assert.deepEqual(
    sortedParticipants(r, "p_me").map((p) => p.id),
    ["p_me", "p_d", "p_b", "p_a", "p_c"],
  );
});

test("distinctLabels tells namesakes apart by join order", () => {
  const r = rosterFrom([
    P("p_2", "Ada", { joined_at: 2 }),
    P("p_1", "Ada", { joined_at: 1 }),
    P("p_3", "ada", { joined_at: 3 }),
    P("p_4", "Bob", { joined_at: 4 }),
  ]);
  assert.deepEqual(distinctLabels(r), { p_1: "Ada", p_2: "Ada (2)", p_3: "ada (3)", p_4: "Bob" });
});

test("handQueue", () => {
  const r = rosterFrom([
    P("a", "A", { hand: true, hand_at: 30 }),
    P("b", "B", { hand: true, hand_at: 10 }),
    P("c", "C"),
  ]);
  assert.deepEqual(handQueue(r), { b: 1, a: 2 });
});
