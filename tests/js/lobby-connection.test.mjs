// The WebSocket wrapper and access control: password/token in every join, the lobby.
import assert from "node:assert/strict";
import { test } from "node:test";

import { FakeSocket, WELCOME, connectionHarness } from "./fake-socket.mjs";

const { connect, tick } = connectionHarness(["welcome", "lobby-wait", "error", ":state", ":join-failed", ":ended"]);

test("password and token go into every join, reconnects included", () => {
  const { ws } = connect({ password: "s3cret", token: "a.b.c" });
  ws().open();
  assert.deepEqual(ws().sent[0], { type: "join", room: "team", name: "Ada", v: 1, ref: "join", password: "s3cret", token: "a.b.c" });
  ws().receive(WELCOME);
  ws().drop(1006);
  tick(500);
  ws().open();
  assert.deepEqual(ws().sent[0], {
    type: "join", room: "team", name: "Ada", v: 1, ref: "join", resume: "tok1", password: "s3cret", token: "a.b.c",
  });
});

test("no password or token fields when none were given", () => {
  const { ws } = connect();
  ws().open();
  assert.equal("password" in ws().sent[0], false);
  assert.equal("token" in ws().sent[0], false);
});

test("a wrong password is a join failure with its code", () => {
  const { conn, seen, ws } = connect({ password: "nope" });
  ws().open();
  ws().receive({ type: "error", code: "bad_password", message: "wrong room password", ref: "join" });
  assert.deepEqual(seen.find(([t]) => t === ":join-failed")[1], { code: "bad_password", message: "wrong room password" });
  assert.equal(conn.state, "closed");
});

test("lobby: waiting state, pings keep it alive, then the welcome", () => {
  const { conn, seen, ws } = connect();
  ws().open();
  ws().receive({ type: "lobby-wait", room: "team" });
  assert.equal(conn.state, "waiting");
  assert.ok(seen.some(([t]) => t === "lobby-wait"));
  for (let i = 0; i < 4; i += 1) {
    tick(10_000);
    assert.deepEqual(ws().sent.at(-1), { type: "ping" });
    ws().receive({ type: "pong" });
  }
  assert.equal(FakeSocket.all.length, 1);
  assert.equal(conn.state, "waiting");
  ws().receive(WELCOME);
  assert.equal(conn.state, "open");
  assert.equal(conn.waiting, false);
});

test("lobby: a denial is a join failure (no reconnect)", () => {
  const { conn, seen, ws } = connect();
  ws().open();
  ws().receive({ type: "lobby-wait", room: "team" });
  ws().receive({ type: "error", code: "denied", message: "a host declined your request to join" });
  assert.equal(seen.find(([t]) => t === ":join-failed")[1].code, "denied");
  assert.equal(conn.state, "closed");
  tick(10_000);
  assert.equal(FakeSocket.all.length, 1);
});

test("lobby: the meeting ending while waiting is a join failure", () => {
  const { conn, seen, ws } = connect();
  ws().open();
  ws().receive({ type: "lobby-wait", room: "team" });
  ws().receive({ type: "meeting-ended", by: "p_9" });
  assert.equal(seen.find(([t]) => t === ":join-failed")[1].code, "ended");
  assert.equal(conn.state, "closed");
});

test("lobby: leave() while waiting sends leave", () => {
  const { conn, ws } = connect();
  ws().open();
  ws().receive({ type: "lobby-wait", room: "team" });
  const sock = ws();
  conn.leave();
  assert.deepEqual(sock.sent.at(-1), { type: "leave" });
  assert.equal(conn.state, "closed");
});

test("lobby: a dropped socket while waiting knocks again", () => {
  const { conn, seen, ws } = connect();
  ws().open();
  ws().receive({ type: "lobby-wait", room: "team" });
  ws().drop(1006);
  assert.equal(seen.filter(([t]) => t === ":join-failed").length, 0);
  tick(500);
  assert.equal(FakeSocket.all.length, 2);
  ws().open();
  assert.deepEqual(ws().sent[0], { type: "join", room: "team", name: "Ada", v: 1, ref: "join" });
  assert.equal(conn.state, "reconnecting");
});

test("removed: close 4001 ends for good", () => {
  const { conn, seen, ws } = connect();
  ws().open();
  ws().receive(WELCOME);
  ws().drop(4001, "removed by a host");
  assert.equal(seen.find(([t]) => t === ":ended")[1].closeCode, 4001);
  tick(10_000);
  assert.equal(FakeSocket.all.length, 1);
  assert.equal(conn.state, "closed");
});
