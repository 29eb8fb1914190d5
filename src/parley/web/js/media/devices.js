// Local capture: camera, microphone, screen; device lists; friendly error messages.

/** @typedef {{ id: string, label: string }} DeviceItem */

const VIDEO = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

export const canPickSpeaker = () =>
  typeof HTMLMediaElement !== "undefined" && "setSinkId" in HTMLMediaElement.prototype;

export const canShareScreen = () => Boolean(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);

/**
 * A sentence a person understands for a getUserMedia failure of `kind` ("camera" | "microphone").
 * @param {unknown} err what getUserMedia threw (a DOMException, usually)
 * @param {string} kind
 */
export function describeError(err, kind) {
  const name = err && /** @type {{ name?: string }} */ (err).name;
  if (name === "NotFoundError" || name === "OverconstrainedError") return `No ${kind} found.`;
  if (name === "NotAllowedError" || name === "SecurityError") {
    return `Access to the ${kind} was blocked. Allow it in the browser's site settings to use it.`;
  }
  if (name === "NotReadableError" || name === "AbortError") return `The ${kind} is in use by another application.`;
  if (name === "TypeError" || name === "NotSupportedError") return `This browser can't use the ${kind} here (a secure https page is needed).`;
  return `The ${kind} could not be started.`;
}

/**
 * @param {MediaTrackConstraints} base
 * @param {string | undefined} deviceId
 * @returns {MediaTrackConstraints}
 */
function constraint(base, deviceId) {
  return deviceId ? { ...base, deviceId: { exact: deviceId } } : base;
}

/**
 * @param {"audio" | "video"} kind
 * @param {string | undefined} deviceId
 * @returns {Promise<MediaStreamTrack>}
 */
async function getTrack(kind, deviceId) {
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia) throw Object.assign(new Error("no mediaDevices"), { name: "NotSupportedError" });
  const stream = await md.getUserMedia(
    kind === "audio" ? { audio: constraint(AUDIO, deviceId) } : { video: constraint(VIDEO, deviceId) },
  );
  return stream.getTracks()[0];
}

/** One camera track (or throws). */
export const getCameraTrack = (/** @type {string | undefined} */ deviceId) => getTrack("video", deviceId);

/** One microphone track (or throws). */
export const getMicTrack = (/** @type {string | undefined} */ deviceId) => getTrack("audio", deviceId);

/**
 * Ask for camera and microphone; fall back to whatever works.
 * Returns { audio: track|null, video: track|null, problems: { audio: string|null, video: string|null } }.
 * @param {{ audio?: boolean, video?: boolean, audioDeviceId?: string, videoDeviceId?: string }} [opts]
 */
export async function acquire({ audio = true, video = true, audioDeviceId, videoDeviceId } = {}) {
  /** @type {{ audio: MediaStreamTrack | null, video: MediaStreamTrack | null, problems: { audio?: string | null, video?: string | null } }} */
  const out = { audio: null, video: null, problems: { audio: null, video: null } };
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia) {
    out.problems.audio = describeError({ name: "NotSupportedError" }, "microphone");
    out.problems.video = describeError({ name: "NotSupportedError" }, "camera");
    return out;
  }
  if (audio && video) {
    try {
      const s = await md.getUserMedia({ audio: constraint(AUDIO, audioDeviceId), video: constraint(VIDEO, videoDeviceId) });
      out.audio = s.getAudioTracks()[0] ?? null;
      out.video = s.getVideoTracks()[0] ?? null;
      return out;
    } catch {
      /* try each on its own to learn which one failed */
    }
  }
  if (audio) {
    try {
      out.audio = await getMicTrack(audioDeviceId);
    } catch (err) {
      out.problems.audio = describeError(err, "microphone");
    }
  }
  if (video) {
    try {
      out.video = await getCameraTrack(videoDeviceId);
    } catch (err) {
      out.problems.video = describeError(err, "camera");
    }
  }
  return out;
}

/** { cameras, mics, speakers }: arrays of { id, label }. */
export async function listDevices() {
  /** @type {{ cameras: DeviceItem[], mics: DeviceItem[], speakers: DeviceItem[] }} */
  const out = { cameras: [], mics: [], speakers: [] };
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return out;
  const devices = await navigator.mediaDevices.enumerateDevices();
  /** @type {Record<MediaDeviceKind, number>} */
  const count = { videoinput: 0, audioinput: 0, audiooutput: 0 };
  for (const d of devices) {
    if (!(d.kind in count) || !d.deviceId) continue;
    count[d.kind] += 1;
    const fallback = { videoinput: "Camera", audioinput: "Microphone", audiooutput: "Speaker" }[d.kind];
    const item = { id: d.deviceId, label: d.label || `${fallback} ${count[d.kind]}` };
    if (d.kind === "videoinput") out.cameras.push(item);
    else if (d.kind === "audioinput") out.mics.push(item);
    else out.speakers.push(item);
  }
  return out;
}

/** A screen/window/tab picked by the user (video only), or throws. */
export async function getScreen() {
  return navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
}
