// The meeting: wires the connection, the media session and the views together.
import { Connection, wsUrl } from "../connection.js";
import { isFromOthers, mergeMessages, oldestId } from "../core/chat.js";
import * as R from "../core/roster.js";
import { mediaMode, mediaModeInfo } from "../core/media-mode.js";
import { isPolite, pickSpeaker, smoothLevels } from "../core/rules.js";
import { finalScreen, isHost, isObserver, mutedText, newlyWaiting, raisedHands, roomSettings } from "../core/moderation.js";
import { errorText, initials } from "../core/text.js";
import { canShareScreen, describeError, getCameraTrack, getMicTrack, getScreen } from "../media/devices.js";
import { AudioLevels } from "../media/levels.js";
import { MeshSession } from "../media/mesh-session.js";
import { SfuSession } from "../media/sfu-session.js";
import { ChatView } from "./chat-view.js";
import { confirmDialog, closeConfirm, SettingsDialog } from "./dialogs.js";
import { $, clear, h, icon, setIcon, setPressed } from "./dom.js";
import { renderHands, renderLobby, renderPeople } from "./people.js";
import { buildReactionMenu, floatReaction } from "./reactions.js";
import { Stage } from "./stage.js";
import { Toasts } from "./toast.js";

const WIDE = "(min-width: 900px)";

