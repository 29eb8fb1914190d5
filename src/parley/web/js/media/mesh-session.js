// WebRTC mesh: one RTCPeerConnection per remote participant, perfect negotiation.
//
// The UI talks to this object only (a later SFU session can implement the same API):
//   const s = new MeshSession({ iceServers, sendSignal: (to, payload) => …, iceTransportPolicy? });
//   s.start(localStream)                      // camera/mic carrier stream (tracks may be absent)
//   s.addPeer(id, polite) / s.removePeer(id) / s.hasPeer(id)
//   s.handleSignal(from, payload)
//   s.replaceTrack("audio" | "video", track | null)
//   s.setScreen(stream | null)
//   s.refresh()                               // after a signalling outage: restart broken ICE
//   s.close()
//   s.addEventListener("peer-media", (e) => e.detail = { id, camera: MediaStream|null, screen: MediaStream|null })
//   s.addEventListener("peer-state", (e) => e.detail = { id, state })
//
// Signal payloads (JSON, relayed unchanged by the server):
//   { description: { type: "offer" | "answer", sdp } }
//   { candidate: RTCIceCandidateInit }
//   { streams: { camera: "<stream id>", screen: "<stream id>" | null } }   which stream is which

import { replaceVideoTrack } from "./sending.js";

/**
 * A signal payload (see above); the server relays it unchanged, so any field may be missing.
 * @typedef {object} MeshSignal
 * @property {RTCSessionDescriptionInit} [description]
 * @property {RTCIceCandidateInit} [candidate]
 * @property {{ camera?: string | null, screen?: string | null }} [streams]
 */
/** @typedef {{ iceServers?: RTCIceServer[], sendSignal: (to: string, payload: MeshSignal) => void, iceTransportPolicy?: RTCIceTransportPolicy | null }} MeshOptions */

const DISCONNECTED_GRACE_MS = 4000;
// The polite side waits this long for the first offer before offering itself.
const POLITE_WAIT_MS = 1500;
// A connection not up after this long gets an ICE restart.
const WATCHDOG_MS = 8000;

// Set localStorage["parley.debug"] = "1" to log signalling in the console.
const debug = (() => {
  try {
    return globalThis.localStorage?.getItem("parley.debug") ? (/** @type {unknown[]} */ ...a) => console.log("[mesh]", ...a) : () => {};
  } catch {
    return () => {};
  }
})();

class Peer {
  /**
   * @param {MeshSession} session
   * @param {string} id the remote participant
   * @param {boolean} polite
   */
  constructor(session, id, polite) {
    this.session = session;
    this.id = id;
    this.polite = polite;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.settingRemoteAnswer = false;
    this.queue = Promise.resolve();
    /** @type {Record<string, RTCRtpSender | null>} by kind: "audio", "video", "screen" */
    this.senders = { audio: null, video: null, screen: null };
    /** @type {Map<string, MediaStream>} */
    this.remoteStreams = new Map(); // stream id -> MediaStream
    /** @type {{ camera: string | null, screen: string | null } | null} */
    this.mapping = null; // { camera, screen } stream ids announced by the remote side
    this.lastSignature = "";
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.disconnectTimer = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.attachTimer = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.watchdog = null;
    this.attached = false;
    this.closed = false;

    /** @type {RTCConfiguration} */
    const config = { iceServers: session.iceServers };
    if (session.iceTransportPolicy) config.iceTransportPolicy = session.iceTransportPolicy;
    const pc = new RTCPeerConnection(config);
    this.pc = pc;
    pc.onnegotiationneeded = () => this._negotiate();
    pc.onicecandidate = ({ candidate }) => {
      if (candidate) this._send({ candidate: candidate.toJSON() });
    };
    pc.oniceconnectionstatechange = () => {
      if (pc.iceConnectionState === "failed") pc.restartIce();
    };
    pc.onconnectionstatechange = () => this._connectionState();
    pc.onsignalingstatechange = () => debug("signaling", id, pc.signalingState);
    pc.ontrack = (ev) => this._onTrack(ev);
  }

