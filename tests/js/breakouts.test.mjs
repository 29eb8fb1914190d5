import assert from "node:assert/strict";
import { test } from "node:test";

import { barText, checkPlan, clockText, updateHere } from "../../src/parley/web/js/core/breakouts.js";

const plan = (over) => ({ count: 2, titles: ["Red", ""], auto: true, assign: {}, minutes: "", ...over });

test("checkPlan: default names, assignments in range, minutes to seconds", () => {
  assert.deepEqual(checkPlan(plan({ assign: { a: 1, b: 5 }, minutes: "15" })), {
    ok: true,
    msg: { names: ["Red", "Room 2"], auto: true, assign: { a: 1 }, duration: 900 },
  });
  assert.equal(checkPlan(plan({ count: 0 })).ok, false);
  assert.equal(checkPlan(plan({ count: 21 })).ok, false);
  assert.equal(checkPlan(plan({ minutes: "0" })).ok, false);
  assert.equal(checkPlan(plan({ titles: ["x".repeat(41)] })).ok, false);
});

test("clockText and barText", () => {
  assert.equal(clockText(65_000), "1:05");
  assert.equal(clockText(3_725_000), "1:02:05");
  assert.equal(clockText(-5), "0:00");
  const here = { main: "m", index: 0, title: "Red" };
  assert.equal(barText(here, 0), "Breakout room: Red");
  assert.equal(barText({ ...here, ends_at: 90_000 }, 0), "Breakout room: Red · 1:30 left");
  assert.equal(barText({ ...here, ends_at: 90_000, closing_at: 30_000 }, 0), "Breakout room: Red · back to the main room in 0:30");
  assert.deepEqual(updateHere(here, { main: "m", open: true, closing_at: 5 }), { ...here, ends_at: null, closing_at: 5 });
  assert.equal(updateHere(here, { main: "m", open: false }), here);
});
