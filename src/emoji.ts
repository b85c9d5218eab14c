/**
 * What counts as a single emoji, for reactions: pure, no table needed
 * (Unicode's own properties, as V8 knows them).
 *
 * @module
 */

/** Longest single emoji accepted, in UTF-16 code units (the longest RGI sequences use 35). */
export const MAX_EMOJI_LENGTH = 40;

/** An emoji as Unicode recommends it: ZWJ sequences, skin tones, flags, keycaps, tag sequences. */
const RGI = /^\p{RGI_Emoji}$/v;
/**
 * A pictograph, alone or joined to others by zero-width joiners, each with an
 * optional skin tone or emoji presentation selector: also the emoji newer
 * than this runtime's Unicode, and text-style ones such as the bare `❤`.
 */
const PICTOGRAPHIC =
  /^\p{Extended_Pictographic}(?:\p{Emoji_Modifier}|\uFE0F)?(?:\u200D\p{Extended_Pictographic}(?:\p{Emoji_Modifier}|\uFE0F)?)*$/u;
/**
 * Two regional indicators: a flag. Any pair, not only the runtime's known
 * regions, so a flag newer than its Unicode data (🇨🇶, Emoji 16.0, is not
 * RGI to Deno 2.5) counts; a pair of no region shows as two letters.
 */
const FLAG = /^[\u{1F1E6}-\u{1F1FF}]{2}$/u;
const GRAPHEMES = new Intl.Segmenter("en", { granularity: "grapheme" });

/**
 * Whether `text` is exactly one emoji: one grapheme that is a recommended
 * (RGI) emoji, or a well-formed pictographic one. ZWJ sequences (`👩‍💻`),
 * skin tones (`👍🏽`), flags (`🇯🇵`, `🏴󠁧󠁢󠁳󠁣󠁴󠁿`), keycaps (`1️⃣`) and text-style
 * symbols (`❤`) count, and so does any pair of regional indicators; text,
 * two emoji, emoji with text or spaces, a lone regional indicator, a digit
 * or a lone joiner do not.
 *
 * @example Usage
 * ```ts
 * import { isSingleEmoji } from "./emoji.ts";
 * isSingleEmoji("👩🏽‍🚀"); // true
 * isSingleEmoji("🎉🎉"); // false
 * isSingleEmoji("ok 👍"); // false
 * ```
 */
export function isSingleEmoji(text: unknown): boolean {
  if (typeof text !== "string" || text.length === 0 || text.length > MAX_EMOJI_LENGTH) return false;
  if (!text.isWellFormed()) return false;
  let count = 0;
  for (const _ of GRAPHEMES.segment(text)) if (++count > 1) return false;
  return RGI.test(text) || PICTOGRAPHIC.test(text) || FLAG.test(text);
}
