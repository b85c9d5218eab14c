/**
 * Emoji for the page, without a DOM: search by name or shortcode, and
 * `:shortcode:` completion in the composer, over the table in
 * `emoji_data.js` (generated from `emojibase-data`, see
 * `scripts/emoji_data.ts`). Deno tests import it.
 *
 * @module
 */

import { EMOJI, EMOJI_GROUPS } from "./emoji_data.js";

/**
 * One emoji.
 *
 * @typedef {{ emoji: string, name: string, shortcodes: string[], group: string }} EmojiInfo
 */

/** Shortest query after the `:` that completion answers (`:s` would match half the table). */
export const MIN_COMPLETION_LENGTH = 2;

/** @type {EmojiInfo[]} */
const ALL = EMOJI.map(([emoji, name, shortcodes, group]) => ({
  emoji,
  name,
  shortcodes: shortcodes ? shortcodes.split(" ") : [],
  group: EMOJI_GROUPS[group] ?? "",
}));
/** @type {Map<string, EmojiInfo>} */
const BY_SHORTCODE = new Map();
for (const info of ALL) {
  for (const code of info.shortcodes) if (!BY_SHORTCODE.has(code)) BY_SHORTCODE.set(code, info);
}

/**
 * Lowercased, accents and other marks removed.
 *
 * @param {string} text
 */
function fold(text) {
  return text.normalize("NFKD").replace(/\p{M}+/gu, "").toLowerCase();
}

/**
 * The emoji whose shortcode is `code` (without colons), or `undefined`.
 *
 * @example
 * ```js
 * emojiByShortcode("tada")?.emoji; // "🎉"
 * ```
 *
 * @param {string} code
 * @returns {EmojiInfo | undefined}
 */
export function emojiByShortcode(code) {
  return BY_SHORTCODE.get(fold(code));
}

/**
 * Emoji matching `query`, best first: an exact shortcode, then shortcodes
 * starting with it, then names with a word starting with it, then names or
 * shortcodes containing it; within each, in Unicode's order. A query of
 * several words needs all of them (`red heart`).
 *
 * @example
 * ```js
 * searchEmoji("party", 3).map((e) => e.emoji); // ["🎉", "🥳", …]
 * ```
 *
 * @param {string} query
 * @param {number} [limit]
 * @returns {EmojiInfo[]}
 */
export function searchEmoji(query, limit = 24) {
  const words = fold(query).replace(/^:|:$/g, "").split(/[\s_]+/).filter(Boolean);
  if (words.length === 0) return [];
  const joined = words.join("_");
  /** @type {EmojiInfo[][]} */
  const ranks = [[], [], [], []];
  for (const info of ALL) {
    const name = fold(info.name);
    const nameWords = name.split(/[\s:,\-]+/);
    const hasAll = words.every((w) =>
      nameWords.some((n) => n.startsWith(w)) || info.shortcodes.some((c) => c.includes(w))
    );
    if (!hasAll) continue;
    if (info.shortcodes.includes(joined)) ranks[0].push(info);
    else if (info.shortcodes.some((c) => c.startsWith(joined))) ranks[1].push(info);
    else if (words.every((w) => nameWords.some((n) => n.startsWith(w)))) ranks[2].push(info);
    else ranks[3].push(info);
  }
  return ranks.flat().slice(0, limit);
}

/**
 * The `:shortcode` being typed just before `caret` in `text`, and the emoji
 * it could be: `null` when there is none (no `:` starting a word there, or
 * fewer than {@link MIN_COMPLETION_LENGTH} characters after it). Replace
 * `text.slice(start, end)` with the picked emoji.
 *
 * @example
 * ```js
 * completeShortcode("nice :tad", 9);
 * // { start: 5, end: 9, query: "tad", matches: [{ emoji: "🎉", … }, …] }
 * ```
 *
 * @param {string} text
 * @param {number} caret
 * @param {number} [limit]
 * @returns {{ start: number, end: number, query: string, matches: EmojiInfo[] } | null}
 */
export function completeShortcode(text, caret, limit = 8) {
  const before = text.slice(0, caret);
  const match = /(?:^|[\s(])(:([\p{L}\p{N}_+-]*))$/u.exec(before);
  if (!match || match[2].length < MIN_COMPLETION_LENGTH) return null;
  const start = caret - match[1].length;
  const matches = searchEmoji(match[2], limit);
  return matches.length ? { start, end: caret, query: match[2], matches } : null;
}

/**
 * `text` with every complete `:shortcode:` replaced by its emoji; unknown
 * ones stay as they are.
 *
 * @example
 * ```js
 * replaceShortcodes("ship it :rocket: :nope:"); // "ship it 🚀 :nope:"
 * ```
 *
 * @param {string} text
 */
export function replaceShortcodes(text) {
  return text.replace(
    /:([\p{L}\p{N}_+-]+):/gu,
    (whole, code) => emojiByShortcode(code)?.emoji ?? whole,
  );
}
