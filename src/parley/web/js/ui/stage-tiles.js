// What the stage shows: one tile per participant (camera video or initials, mic/hand state),
// one large tile per shared screen ("You are presenting" / "<name> is presenting"), and
// which tile is speaking.  The tiles themselves are Stage's (stage.js).
import { pickSpeaker, smoothLevels } from "../core/rules.js";
import { initials } from "../core/text.js";

/** @typedef {import("../core/protocol.js").Participant} Participant */
/** @typedef {import("./stage.js").Stage} Stage */
/** @typedef {{ camera: MediaStream | null, screen: MediaStream | null }} RemoteMedia */

/**
 * Our own media as the stage shows it.
 * @typedef {object} SelfMedia
 * @property {MediaStreamTrack | null} video
 * @property {boolean} camOn
 * @property {MediaStream | null} screen
 */

export class StageTiles {
  /** @param {Stage} stage */
  constructor(stage) {
    this.stage = stage;
    /** @type {MediaStream | null} the self view's stream, kept while the camera track stays */
    this.selfStream = null;
    /** @type {Record<string, number>} */
    this.smoothed = {};
    /** @type {string | null} */
    this.speaker = null;
  }

  /**
   * Bring the tiles in line with `people` (display order, self first).
   * @param {Participant[]} people
   * @param {{ selfId: string | null, labels: Record<string, string>, handPos: Record<string, number>,
   *           local: SelfMedia, remote: Map<string, RemoteMedia> }} ctx
   */
  render(people, { selfId, labels, handPos, local, remote }) {
    const stage = this.stage;
    const keep = new Set();
    for (const p of people) {
      const self = p.id === selfId;
      const label = labels[p.id] ?? p.name;
      keep.add(p.id);
      stage.upsert(p.id, { label, initials: initials(p.name), self });
      let stream = null;
      /** @type {boolean | undefined} */
      let showVideo = false;
      if (self) {
        stream = local.video ? this.selfView(local.video) : null;
        showVideo = local.camOn && Boolean(local.video);
      } else {
        stream = remote.get(p.id)?.camera ?? null;
        showVideo = p.cam && Boolean(stream && stream.getVideoTracks().length);
      }
      stage.setStream(p.id, stream);
      stage.setState(p.id, { cam: showVideo, mic: p.mic, hand: p.hand, handPos: handPos[p.id] });

      const screen = self ? local.screen : remote.get(p.id)?.screen;
      const key = `${p.id}:screen`;
      if (screen) {
        keep.add(key);
        stage.upsert(key, { label: self ? "You are presenting" : `${label} is presenting`, initials: initials(p.name), self, screen: true });
        stage.setStream(key, screen);
        stage.setState(key, { cam: true });
      }
    }
    for (const key of stage.keys()) if (!keep.has(key)) stage.remove(key);
  }

  /** @param {MediaStreamTrack} track our camera */
  selfView(track) {
    if (!this.selfStream || this.selfStream.getVideoTracks()[0] !== track) this.selfStream = new MediaStream([track]);
    return this.selfStream;
  }

  /**
   * Highlight whoever speaks now (smoothed levels, with some stickiness).
   * @param {Record<string, number>} levels audio level per participant whose mic is on
   */
  detectSpeaker(levels) {
    this.smoothed = smoothLevels(this.smoothed, levels);
    const next = pickSpeaker(this.smoothed, this.speaker);
    if (next !== this.speaker) {
      this.speaker = next;
      this.stage.setSpeaking(next);
    }
  }
}
