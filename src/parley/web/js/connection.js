// The one WebSocket to the server: join, dispatch by message type, reconnect with resume.
//
//   const conn = new Connection({ url, room, name });
//   conn.on("welcome", (msg) => …);           // any server message type
//   conn.on(":state", ({ state }) => …);      // "connecting" | "waiting" (lobby) | "open" | "reconnecting" | "closed"
//   conn.on(":join-failed", ({ code, message }) => …);
//   conn.on(":ended", ({ closeCode, message }) => …);   // removed, meeting ended, …
//   conn.start();
//
// After a drop the connection retries with backoff (0.5 s, 1 s, 2 s, 4 s, then every 5 s)
// and joins again with the resume token of the last welcome, so the participant keeps its id.
// The room password and join token given to the constructor go into every join (reconnects
// included).  In the lobby ("lobby-wait") the state is "waiting" until the welcome comes;
// a host's denial (`error denied`) or the meeting ending there counts as a failed join.

import { backoffDelay } from "./core/rules.js";

/** @typedef {import("./core/protocol.js")} P */
/** @typedef {import("./core/protocol.js").ClientMessage} ClientMessage */
/** @typedef {"idle" | "connecting" | "waiting" | "open" | "reconnecting" | "closed"} ConnectionState */
/** @typedef {{ code: string, message?: string, closeCode?: number }} JoinFailure */

/**
 * What `on(type, fn)` hands to `fn`: the server message of that type (docs/protocol.md), or
 * one of the connection's own events (":state", ":join-failed", ":ended").
 * @typedef {{
 *   "welcome": import("./core/protocol.js").Welcome,
 *   "participant-joined": { participant: import("./core/protocol.js").Participant },
 *   "participant-updated": { participant: import("./core/protocol.js").Participant },
 *   "participant-left": { id: string, reason?: string },
 *   "presence": import("./core/big-room.js").Presence,
 *   "roster-page": import("./core/big-room.js").RosterPage,
 *   "chat": { message: import("./core/protocol.js").ChatMessage },
 *   "chat-ack": { id: number, ts: number, ref: string },
 *   "message-deleted": { id: number, room?: string, by?: string },
 *   "history": import("./core/protocol.js").History,
 *   "signal": import("./core/protocol.js").Signal,
 *   "reaction": import("./core/protocol.js").Reaction,
 *   "error": import("./core/protocol.js").ErrorMessage,
 *   "room-updated": { settings: import("./core/protocol.js").RawRoomSettings, recording?: boolean },
 *   "lobby": { waiting?: import("./core/protocol.js").LobbyEntry[] },
 *   "lobby-wait": { room?: string },
 *   "muted": { kind: import("./core/protocol.js").DeviceKind, by?: string },
 *   "removed": { by?: string, ban?: boolean },
 *   "meeting-ended": { by?: string },
 *   "speaker": { id: string | null },
 *   "poll": { poll: import("./core/protocol.js").PollInfo },
 *   "poll-voted": { poll: string, choices: number[], ref?: string },
 *   "breakouts": { state: import("./core/protocol.js").BreakoutsState },
 *   "breakout-help": { from: string, name: string, index: number, title: string },
 *   "breakout-message": { from: string, name: string, text: string },
 *   "pong": { ref?: string },
 *   ":state": { state: ConnectionState },
 *   ":join-failed": JoinFailure,
 *   ":ended": { closeCode: number, message: string, text: string },
 * }} ConnectionEvents
 */

/** Close codes after which reconnecting is pointless (see docs/protocol.md). */
/** @type {Record<number, string>} */
export const FINAL_CLOSE = {
  4000: "You joined from another tab/window.",
  4001: "You were removed from the meeting.",
  4002: "The meeting has ended.",
  4003: "Your request to join was declined.",
};

const PING_EVERY_MS = 10_000;
const DEAD_AFTER_MS = 25_000;

/** @param {Location} [loc] */
export function wsUrl(loc = window.location) {
  return `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/ws`;
}

export class Connection {
  /**
   * @param {{ url: string, room: string, name: string, password?: string | null, token?: string | null,
   *           resume?: string | null, WebSocketImpl?: typeof WebSocket, now?: () => number }} opts
   * `resume`: a resume token kept across a reload (from a breakout room).
   * `WebSocketImpl` and `now` are for tests (a fake socket, a fake clock).
   */
  constructor({ url, room, name, password = null, token = null, resume = null, WebSocketImpl = globalThis.WebSocket, now = () => Date.now() }) {
    this.now = now;
    this.password = password;
    this.token = token;
    this.waiting = false;
    this.url = url;
    this.room = room;
    this.name = name;
    this.WS = WebSocketImpl;
    /** @type {Map<string, Set<(data: any) => void>>} */
    this.handlers = new Map();
    /** @type {WebSocket | null} */
    this.ws = null;
    /** @type {ConnectionState} */
    this.state = "idle";
    /** @type {string | null} */
    this.resumeToken = resume;
    /** @type {string | null} */
    this.selfId = null;
    this.everJoined = false;
    this.closed = false;
    this.attempt = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.retryTimer = undefined;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.pingTimer = undefined;
    this.lastSeen = 0;
    this.refSeq = 0;
    this._onOnline = () => {
      if (this.state === "reconnecting") this._reconnectNow();
    };
  }