export class Meeting {
  /**
   * @param {{ room: string, choice: { name, audio, video, micOn, camOn, speakerId, prefs },
   *           onEnd: (info: { title: string, detail: string, rejoin?: boolean }) => void,
   *           onWaiting?: (waiting: boolean) => void, token?: string, relay?: boolean }} opts
   * `choice.password` is the room password (if any); `token` a join token from `?token=`;
   * `relay` (test/diagnostic only) forces TURN relaying on every RTCPeerConnection.
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
    this.settings = roomSettings(null);
    this.lobby = []; // hosts: who waits in the lobby
    this.settingsDialog = null;
    this.abort = new AbortController();
    this.toasts = new Toasts($("#toasts"));

    const carrier = new MediaStream([choice.audio, choice.video].filter(Boolean));
    this.local = {
      audio: choice.audio || null,
      video: choice.video || null,
      micOn: Boolean(choice.audio) && choice.micOn,
      camOn: Boolean(choice.video) && choice.camOn,
      screen: null,
      stream: carrier,
    };
    if (this.local.audio) this.local.audio.enabled = this.local.micOn;
    this.hand = false;

    this.selfId = null;
    this.roster = new Map();
    this.messages = [];
    this.historyMore = false;
    this.loadingHistory = false;
    this.limits = { chat_max_chars: 4000 };
    this.unread = 0;
    this.remoteMedia = new Map(); // id -> { camera, screen }
    this.session = null;
    this.levels = new AudioLevels();
    this.speaker = null;
    this.joined = false;
    this.ended = false;
    this.timers = [];

    this.el = {
      meeting: $("#meeting"),
      banner: $("#banner"),
      people: $("#people-list"),
      peoplePanel: $("#people-panel"),
      chatPanel: $("#chat-panel"),
      sidebar: $("#sidebar"),
      mic: $("#btn-mic"),
      cam: $("#btn-cam"),
      screen: $("#btn-screen"),
      hand: $("#btn-hand"),
      react: $("#btn-react"),
      reactMenu: $("#reaction-menu"),
      leave: $("#btn-leave"),
      invite: $("#btn-invite"),
      peopleBtn: $("#btn-people"),
      chatBtn: $("#btn-chat"),
      peopleCount: $("#people-count"),
      unread: $("#unread"),
      clock: $("#clock"),
      roomTitle: $("#room-title"),
      layer: $("#reactions-layer"),
      enableSound: $("#enable-sound"),
      muteAll: $("#btn-mute-all"),
      settingsBtn: $("#btn-settings"),
      roomFlags: $("#room-flags"),
      mediaMode: $("#media-mode"),
      observerNote: $("#observer-note"),
      lobbySection: $("#lobby-section"),
      lobbyList: $("#lobby-list"),
      handsSection: $("#hands-section"),
      handsList: $("#hands-list"),
    };
  }

  // ---------------------------------------------------------------- joining

  /** Connect and join; resolves on the first welcome, rejects with { code, message }. */
  join() {
    return new Promise((resolve, reject) => {
      this.joinWaiter = { resolve, reject };
      const conn = new Connection({ url: wsUrl(), room: this.room, name: this.name, password: this.password, token: this.token });
      this.conn = conn;
      conn.on("welcome", (m) => this.onWelcome(m));
      conn.on("participant-joined", (m) => this.onJoined(m.participant));
      conn.on("participant-updated", (m) => this.onUpdated(m.participant));
      conn.on("participant-left", (m) => this.onLeft(m));
      conn.on("chat", (m) => this.onChat(m.message));
      conn.on("chat-ack", (m) => this.chat?.acked(m.ref));
      conn.on("history", (m) => this.onHistory(m));
      conn.on("signal", (m) => this.onSignal(m));
      conn.on("reaction", (m) => this.onReaction(m));
      conn.on("error", (m) => this.onError(m));
      conn.on("room-updated", (m) => this.onRoomUpdated(m.settings));
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

  onJoinFailed(err) {
    if (!this.joined) {
      this.onWaiting(false);
      this.teardown({ stopTracks: false });
      this.joinWaiter?.reject(err);
      return;
    }
    this.end({ title: "You were disconnected", detail: errorText(err.code, err.message) });
  }

  onWelcome(msg) {
    this.limits = { ...this.limits, ...(msg.limits || {}) };
    const sameIdentity = this.joined && msg.id === this.selfId;
    this.settings = roomSettings(msg.room?.settings);
    this.settingsDialog?.update(this.settings);
    const me = (msg.participants || []).find((p) => p.id === msg.id);
    if (isObserver(me)) this.releaseMedia(); // observers publish nothing
    if (!isHost(me)) this.lobby = [];
    if (!this.joined) {
      this.selfId = msg.id;
      this.joined = true;
      this.onWaiting(false);
      this.mountUi();
      this.startSession(msg);
      this.joinWaiter?.resolve();
    } else if (!sameIdentity) {
      // The old identity expired: start over as a new participant.
      this.session.close();
      for (const key of this.stage.keys()) this.stage.remove(key);
      this.remoteMedia.clear();
      this.levels.close();
      this.selfId = msg.id;
      this.startSession(msg);
    } else {
      this.reconcile(msg);
    }
    this.messages = mergeMessages(this.messages, msg.history);
    this.historyMore = Boolean(msg.history_more);
    this.renderChat();
    this.syncSelfStateToServer(msg.participants.find((p) => p.id === this.selfId));
  }

  startSession(msg) {
    this.roster = R.rosterFrom(msg.participants);
    const mode = mediaMode(msg.room);
    const Session = mode === "sfu" ? SfuSession : MeshSession;
    this.renderMediaMode(mode);
    this.session = new Session({
      iceServers: msg.ice_servers || [],
      iceTransportPolicy: this.relay ? "relay" : null,
      sendSignal: (to, payload) => this.conn.send({ type: "signal", to, payload, ref: "sig" }),
    });
    this.session.addEventListener("peer-media", (e) => this.onPeerMedia(e.detail));
    this.session.addEventListener("peer-state", (e) => this.onPeerState(e.detail));
    this.session.start(this.local.stream);
    for (const id of this.roster.keys()) {
      if (id !== this.selfId) this.session.addPeer(id, isPolite(this.selfId, id));
    }
    if (this.local.screen) this.session.setScreen(this.local.screen);
    this.render();
  }

  /** After a resume: keep the connections that still work, drop the gone, add the new. */
  reconcile(msg) {
    const before = [...this.roster.keys()];
    this.roster = R.rosterFrom(msg.participants);
    this.session.setIceServers(msg.ice_servers || []);
    const { added, removed } = R.diffIds(before, [...this.roster.keys()]);
    for (const id of removed) this.dropPeer(id);
    for (const id of added) if (id !== this.selfId) this.session.addPeer(id, isPolite(this.selfId, id));
    for (const id of this.roster.keys()) {
      const state = this.session.connectionState(id);
      if (id !== this.selfId && (state === "closed" || state === "failed") && !added.includes(id)) {
        this.session.removePeer(id);
        this.session.addPeer(id, isPolite(this.selfId, id));
      }
    }
    this.session.refresh();
    this.render();
  }

  /** Tell the server our real microphone/camera/screen/hand state if it differs. */
  syncSelfStateToServer(serverSelf) {
    if (isObserver(serverSelf)) {
      if (serverSelf.hand !== this.hand) this.conn.send({ type: "hand", raised: this.hand, ref: "k" });
      return; // the server refuses media state from observers
    }
    const mine = { mic: this.local.micOn, cam: this.local.camOn, screen: Boolean(this.local.screen) };
    if (!serverSelf || serverSelf.mic !== mine.mic || serverSelf.cam !== mine.cam || serverSelf.screen !== mine.screen) {
      this.sendMedia();
    }
    if (serverSelf && serverSelf.hand !== this.hand) this.conn.send({ type: "hand", raised: this.hand, ref: "k" });
  }

  // ---------------------------------------------------------------- UI setup

  mountUi() {
    const o = { signal: this.abort.signal };
    const el = this.el;
    el.meeting.hidden = false;
    el.roomTitle.textContent = this.room;
    document.title = `${this.room} · Parley`;

    this.stage = new Stage({
      stage: $("#stage"),
      main: $("#stage-main"),
      grid: $("#grid"),
      onAutoplayBlocked: () => {
        el.enableSound.hidden = false;
      },
    });
    this.stage.setSinkId(this.prefs.speaker || "");
    el.enableSound.addEventListener(
      "click",
      () => {
        this.stage.enableSound();
        el.enableSound.hidden = true;
      },
      o,
    );

    this.chat = new ChatView({
      log: $("#chat-log"),
      input: $("#chat-input"),
      form: $("#chat-form"),
      sendBtn: $("#chat-send"),
      toSelect: $("#chat-to"),
      errorEl: $("#chat-error"),
      countEl: $("#chat-count"),
      moreBtn: $("#chat-more"),
      emptyEl: $("#chat-empty"),
      signal: this.abort.signal,
      onSend: (text, to) => this.sendChat(text, to),
      onLoadMore: () => this.loadOlder(),
    });
    $("#chat-to").addEventListener("change", () => this.renderChatRecipients(), o);

    setIcon(el.screen, "screen");
    setIcon(el.hand, "hand");
    setIcon(el.react, "smile");
    setIcon(el.leave, "leave");
    setIcon(el.invite, "link");
    setIcon(el.peopleBtn, "people");
    setIcon(el.chatBtn, "chat");
    setIcon($("#chat-send"), "send");
    for (const b of document.querySelectorAll(".panel-close")) setIcon(b, "close");
    el.screen.hidden = !canShareScreen();

    el.mic.addEventListener("click", () => this.toggleMic(), o);
    el.cam.addEventListener("click", () => this.toggleCam(), o);
    el.screen.addEventListener("click", () => this.toggleScreen(), o);
    el.hand.addEventListener("click", () => this.toggleHand(), o);
    el.leave.addEventListener("click", () => this.leave(), o);
    el.invite.addEventListener("click", () => this.copyInvite(), o);
    el.peopleBtn.addEventListener("click", () => this.setPanel("people", el.peoplePanel.hidden), o);
    el.chatBtn.addEventListener("click", () => this.setPanel("chat", el.chatPanel.hidden), o);
    for (const b of document.querySelectorAll(".panel-close")) {
      b.addEventListener("click", () => this.setPanel(b.dataset.close, false), o);
    }

    setIcon(el.settingsBtn, "settings");
    this.settingsDialog = new SettingsDialog({
      send: (msg) => this.moderate(msg),
      onEndMeeting: () => this.confirmEndMeeting(),
      signal: this.abort.signal,
    });
    this.settingsDialog.update(this.settings);
    el.settingsBtn.addEventListener("click", () => this.settingsDialog.open(), o);
    el.muteAll.addEventListener("click", () => this.moderate({ type: "mute-all", kind: "mic" }), o);

    el.reactMenu.replaceChildren();
    buildReactionMenu(el.reactMenu, (emoji) => {
      this.conn.send({ type: "reaction", emoji, ref: "r" });
      this.setReactMenu(false);
      el.react.focus();
    });
    el.react.addEventListener("click", () => this.setReactMenu(el.reactMenu.hidden), o);
    document.addEventListener(
      "click",
      (ev) => {
        if (!el.reactMenu.hidden && !ev.target.closest(".popover-wrap")) this.setReactMenu(false);
      },
      o,
    );
    document.addEventListener(
      "keydown",
      (ev) => {
        if (ev.key === "Escape" && !el.reactMenu.hidden) {
          this.setReactMenu(false);
          el.react.focus();
        }
      },
      o,
    );
    window.addEventListener("pagehide", () => this.conn?.leave(), o);

    const wide = window.matchMedia(WIDE).matches;
    this.setPanel("people", wide);
    this.setPanel("chat", wide);

    const tickClock = () => {
      el.clock.textContent = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    };
    tickClock();
    this.timers.push(setInterval(tickClock, 10_000));
    this.timers.push(setInterval(() => this.detectSpeaker(), 250));
  }

  setPanel(which, open) {
    const panel = which === "people" ? this.el.peoplePanel : this.el.chatPanel;
    const btn = which === "people" ? this.el.peopleBtn : this.el.chatBtn;
    panel.hidden = !open;
    btn.setAttribute("aria-expanded", open ? "true" : "false");
    btn.classList.toggle("active", open);
    if (!window.matchMedia(WIDE).matches && open) {
      // Small screens: one panel at a time.
      const other = which === "people" ? "chat" : "people";
      const otherPanel = other === "people" ? this.el.peoplePanel : this.el.chatPanel;
      if (!otherPanel.hidden) this.setPanel(other, false);
    }
    this.el.sidebar.hidden = this.el.peoplePanel.hidden && this.el.chatPanel.hidden;
    if (which === "chat" && open) {
      this.unread = 0;
      this.renderUnread();
    }
    this.stage?.layout();
  }

  setReactMenu(open) {
    this.el.reactMenu.hidden = !open;
    this.el.react.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) this.el.reactMenu.querySelector("button")?.focus();
  }

  // ---------------------------------------------------------------- server messages

  onJoined(p) {
    this.roster = R.upsert(this.roster, p);
    if (p.id !== this.selfId && this.session) this.session.addPeer(p.id, isPolite(this.selfId, p.id));
    this.toasts.show(`${this.labels()[p.id] ?? p.name} joined`);
    this.render();
  }

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

  /** A host changed our role. */
  onOwnRole(before, now) {
    if (now === "observer") {
      this.releaseMedia();
      this.toasts.show("A host made you an observer: you can watch, listen and chat");
    } else if (now === "host") {
      this.toasts.show("You are now a host");
    } else if (before === "observer") {
      this.toasts.show("You can now turn on your microphone and camera");
    } else if (before === "host") {
      this.toasts.show("You are no longer a host");
    }
    if (now !== "host") {
      this.lobby = [];
      this.settingsDialog?.close();
    }
  }

  onRoomUpdated(settings) {
    this.settings = roomSettings(settings);
    this.settingsDialog?.update(this.settings);
    this.render();
  }

  onLobby(waiting) {
    const fresh = newlyWaiting(this.lobby, waiting);
    this.lobby = waiting;
    if (this.selfIsHost()) {
      for (const w of fresh) this.toasts.show(`${w.name} is waiting to join`, { timeout: 8000 });
    }
    this.render();
  }

  /** A host turned one of our devices off: obey; only we can turn it back on. */
  async onMuted(kind) {
    const L = this.local;
    if (kind === "mic") {
      L.micOn = false;
      if (L.audio) L.audio.enabled = false;
    } else if (kind === "cam") {
      await this.cameraOff();
    } else if (kind === "screen") {
      this.stopScreen();
    }
    this.toasts.show(mutedText(kind));
    this.render();
  }

  /** Observers publish nothing: stop and drop every local track. */
  releaseMedia() {
    const L = this.local;
    for (const kind of ["audio", "video"]) {
      const track = L[kind];
      L[kind] = null;
      if (!track) continue;
      track.stop();
      if (this.session) this.session.replaceTrack(kind, null);
      else L.stream.removeTrack(track);
    }
    L.micOn = false;
    L.camOn = false;
    if (L.screen) {
      const stream = L.screen;
      L.screen = null;
      this.session?.setScreen(null);
      stream.getTracks().forEach((t) => t.stop());
      this.stage?.remove(`${this.selfId}:screen`);
    }
    this.levels.unwatch(this.selfId);
    this.render();
  }

  selfRole() {
    return this.roster.get(this.selfId)?.role ?? "participant";
  }

  selfIsHost() {
    return this.selfRole() === "host";
  }

  /** Send a host request; a refusal comes back as an error toast. */
  moderate(msg) {
    const ok = this.conn.send({ ...msg, ref: this.conn.nextRef("x") });
    if (!ok) this.toasts.show("Not connected right now.");
    return ok;
  }

  async hostAction(pid, action) {
    if (!action.confirm) {
      this.moderate(action.message);
      return;
    }
    const p = this.roster.get(pid);
    if (!p) return;
    const label = this.labels()[pid] ?? p.name;
    const choice = await confirmDialog({
      title: `Remove ${label}?`,
      text: `${label} will leave the meeting. "Remove and bar" also keeps them from coming back while the meeting lasts.`,
      actions: [
        { label: "Remove", value: "remove", kind: "danger" },
        { label: "Remove and bar", value: "ban", kind: "danger" },
      ],
    });
    if (choice && !this.ended && this.roster.has(pid)) this.moderate({ type: "remove", to: pid, ban: choice === "ban" });
  }

  async confirmEndMeeting() {
    const ok = await confirmDialog({
      title: "End the meeting for everyone?",
      text: "Everyone will be disconnected, including you.",
      actions: [{ label: "End meeting", value: true, kind: "danger" }],
    });
    if (ok && !this.ended) this.moderate({ type: "end-meeting" });
  }

  admit(w) {
    this.moderate({ type: "admit", to: w.id });
  }

  deny(w) {
    this.moderate({ type: "deny", to: w.id });
  }

  onLeft({ id }) {
    const p = this.roster.get(id);
    const label = this.labels()[id];
    this.roster = R.remove(this.roster, id);
    this.dropPeer(id);
    if (p) this.toasts.show(`${label ?? p.name} left`);
    this.render();
  }

  dropPeer(id) {
    this.session?.removePeer(id);
    this.remoteMedia.delete(id);
    this.levels.unwatch(id);
    this.stage?.remove(id);
    this.stage?.remove(`${id}:screen`);
  }

  onChat(message) {
    this.messages = mergeMessages(this.messages, [message]);
    if (isFromOthers(message, this.selfId) && this.el.chatPanel.hidden) {
      this.unread += 1;
      this.renderUnread();
    }
    this.renderChat();
  }

  onHistory(msg) {
    this.loadingHistory = false;
    this.messages = mergeMessages(this.messages, msg.messages);
    this.historyMore = Boolean(msg.more);
    this.renderChat();
  }

  onSignal({ from, payload }) {
    if (!this.session || from === this.selfId) return;
    const known = this.roster.has(from);
    this.session.handleSignal(from, payload, known ? isPolite(this.selfId, from) : undefined);
  }

  onReaction({ from, emoji }) {
    const p = this.roster.get(from);
    const label = from === this.selfId ? "You" : p ? this.labels()[from] : "";
    floatReaction(this.el.layer, emoji, label);
  }

  onError(msg) {
    const ref = msg.ref || "";
    const text = errorText(msg.code, msg.message);
    if (ref.startsWith("c")) this.chat.refused(ref, text);
    else if (ref === "sig") return;
    else if (ref.startsWith("h")) this.loadingHistory = false;
    else this.toasts.show(text);
  }

  onConnState(state) {
    if (!this.joined) {
      if (state === "waiting") this.onWaiting(true);
      return;
    }
    const banner = this.el.banner;
    if (state === "reconnecting") {
      banner.textContent = "Reconnecting…";
      banner.classList.add("banner--show");
      this.chat.connectionLost();
    } else if (state === "open") {
      banner.textContent = "";
      banner.classList.remove("banner--show");
    }
  }

  // ---------------------------------------------------------------- media

  onPeerMedia({ id, camera, screen }) {
    if (!camera && !screen) this.remoteMedia.delete(id);
    else this.remoteMedia.set(id, { camera, screen });
    if (camera) this.levels.watch(id, camera);
    else this.levels.unwatch(id);
    this.render();
  }

  onPeerState({ id, state }) {
    const tile = this.stage?.tiles.get(id);
    if (tile) tile.el.classList.toggle("tile--connecting", state !== "connected" && state !== "closed");
  }

  sendMedia() {
    return this.conn.send({
      type: "media",
      mic: this.local.micOn,
      cam: this.local.camOn,
      screen: Boolean(this.local.screen),
      ref: "m",
    });
  }

  async toggleMic() {
    const L = this.local;
    if (isObserver(this.roster.get(this.selfId))) return;
    if (!L.audio) {
      try {
        L.audio = await getMicTrack(this.prefs.mic);
        await this.session.replaceTrack("audio", L.audio);
        L.micOn = true;
      } catch (err) {
        this.toasts.show(describeError(err, "microphone"));
        return;
      }
    } else {
      L.micOn = !L.micOn;
      L.audio.enabled = L.micOn;
    }
    this.sendMedia();
    this.render();
  }

  async cameraOff() {
    const L = this.local;
    L.camOn = false;
    if (!L.video) return;
    const old = L.video;
    L.video = null;
    await this.session?.replaceTrack("video", null);
    old.stop();
  }

  async toggleCam() {
    const L = this.local;
    if (isObserver(this.roster.get(this.selfId))) return;
    if (L.camOn && L.video) {
      await this.cameraOff();
    } else {
      this.el.cam.disabled = true;
      try {
        const track = await getCameraTrack(this.prefs.camera);
        L.video = track;
        L.camOn = true;
        await this.session.replaceTrack("video", track);
      } catch (err) {
        this.toasts.show(describeError(err, "camera"));
        return;
      } finally {
        this.el.cam.disabled = false;
      }
    }
    this.sendMedia();
    this.render();
  }

  async toggleScreen() {
    if (isObserver(this.roster.get(this.selfId)) && !this.local.screen) return;
    if (this.local.screen) {
      this.stopScreen();
      return;
    }
    let stream;
    try {
      stream = await getScreen();
    } catch (err) {
      if (err && err.name !== "NotAllowedError" && err.name !== "AbortError") this.toasts.show("Screen sharing could not start.");
      return;
    }
    if (this.ended || isObserver(this.roster.get(this.selfId))) {
      stream.getTracks().forEach((t) => t.stop());
      return;
    }
    const track = stream.getVideoTracks()[0];
    track?.addEventListener("ended", () => {
      if (this.local.screen === stream) this.stopScreen();
    });
    this.local.screen = stream;
    this.session.setScreen(stream);
    this.sendMedia();
    this.render();
  }

  stopScreen() {
    const stream = this.local.screen;
    if (!stream) return;
    this.local.screen = null;
    this.session?.setScreen(null);
    stream.getTracks().forEach((t) => t.stop());
    this.stage?.remove(`${this.selfId}:screen`);
    this.sendMedia();
    this.render();
  }

  toggleHand() {
    const raised = !this.hand;
    if (!this.conn.send({ type: "hand", raised, ref: "k" })) {
      this.toasts.show("Not connected right now.");
      return;
    }
    this.hand = raised;
    this.render();
  }

  detectSpeaker() {
    if (!this.stage) return;
    const levels = {};
    for (const p of this.roster.values()) {
      const micOn = p.id === this.selfId ? this.local.micOn : p.mic;
      if (micOn) levels[p.id] = this.levels.level(p.id);
    }
    this.smoothed = smoothLevels(this.smoothed || {}, levels);
    const next = pickSpeaker(this.smoothed, this.speaker);
    if (next !== this.speaker) {
      this.speaker = next;
      this.stage.setSpeaking(next);
    }
  }

  // ---------------------------------------------------------------- chat

  sendChat(text, to) {
    const ref = this.conn.nextRef("c");
    const msg = { type: "chat", text, ref };
    if (to) msg.to = to;
    return this.conn.send(msg) ? ref : null;
  }

  loadOlder() {
    if (!this.historyMore || this.loadingHistory) return;
    const before = oldestId(this.messages);
    if (before === null) return;
    if (this.conn.send({ type: "history", before, limit: 50, ref: this.conn.nextRef("h") })) this.loadingHistory = true;
  }

  renderChat() {
    if (!this.chat) return;
    this.chat.setContext({ selfId: this.selfId, labels: this.labels(), limit: this.limits.chat_max_chars });
    this.chat.render(this.messages);
    this.chat.setMore(this.historyMore);
  }

  renderChatRecipients() {
    this.chat.setRecipients(R.sortedParticipants(this.roster, this.selfId));
  }

  renderUnread() {
    const u = this.el.unread;
    u.hidden = this.unread === 0;
    u.textContent = this.unread > 99 ? "99+" : String(this.unread);
    this.el.chatBtn.title = this.unread ? `Chat (${this.unread} unread)` : "Chat";
  }

  // ---------------------------------------------------------------- rendering

  labels() {
    return R.distinctLabels(this.roster);
  }

  /** Participants as shown: our own entry reflects local state immediately. */
  people() {
    const self = this.roster.get(this.selfId);
    if (self) {
      this.roster.set(this.selfId, {
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
    if (!this.stage || this.ended) return;
    const people = this.people();
    const labels = this.labels();
    const handPos = R.handQueue(this.roster);
    const selfRole = this.selfRole();
    renderPeople(this.el.people, people, {
      selfId: this.selfId,
      selfRole,
      labels,
      handPos,
      onAction: (pid, action) => this.hostAction(pid, action),
    });
    renderHands(this.el.handsSection, this.el.handsList, raisedHands(people), labels);
    this.renderHostUi(selfRole === "host");
    this.renderRoomFlags();
    this.el.peopleCount.textContent = String(people.length);
    this.renderChatRecipients();
    this.renderControls();

    const keep = new Set();
    for (const p of people) {
      const self = p.id === this.selfId;
      const label = labels[p.id] ?? p.name;
      keep.add(p.id);
      this.stage.upsert(p.id, { label, initials: initials(p.name), self });
      let stream = null;
      let showVideo = false;
      if (self) {
        stream = this.local.video ? this.selfView(this.local.video) : null;
        showVideo = this.local.camOn && Boolean(this.local.video);
      } else {
        stream = this.remoteMedia.get(p.id)?.camera ?? null;
        showVideo = p.cam && Boolean(stream && stream.getVideoTracks().length);
      }
      this.stage.setStream(p.id, stream);
      this.stage.setState(p.id, { cam: showVideo, mic: p.mic, hand: p.hand, handPos: handPos[p.id] });

      const screen = self ? this.local.screen : this.remoteMedia.get(p.id)?.screen;
      const key = `${p.id}:screen`;
      if (screen) {
        keep.add(key);
        this.stage.upsert(key, { label: self ? "You are presenting" : `${label} is presenting`, initials: initials(p.name), self, screen: true });
        this.stage.setStream(key, screen);
        this.stage.setState(key, { cam: true });
      }
    }
    for (const key of this.stage.keys()) if (!keep.has(key)) this.stage.remove(key);
    if (this.local.audio) this.levels.watch(this.selfId, this.local.stream);
  }

  selfView(track) {
    if (!this._selfView || this._selfView.getVideoTracks()[0] !== track) this._selfView = new MediaStream([track]);
    return this._selfView;
  }

  renderHostUi(host) {
    const el = this.el;
    el.muteAll.hidden = !host;
    el.settingsBtn.hidden = !host;
    const waiting = host ? this.lobby : [];
    renderLobby(el.lobbySection, el.lobbyList, waiting, { onAdmit: (w) => this.admit(w), onDeny: (w) => this.deny(w) });
    el.peopleBtn.classList.toggle("knock", waiting.length > 0);
    el.peopleBtn.title = waiting.length ? `Participants (${waiting.length} waiting to join)` : "Participants";
    if (!host && this.settingsDialog?.isOpen) this.settingsDialog.close();
  }

  renderRoomFlags() {
    const box = this.el.roomFlags;
    const s = this.settings;
    const key = `${s.locked}|${s.lobby}|${s.has_password}`;
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    clear(box);
    if (s.locked) box.append(h("span", { class: "room-flag locked", role: "img", "aria-label": "Room locked", title: "Room locked" }, icon("lock", "icon tiny")));
    if (s.lobby) box.append(h("span", { class: "room-flag", title: "New people wait in the lobby" }, "Lobby on"));
    if (s.has_password) box.append(h("span", { class: "room-flag", title: "The room has a password" }, "Password"));
  }

  /** The meeting bar's "Media: peer-to-peer" / "Media: via server" badge (the session in use). */
  renderMediaMode(mode) {
    const box = this.el.mediaMode;
    if (!box) return;
    const info = mediaModeInfo(mode);
    box.dataset.mode = info.mode;
    box.title = info.title;
    box.replaceChildren(h("span", { class: "visually-hidden" }, info.prefix), info.text);
    box.hidden = false;
  }

  renderControls() {
    const { mic, cam, screen, hand } = this.el;
    const L = this.local;
    const observer = isObserver(this.roster.get(this.selfId));
    this.el.observerNote.hidden = !observer;
    for (const b of [mic, cam, screen]) {
      b.disabled = observer;
      if (observer) b.setAttribute("aria-describedby", "observer-note");
      else b.removeAttribute("aria-describedby");
    }
    setPressed(mic, L.micOn);
    setIcon(mic, L.micOn ? "mic" : "micOff");
    mic.classList.toggle("off", !L.micOn);
    mic.title = L.micOn ? "Turn off microphone" : "Turn on microphone";
    setPressed(cam, L.camOn);
    setIcon(cam, L.camOn ? "cam" : "camOff");
    cam.classList.toggle("off", !L.camOn);
    cam.title = L.camOn ? "Turn off camera" : "Turn on camera";
    setPressed(screen, Boolean(L.screen));
    screen.classList.toggle("on", Boolean(L.screen));
    screen.title = L.screen ? "Stop sharing" : "Share screen";
    setPressed(hand, this.hand);
    hand.classList.toggle("on", this.hand);
    hand.title = this.hand ? "Lower hand" : "Raise hand";
    if (observer) {
      mic.title = "Observers can't use a microphone";
      cam.title = "Observers can't use a camera";
      screen.title = "Observers can't share their screen";
    }
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

  leave() {
    this.conn?.leave();
    this.end({ title: "You left the meeting", detail: "" });
  }

  end(info) {
    if (this.ended) return;
    this.conn?.close();
    this.teardown({ stopTracks: true });
    this.onEnd(info);
  }

  teardown({ stopTracks }) {
    this.ended = true;
    this.abort.abort();
    for (const t of this.timers) clearInterval(t);
    this.session?.close();
    this.levels.close();
    this.stage?.destroy();
    this.chat?.clear();
    this.el.meeting.hidden = true;
    this.el.banner.classList.remove("banner--show");
    this.el.enableSound.hidden = true;
    this.setReactMenu(false);
    this.settingsDialog?.destroy();
    this.settingsDialog = null;
    closeConfirm();
    this.el.muteAll.hidden = true;
    this.el.settingsBtn.hidden = true;
    this.el.lobbySection.hidden = true;
    this.el.handsSection.hidden = true;
    this.el.observerNote.hidden = true;
    clear(this.el.roomFlags);
    delete this.el.roomFlags.dataset.key;
    if (this.el.mediaMode) {
      this.el.mediaMode.hidden = true;
      clear(this.el.mediaMode);
      delete this.el.mediaMode.dataset.mode;
    }
    for (const b of [this.el.mic, this.el.cam, this.el.screen]) b.disabled = false;
    if (stopTracks) {
      for (const t of [this.local.audio, this.local.video]) t?.stop();
      this.local.screen?.getTracks().forEach((t) => t.stop());
    }
  }
}
