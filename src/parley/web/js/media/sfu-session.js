// SFU media session: two RTCPeerConnections with the server, whatever the room size.
//
// Same API and events as MeshSession (the UI cannot tell them apart):
//   const s = new SfuSession({ iceServers, sendSignal: (to, payload) => …, iceTransportPolicy? });
//   s.start(localStream) / s.addPeer(id) / s.removePeer(id) / s.hasPeer(id) / s.connectionState(id)
//   s.handleSignal(from, payload)           // only signals from "sfu" are used
//   s.replaceTrack("audio" | "video", track | null) / s.setScreen(stream | null)
//   s.refresh() / s.close() / s.stats()
//   events "peer-media" { id, camera: MediaStream|null, screen: MediaStream|null }, "peer-state" { id, state }
//
// * publish connection (we offer, sendonly): one transceiver for the microphone, one for
//   the camera (created even without a track, so turning a device on later needs no
//   renegotiation), one for the screen while shared (stopping sets it "inactive").
//   The offer goes as {"sfu":"publish","sdp","labels":{mid:"mic"|"camera"|"screen"}}.
//   The camera is sent with simulcast: encodings "l"/"m"/"h" (1/4, 1/2 and full
//   resolution; "l"/"h" only for cameras below 540 lines); the server forwards to each
//   viewer the layer that fits the tile it is shown in.
// * subscribe connection (the server offers, we answer recvonly): a fixed set of slots
//   (N audio + last-N video m-lines).  The server says which participant's track each
//   slot shows with {"sfu":"layout","slots":[{mid,kind,pid,track}]}; from that this
//   session builds each participant's MediaStreams: camera = their camera video + their
//   audio, screen = their screen video.
//   Once a second the size each video slot is rendered at (largest <video> showing its
//   track, in device pixels; 0x0 when not shown) goes to the server when it changed:
//   {"sfu":"view","slots":{mid:{w,h}}}.
//
// No trickle ICE: every SDP is sent once ICE gathering is complete.
//
// Video codec: `videoCodec` ("h264" | "vp8"; default: the page's `?codec=`, else null =
// the browser's order, VP8 first) is put first in the camera's and screen's codec
// preferences; the server publishes the first of VP8 / H.264 in the offer, and forwards
// either to every subscriber whose slots accept it. While a subscriber that cannot decode
// H.264 is in the room the server answers with VP8, and asks publishers already sending
// H.264 to offer again ({"sfu":"republish"}).
//
// After a signalling outage (refresh(), on a resumed welcome) the connections that look
// fine may still be unknown to the server: a restarted server process (or another node
// of a cluster) has no SFU state.  The session asks {"sfu":"status","id"} and starts over
// (publish / subscribe again) whatever the answer says the server no longer has; after a
// mere WebSocket drop the server still has both, and nothing is renegotiated.

import { preferCodec, videoCodecOption } from "../core/codec.js";
import { replaceVideoTrack } from "./sending.js";

const SFU = "sfu";
const GATHER_TIMEOUT_MS = 10000;
const ANSWER_TIMEOUT_MS = 15000;
// A connection that is not up this long after negotiating is started over.
const WATCHDOG_MS = 10000;
const VIEW_EVERY_MS = 1000;

/** @typedef {{ mid: string | number | null, kind?: string, pid?: string, track?: string }} Slot one slot of {"sfu":"layout"} */
/** @typedef {{ w: number, h: number }} Size */
/**
 * The publish connection and its transceivers.
 * @typedef {object} Publish
 * @property {RTCPeerConnection} pc
 * @property {RTCRtpTransceiver} mic
 * @property {RTCRtpTransceiver} camera
 * @property {RTCRtpTransceiver | null} screen
 * @property {boolean} negotiated an answer was applied (the server knows this connection)
 */
/**
 * A signal from the server's SFU (parley/sfu/peer.py); the fields depend on `sfu`.
 * @typedef {object} SfuSignal
 * @property {string} [sfu]
 * @property {string} [sdp]
 * @property {string} [id]
 * @property {boolean} [publish]
 * @property {boolean} [subscribe]
 * @property {string} [reason]
 * @property {string} [message]
 * @property {Slot[]} [slots]
 */
