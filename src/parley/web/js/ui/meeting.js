// The meeting: joins, dispatches the server's messages, keeps the roster and the media
// session, and composes the parts that own the rest:
//   local-media.js          our microphone, camera and screen share
//   moderation-controls.js  host actions, lobby, room settings, room flags
//   meeting-chat.js         chat messages, history, unread badge
//   meeting-bar.js          the bar's buttons, side panels, clock, media-mode badge
//   stage-tiles.js          the video tiles and the active speaker
import { Connection, wsUrl } from "../connection.js";
import * as R from "../core/roster.js";
import { mediaMode } from "../core/media-mode.js";
import { isPolite } from "../core/rules.js";
import { finalScreen, isHost, isObserver, mutedText, raisedHands } from "../core/moderation.js";
import { errorText } from "../core/text.js";
import { AudioLevels } from "../media/levels.js";
import { MeshSession } from "../media/mesh-session.js";
import { SfuSession } from "../media/sfu-session.js";
import { $ } from "./dom.js";
import { LocalMedia } from "./local-media.js";
import { MeetingBar } from "./meeting-bar.js";
import { MeetingChat } from "./meeting-chat.js";
import { ModerationControls } from "./moderation-controls.js";
import { RecordingControls } from "./recording-controls.js";
import { RetentionSetting } from "./retention-setting.js";
import { renderHands, renderPeople } from "./people.js";
import { BigPeople } from "./big-people.js";
import { applyPresence, stagePeople } from "../core/big-room.js";
import { chatState, inAudience, stageSettings } from "../core/stage.js";
import { MeetingPolls } from "./polls.js";
import { keepResume, MeetingBreakouts, takeKeptResume } from "./breakouts.js";
import { floatReaction } from "./reactions.js";
import { Stage } from "./stage.js";
import { StageTiles } from "./stage-tiles.js";
import { Toasts } from "./toast.js";

/** @typedef {import("../core/protocol.js").Participant} Participant */
/** @typedef {import("../core/protocol.js").Welcome} Welcome */
/** @typedef {import("../core/protocol.js").ErrorMessage} ErrorMessage */
/** @typedef {import("../core/protocol.js").Role} Role */
/** @typedef {import("./local-media.js").MediaSession} MediaSession */
/** @typedef {import("./stage-tiles.js").RemoteMedia} RemoteMedia */
/** @typedef {{ title: string, detail: string, rejoin?: boolean }} FinalScreen */
/** @typedef {{ code: string, message?: string }} JoinError */

/**
 * What the pre-join screen hands over.
 * @typedef {object} JoinChoice
 * @property {string} name
 * @property {MediaStreamTrack | null} [audio]
 * @property {MediaStreamTrack | null} [video]
 * @property {boolean} micOn
 * @property {boolean} camOn
 * @property {string | null} [password] the room password, if any
 * @property {string} [speakerId] the speaker picked on the pre-join screen
 * @property {{ mic?: string, camera?: string, speaker?: string }} [prefs] chosen device ids
 */

