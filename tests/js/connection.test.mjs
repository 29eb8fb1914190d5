// The WebSocket wrapper: join, dispatch, reconnect with resume, final close codes.
import assert from "node:assert/strict";
import { test } from "node:test";

import { FakeSocket, WELCOME, connectionHarness } from "./fake-socket.mjs";

const { connect, tick } = connectionHarness(["welcome", "chat", "error", ":state", ":join-failed", ":ended"]);

test("sends join on open and dispatches by type", () => {
  const { conn, seen, ws } = connect();
  ws().open();
  assert.deepEqual(ws().sent, [{ type: "join", room: "team", name: "Ada", v: 1, ref: "join" }]);
  ws().receive(WELCOME);
  assert.equal(conn.state, "open");
  assert.equal(conn.selfId, "p_1");
  ws().receive({ type: "chat", message: { id: 1 } });
  assert.deepEqual(
    seen.map(([t]) => t),
    [":state", ":state", "welcome", "chat"],
  );
  assert.equal(conn.send({ type: "ping" }), true);
  assert.deepEqual(ws().sent.at(-1), { type: "ping" });
});

test("send() refuses while not joined", () => {
  const { conn, ws } = connect();
  assert.equal(conn.send({ type: "chat", text: "x" }), false);
  ws().open();
  assert.equal(conn.send({ type: "chat", text: "x" }), false);
});

test("a refused join is reported and the socket closed, without retrying", () => {
  const { conn, seen, ws } = connect();
  ws().open();
  ws().receive({ type: "error", code: "room_full", message: "full", ref: "join" });
  assert.deepEqual(seen.find(([t]) => t === ":join-failed")[1], { code: "room_full", message: "full" });
  assert.equal(conn.state, "closed");
  tick(10_000);
  assert.equal(FakeSocket.all.length, 1);
});

test("first connection failing is a join failure", () => {
  const { seen, ws } = connect();
  ws().drop(1006);
  assert.equal(seen.find(([t]) => t === ":join-failed")[1].code, "network");
});

test("reconnects with backoff and resumes with the token", () => {
  const { conn, ws } = connect();
  ws().open();
  ws().receive(WELCOME);
  ws().drop(1001, "server shutting down");
  assert.equal(conn.state, "reconnecting");
  assert.equal(FakeSocket.all.length, 1);
  tick(499);
  assert.equal(FakeSocket.all.length, 1);
  tick(1);
  assert.equal(FakeSocket.all.length, 2);
  ws().drop(1006); // still down: next try after 1 s
  tick(999);
  assert.equal(FakeSocket.all.length, 2);
  tick(1);
  assert.equal(FakeSocket.all.length, 3);
  ws().open();
  assert.deepEqual(ws().sent[0], { type: "join", room: "team", name: "Ada", v: 1, ref: "join", resume: "tok1" });
  ws().receive({ ...WELCOME, resumed: true, resume: "tok2" });
  assert.equal(conn.state, "open");
  assert.equal(conn.resumeToken, "tok2");
  ws().drop(1006); // backoff starts over after a success
  tick(500);
  assert.equal(FakeSocket.all.length, 4);
});

test("an expired resume token: join again as a new participant", () => {
  const { conn, seen, ws } = connect();
  ws().open();
  ws().receive(WELCOME);
  ws().drop(1006);
  tick(500);
  ws().open();
  ws().receive({ type: "error", code: "bad_resume", message: "expired", ref: "join" });
  assert.deepEqual(ws().sent.at(-1), { type: "join", room: "team", name: "Ada", v: 1, ref: "join" });
  assert.equal(seen.filter(([t]) => t === ":join-failed").length, 0);
  ws().receive({ ...WELCOME, id: "p_2" });
  assert.equal(conn.selfId, "p_2");
});

test("final close codes end the meeting instead of reconnecting", () => {
  const { conn, seen, ws } = connect();
  ws().open();
  ws().receive(WELCOME);
  ws().drop(4001, "removed by a host");
  assert.equal(conn.state, "closed");
  const ended = seen.find(([t]) => t === ":ended")[1];
  assert.equal(ended.closeCode, 4001);
  tick(10_000);
  assert.equal(FakeSocket.all.length, 1);
});

test("leave() sends leave and never reconnects", () => {
  const { conn, ws } = connect();
  ws().open();
  ws().receive(WELCOME);
  const sock = ws();
  conn.leave();
  assert.deepEqual(sock.sent.at(-1), { type: "leave" });
  assert.equal(conn.state, "closed");
  tick(10_000);
  assert.equal(FakeSocket.all.length, 1);
});

test("a silent socket is dropped and replaced", () => {
  const { conn, ws } = connect();
  ws().open();
  ws().receive(WELCOME);
  tick(10_000); // ping
  assert.deepEqual(ws().sent.at(-1), { type: "ping" });
  tick(20_000); // no traffic for 30 s: considered dead
  assert.equal(conn.state, "reconnecting");
  tick(500);
  assert.equal(FakeSocket.all.length, 2);
});

test("a renewed resume token (new role) is the one the next reconnect uses", () => {
  const { conn, seen, ws } = connect();
  ws().open();
  ws().receive(WELCOME);
  ws().receive({ type: "resume-token", token: "tok-host" });
  assert.equal(conn.resumeToken, "tok-host");
  assert.ok(!seen.some(([t]) => t === "resume-token"), "not an event for the UI");
  ws().drop(1001, "server shutting down");
  tick(500);
  ws().open();
  assert.equal(ws().sent[0].resume, "tok-host");
});