  /** @param {MeshSignal} payload */
  _send(payload) {
    debug("send", this.id, Object.keys(payload)[0], payload.description?.type ?? "", this.pc.signalingState);
    if (!this.closed) this.session.sendSignal(this.id, payload);
  }

  async _negotiate() {
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      this._send({ description: /** @type {RTCSessionDescription} */ (this.pc.localDescription).toJSON() });
    } catch (err) {
      console.warn("parley: negotiation failed", err);
    } finally {
      this.makingOffer = false;
    }
  }

  _connectionState() {
    const state = this.pc.connectionState;
    clearTimeout(/** @type {number} */ (this.disconnectTimer));
    if (state === "disconnected") {
      this.disconnectTimer = setTimeout(() => {
        if (!this.closed && this.pc.connectionState === "disconnected") this.pc.restartIce();
      }, DISCONNECTED_GRACE_MS);
    } else if (state === "failed") {
      this.pc.restartIce();
    }
    this.session._emit("peer-state", { id: this.id, state });
  }

  /**
   * Handle one signal payload, in arrival order.
   * @param {MeshSignal} payload
   */
  handle(payload) {
    this.queue = this.queue.then(() => this._handle(payload)).catch((err) => {
      console.warn("parley: signal from", this.id, "failed", err);
    });
    return this.queue;
  }

  /** @param {MeshSignal} [payload] */
  async _handle({ description, candidate, streams } = {}) {
    if (this.closed) return;
    debug("recv", this.id, description ? `description ${description.type}` : candidate ? "candidate" : "streams", this.pc.signalingState, "polite", this.polite);
    if (streams) {
      this.mapping = { camera: streams.camera ?? null, screen: streams.screen ?? null };
      this._publish();
    }
    if (description) {
      const pc = this.pc;
      const readyForOffer = !this.makingOffer && (pc.signalingState === "stable" || this.settingRemoteAnswer);
      const collision = description.type === "offer" && !readyForOffer;
      this.ignoreOffer = !this.polite && collision;
      if (this.ignoreOffer) return;
      this.settingRemoteAnswer = description.type === "answer";
      try {
        await pc.setRemoteDescription(description);
      } finally {
        this.settingRemoteAnswer = false;
      }
      if (description.type === "offer") {
        this.attachLocal(); // the polite side's tracks go into this very answer
        await pc.setLocalDescription();
        this._send({ description: /** @type {RTCSessionDescription} */ (pc.localDescription).toJSON() });
      }
    } else if (candidate) {
      try {
        await this.pc.addIceCandidate(candidate);
      } catch (err) {
        if (!this.ignoreOffer) throw err;
      }
    }
  }

  /** @param {RTCTrackEvent} ev */
  _onTrack(ev) {
    const streams = ev.streams.length ? ev.streams : [new MediaStream([ev.track])];
    for (const stream of streams) {
      if (!this.remoteStreams.has(stream.id)) {
        this.remoteStreams.set(stream.id, stream);
        stream.addEventListener("addtrack", () => this._publish());
        stream.addEventListener("removetrack", () => {
          if (stream.getTracks().length === 0) this.remoteStreams.delete(stream.id);
          this._publish();
        });
      }
    }
    ev.track.addEventListener("ended", () => this._publish());
    ev.track.addEventListener("unmute", () => this._publish());
    this._publish();
  }

  /** Work out which remote stream is the camera and which the screen; emit on any change. */
  _publish() {
    let camera = null;
    let screen = null;
    const map = this.mapping;
    if (map) {
      camera = (map.camera && this.remoteStreams.get(map.camera)) || null;
      screen = (map.screen && this.remoteStreams.get(map.screen)) || null;
    } else {
      camera = this.remoteStreams.values().next().value ?? null;
    }
    const sig = (/** @type {MediaStream | null} */ s) => (s ? `${s.id}:${s.getTracks().map((t) => `${t.id}/${t.readyState}`).join(",")}` : "-");
    const signature = `${sig(camera)}|${sig(screen)}`;
    if (signature === this.lastSignature) return;
    this.lastSignature = signature;
    this.session._emit("peer-media", { id: this.id, camera, screen });
  }

  announceStreams() {
    const s = this.session;
    this._send({ streams: { camera: s.localStream ? s.localStream.id : null, screen: s.screenStream ? s.screenStream.id : null } });
  }

  /**
   * Start sending our tracks.  The impolite side does so at once; the polite side waits
   * for the first offer and adds its tracks before answering (no initial offer glare),
   * or offers itself if no offer comes (the other side may have nothing to send).
   */
  start() {
    this.announceStreams();
    if (this.polite) this.attachTimer = setTimeout(() => this.attachLocal(), POLITE_WAIT_MS);
    else this.attachLocal();
    this._armWatchdog();
  }

  _armWatchdog() {
    clearTimeout(/** @type {number} */ (this.watchdog));
    this.watchdog = setTimeout(() => {
      if (this.closed) return;
      const st = this.pc.connectionState;
      if (st === "connected" || st === "closed") return;
      if (this.attached || this.pc.getTransceivers().length) {
        debug("watchdog: restart ICE", this.id, st, this.pc.signalingState);
        this.pc.restartIce();
      }
      this._armWatchdog();
    }, WATCHDOG_MS);
  }

  attachLocal() {
    clearTimeout(/** @type {number} */ (this.attachTimer));
    if (this.attached || this.closed) return;
    this.attached = true;
    const s = this.session;
    for (const track of s.localStream ? s.localStream.getTracks() : []) {
      this.senders[track.kind] = this.pc.addTrack(track, /** @type {MediaStream} */ (s.localStream));
    }
    if (s.screenStream) this.addScreen(s.screenStream);
  }

  /**
   * @param {"audio" | "video"} kind
   * @param {MediaStreamTrack | null} track
   */
  async replaceTrack(kind, track) {
    if (!this.attached) return; // attachLocal() will pick up the current tracks
    const sender = this.senders[kind];
    if (sender) {
      // camera off: its encoding too (Firefox resends the last frame otherwise)
      await (kind === "video" ? replaceVideoTrack(sender, track) : sender.replaceTrack(track));
    } else if (track) {
      this.senders[kind] = this.pc.addTrack(track, /** @type {MediaStream} */ (this.session.localStream));
    }
  }

  /** @param {MediaStream} stream */
  addScreen(stream) {
    if (!this.attached) return;
    const track = stream.getVideoTracks()[0];
    if (track) this.senders.screen = this.pc.addTrack(track, stream);
  }

  removeScreen() {
    if (this.senders.screen) {
      try {
        this.pc.removeTrack(this.senders.screen);
      } catch {
        /* connection closed */
      }
      this.senders.screen = null;
    }
  }

  /**
   * After the signalling channel was down, an offer or answer may have been lost: roll a
   * pending offer back (negotiation starts over) and restart ICE unless connected.
   */
  async recover() {
    const pc = this.pc;
    if (pc.signalingState === "have-local-offer") {
      try {
        await pc.setLocalDescription({ type: "rollback" });
      } catch {
        /* already moved on */
      }
    }
    if (pc.connectionState !== "connected" && pc.connectionState !== "closed") pc.restartIce();
  }

  close() {
    this.closed = true;
    clearTimeout(/** @type {number} */ (this.disconnectTimer));
    clearTimeout(/** @type {number} */ (this.attachTimer));
    clearTimeout(/** @type {number} */ (this.watchdog));
    this.pc.onnegotiationneeded = null;
    this.pc.onicecandidate = null;
    this.pc.ontrack = null;
    this.pc.onconnectionstatechange = null;
    this.pc.oniceconnectionstatechange = null;
    this.pc.close();
  }
}