export class Meeting {
  /**
   * @param {{ room: string, choice: JoinChoice, onEnd: (info: FinalScreen) => void,
   *           onWaiting?: (waiting: boolean) => void, token?: string | null, relay?: boolean }} opts
   * `token` is a join token from `?token=`; `relay` (test/diagnostic only) forces TURN
   * relaying on every RTCPeerConnection.
   */
  constructor({ room, choice, onEnd, onWaiting = () => {}, token = null, relay = false }) {
    this.room = room;
    this.name = choice.name;
    this.password = choice.password || null;
    this.token = token;
    this.relay = relay;
    this.prefs = choice.prefs || {};
    this.onEnd = onEnd;
    this.onWaiting = onWaiting;
    this.abort = new AbortController();
    this.toasts = new Toasts($("#toasts"));
    const toast = (/** @type {string} */ text, /** @type {{ timeout?: number }} */ opts = {}) => this.toasts.show(text, opts);
    this.hand = false;
    /** The room's settings as the server sent them (stage mode, who may chat: core/stage.js). */
    /** @type {import("../core/protocol.js").RawRoomSettings | null | undefined} */
    this.rawSettings = null;

    /** @type {string | null} */
    this.selfId = null;
    /** The room we are in: the meeting's, or one of its breakouts. */
    this.roomName = room;
    /** @type {Map<string, Participant>} */
    this.roster = new Map();
    /** @type {Map<string, RemoteMedia>} */
    this.remoteMedia = new Map();
    /** @type {MediaSession | null} */
    this.session = null;
    /** @type {Connection | null} */
    this.conn = null;
    /** @type {{ resolve: () => void, reject: (err: JoinError) => void } | null} */
    this.joinWaiter = null;
    /** @type {Stage | null} */
    this.stage = null;
    /** @type {StageTiles | null} */
    this.tiles = null;
    this.levels = new AudioLevels();
    this.joined = false;
    /** Sent back to the lobby, waiting to be let in again. */
    this.inLobby = false;
    this.ended = false;
    /** @type {ReturnType<typeof setInterval>[]} */
    this.timers = [];

    this.el = {
      meeting: $("#meeting"),
      banner: $("#banner"),
      people: $("#people-list"),
      peopleCount: $("#people-count"),
      roomTitle: $("#room-title"),
      layer: $("#reactions-layer"),
      enableSound: $("#enable-sound"),
      handsSection: $("#hands-section"),
      handsList: $("#hands-list"),
    };
    /** A big room's people panel: count, search, pages (inactive in small rooms). */
    this.big = new BigPeople({
      list: this.el.people,
      send: (msg) => Boolean(this.conn?.send(msg)),
      onChange: () => this.render(),
    });
    const button = (/** @type {string} */ sel) => /** @type {HTMLButtonElement} */ ($(sel));
    const peopleBtn = button("#btn-people");
    const chatBtn = button("#btn-chat");
    const cam = button("#btn-cam");

    this.local = new LocalMedia(choice, this.prefs, {
      session: () => this.session,
      isObserver: () => isObserver(this.roster.get(this.selfId ?? "")),
      isEnded: () => this.ended,
      toast,
      camButton: cam,
      changed: () => {
        this.sendMedia();
        this.render();
      },
      screenStopped: () => this.stage?.remove(`${this.selfId}:screen`),
    });
    this.recording = new RecordingControls(
      { button: button("#btn-record"), indicator: $("#recording-indicator") },
      {
        send: (msg) => Boolean(this.conn?.send({ ...msg, ref: this.conn.nextRef("x") })),
        toast,
        room,
        token: () => this.conn?.resumeToken ?? null,
      },
    );
    this.retention = new RetentionSetting({
      send: (msg) => Boolean(this.conn?.send({ ...msg, ref: this.conn.nextRef("x") })),
      room,
      inBreakout: () => this.roomName !== this.room,
      token: () => this.conn?.resumeToken ?? null,
    });
    this.moderation = new ModerationControls(
      {
        muteAll: button("#btn-mute-all"),
        settingsBtn: button("#btn-settings"),
        lobbySection: $("#lobby-section"),
        lobbyList: $("#lobby-list"),
        peopleBtn,
        roomFlags: $("#room-flags"),
      },
      {
        send: (msg) => Boolean(this.conn?.send({ ...msg, ref: this.conn.nextRef("x") })),
        toast,
        onSettingsOpen: () => {
          this.recording.showList();
          void this.retention.load();
        },
        labelOf: (pid) => {
          const p = this.roster.get(pid);
          return p ? (this.labels()[pid] ?? p.name) : null;
        },
        isEnded: () => this.ended,
      },
    );
    this.chat = new MeetingChat(
      { unread: $("#unread"), chatBtn },
      {
        send: (msg) => Boolean(this.conn?.send(msg)),
        nextRef: (prefix) => this.conn?.nextRef(prefix) ?? prefix,
        context: () => ({ selfId: this.selfId, labels: this.labels() }),
        recipients: () => R.sortedParticipants(this.roster, this.selfId),
        panelHidden: () => this.bar.el.chatPanel.hidden,
        room: this.room,
        token: () => this.conn?.resumeToken ?? null,
        isHost: () => isHost(this.roster.get(this.selfId ?? "")),
        notify: (text) => this.toasts.show(text),
      },
    );
    this.polls = new MeetingPolls(
      { button: button("#btn-poll"), container: $("#polls") },
      {
        send: (msg) => Boolean(this.conn?.send(msg)),
        toast,
        isHost: () => this.selfIsHost(),
      },
    );
    this.breakouts = new MeetingBreakouts(
      { button: button("#btn-breakouts"), bar: $("#breakout-bar") },
      {
        send: (msg) => Boolean(this.conn?.send(msg)),
        toast,
        isHost: () => this.selfIsHost(),
        others: () =>
          R.sortedParticipants(this.roster, this.selfId)
            .filter((p) => p.id !== this.selfId)
            .map((p) => ({ id: p.id, label: this.labels()[p.id] ?? p.name, host: p.role === "host" })),
      },
    );
    this.bar = new MeetingBar(
      {
        mic: button("#btn-mic"),
        cam,
        screen: button("#btn-screen"),
        hand: button("#btn-hand"),
        react: button("#btn-react"),
        reactMenu: $("#reaction-menu"),
        leave: button("#btn-leave"),
        invite: button("#btn-invite"),
        peopleBtn,
        chatBtn,
        peoplePanel: $("#people-panel"),
        chatPanel: $("#chat-panel"),
        sidebar: $("#sidebar"),
        clock: $("#clock"),
        mediaMode: $("#media-mode"),
        observerNote: $("#observer-note"),
        audienceNote: $("#audience-note"),
      },
      {
        mic: () => this.local.toggleMic(),
        cam: () => this.local.toggleCam(),
        screen: () => this.local.toggleScreen(),
        hand: () => this.toggleHand(),
        leave: () => this.leave(),
        invite: () => this.copyInvite(),
        react: (emoji) => this.conn?.send({ type: "reaction", emoji, ref: "r" }),
        chatOpened: () => this.chat.markRead(),
        panelsChanged: () => this.stage?.layout(),
      },
    );
  }

