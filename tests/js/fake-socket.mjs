// A WebSocket stand-in for the connection tests: records what is sent, and lets a
// test open, feed and drop the socket; plus the set-up both connection test files share.
import { afterEach, beforeEach, mock } from "node:test";

import { Connection } from "../../src/parley/web/js/connection.js";

export const WELCOME = { type: "welcome", id: "p_1", resume: "tok1", resumed: false, participants: [], history: [] };
export class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.all.push(this);
  }
  send(data) {
    this.sent.push(JSON.parse(data));
  }
  close(code = 1000) {
    this.readyState = 3;
    this.closedWith = code;
  }
  // test helpers
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  receive(msg) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  drop(code = 1006, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

/**
 * Fake timers and sockets for one test file: `connect(extra)` starts a Connection
 * that records the events named in `events`; `tick(ms)` advances time.
 */
export function connectionHarness(events) {
  let clock = 0;
  beforeEach(() => {
    FakeSocket.all = [];
    clock = 0;
    mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  });
  afterEach(() => {
    mock.timers.reset();
  });
  const tick = (ms) => {
    clock += ms;
    mock.timers.tick(ms);
  };
  const connect = (extra = {}) => {
    const conn = new Connection({ url: "ws://x/ws", room: "team", name: "Ada", WebSocketImpl: FakeSocket, now: () => clock, ...extra });
    const seen = [];
    for (const t of events) conn.on(t, (m) => seen.push([t, m]));
    conn.start();
    return { conn, seen, ws: () => FakeSocket.all[FakeSocket.all.length - 1] };
  };
  return { connect, tick };
}
