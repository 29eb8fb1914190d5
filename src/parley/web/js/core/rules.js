// Pure meeting rules: who is polite in a peer connection, reconnect backoff.

/**
 * The polite peer (yields on offer collisions) is the one with the smaller id.
 * @param {string} selfId
 * @param {string} peerId
 */
export function isPolite(selfId, peerId) {
  return String(selfId) < String(peerId);
}

const BACKOFF = [500, 1000, 2000, 4000];

/**
 * Delay before reconnect attempt `n` (0-based): 0.5 s, 1 s, 2 s, 4 s, then 5 s.
 * @param {number} attempt
 */
export function backoffDelay(attempt, max = 5000) {
  const base = BACKOFF[attempt] ?? max;
  return Math.min(base, max);
}

/**
 * Pick the active speaker from audio levels {id: level 0..1}.
 * Keeps the current speaker unless someone is clearly louder (hysteresis).
 * @param {Record<string, number>} levels
 * @param {string | null} current
 * @returns {string | null}
 */
export function pickSpeaker(levels, current, threshold = 0.04) {
  let best = null;
  let bestLevel = threshold;
  for (const [id, level] of Object.entries(levels)) {
    if (level > bestLevel) {
      best = id;
      bestLevel = level;
    }
  }
  if (current && levels[current] > threshold && (best === null || levels[current] * 1.5 >= bestLevel)) {
    return current;
  }
  return best;
}

/**
 * Smooth audio levels over time: a level jumps up at once and decays slowly (by `decay`
 * per sample), so the active-speaker highlight does not flicker between syllables.
 * @param {Record<string, number>} previous
 * @param {Record<string, number>} current
 */
export function smoothLevels(previous, current, decay = 0.8) {
  /** @type {Record<string, number>} */
  const out = {};
  for (const [id, level] of Object.entries(current)) {
    out[id] = Math.max(level, (previous[id] ?? 0) * decay);
  }
  return out;
}

/**
 * Grid shape for n tiles of ratio `aspect` in a width×height box with `gap` between them:
 * the column count that makes tiles largest, and that tile size.
 * @param {number} n
 * @param {number} width
 * @param {number} height
 */
export function gridShape(n, width, height, aspect = 16 / 9, gap = 0) {
  if (n <= 0) return { cols: 1, rows: 1, tileWidth: 0, tileHeight: 0 };
  let best = { cols: 1, rows: n, tileWidth: -1 };
  for (let cols = 1; cols <= n; cols += 1) {
    const rows = Math.ceil(n / cols);
    const cellW = (width - gap * (cols - 1)) / cols;
    const cellH = (height - gap * (rows - 1)) / rows;
    const tileW = Math.max(0, Math.min(cellW, cellH * aspect));
    if (tileW >= best.tileWidth) best = { cols, rows, tileWidth: tileW }; // ties: more columns
  }
  return { cols: best.cols, rows: best.rows, tileWidth: Math.floor(best.tileWidth), tileHeight: Math.floor(best.tileWidth / aspect) };
}
