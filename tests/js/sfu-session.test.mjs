// SfuSession after a signalling outage: refresh() asks the server {"sfu":"status"} and
// starts over (publish / subscribe again) only what the server no longer has.
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";

// ---------------------------------------------------------------- WebRTC stand-ins

class FakeTrack {
  constructor(kind) {
    this.kind = kind;
    this.id = `${kind}-${Math.random()}`;
  }
  getSettings() {
    return { height: 360 };
  }
}

class FakeStream {
  constructor(tracks = []) {
    this.tracks = [...tracks];
  }
  getTracks() {
    return [...this.tracks];
  }
  getAudioTracks() {
    return this.tracks.filter((t) => t.kind === "audio");
  }
  getVideoTracks() {
    return this.tracks.filter((t) => t.kind === "video");
  }
  addTrack(t) {
    this.tracks.push(t);
  }
  removeTrack(t) {
    this.tracks = this.tracks.filter((x) => x !== t);
  }
}

class FakeSender {
  constructor(encodings = [{}]) {
    this.track = null;
    this.encodings = encodings.map((e) => ({ active: true, ...e }));
    this.log = []; // what went out, in order: "track:<id|null>", "active:<bools>"
  }
  async replaceTrack(track) {
    this.track = track;
    this.log.push(`track:${track ? track.id : null}`);
  }
  setStreams() {}
  getParameters() {
    return { encodings: this.encodings.map((e) => ({ ...e })) };
  }
  async setParameters(params) {
    this.encodings = params.encodings.map((e) => ({ ...e }));
    this.log.push(`active:${this.encodings.map((e) => e.active).join(",")}`);
  }
}

class FakePC extends EventTarget {
  static all = [];
  constructor(config) {
    super();
    this.config = config;
    this.connectionState = "new";
    this.signalingState = "stable";
    this.iceGatheringState = "complete";
    this.localDescription = null;
    this.remoteDescription = null;
    this.transceivers = [];
    FakePC.all.push(this);
  }
  addTransceiver(trackOrKind, init = {}) {
    const t = {
      mid: String(this.transceivers.length),
      direction: init.direction,
      sender: new FakeSender(init.sendEncodings),
      receiver: { track: null },
    };
    this.transceivers.push(t);
    return t;
  }
  getTransceivers() {
    return this.transceivers;
  }
  async createOffer() {
    return { type: "offer", sdp: "offer-sdp" };
  }
  async createAnswer() {
    return { type: "answer", sdp: "answer-sdp" };
  }
  async setLocalDescription(desc) {
    this.localDescription = desc;
    this.signalingState = desc.type === "offer" ? "have-local-offer" : "stable";
  }
  async setRemoteDescription(desc) {
    this.remoteDescription = desc;
    this.signalingState = desc.type === "offer" ? "have-remote-offer" : "stable";
  }
  close() {
    this.connectionState = "closed";
  }
  async getStats() {
    return new Map();
  }
}

globalThis.RTCPeerConnection = FakePC;
globalThis.MediaStream = FakeStream;
const { SfuSession } = await import("../../src/parley/web/js/media/sfu-session.js");

// ---------------------------------------------------------------- harness

let session = null;

beforeEach(() => {
  FakePC.all = [];
});

afterEach(() => {
  session?.close();
  session = null;
});

const flush = async () => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

/** A session publishing a camera and a microphone, both connections negotiated and up. */
async function connectedSession() {
  const sent = [];
  session = new SfuSession({ sendSignal: (to, payload) => sent.push({ to, ...payload }) || true });
  session.start(new FakeStream([new FakeTrack("audio"), new FakeTrack("video")]));
  await flush();
  assert.deepEqual(
    sent.map((m) => m.sfu),
    ["subscribe", "publish"],
  );
  session.handleSignal("sfu", { sfu: "subscribe-offer", sdp: "s" });
  session.handleSignal("sfu", { sfu: "publish-answer", sdp: "p" });
  await flush();
  assert.ok(sent.some((m) => m.sfu === "subscribe-answer"));
  for (const pc of FakePC.all) pc.connectionState = "connected";
  sent.length = 0;
  return { sent, pub: session.pub.pc, sub: session.sub };
}

test("a resume where the server still has both connections renegotiates nothing", async () => {
  const { sent, pub, sub } = await connectedSession();
  session.refresh();
  assert.deepEqual(sent, [{ to: "sfu", sfu: "status", id: "s1" }]);
  session.handleSignal("sfu", { sfu: "status", id: "s1", publish: true, subscribe: true });
  await flush();
  assert.equal(sent.length, 1);
  assert.equal(session.pub.pc, pub);
  assert.equal(session.sub, sub);
  assert.equal(FakePC.all.length, 2);
});

test("after a server restart (status: neither) both connections start over", async () => {
  const { sent, pub, sub } = await connectedSession();
  session.refresh();
  session.handleSignal("sfu", { sfu: "status", id: "s1", publish: false, subscribe: false });
  await flush();
  assert.deepEqual(
    sent.map((m) => m.sfu),
    ["status", "unpublish", "subscribe", "publish"],
  );
  assert.equal(pub.connectionState, "closed");
  assert.equal(sub.connectionState, "closed");
  const open = FakePC.all.filter((pc) => pc.connectionState !== "closed");
  assert.equal(open.length, 2, "one publish and one subscribe connection, the old ones closed");
  assert.ok(session.pub.pc !== pub && session.sub !== sub);
});

test("only the connection the server lost starts over", async () => {
  const { sent, pub, sub } = await connectedSession();
  session.refresh();
  session.handleSignal("sfu", { sfu: "status", id: "s1", publish: true, subscribe: false });
  await flush();
  assert.deepEqual(
    sent.map((m) => m.sfu),
    ["status", "subscribe"],
  );
  assert.equal(session.pub.pc, pub);
  assert.notEqual(session.sub, sub);
});

test("an answer to an older question, or none asked, changes nothing", async () => {
  const { sent, pub, sub } = await connectedSession();
  session.handleSignal("sfu", { sfu: "status", publish: false, subscribe: false });
  session.refresh();
  session.refresh();
  session.handleSignal("sfu", { sfu: "status", id: "s1", publish: false, subscribe: false });
  await flush();
  assert.deepEqual(
    sent.map((m) => m.sfu),
    ["status", "status"],
  );
  assert.equal(session.pub.pc, pub);
  assert.equal(session.sub, sub);
});

test("connections started over by refresh() itself are not asked about", async () => {
  const { sent, pub } = await connectedSession();
  for (const pc of FakePC.all) pc.connectionState = "failed";
  session.refresh();
  await flush();
  assert.deepEqual(
    sent.map((m) => m.sfu),
    ["unpublish", "subscribe", "publish"],
  );
  assert.equal(pub.connectionState, "closed");
});

test("camera off deactivates every simulcast encoding before dropping the track; on reactivates", async () => {
  await connectedSession();
  const pc = FakePC.all.find((p) => p.transceivers.length === 2);
  const sender = pc.transceivers[1].sender; // the camera
  assert.equal(sender.encodings.length, 2); // a 360-line camera: "l" and "h"
  await session.replaceTrack("video", null);
  assert.deepEqual(sender.log, ["active:false,false", "track:null"]);
  const cam = new FakeTrack("video");
  await session.replaceTrack("video", cam);
  assert.deepEqual(sender.log.slice(2), [`track:${cam.id}`, "active:true,true"]);
  // the microphone is only muted by its track: no encoding change
  const mic = pc.transceivers[0].sender;
  await session.replaceTrack("audio", null);
  assert.deepEqual(mic.log, ["track:null"]);
});