  // ---------------------------------------------------------------- joining

  /**
   * Connect and join; resolves on the first welcome, rejects with { code, message }.
   * @returns {Promise<void>}
   */
  join() {
    return new Promise((resolve, reject) => {
      this.joinWaiter = { resolve, reject };
      const resume = takeKeptResume(this.room);
      const conn = new Connection({ url: wsUrl(), room: this.room, name: this.name, password: this.password, token: this.token, resume });
      this.conn = conn;
      conn.on("welcome", (m) => this.onWelcome(m));
      conn.on("participant-joined", (m) => this.onJoined(m.participant));
      conn.on("participant-updated", (m) => this.onUpdated(m.participant));
      conn.on("participant-left", (m) => this.onLeft(m));
      conn.on("presence", (m) => this.onPresence(m));
      conn.on("roster-page", (m) => this.big.page(m));
      conn.on("chat", (m) => this.chat.received(m.message));
      conn.on("chat-ack", (m) => this.chat.acked(m.ref));
      conn.on("message-deleted", (m) => this.chat.deleted(m.id));
      conn.on("history", (m) => (m.room && m.room !== this.roomName ? this.breakouts.mainChat?.history(m) : this.chat.history(m)));
      conn.on("signal", (m) => this.onSignal(m));
      conn.on("reaction", (m) => this.onReaction(m));
      conn.on("error", (m) => this.onError(m));
      conn.on("room-updated", (m) => {
        this.recording.setRecording(m.recording);
        this.onRoomUpdated(m.settings);
      });
      conn.on("poll", (m) => this.polls.received(m.poll));
      conn.on("poll-voted", (m) => this.polls.voted(m.poll, m.choices));
      conn.on("breakouts", (m) => this.breakouts.received(m.state));
      conn.on("breakout-help", (m) => this.breakouts.helpCalled(m));
      conn.on("breakout-message", (m) => this.breakouts.broadcast(m));
      conn.on("lobby", (m) => this.onLobby(m.waiting || []));
      conn.on("muted", (m) => this.onMuted(m.kind));
      conn.on("removed", (m) => this.end(finalScreen("removed", { ban: Boolean(m.ban) })));
      conn.on("meeting-ended", () => {
        if (this.joined) this.end(finalScreen("meeting-ended"));
      });
      conn.on(":state", ({ state }) => this.onConnState(state));
      conn.on(":join-failed", (e) => this.onJoinFailed(e));
      conn.on(":ended", (e) => {
        if (!this.joined) this.onJoinFailed({ code: e.closeCode === 4003 ? "denied" : "ended", message: e.text });
        else this.end(finalScreen(e.closeCode));
      });
      conn.start();
    });
  }