/** @typedef {{ camera: MediaStream | null, screen: MediaStream | null, sig: string }} PeerMedia */
/**
 * @typedef {object} SfuOptions
 * @property {RTCIceServer[]} [iceServers]
 * @property {(to: string, payload: object) => boolean | undefined} sendSignal
 * @property {RTCIceTransportPolicy | null} [iceTransportPolicy]
 * @property {string | null} [videoCodec] "h264" | "vp8"; default: the page's `?codec=`
 */

/**
 * Simulcast encodings for a camera track (lowest first; rids as the server ranks them).
 * @param {MediaStreamTrack | undefined} track
 * @returns {RTCRtpEncodingParameters[]}
 */
function cameraEncodings(track) {
  const height = track?.getSettings?.().height || 720;
  if (height < 540) {
    return [
      { rid: "l", scaleResolutionDownBy: 2, maxBitrate: 250_000 },
      { rid: "h", scaleResolutionDownBy: 1, maxBitrate: 900_000 },
    ];
  }
  return [
    { rid: "l", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
    { rid: "m", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
    { rid: "h", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
  ];
}

/**
 * {w, h} in device pixels of the largest visible <video> showing `track` ({0, 0}: none).
 * @param {MediaStreamTrack} track
 * @returns {Size}
 */
function renderedSize(track) {
  let best = { w: 0, h: 0 };
  const dpr = globalThis.devicePixelRatio || 1;
  for (const v of globalThis.document?.querySelectorAll?.("video") || []) {
    const src = /** @type {MediaStream | null} */ (v.srcObject);
    if (!src || typeof src.getVideoTracks !== "function" || !src.getVideoTracks().includes(track)) continue;
    const w = Math.round(v.clientWidth * dpr);
    const h = Math.round(v.clientHeight * dpr);
    if (w * h > best.w * best.h) best = { w, h };
  }
  return best;
}

const debug = (() => {
  try {
    return globalThis.localStorage?.getItem("parley.debug") ? (/** @type {unknown[]} */ ...a) => console.log("[sfu]", ...a) : () => {};
  } catch {
    return () => {};
  }
})();

/**
 * Resolve once `pc` has gathered all its ICE candidates (or after a timeout).
 * @param {RTCPeerConnection} pc
 * @returns {Promise<void>}
 */
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise(/** @param {(value?: void) => void} resolve */ (resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

export class SfuSession extends EventTarget {
  /** @param {SfuOptions} opts */
  constructor({
    iceServers = [],
    sendSignal,
    iceTransportPolicy = null,
    videoCodec = videoCodecOption(globalThis.location?.search),
  }) {
    super();
    this.iceServers = iceServers;
    this.iceTransportPolicy = iceTransportPolicy;
    this.videoCodec = videoCodec;
    this.sendSignal = sendSignal;
    /** @type {MediaStream | null} */
    this.localStream = null;
    /** @type {MediaStream | null} */
    this.screenStream = null;
    /** @type {Set<string>} */
    this.peers = new Set(); // participant ids the UI told us about
    /** @type {Set<string>} */
    this.gone = new Set(); // removed by the UI: never shown again, whatever a layout says
    this.closed = false;

    /** @type {Publish | null} */
    this.pub = null; // { pc, mic, camera, screen } transceivers
    this.pubWanted = false; // a (re)negotiation is due
    /** @type {Promise<void> | null} */
    this.pubRunning = null; // the running negotiation loop (a promise)
    /** @type {{ resolve: (sdp: string | undefined) => void, reject: (err: Error) => void } | null} */
    this.pubWaiter = null; // { resolve, reject } for the publish answer
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.pubWatchdog = null;

    /** @type {RTCPeerConnection | null} */
    this.sub = null; // RTCPeerConnection
    /** @type {Map<string, MediaStreamTrack>} */
    this.subTracks = new Map(); // mid -> MediaStreamTrack
    this.subQueue = Promise.resolve();
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.subWatchdog = null;
    /** @type {Slot[]} */
    this.layout = [];
    /** @type {Record<string, Size>} */
    this.views = {}; // mid -> {w, h} last sent
    /** @type {ReturnType<typeof setInterval> | null} */
    this.viewTimer = null;

    this.subAnswered = false; // the current subscribe connection was answered

    /** @type {{ id: string, pub: Publish | null, sub: RTCPeerConnection | null } | null} */
    this.probe = null; // { id, pub, sub }: the pending {"sfu":"status"} question
    this.probeSeq = 0;

    /** @type {Map<string, PeerMedia>} */
    this.media = new Map(); // pid -> { camera, screen, sig }
  }

  /**
   * @param {"peer-media" | "peer-state"} type
   * @param {object} detail
   */
  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _config() {
    /** @type {RTCConfiguration} */
    const config = { iceServers: this.iceServers, bundlePolicy: "max-bundle" };
    if (this.iceTransportPolicy) config.iceTransportPolicy = this.iceTransportPolicy;
    return config;
  }

  /** @param {{ sfu: string, [field: string]: unknown }} payload */
  _send(payload) {
    if (this.closed) return false;
    debug("send", payload.sfu);
    return this.sendSignal(SFU, payload);
  }

  // ------------------------------------------------------------------ the seam

  /**
   * The local camera/mic stream; subscribing starts at once, publishing once there is media.
   * @param {MediaStream} localStream
   */
  start(localStream) {
    this.localStream = localStream;
    this._subscribe();
    if (this._hasMedia()) this._publish();
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
    return [...this.peers];
  }

  /** @param {string} id */
  connectionState(id) {
    return this.peers.has(id) ? (this.sub?.connectionState ?? "new") : null;
  }

  /** @param {string} id */
  addPeer(id) {
    if (this.peers.has(id)) return;
    this.peers.add(id);
    this.gone.delete(id);
    if (this.sub) this._emit("peer-state", { id, state: this.sub.connectionState });
    this._applyLayout();
  }

  /** @param {string} id */
  removePeer(id) {
    if (!this.peers.has(id)) return;
    this.peers.delete(id);
    this.gone.add(id);
    this.media.delete(id);
    this._emit("peer-media", { id, camera: null, screen: null });
    this._emit("peer-state", { id, state: "closed" });
  }

  /**
   * @param {string} from
   * @param {SfuSignal} payload
   */
  handleSignal(from, payload) {
    if (from !== SFU || !payload || typeof payload !== "object") return;
    debug("recv", payload.sfu);
    switch (payload.sfu) {
      case "publish-answer":
        this.pubWaiter?.resolve(payload.sdp);
        break;
      case "subscribe-offer":
        this.subQueue = this.subQueue.then(() => this._answerSubscribe(payload.sdp)).catch((err) => {
          console.warn("parley: subscribing failed", err);
        });
        break;
      case "status":
        this._onStatus(payload);
        break;
      case "republish":
        // someone cannot decode our codec (Firefox without H.264): offer again, the
        // server answers with one they can
        console.info("parley: media server asks to publish again:", payload.reason);
        if (this.pub) this._renegotiate();
        break;
      case "layout":
        this.layout = Array.isArray(payload.slots) ? payload.slots : [];
        this._applyLayout();
        break;
      case "error":
        // "bad publish: …" / "publish failed": the pending offer is lost (subscribe
        // troubles are left to the subscribe watchdog)
        console.warn("parley: media server:", payload.message);
        if (/publish/.test(String(payload.message))) this.pubWaiter?.reject(new Error(String(payload.message)));
        break;
      default:
        break;
    }
  }

  /**
   * Swap the outgoing camera ("video") or microphone ("audio") track.
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
    const t = this.pub?.[kind === "audio" ? "mic" : "camera"];
    if (t) {
      // camera off: its encodings too (Firefox resends the last frame otherwise)
      await (kind === "video" ? replaceVideoTrack(t.sender, track) : t.sender.replaceTrack(track));
    } else if (track) {
      this._publish();
    }
  }

  /**
   * Start (stream) or stop (null) sharing a screen.
   * @param {MediaStream | null} stream
   */
  setScreen(stream) {
    if (this.screenStream === stream) return;
    this.screenStream = stream;
    if (!this.pub) {
      if (stream) this._publish();
      return;
    }
    const track = stream ? stream.getVideoTracks()[0] || null : null;
    const t = this.pub.screen;
    if (track) {
      if (t) {
        t.sender.replaceTrack(track).catch(() => {});
        t.direction = "sendonly";
        t.sender.setStreams?.(/** @type {MediaStream} */ (stream));
      } else {
        this.pub.screen = this.pub.pc.addTransceiver(track, { direction: "sendonly", streams: [/** @type {MediaStream} */ (stream)] });
        this._preferCodec(this.pub.screen);
      }
    } else if (t) {
      t.sender.replaceTrack(null).catch(() => {});
      t.direction = "inactive";
    }
    this._renegotiate();
  }

  /** After the signalling channel came back: start over whatever is not connected, and
   *  ask the server whether it still has the rest (it does not after a restart). */
  refresh() {
    if (this.closed) return;
    const bad = (/** @type {RTCPeerConnection | null} */ pc) => !pc || ["failed", "closed", "disconnected", "new"].includes(pc.connectionState);
    if (this.pub && (bad(this.pub.pc) || this.pubWaiter)) this._restartPublish();
    if (bad(this.sub) || this.sub?.signalingState !== "stable") this._subscribe();
    // only connections negotiated before now: one just started over is not known yet
    const pub = this.pub?.negotiated ? this.pub : null;
    const sub = this.subAnswered ? this.sub : null;
    if (!pub && !sub) return;
    this.probeSeq += 1;
    this.probe = { id: `s${this.probeSeq}`, pub, sub };
    this._send({ sfu: "status", id: this.probe.id });
  }

  /**
   * The server's answer to {"sfu":"status"}: start over what it does not have.
   * @param {SfuSignal} payload
   */
  _onStatus(payload) {
    const probe = this.probe;
    if (!probe || payload.id !== probe.id) return; // an older question
    this.probe = null;
    if (probe.pub && this.pub === probe.pub && payload.publish === false) {
      debug("the server has no publish connection of ours: publishing again");
      this._restartPublish();
    }
    if (probe.sub && this.sub === probe.sub && payload.subscribe === false) {
      debug("the server has no subscribe connection of ours: subscribing again");
      this._subscribe();
    }
  }

  /** Stats of both connections: { publish: RTCStatsReport, subscribe: RTCStatsReport }. */
  async stats() {
    /** @type {{ publish?: RTCStatsReport, subscribe?: RTCStatsReport }} */
    const out = {};
    if (this.pub) out.publish = await this.pub.pc.getStats();
    if (this.sub) out.subscribe = await this.sub.getStats();
    return out;
  }

  close() {
    for (const id of [...this.peers]) this.removePeer(id);
    if (this.pub) this._send({ sfu: "unpublish" });
    if (this.sub) this._send({ sfu: "unsubscribe" });
    this.closed = true;
    this._closePublish();
    this._closeSubscribe();
    this.screenStream = null;
    this.localStream = null;
  }

  // ------------------------------------------------------------------ publishing

  _hasMedia() {
    return Boolean(this.localStream?.getTracks().length || this.screenStream);
  }

  _publish() {
    if (this.closed || this.pub) return;
    const pc = new RTCPeerConnection(this._config());
    const stream = this.localStream || new MediaStream();
    /** @type {RTCRtpTransceiverInit} */
    const init = { direction: "sendonly", streams: [stream] };
    const cam = stream.getVideoTracks()[0];
    /** @type {Publish} */
    const pub = {
      pc,
      mic: pc.addTransceiver(stream.getAudioTracks()[0] || "audio", init),
      camera: pc.addTransceiver(cam || "video", { ...init, sendEncodings: cameraEncodings(cam) }),
      screen: null,
      negotiated: false, // an answer was applied (the server knows this connection)
    };
    const screen = this.screenStream?.getVideoTracks()[0];
    if (screen) pub.screen = pc.addTransceiver(screen, { direction: "sendonly", streams: [/** @type {MediaStream} */ (this.screenStream)] });
    this._preferCodec(pub.camera);
    this._preferCodec(pub.screen);
    this.pub = pub;
    pc.onconnectionstatechange = () => {
      if (this.pub?.pc !== pc) return;
      debug("publish", pc.connectionState);
      if (pc.connectionState === "failed") this._restartPublish();
    };
    this._renegotiate();
  }

  /** Offer (again) on the publish connection; runs one negotiation at a time. */
  _renegotiate() {
    this.pubWanted = true;
    if (this.pubRunning) return;
    this.pubRunning = (async () => {
      while (this.pubWanted && this.pub && !this.closed) {
        this.pubWanted = false;
        const pub = this.pub;
        try {
          await this._offer(pub);
        } catch (err) {
          if (this.pub !== pub || this.closed) break;
          console.warn("parley: publishing failed", err);
          if (pub.pc.signalingState === "have-local-offer") {
            await pub.pc.setLocalDescription({ type: "rollback" }).catch(() => {});
          }
        }
      }
    })().finally(() => {
      this.pubRunning = null;
      if (this.pubWanted && this.pub && !this.closed) this._renegotiate();
    });
  }

  /** @param {Publish} pub */
  async _offer(pub) {
    const pc = pub.pc;
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    if (this.pub !== pub) return;
    /** @type {Record<string, string>} */
    const labels = {};
    if (pub.mic.mid != null) labels[pub.mic.mid] = "mic";
    if (pub.camera.mid != null) labels[pub.camera.mid] = "camera";
    if (pub.screen?.mid != null) labels[pub.screen.mid] = "screen";
    /** @type {Promise<string | undefined>} */
    const answer = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no answer from the media server")), ANSWER_TIMEOUT_MS);
      this.pubWaiter = {
        resolve: (sdp) => {
          clearTimeout(timer);
          resolve(sdp);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
    });
    this._send({ sfu: "publish", sdp: /** @type {RTCSessionDescription} */ (pc.localDescription).sdp, labels });
    let sdp;
    try {
      sdp = await answer;
    } finally {
      this.pubWaiter = null;
    }
    if (this.pub !== pub || pc.signalingState !== "have-local-offer") return;
    await pc.setRemoteDescription({ type: "answer", sdp });
    pub.negotiated = true;
    this._armWatchdog("pubWatchdog", () => pub.pc, () => this._restartPublish());
  }

  /**
   * Put `this.videoCodec` (?codec=h264) first in a video transceiver's codec preferences.
   * @param {RTCRtpTransceiver | null} transceiver
   */
  _preferCodec(transceiver) {
    if (!this.videoCodec || typeof transceiver?.setCodecPreferences !== "function") return;
    // receiver capabilities first (what older Chromium checks against), then sender ones
    for (const Cls of [globalThis.RTCRtpReceiver, globalThis.RTCRtpSender]) {
      const codecs = preferCodec(Cls?.getCapabilities?.("video")?.codecs, this.videoCodec);
      if (!codecs) continue;
      try {
        /** @type {RTCRtpTransceiver} */ (transceiver).setCodecPreferences(codecs);
        return;
      } catch (err) {
        debug("setCodecPreferences", this.videoCodec, err);
      }
    }
    console.warn(`parley: cannot prefer ${this.videoCodec}; publishing with the default codec`);
  }

  _restartPublish() {
    if (this.closed) return;
    this._closePublish();
    this._send({ sfu: "unpublish" });
    if (this._hasMedia()) this._publish();
  }

  _closePublish() {
    clearTimeout(/** @type {number} */ (this.pubWatchdog));
    this.pubWaiter?.reject(new Error("closed"));
    const pub = this.pub;
    this.pub = null;
    if (pub) {
      pub.pc.onconnectionstatechange = null;
      pub.pc.close();
    }
  }

  /**
   * @param {"pubWatchdog" | "subWatchdog"} key
   * @param {() => RTCPeerConnection | null} getPc
   * @param {() => void} restart
   */
  _armWatchdog(key, getPc, restart) {
    clearTimeout(/** @type {number} */ (this[key]));
    this[key] = setTimeout(() => {
      const pc = getPc();
      if (this.closed || !pc) return;
      if (pc.connectionState !== "connected" && pc.connectionState !== "closed") {
        debug("watchdog: starting over", key, pc.connectionState);
        restart();
      }
    }, WATCHDOG_MS);
  }

  // ------------------------------------------------------------------ subscribing

  _subscribe() {
    if (this.closed) return;
    this._closeSubscribe();
    const pc = new RTCPeerConnection(this._config());
    this.sub = pc;
    pc.ontrack = (ev) => {
      const mid = ev.transceiver?.mid;
      if (mid == null) return;
      this.subTracks.set(String(mid), ev.track);
      this._applyLayout();
    };
    pc.onconnectionstatechange = () => {
      if (this.sub !== pc) return;
      const state = pc.connectionState;
      debug("subscribe", state);
      for (const id of this.peers) this._emit("peer-state", { id, state });
      if (state === "failed") this._subscribe();
    };
    this._send({ sfu: "subscribe" });
    this._armWatchdog("subWatchdog", () => this.sub, () => this._subscribe());
    this.views = {};
    clearInterval(/** @type {number} */ (this.viewTimer));
    this.viewTimer = setInterval(() => this._sendViews(), VIEW_EVERY_MS);
  }

  /** Tell the server the rendered size of each video slot, when one changed (>10 %). */
  _sendViews() {
    if (!this.sub || this.closed || this.sub.connectionState !== "connected") return;
    /** @type {Record<string, Size>} */
    const slots = {};
    let changed = false;
    for (const t of this.sub.getTransceivers()) {
      const track = t.receiver?.track;
      if (t.mid == null || !track || track.kind !== "video") continue;
      const size = renderedSize(track);
      const old = this.views[t.mid];
      const differs = (/** @type {number} */ a, /** @type {number} */ b) => Math.abs(a - b) > 0.1 * Math.max(a, b);
      if (!old || differs(old.w, size.w) || differs(old.h, size.h)) changed = true;
      slots[t.mid] = size;
    }
    if (!changed) return;
    this.views = slots;
    this._send({ sfu: "view", slots });
  }

  /** @param {string | undefined} sdp */
  async _answerSubscribe(sdp) {
    const pc = this.sub;
    if (!pc || this.closed) return;
    if (pc.signalingState !== "stable" || pc.remoteDescription) {
      // an offer for a connection we already answered: the server started over
      this._subscribe();
      return;
    }
    await pc.setRemoteDescription({ type: "offer", sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    if (this.sub !== pc) return;
    this._send({ sfu: "subscribe-answer", sdp: /** @type {RTCSessionDescription} */ (pc.localDescription).sdp });
    this.subAnswered = true;
    this._armWatchdog("subWatchdog", () => this.sub, () => this._subscribe());
  }

  _closeSubscribe() {
    clearTimeout(/** @type {number} */ (this.subWatchdog));
    clearInterval(/** @type {number} */ (this.viewTimer));
    this.viewTimer = null;
    const pc = this.sub;
    this.sub = null;
    this.subAnswered = false;
    this.subTracks = new Map();
    this.layout = [];
    if (pc) {
      pc.ontrack = null;
      pc.onconnectionstatechange = null;
      pc.close();
    }
    this._applyLayout();
  }

  /** Turn the latest layout into per-participant streams; emit what changed. */
  _applyLayout() {
    /** @type {Map<string, { camera: MediaStreamTrack[], screen: MediaStreamTrack[] }>} */
    const want = new Map(); // pid -> { camera: [tracks], screen: [tracks] }
    for (const slot of this.layout) {
      if (!slot || !slot.pid || slot.mid == null || this.gone.has(slot.pid)) continue;
      const track = this.subTracks.get(String(slot.mid));
      if (!track) continue;
      let entry = want.get(slot.pid);
      if (!entry) want.set(slot.pid, (entry = { camera: [], screen: [] }));
      if (slot.kind === "video" && slot.track === "screen") entry.screen.push(track);
      else entry.camera.push(track);
    }
    const sig = (/** @type {MediaStreamTrack[]} */ tracks) => tracks.map((t) => t.id).sort().join(",");
    const ids = new Set([...this.media.keys(), ...want.keys()]);
    for (const id of ids) {
      const entry = want.get(id) || { camera: [], screen: [] };
      const signature = `${sig(entry.camera)}|${sig(entry.screen)}`;
      const old = this.media.get(id);
      if (old && old.sig === signature) continue;
      if (!entry.camera.length && !entry.screen.length) {
        this.media.delete(id);
        if (old) this._emit("peer-media", { id, camera: null, screen: null });
        continue;
      }
      // keep a stream object while its tracks stay the same (no <video> reload)
      const keep = (/** @type {"camera" | "screen"} */ name) => (old && sig(old[name] ? old[name].getTracks() : []) === sig(entry[name]) ? old[name] : null);
      const camera = keep("camera") ?? (entry.camera.length ? new MediaStream(entry.camera) : null);
      const screen = keep("screen") ?? (entry.screen.length ? new MediaStream(entry.screen) : null);
      this.media.set(id, { camera, screen, sig: signature });
      this._emit("peer-media", { id, camera, screen });
    }
  }
}
