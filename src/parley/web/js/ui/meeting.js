// The meeting: wires the connection, the media session and the views together.
import { Connection, wsUrl } from "../connection.js";
import { isFromOthers, mergeMessages, oldestId } from "../core/chat.js";
import * as R from "../core/roster.js";
import { isPolite, pickSpeaker, smoothLevels } from "../core/rules.js";
import { errorText, initials } from "../core/text.js";
import { canShareScreen, describeError, getCameraTrack, getMicTrack, getScreen } from "../media/devices.js";
import { AudioLevels } from "../media/levels.js";
import { MeshSession } from "../media/mesh-session.js";
import { ChatView } from "./chat-view.js";
import { $, setIcon, setPressed } from "./dom.js";
import { renderPeople } from "./people.js";
import { buildReactionMenu, floatReaction } from "./reactions.js";
import { Stage } from "./stage.js";
import { Toasts } from "./toast.js";

const WIDE = "(min-width: 900px)";

export class Meeting {
  /**
   * @param {{ room: string, choice: { name, audio, video, micOn, camOn, speakerId, prefs },
   *           onEnd: (info: { title: string, detail: string }) => void }} opts
   */
  constructor({ room, choice, onEnd }) {
    this.room = room;
    this.name = choice.name;
    this.prefs = choice.prefs || {};
    this.onEnd = onEnd;
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
    };
  }

  // ---------------------------------------------------------------- joining

  /** Connect and join; resolves on the first welcome, rejects with { code, message }. */
  join() {
    return new Promise((resolve, reject) => {
      this.joinWaiter = { resolve, reject };
      const conn = new Connection({ url: wsUrl(), room: this.room, name: this.name });
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
      conn.on(":state", ({ state }) => this.onConnState(state));
      conn.on(":join-failed", (e) => this.onJoinFailed(e));
      conn.on(":ended", (e) => {
        if (!this.joined) this.onJoinFailed({ code: "ended", message: e.text });
        else this.end({ title: e.closeCode === 4002 ? "The meeting has ended" : "You are no longer in the meeting", detail: e.text });
      });
      conn.start();
    });
  }

  onJoinFailed(err) {
    if (!this.joined) {
      this.teardown({ stopTracks: false });
      this.joinWaiter?.reject(err);
      return;
    }
    this.end({ title: "You were disconnected", detail: errorText(err.code, err.message) });
  }

  onWelcome(msg) {
    this.limits = { ...this.limits, ...(msg.limits || {}) };
    const sameIdentity = this.joined && msg.id === this.selfId;
    if (!this.joined) {
      this.selfId = msg.id;
      this.joined = true;
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
    this.session = new MeshSession({
      iceServers: msg.ice_servers || [],
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
    if (p.id !== this.selfId && p.hand && before && !before.hand) {
      this.toasts.show(`${this.labels()[p.id] ?? p.name} raised a hand`);
    }
    this.render();
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
    if (!this.joined) return;
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

  async toggleCam() {
    const L = this.local;
    if (L.camOn && L.video) {
      const old = L.video;
      L.video = null;
      L.camOn = false;
      await this.session.replaceTrack("video", null);
      old.stop();
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
    if (this.ended) {
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
    renderPeople(this.el.people, people, { selfId: this.selfId, labels, handPos });
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

  renderControls() {
    const { mic, cam, screen, hand } = this.el;
    const L = this.local;
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
    if (stopTracks) {
      for (const t of [this.local.audio, this.local.video]) t?.stop();
      this.local.screen?.getTracks().forEach((t) => t.stop());
    }
  }
}