  /** Give up waiting in the lobby (the "Cancel" button): leave, and the join fails quietly. */
  cancelWaiting() {
    if (this.joined) return;
    this.conn?.leave();
    this.onJoinFailed({ code: "cancelled", message: "" });
  }

  /** @param {JoinError} err */
  onJoinFailed(err) {
    if (!this.joined) {
      this.onWaiting(false);
      this.teardown({ stopTracks: false });
      this.joinWaiter?.reject(err);
      return;
    }
    this.end({ title: "You were disconnected", detail: errorText(err.code, err.message) });
  }

  /** @param {Welcome} msg */
  onWelcome(msg) {
    // Moved into a breakout or back (the same socket and identity): a new room's media.
    const sameRoom = !this.joined || msg.room?.name === this.roomName;
    const sameIdentity = this.joined && msg.id === this.selfId && sameRoom;
    this.roomName = msg.room?.name ?? this.room;
    this.moderation.setSettings(msg.room?.settings);
    this.rawSettings = msg.room?.settings ?? null;
    this.recording.setMode(mediaMode(msg.room));
    this.recording.setRecording(msg.room?.recording);
    const me = (msg.participants || []).find((p) => p.id === msg.id);
    if (isObserver(me)) this.releaseMedia(); // observers publish nothing
    if (!isHost(me)) this.moderation.clearLobby();
    this.big.welcome(msg);
    if (!this.joined) {
      this.selfId = msg.id;
      this.joined = true;
      this.onWaiting(false);
      this.mountUi();
      this.startSession(msg);
      this.joinWaiter?.resolve();
    } else if (!sameIdentity || this.inLobby) {
      // The old identity expired, or we were let back in from the lobby: start over.
      this.inLobby = false;
      this.el.banner.textContent = "";
      this.el.banner.classList.remove("banner--show");
      this.session?.close();
      const stage = /** @type {Stage} */ (this.stage);
      for (const key of stage.keys()) stage.remove(key);
      this.remoteMedia.clear();
      this.levels.close();
      this.selfId = msg.id;
      this.startSession(msg);
    } else {
      this.reconcile(msg);
    }
    if (!sameRoom) this.chat.changedRoom();
    this.polls.welcome();
    this.breakouts.welcome(msg);
    this.chat.welcome(msg.history, Boolean(msg.history_more), msg.limits?.chat_max_chars);
    this.syncSelfStateToServer(msg.participants.find((p) => p.id === this.selfId));
  }

