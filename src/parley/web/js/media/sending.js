// Turning a video sender off for real.
//
// `sender.replaceTrack(null)` stops Chromium's video, but Firefox keeps sending the last
// frame on every (simulcast) encoding. So a camera turned off also deactivates every
// encoding of its sender (`active: false`), and turning it on activates them again after
// the new track is in place.

/**
 * Set `active` on every encoding of `sender` (no-op where there are none).
 * @param {RTCRtpSender | null | undefined} sender
 * @param {boolean} active
 */
export async function setEncodingsActive(sender, active) {
  if (typeof sender?.getParameters !== "function" || typeof sender.setParameters !== "function") return;
  const params = sender.getParameters();
  if (!params?.encodings?.length || params.encodings.every((e) => e.active === active)) return;
  for (const e of params.encodings) e.active = active;
  try {
    await sender.setParameters(params);
  } catch (err) {
    console.warn("parley: could not turn the video encodings", active ? "on" : "off", err);
  }
}

/**
 * `sender` sends `track` (a video track, or null: nothing at all).
 * @param {RTCRtpSender} sender
 * @param {MediaStreamTrack | null} track
 */
export async function replaceVideoTrack(sender, track) {
  if (!track) await setEncodingsActive(sender, false);
  await sender.replaceTrack(track);
  if (track) await setEncodingsActive(sender, true);
}
