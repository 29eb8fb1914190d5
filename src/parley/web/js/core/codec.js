// The video codec a page publishes with (SFU rooms): `?codec=h264` or `?codec=vp8` in the
// page URL. Without it the browser's own order stands (VP8 first in Chromium and Firefox),
// and the server takes the first of VP8 / H.264 in the offer (docs/protocol.md, SFU).

/** @type {Record<string, string>} */
const CODECS = { vp8: "video/VP8", h264: "video/H264" };

/**
 * The `?codec=` page option: "h264", "vp8", or null (absent or unknown: the default).
 * @param {string | null | undefined} search
 */
export function videoCodecOption(search) {
  const value = new URLSearchParams(search || "").get("codec");
  const name = value ? value.trim().toLowerCase() : "";
  return Object.hasOwn(CODECS, name) ? name : null;
}

/** @param {RTCRtpCodec} codec */
function h264Rank(codec) {
  const fmtp = String(codec.sdpFmtpLine || "");
  if (!/packetization-mode=1/.test(fmtp)) return 3; // mode 0: not forwarded by the server
  const profile = /profile-level-id=([0-9a-f]{6})/i.exec(fmtp)?.[1]?.toLowerCase() || "42e01f";
  if (profile.startsWith("42e0")) return 0; // constrained baseline: what subscribers get offered
  if (profile.startsWith("42")) return 1; // baseline
  return 2; // main, high…: the server cannot match these
}

/**
 * `codecs` (RTCRtpCodecCapability[]) reordered so that `name` ("h264" | "vp8") comes
 * first (for H.264: packetization-mode 1, constrained baseline before baseline before the
 * rest); everything else keeps its order, nothing is dropped. Null if `name` is unknown
 * or the list has no such codec.
 * @template {RTCRtpCodec} C
 * @param {C[] | null | undefined} codecs
 * @param {string} name
 * @returns {C[] | null}
 */
export function preferCodec(codecs, name) {
  const mime = CODECS[name];
  if (!mime || !Array.isArray(codecs)) return null;
  const mine = codecs.filter((c) => String(c.mimeType).toLowerCase() === mime.toLowerCase());
  if (!mine.length) return null;
  if (name === "h264") mine.sort((a, b) => h264Rank(a) - h264Rank(b)); // stable
  return [...mine, ...codecs.filter((c) => !mine.includes(c))];
}