  /**
   * Call `fn` for every event `type`; returns a function that stops it.
   * @template {keyof ConnectionEvents} K
   * @param {K} type
   * @param {(data: ConnectionEvents[K]) => void} fn
   */
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type)?.add(fn);
    return () => this.handlers.get(type)?.delete(fn);
  }

  /**
   * @param {string} type
   * @param {unknown} data
   */
  _emit(type, data) {
    for (const fn of this.handlers.get(type) || []) {
      try {
        fn(data);
      } catch (err) {
        console.error(`parley: handler for ${type} failed`, err);
      }
    }
  }

  /** @param {ConnectionState} state */
  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this._emit(":state", { state });
  }

  /** A fresh correlation id for a request ("c12"). */
  nextRef(prefix = "r") {
    this.refSeq += 1;
    return `${prefix}${this.refSeq}`;
  }

  start() {
    this.closed = false;
    if (typeof window !== "undefined") window.addEventListener("online", this._onOnline);
    this._setState("connecting");
    this._open();
    this.pingTimer = setInterval(() => this._keepalive(), PING_EVERY_MS);
  }

  get isOpen() {
    return this.state === "open" && this.ws && this.ws.readyState === 1;
  }

  /**
   * Send a message if joined; returns false when not connected.
   * @param {ClientMessage} msg
   */
  send(msg) {
    if (!this.isOpen) return false;
    try {
      /** @type {WebSocket} */ (this.ws).send(JSON.stringify(msg));
      return true;
    } catch {
      return false;
    }
  }

  /** @param {string} name */
  setName(name) {
    this.name = name;
  }

  /** Leave the room (best effort) and close for good. */
  leave() {
    if (this.ws && this.ws.readyState === 1 && (this.everJoined || this.waiting)) {
      try {
        this.ws.send(JSON.stringify({ type: "leave" }));
      } catch {
        /* closing anyway */
      }
    }
    this.close();
  }

  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    if (typeof window !== "undefined") window.removeEventListener("online", this._onOnline);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.onmessage = null;
      ws.onerror = null;
      try {
        ws.close(1000, "leaving");
      } catch {
        /* already closed */
      }
    }
    this._setState("closed");
  }

  _open() {
    let ws;
    try {
      ws = new this.WS(this.url);
    } catch (err) {
      this._dropped(null);
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.lastSeen = this.now();
      this._sendJoin();
    };
    ws.onmessage = (ev) => this._onMessage(ev);
    ws.onclose = (ev) => {
      if (this.ws === ws) this._dropped(ev);
    };
    ws.onerror = () => {
      /* onclose follows */
    };
  }

  _sendJoin() {
    /** @type {ClientMessage} */
    const msg = { type: "join", room: this.room, name: this.name, v: 1, ref: "join" };
    if (this.resumeToken) msg.resume = this.resumeToken;
    if (this.password) msg.password = this.password;
    if (this.token) msg.token = this.token;
    /** @type {WebSocket} */ (this.ws).send(JSON.stringify(msg));
  }

  /** @param {MessageEvent} ev */
  _onMessage(ev) {
    this.lastSeen = this.now();
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (!msg || typeof msg.type !== "string") return;
    if (msg.type === "lobby-wait") {
      this.waiting = true;
      this.attempt = 0;
      this._setState("waiting");
    } else if (!this.everJoined && (msg.type === "meeting-ended" || (msg.type === "error" && msg.code === "denied"))) {
      // Turned away from the lobby: a failed join, not a reason to knock again.
      const code = msg.type === "meeting-ended" ? "ended" : "denied";
      this._emit(":join-failed", { code, message: msg.message || "" });
      this.close();
      return;
    } else if (msg.type === "welcome") {
      this.waiting = false;
      this.resumeToken = msg.resume;
      this.selfId = msg.id;
      this.everJoined = true;
      this.attempt = 0;
      this._setState("open");
    } else if (msg.type === "resume-token") {
      // Our role changed: the newest token names us (the server keeps the role itself).
      this.resumeToken = msg.token;
      return;
    } else if (msg.type === "error" && msg.ref === "join") {
      if (msg.code === "bad_resume" && this.resumeToken) {
        // The identity is gone (grace over, or another server): join as a new participant.
        this.resumeToken = null;
        this._sendJoin();
        return;
      }
      if (msg.code !== "already_joined") {
        this._emit(":join-failed", { code: msg.code, message: msg.message });
        this.close();
        return;
      }
    }
    this._emit(msg.type, msg);
  }

  /** @param {CloseEvent | null} ev null: no close event (the socket could not be made, or looked dead) */
  _dropped(ev) {
    this.ws = null;
    if (this.closed) return;
    const final = ev && FINAL_CLOSE[ev.code];
    if (final) {
      this.close();
      this._emit(":ended", { closeCode: ev.code, message: ev.reason || final, text: final });
      return;
    }
    if (!this.everJoined && !this.waiting) {
      this._emit(":join-failed", {
        code: "network",
        message: "Could not reach the server. Check your connection and try again.",
        closeCode: ev?.code,
      });
      this.close();
      return;
    }
    this._setState("reconnecting");
    clearTimeout(this.retryTimer);
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => this._open(), delay);
  }

  _reconnectNow() {
    clearTimeout(this.retryTimer);
    if (!this.ws) this._open();
  }

  _keepalive() {
    if (this.closed) return;
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) return;
    if (this.now() - this.lastSeen > DEAD_AFTER_MS) {
      // The socket looks dead (no pong, no traffic): drop it and reconnect now.
      ws.onclose = null;
      ws.onmessage = null;
      try {
        ws.close();
      } catch {
        /* ignore */
      }
      this._dropped(null);
      return;
    }
    if (this.state === "open" || this.state === "waiting") {
      try {
        ws.send(JSON.stringify({ type: "ping" }));
      } catch {
        /* onclose handles it */
      }
    }
  }
}