  /** @param {Welcome} msg */
  startSession(msg) {
    this.roster = R.rosterFrom(msg.participants);
    const mode = mediaMode(msg.room);
    const Session = mode === "sfu" ? SfuSession : MeshSession;
    this.bar.renderMediaMode(mode);
    /** @type {MediaSession} */
    const session = new Session({
      iceServers: msg.ice_servers || [],
      iceTransportPolicy: this.relay ? "relay" : null,
      sendSignal: (/** @type {string} */ to, /** @type {unknown} */ payload) =>
        this.conn?.send({ type: "signal", to, payload, ref: "sig" }),
    });
    this.session = session;
    session.addEventListener("peer-media", (e) => this.onPeerMedia(/** @type {CustomEvent} */ (e).detail));
    session.addEventListener("peer-state", (e) => this.onPeerState(/** @type {CustomEvent} */ (e).detail));
    session.start(this.local.stream);
    const selfId = /** @type {string} */ (this.selfId);
    for (const id of this.roster.keys()) {
      if (id !== selfId) session.addPeer(id, isPolite(selfId, id));
    }
    if (this.local.screen) session.setScreen(this.local.screen);
    this.render();
  }

  /**
   * After a resume: keep the connections that still work, drop the gone, add the new.
   * @param {Welcome} msg
   */
  reconcile(msg) {
    const session = /** @type {MediaSession} */ (this.session);
    const selfId = /** @type {string} */ (this.selfId);
    const before = [...this.roster.keys()];
    this.roster = R.rosterFrom(msg.participants);
    session.setIceServers(msg.ice_servers || []);
    const { added, removed } = R.diffIds(before, [...this.roster.keys()]);
    for (const id of removed) this.dropPeer(id);
    for (const id of added) if (id !== selfId) session.addPeer(id, isPolite(selfId, id));
    for (const id of this.roster.keys()) {
      const state = session.connectionState(id);
      if (id !== selfId && (state === "closed" || state === "failed") && !added.includes(id)) {
        session.removePeer(id);
        session.addPeer(id, isPolite(selfId, id));
      }
    }
    session.refresh();
    this.render();
  }

  /**
   * Tell the server our real microphone/camera/screen/hand state if it differs.
   * @param {Participant | undefined} serverSelf
   */
  syncSelfStateToServer(serverSelf) {
    const conn = /** @type {Connection} */ (this.conn);
    if (isObserver(serverSelf)) {
      if (serverSelf?.hand !== this.hand) conn.send({ type: "hand", raised: this.hand, ref: "k" });
      return; // the server refuses media state from observers
    }
    const mine = this.local.state();
    if (!serverSelf || serverSelf.mic !== mine.mic || serverSelf.cam !== mine.cam || serverSelf.screen !== mine.screen) {
      this.sendMedia();
    }
    if (serverSelf && serverSelf.hand !== this.hand) conn.send({ type: "hand", raised: this.hand, ref: "k" });
  }

  // ---------------------------------------------------------------- UI setup

  mountUi() {
    const o = { signal: this.abort.signal };
    const el = this.el;
    el.meeting.hidden = false;
    el.roomTitle.textContent = this.room;
    document.title = `${this.room} · Parley`;

    const stage = new Stage({
      stage: $("#stage"),
      main: $("#stage-main"),
      grid: $("#grid"),
      onAutoplayBlocked: () => {
        el.enableSound.hidden = false;
      },
    });
    this.stage = stage;
    this.tiles = new StageTiles(stage);
    stage.setSinkId(this.prefs.speaker || "");
    el.enableSound.addEventListener(
      "click",
      () => {
        stage.enableSound();
        el.enableSound.hidden = true;
      },
      o,
    );

    this.chat.mount(this.abort.signal);
    this.bar.mount(this.abort.signal);
    this.moderation.mount(this.abort.signal);
    this.polls.mount(this.abort.signal);
    this.breakouts.mount(this.abort.signal);
    this.recording.mount(this.abort.signal);
    window.addEventListener("pagehide", () => this.onPageHide(), o);

    this.bar.openPanelsToFit();
    this.timers.push(this.bar.startClock());
    this.timers.push(setInterval(() => this.detectSpeaker(), 250));
  }

