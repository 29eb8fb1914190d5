import assert from "node:assert/strict";
import { test } from "node:test";

import { backoffDelay, gridShape, isPolite, pickSpeaker, smoothLevels } from "../../src/parley/web/js/core/rules.js";

test("exactly one side of each pair is polite", () => {
  const ids = ["p_a", "p_B", "p_zz", "p_0"];
  for (const a of ids) {
    for (const b of ids) {
      if (a === b) continue;
      assert.notEqual(isPolite(a, b), isPolite(b, a), `${a} vs ${b}`);
    }
  }
  assert.equal(isPolite("p_a", "p_b"), true);
});

test("backoff: 0.5 s, 1 s, 2 s, 4 s, then 5 s", () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 10, 100].map((n) => backoffDelay(n)),
    [500, 1000, 2000, 4000, 5000, 5000, 5000],
  );
});

test("pickSpeaker: loudest above threshold, sticky current", () => {
  assert.equal(pickSpeaker({}, null), null);
  assert.equal(pickSpeaker({ a: 0.01, b: 0.02 }, null), null);
  assert.equal(pickSpeaker({ a: 0.2, b: 0.5 }, null), "b");
  assert.equal(pickSpeaker({ a: 0.4, b: 0.5 }, "a"), "a");
  assert.equal(pickSpeaker({ a: 0.1, b: 0.5 }, "a"), "b");
  assert.equal(pickSpeaker({ a: 0.0, b: 0.0 }, "a"), null);
});

test("gridShape", () => {
  const shape = (...a) => {
    const { cols, rows } = gridShape(...a);
    return { cols, rows };
  };
  assert.deepEqual(shape(1, 1600, 900), { cols: 1, rows: 1 });
  assert.deepEqual(shape(2, 1600, 900), { cols: 2, rows: 1 });
  assert.deepEqual(shape(4, 1600, 900), { cols: 2, rows: 2 });
  assert.deepEqual(shape(3, 1600, 900), { cols: 2, rows: 2 });
  assert.deepEqual(shape(2, 400, 900), { cols: 1, rows: 2 });
  assert.deepEqual(shape(6, 1600, 900), { cols: 3, rows: 2 });
  assert.deepEqual(gridShape(0, 100, 100), { cols: 1, rows: 1, tileWidth: 0, tileHeight: 0 });
  const one = gridShape(1, 1600, 900);
  assert.deepEqual([one.tileWidth, one.tileHeight], [1600, 900]);
  const gapped = gridShape(2, 1610, 900, 16 / 9, 10);
  assert.deepEqual([gapped.tileWidth, gapped.tileHeight], [800, 450]);
});

test("smoothLevels: rises at once, decays slowly, forgets the absent", () => {
  assert.deepEqual(smoothLevels({}, { a: 0.5 }), { a: 0.5 });
  assert.deepEqual(smoothLevels({ a: 0.5 }, { a: 0 }, 0.5), { a: 0.25 });
  assert.deepEqual(smoothLevels({ a: 0.5 }, { a: 0.9 }, 0.5), { a: 0.9 });
  assert.deepEqual(smoothLevels({ a: 0.5, gone: 1 }, { a: 0 }, 0.5), { a: 0.25 });
});
