// Audio levels through WebAudio analysers: the pre-join meter and the active speaker.

/** @type {AudioContext | null} */
let sharedContext = null;

function context() {
  if (!sharedContext) {
    /** @type {typeof AudioContext | undefined} */
    const Ctx = globalThis.AudioContext || /** @type {any} */ (globalThis).webkitAudioContext;
    if (!Ctx) return null;
    sharedContext = new Ctx();
  }
  if (sharedContext.state === "suspended") sharedContext.resume().catch(() => {});
  return sharedContext;
}

/** Call from a user gesture so audio analysis may start. */
export function unlockAudio() {
  context();
}

/**
 * @typedef {object} Meter
 * @property {MediaStreamAudioSourceNode} source
 * @property {AnalyserNode} analyser
 * @property {Float32Array<ArrayBuffer>} buf
 * @property {string} trackId
 * @property {MediaStreamTrack} track
 */

export class AudioLevels {
  constructor() {
    /** @type {Map<string, Meter>} key -> meter */
    this.meters = new Map();
  }

  /**
   * Measure the audio of `stream` under `key` (replaces an earlier one).
   * @param {string} key
   * @param {MediaStream | null} stream
   */
  watch(key, stream) {
    const track = stream && stream.getAudioTracks()[0];
    const current = this.meters.get(key);
    if (current && track && current.trackId === track.id) return;
    this.unwatch(key);
    if (!track) return;
    const ctx = context();
    if (!ctx) return;
    try {
      const source = ctx.createMediaStreamSource(new MediaStream([track]));
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 512;
      analyser.smoothingTimeConstant = 0.3;
      source.connect(analyser);
      this.meters.set(key, { source, analyser, buf: new Float32Array(analyser.fftSize), trackId: track.id, track });
    } catch (err) {
      console.warn("parley: cannot analyse audio", err);
    }
  }

  /** @param {string} key */
  unwatch(key) {
    const m = this.meters.get(key);
    if (!m) return;
    try {
      m.source.disconnect();
    } catch {
      /* ignore */
    }
    this.meters.delete(key);
  }

  /**
   * Level 0..1 (RMS, scaled) of `key`; 0 when muted/unknown.
   * @param {string} key
   */
  level(key) {
    const m = this.meters.get(key);
    if (!m || !m.track.enabled || m.track.readyState !== "live" || m.track.muted) return 0;
    m.analyser.getFloatTimeDomainData(m.buf);
    let sum = 0;
    for (let i = 0; i < m.buf.length; i += 1) sum += m.buf[i] * m.buf[i];
    const rms = Math.sqrt(sum / m.buf.length);
    return Math.min(1, rms * 4);
  }

  levels() {
    /** @type {Record<string, number>} */
    const out = {};
    for (const key of this.meters.keys()) out[key] = this.level(key);
    return out;
  }

  close() {
    for (const key of [...this.meters.keys()]) this.unwatch(key);
  }
}
