import assert from "node:assert/strict";
import { test } from "node:test";

import {
  applyPresence,
  fromWelcome,
  initialState,
  loadMore,
  MAX_QUERY,
  onPage,
  onPresence,
  PAGE,
  search,
  stagePeople,
  visible,
} from "../../src/parley/web/js/core/big-room.js";

const P = (id, name, joined_at = 0, extra = {}) => ({ id, name, role: "participant", mic: false, cam: false, screen: false, hand: false, joined_at, ...extra });

test("a small room's welcome leaves the panel as it was", () => {
  assert.equal(fromWelcome({ participants: [P("a", "Ada")] }).active, false);
  const big = fromWelcome({ participants: [P("a", "Ada")], participant_count: 5000, roster_next: "1.a" });
  assert.deepEqual([big.active, big.count, big.next], [true, 5000, "1.a"]);
});

test("a presence frame applies leaves, then joins, then changes", () => {
  const roster = new Map([["a", P("a", "Ada")], ["b", P("b", "Bob")]]);
  const next = applyPresence(roster, {
    left: [{ id: "b", reason: "left" }],
    joined: [P("c", "Cy")],
    updated: [P("a", "Ada", 0, { hand: true })],
    count: 2,
  });
  assert.deepEqual([...next.keys()], ["a", "c"]);
  assert.equal(next.get("a")?.hand, true);
  assert.equal(roster.size, 2, "the old roster is unchanged");
  let state = onPage(fromWelcome({ participants: [], participant_count: 3 }), { participants: [P("b", "Bob")], count: 3 });
  state = onPresence(state, { joined: [], left: [{ id: "b", reason: "left" }], updated: [], count: 2, truncated: true });
  assert.equal(state.listed.has("b"), false);
  assert.deepEqual([state.count, state.stale], [2, true]);
});

test("only a page of rows is shown; Load more asks for the next page when needed", () => {
  const people = Array.from({ length: 150 }, (_, i) => P(`p${i}`, `P ${i}`, i));
  const roster = new Map(people.map((p) => [p.id, p]));
  let state = fromWelcome({ participants: people, participant_count: 1000, roster_next: "149.p149" });
  const first = visible(state, people, roster);
  assert.equal(first.rows.length, PAGE);
  assert.equal(first.more, true);
  let step = loadMore(state, 150);
  assert.deepEqual(step.request, { type: "roster", after: "149.p149", limit: PAGE });
  state = onPage(step.state, { participants: [P("x", "X", 500)], count: 1000, next: null });
  const shown = visible(state, people, roster);
  assert.equal(shown.rows.length, 151);
  assert.equal(shown.rows.at(-1)?.id, "x");
  assert.equal(shown.more, false);
  step = loadMore(state, 151);
  assert.equal(step.request, null, "nothing more to fetch");
});

test("a search shows the server's answer, and only the answer to the current text", () => {
  let { state, request } = search(initialState(), "  ada ");
  assert.deepEqual(request, { type: "roster", q: "ada", limit: PAGE });
  state = onPage(state, { participants: [P("z", "Old")], count: 9, q: "bob" });
  assert.equal(state.results, null, "a late answer to another search is ignored");
  state = onPage(state, { participants: [P("a", "Ada")], count: 9, q: "ada" });
  const roster = new Map([["a", P("a", "Ada", 0, { hand: true })]]);
  const { rows, more } = visible(state, [], roster);
  assert.deepEqual(rows.map((p) => [p.id, p.hand]), [["a", true]], "the roster's fresher state");
  assert.equal(more, false);
  assert.equal(search(state, "").request, null);
  assert.equal(search(state, "x".repeat(200)).state.query.length, MAX_QUERY);
});

test("a big room's stage shows oneself and the people on camera or sharing first, in order", () => {
  const people = Array.from({ length: 80 }, (_, i) => P(`p${i}`, `P ${i}`, i, { cam: i % 20 === 5, screen: i === 70 }));
  const shown = stagePeople(people, "p79", 4);
  assert.deepEqual(shown.map((p) => p.id), ["p5", "p25", "p70", "p79"]);
  assert.equal(stagePeople(people.slice(0, 3), "p0").length, 3);
});