export class MeshSession extends EventTarget {
  /**
   * `iceTransportPolicy: "relay"` (test/diagnostic only: `?relay=1`) forces TURN.
   * @param {MeshOptions} opts
   */
  constructor({ iceServers = [], sendSignal, iceTransportPolicy = null }) {
    super();
    this.iceServers = iceServers;
    this.iceTransportPolicy = iceTransportPolicy;
    this.sendSignal = sendSignal;
    /** @type {Map<string, Peer>} */
    this.peers = new Map();
    /** @type {MediaStream | null} */
    this.localStream = null;
    /** @type {MediaStream | null} */
    this.screenStream = null;
  }

  /**
   * @param {"peer-media" | "peer-state"} type
   * @param {object} detail
   */
  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /**
   * The local camera/mic stream; its tracks are what every peer receives.
   * @param {MediaStream} localStream
   */
  start(localStream) {
    this.localStream = localStream;
  }

  /** @param {RTCIceServer[] | null | undefined} iceServers */
  setIceServers(iceServers) {
    this.iceServers = iceServers || [];
  }

  /** @param {string} id */
  hasPeer(id) {
    return this.peers.has(id);
  }

  peerIds() {
    return [...this.peers.keys()];
  }

  /** @param {string} id */
  connectionState(id) {
    return this.peers.get(id)?.pc.connectionState ?? null;
  }

