// Chat search, pure parts: the words of a query (as the server reads them) and a text cut
// into plain and matching segments, for highlighting results without any HTML.

/**
 * The words of a query, lowercased (the server takes only words: no operators).
 * @param {string} query
 * @returns {string[]}
 */
export function queryWords(query) {
  const words = query.toLowerCase().match(/[\p{L}\p{N}_]+/gu) || [];
  return [...new Set(words)];
}

/**
 * `text` split into segments; `match` marks a word of `words` (whole words, any case).
 * @param {string} text
 * @param {string[]} words lowercased
 * @returns {{ text: string, match: boolean }[]}
 */
export function highlight(text, words) {
  /** @type {{ text: string, match: boolean }[]} */
  const out = [];
  const wanted = new Set(words);
  let last = 0;
  for (const m of text.matchAll(/[\p{L}\p{N}_]+/gu)) {
    const at = m.index ?? 0;
    if (!wanted.has(m[0].toLowerCase())) continue;
    if (at > last) out.push({ text: text.slice(last, at), match: false });
    out.push({ text: m[0], match: true });
    last = at + m[0].length;
  }
  if (last < text.length) out.push({ text: text.slice(last), match: false });
  return out;
}

/**
 * A result's excerpt: at most `max` characters around the first match.
 * @param {string} text
 * @param {string[]} words
 * @param {number} [max]
 */
export function excerpt(text, words, max = 140) {
  if (text.length <= max) return text;
  const first = highlight(text, words).findIndex((s) => s.match);
  let at = 0;
  if (first > 0) {
    at = highlight(text, words).slice(0, first).reduce((n, s) => n + s.text.length, 0);
  }
  const start = Math.max(0, Math.min(at - 30, text.length - max));
  return `${start > 0 ? "…" : ""}${text.slice(start, start + max)}${start + max < text.length ? "…" : ""}`;
}
