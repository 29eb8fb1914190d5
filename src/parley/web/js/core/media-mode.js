// Which way a room's media travels, as the meeting bar shows it. Pure logic, no DOM.

/** The texts of each mode: `text` is shown, `label` is what assistive technology reads
 * (the visible text with a hidden "Media: " prefix), `title` the tooltip. */
export const MEDIA_MODES = Object.freeze({
  mesh: Object.freeze({
    mode: "mesh",
    prefix: "Media: ",
    text: "Peer-to-peer",
    label: "Media: peer-to-peer",
    title: "Video goes directly between browsers",
  }),
  sfu: Object.freeze({
    mode: "sfu",
    prefix: "Media: ",
    text: "Via server",
    label: "Media: via server",
    title: "Video is forwarded by the server",
  }),
});

/**
 * The room's media mode from `welcome.room`: "sfu" only when the server says so; anything
 * else (missing, an older server, an unknown value) is "mesh", because that is the session
 * the client then builds. The indicator and the session choice both come from here.
 * @param {{ media?: string } | null | undefined} room
 * @returns {"sfu" | "mesh"}
 */
export function mediaMode(room) {
  return room && room.media === "sfu" ? "sfu" : "mesh";
}

/**
 * The texts for a mode name ("sfu" or anything else: mesh).
 * @param {string} mode
 */
export function mediaModeInfo(mode) {
  return mode === "sfu" ? MEDIA_MODES.sfu : MEDIA_MODES.mesh;
}

/** What the landing and pre-join pages promise about each mode: only what it really does. */
export const MEDIA_CLAIMS = Object.freeze({
  mesh: Object.freeze({
    heading: "Peer-to-peer",
    about: "Audio and video go directly between browsers (or through a TURN relay, where a network blocks direct paths and this server names one). This server introduces people and keeps the chat; their media does not pass through it.",
    hint: "Audio and video go directly between participants' browsers.",
  }),
  sfu: Object.freeze({
    heading: "Via server",
    about: "Audio and video go through this server: each browser sends its streams here once, encrypted in transit, and the server decrypts and forwards them to the others in the meeting.",
    hint: "Audio and video go through this server, which forwards them to the others in the meeting.",
  }),
});

/**
 * The server's media mode as its page states it (`<html data-media="sfu|mesh">`, filled in
 * by the server), or null when the page does not say: then no page claims either way.
 * @param {string | null | undefined} value
 * @returns {"sfu" | "mesh" | null}
 */
export function pageMediaMode(value) {
  return value === "sfu" || value === "mesh" ? value : null;
}