  // ---------------------------------------------------------------- server messages

  /** @param {Participant} p */
  onJoined(p) {
    this.roster = R.upsert(this.roster, p);
    if (p.id !== this.selfId && this.session) this.session.addPeer(p.id, isPolite(/** @type {string} */ (this.selfId), p.id));
    this.toasts.show(`${this.labels()[p.id] ?? p.name} joined`);
    this.render();
  }

  /** @param {Participant} p */
  onUpdated(p) {
    const before = this.roster.get(p.id);
    this.roster = R.upsert(this.roster, p);
    if (p.id === this.selfId) {
      if (before && before.role !== p.role) this.onOwnRole(before.role, p.role);
      // A host lowered our hand (our own changes come back the same way).
      if (!p.hand && this.hand) this.hand = false;
    }
    if (p.id !== this.selfId && p.hand && before && !before.hand) {
      this.toasts.show(`${this.labels()[p.id] ?? p.name} raised a hand`);
    }
    this.render();
  }

  /**
   * A host changed our role.
   * @param {Role | undefined} before
   * @param {Role | undefined} now
   */
  onOwnRole(before, now) {
    // Invited to the stage or moved back: the server lowered the hand (the answer to it).
    if ((before === "observer") !== (now === "observer")) this.hand = false;
    if (now === "observer") this.releaseMedia();
    this.moderation.ownRoleChanged(before, now);
  }

  /** @param {import("../core/protocol.js").RawRoomSettings} settings */
  onRoomUpdated(settings) {
    this.moderation.setSettings(settings);
    this.rawSettings = settings;
    this.render();
  }

  /** @param {import("../core/protocol.js").LobbyEntry[]} waiting */
  onLobby(waiting) {
    this.moderation.setLobby(waiting, this.selfIsHost());
    this.render();
  }

  /**
   * A host turned one of our devices off: obey; only we can turn it back on.
   * @param {import("../core/protocol.js").DeviceKind} kind
   */
  async onMuted(kind) {
    await this.local.obeyMute(kind);
    this.toasts.show(mutedText(kind));
    this.render();
  }

  /** Observers publish nothing: stop and drop every local track. */
  releaseMedia() {
    this.local.release();
    this.levels.unwatch(this.selfId ?? "");
    this.render();
  }

  /** @returns {Role} */
  selfRole() {
    return this.roster.get(this.selfId ?? "")?.role ?? "participant";
  }

  selfIsHost() {
    return this.selfRole() === "host";
  }

  /** @param {{ id: string, reason?: string }} msg a `participant-left` */
  onLeft({ id, reason }) {
    const p = this.roster.get(id);
    const label = this.labels()[id];
    this.roster = R.remove(this.roster, id);
    this.dropPeer(id);
    if (p) this.toasts.show(reason === "moved" ? `${label ?? p.name} went to another room` : `${label ?? p.name} left`);
    this.render();
  }

  /**
   * A big room's batched joins, leaves and changes (no toast each: there are too many).
   * @param {import("../core/big-room.js").Presence} msg
   */
  onPresence(msg) {
    const before = this.roster;
    this.roster = applyPresence(this.roster, msg);
    this.big.presence(msg);
    const selfId = /** @type {string} */ (this.selfId);
    for (const gone of msg.left || []) if (gone.id !== selfId) this.dropPeer(gone.id);
    for (const p of msg.joined || []) {
      if (p.id !== selfId && !before.has(p.id)) this.session?.addPeer(p.id, isPolite(selfId, p.id));
    }
    const me = (msg.updated || []).find((p) => p.id === selfId);
    if (me) {
      const mine = before.get(selfId);
      if (mine && mine.role !== me.role) this.onOwnRole(mine.role, me.role);
      if (!me.hand && this.hand) this.hand = false;
    }
    this.render();
  }

