// Pure meeting rules: who is polite in a peer connection, reconnect backoff.

/** The polite peer (yields on offer collisions) is the one with the smaller id. */
export function isPolite(selfId, peerId) {
  return String(selfId) < String(peerId);
}

const BACKOFF = [500, 1000, 2000, 4000];

/** Delay before reconnect attempt `n` (0-based): 0.5 s, 1 s, 2 s, 4 s, then 5 s. */
export function backoffDelay(attempt, max = 5000) {
  const base = BACKOFF[attempt] ?? max;
  return Math.min(base, max);
}

/**
 * Pick the active speaker from audio levels {id: level 0..1}.
 * Keeps the current speaker unless someone is clearly louder (hysteresis).
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

/** Grid shape for n tiles in a w×h box: the columns count that makes tiles largest (16:9). */
export function gridShape(n, width, height, aspect = 16 / 9) {
  if (n <= 0) return { cols: 1, rows: 1 };
  let best = { cols: 1, rows: n, size: 0 };
  for (let cols = 1; cols <= n; cols += 1) {
    const rows = Math.ceil(n / cols);
    const tileW = Math.min(width / cols, (height / rows) * aspect);
    if (tileW >= best.size) best = { cols, rows, size: tileW }; // ties: more columns
  }
  return { cols: best.cols, rows: best.rows };
}