  /**
   * @param {string} id
   * @param {boolean} polite
   */
  addPeer(id, polite) {
    if (this.peers.has(id)) return /** @type {Peer} */ (this.peers.get(id));
    const peer = new Peer(this, id, polite);
    this.peers.set(id, peer);
    peer.start();
    return peer;
  }

  /** @param {string} id */
  removePeer(id) {
    const peer = this.peers.get(id);
    if (!peer) return;
    this.peers.delete(id);
    peer.close();
    this._emit("peer-media", { id, camera: null, screen: null });
    this._emit("peer-state", { id, state: "closed" });
  }

  /**
   * @param {string} from
   * @param {unknown} payload
   * @param {boolean} [polite] undefined: from someone not in the roster (ignored unless a peer)
   */
  handleSignal(from, payload, polite) {
    if (!payload || typeof payload !== "object") return;
    let peer = this.peers.get(from);
    if (!peer) {
      if (polite === undefined) return;
      peer = this.addPeer(from, polite);
    }
    peer.handle(/** @type {MeshSignal} */ (payload));
  }

  /**
   * Swap the outgoing camera ("video") or microphone ("audio") track on every connection.
   * @param {"audio" | "video"} kind
   * @param {MediaStreamTrack | null} track
   */
  async replaceTrack(kind, track) {
    const stream = this.localStream;
    if (stream) {
      for (const old of kind === "audio" ? stream.getAudioTracks() : stream.getVideoTracks()) {
        if (old !== track) stream.removeTrack(old);
      }
      if (track && !stream.getTracks().includes(track)) stream.addTrack(track);
    }
    await Promise.all([...this.peers.values()].map((p) => p.replaceTrack(kind, track).catch((e) => console.warn(e))));
  }

  /**
   * Start (stream) or stop (null) sharing a screen with everyone.
   * @param {MediaStream | null} stream
   */
  setScreen(stream) {
    if (this.screenStream === stream) return;
    const peers = [...this.peers.values()];
    if (this.screenStream) for (const p of peers) p.removeScreen();
    this.screenStream = stream;
    for (const p of peers) {
      p.announceStreams();
      if (stream) p.addScreen(stream);
    }
  }

  /** After the signalling channel came back: keep healthy connections, restart broken ones. */
  refresh() {
    for (const p of this.peers.values()) {
      p.announceStreams();
      p.recover().catch(() => {});
    }
  }

  /** Collect stats of every connection: { id: RTCStatsReport }. */
  async stats() {
    /** @type {Record<string, RTCStatsReport>} */
    const out = {};
    for (const [id, p] of this.peers) out[id] = await p.pc.getStats();
    return out;
  }

  close() {
    for (const id of [...this.peers.keys()]) this.removePeer(id);
    this.screenStream = null;
    this.localStream = null;
  }
}