  /** @param {string} id */
  dropPeer(id) {
    this.session?.removePeer(id);
    this.remoteMedia.delete(id);
    this.levels.unwatch(id);
    this.stage?.remove(id);
    this.stage?.remove(`${id}:screen`);
  }

  /** @param {import("../core/protocol.js").Signal} msg */
  onSignal({ from, payload }) {
    if (!this.session || from === this.selfId) return;
    const known = this.roster.has(from);
    this.session.handleSignal(from, payload, known ? isPolite(/** @type {string} */ (this.selfId), from) : undefined);
  }

  /** @param {import("../core/protocol.js").Reaction} msg */
  onReaction({ from, emoji }) {
    const p = this.roster.get(from);
    const label = from === this.selfId ? "You" : p ? this.labels()[from] : "";
    floatReaction(this.el.layer, emoji, label);
  }

  /** @param {ErrorMessage} msg */
  onError(msg) {
    const ref = msg.ref || "";
    const text = errorText(msg.code, msg.message);
    if (ref.startsWith("c")) this.chat.refused(ref, text);
    else if (ref === "sig") return;
    else if (ref.startsWith("h")) this.chat.historyFailed();
    else this.toasts.show(text);
  }

  /** @param {string} state the connection's state */
  onConnState(state) {
    if (!this.joined) {
      if (state === "waiting") this.onWaiting(true);
      return;
    }
    const banner = this.el.banner;
    if (state === "waiting") {
      this.toLobby();
    } else if (state === "reconnecting") {
      banner.textContent = "Reconnecting…";
      banner.classList.add("banner--show");
      this.chat.connectionLost();
    } else if (state === "open") {
      banner.textContent = "";
      banner.classList.remove("banner--show");
    }
  }

  /** Sent back to the lobby (by the room's policy): no media until a host lets us in again. */
  toLobby() {
    this.inLobby = true;
    this.session?.close();
    this.session = null;
    const stage = /** @type {Stage} */ (this.stage);
    for (const key of stage.keys()) stage.remove(key);
    this.remoteMedia.clear();
    // Only ourselves until we are let in again (the welcome then brings everyone).
    const me = this.roster.get(this.selfId ?? "");
    this.roster = R.rosterFrom(me ? [me] : []);
    this.el.banner.textContent = "You were moved to the lobby. A host can let you back in.";
    this.el.banner.classList.add("banner--show");
    this.render();
  }

  // ---------------------------------------------------------------- media

  /** @param {{ id: string, camera: MediaStream | null, screen: MediaStream | null }} detail */
  onPeerMedia({ id, camera, screen }) {
    if (!camera && !screen) this.remoteMedia.delete(id);
    else this.remoteMedia.set(id, { camera, screen });
    if (camera) this.levels.watch(id, camera);
    else this.levels.unwatch(id);
    this.render();
  }

  /** @param {{ id: string, state: string }} detail */
  onPeerState({ id, state }) {
    const tile = this.stage?.tiles.get(id);
    if (tile) tile.el.classList.toggle("tile--connecting", state !== "connected" && state !== "closed");
  }

  sendMedia() {
    const { mic, cam, screen } = this.local.state();
    return Boolean(this.conn?.send({ type: "media", mic, cam, screen, ref: "m" }));
  }

  toggleHand() {
    const raised = !this.hand;
    if (!this.conn?.send({ type: "hand", raised, ref: "k" })) {
      this.toasts.show("Not connected right now.");
      return;
    }
    this.hand = raised;
    this.render();
  }

  detectSpeaker() {
    if (!this.tiles) return;
    /** @type {Record<string, number>} */
    const levels = {};
    for (const p of this.roster.values()) {
      const micOn = p.id === this.selfId ? this.local.micOn : p.mic;
      if (micOn) levels[p.id] = this.levels.level(p.id);
    }
    this.tiles.detectSpeaker(levels);
  }

  // ---------------------------------------------------------------- rendering

  /** Everyone's label, namesakes told apart ("Ada", "Ada (2)"). */
  labels() {
    return R.distinctLabels(this.roster);
  }

  /** Participants as shown: our own entry reflects local state immediately. */
  people() {
    const selfId = this.selfId ?? "";
    const self = this.roster.get(selfId);
    if (self) {
      this.roster.set(selfId, {
        ...self,
        mic: this.local.micOn,
        cam: this.local.camOn,
        screen: Boolean(this.local.screen),
        hand: this.hand,
        hand_at: this.hand ? (self.hand_at ?? Date.now()) : null,
      });
    }
    return R.sortedParticipants(this.roster, this.selfId);
  }

  render() {
    if (!this.stage || !this.tiles || this.ended) return;
    const people = this.people();
    const labels = this.labels();
    const handPos = R.handQueue(this.roster);
    const selfRole = this.selfRole();
    const me = this.roster.get(this.selfId ?? "");
    renderPeople(this.el.people, this.big.active ? this.big.rows(people, this.roster) : people, {
      selfId: this.selfId,
      selfRole,
      stage: stageSettings(this.rawSettings).stage,
      labels,
      handPos,
      onAction: (pid, action) => this.moderation.hostAction(pid, action),
    });
    renderHands(this.el.handsSection, this.el.handsList, raisedHands(people), labels);
    this.moderation.render(selfRole === "host");
    this.polls.render(selfRole === "host");
    this.breakouts.render(selfRole === "host");
    this.recording.render(selfRole === "host");
    if (this.big.active) this.big.render();
    this.el.peopleCount.textContent = String(this.big.active ? this.big.count : people.length);
    this.chat.renderRecipients();
    this.chat.setRestriction(chatState(me, this.rawSettings));
    this.bar.render({
      micOn: this.local.micOn,
      camOn: this.local.camOn,
      sharing: Boolean(this.local.screen),
      hand: this.hand,
      observer: isObserver(me),
      audience: inAudience(me, this.rawSettings),
    });
    const onStage = this.big.active ? stagePeople(people, this.selfId) : people;
    this.tiles.render(onStage, { selfId: this.selfId, labels, handPos, local: this.local, remote: this.remoteMedia });
    if (this.local.audio) this.levels.watch(this.selfId ?? "", this.local.stream);
  }

  // ---------------------------------------------------------------- leaving

  async copyInvite() {
    const url = `${location.origin}/r/${encodeURIComponent(this.room)}`;
    try {
      await navigator.clipboard.writeText(url);
      this.toasts.show("Invite link copied");
    } catch {
      this.toasts.show(`Share this link: ${url}`, { timeout: 10_000 });
    }
  }

  /** The page goes away: leave, unless in a breakout, where a reload should land back. */
  onPageHide() {
    const token = this.conn?.resumeToken;
    if (this.breakouts.here && token) keepResume(this.room, token);
    else this.conn?.leave();
  }

  leave() {
    this.conn?.leave();
    this.end({ title: "You left the meeting", detail: "" });
  }

  /** @param {FinalScreen} info */
  end(info) {
    if (this.ended) return;
    this.conn?.close();
    this.teardown({ stopTracks: true });
    this.onEnd(info);
  }

  /** @param {{ stopTracks: boolean }} opts */
  teardown({ stopTracks }) {
    this.ended = true;
    this.abort.abort();
    for (const t of this.timers) clearInterval(t);
    this.big.destroy();
    this.session?.close();
    this.levels.close();
    this.stage?.destroy();
    this.chat.teardown();
    this.el.meeting.hidden = true;
    this.el.banner.classList.remove("banner--show");
    this.el.enableSound.hidden = true;
    this.bar.teardown();
    this.moderation.teardown();
    this.polls.teardown();
    this.breakouts.teardown();
    this.recording.teardown();
    this.el.handsSection.hidden = true;
    if (stopTracks) this.local.stopAll();
  }
}
