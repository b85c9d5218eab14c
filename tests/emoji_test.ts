/**
 * Emoji: what counts as one (src/emoji.ts, for reactions), and the page's
 * search and `:shortcode:` completion over the generated table
 * (static/emoji.js, static/emoji_data.js).
 */
import assert from "node:assert/strict";
import { isSingleEmoji } from "../src/emoji.ts";
import { REACTIONS } from "../src/protocol.ts";
import {
  completeShortcode,
  emojiByShortcode,
  replaceShortcodes,
  searchEmoji,
} from "../static/emoji.js";
import { EMOJI, EMOJI_SOURCE } from "../static/emoji_data.js";

Deno.test("isSingleEmoji: one emoji of any shape is one", () => {
  const one = [
    "👍",
    "🎉",
    "❤",
    "❤️",
    "☺",
    "©️", // plain, and text-style with or without VS16
    "👍🏽",
    "🧑🏿‍🦰",
    "👩🏽‍🚀", // skin tones, with ZWJ
    "🏽", // a skin tone alone is RGI too
    "👩‍💻",
    "👨‍👩‍👧‍👦",
    "🏳️‍🌈",
    "🐻‍❄️",
    "❤️‍🔥",
    "🧑‍🤝‍🧑",
    "👩🏻‍❤️‍💋‍👨🏿", // ZWJ sequences
    "🇯🇵",
    "🇺🇦",
    "🇪🇺",
    "🇨🇶", // Emoji 16.0: RGI only to newer runtimes
    "🇦🇦", // any pair of regional indicators counts
    "🏴󠁧󠁢󠁳󠁣󠁴󠁿", // flags, and a tag sequence
    "1️⃣",
    "#️⃣",
    "*️⃣", // keycaps
    "🫨",
    "🪿", // newer ones
  ];
  for (const emoji of one) assert.equal(isSingleEmoji(emoji), true, emoji);
  for (const reaction of REACTIONS) assert.equal(isSingleEmoji(reaction), true, reaction);
});

Deno.test("isSingleEmoji: text, two emoji, emoji with text, and broken ones are not", () => {
  const not = [
    "",
    " ",
    "a",
    "ok",
    "1",
    "#",
    "*",
    "12",
    ":)",
    "<3",
    "❤ ",
    " 👍",
    "👍👍",
    "🎉🎉",
    "👍 👍",
    "ok 👍",
    "👍!",
    "🇯",
    "🇯🇵🇯🇵",
    "\u200d",
    "👍\u200d",
    "\u200d👍",
    "\ufe0f",
    "e\u0301",
    "\ud83d",
    "👍\ud83d",
    "a\u20e3",
    "👨‍👩‍👧‍👦👨‍👩‍👧‍👦",
  ];
  for (const text of not) assert.equal(isSingleEmoji(text), false, JSON.stringify(text));
  assert.equal(isSingleEmoji(42), false);
  assert.equal(isSingleEmoji(null), false);
  assert.equal(isSingleEmoji("👍".repeat(30)), false, "long");
});

Deno.test("the emoji table names its source and stays small", async () => {
  assert.match(EMOJI_SOURCE, /^emojibase-data 17\.0\.0 /);
  assert.ok(EMOJI.length > 1800, `${EMOJI.length} emoji`);
  const bytes = (await Deno.stat(new URL("../static/emoji_data.js", import.meta.url))).size;
  assert.ok(bytes < 200 * 1024, `${bytes} bytes`);
  for (const [emoji] of EMOJI) assert.ok(isSingleEmoji(emoji), `table entry ${emoji} is one emoji`);
  const table = new Set(EMOJI.map(([emoji]) => emoji));
  for (const reaction of ["👍", "😂", "🎉", "😮", "😢", "👀", "🚀"]) {
    assert.ok(table.has(reaction), `${reaction} is in the table as the server spells it`);
  }
});

Deno.test("search by shortcode and name, best first", () => {
  assert.equal(emojiByShortcode("tada")?.emoji, "🎉");
  assert.equal(emojiByShortcode("+1")?.emoji, "👍");
  assert.equal(emojiByShortcode("nope"), undefined);
  assert.equal(searchEmoji("tada")[0].emoji, "🎉", "exact shortcode first");
  assert.equal(searchEmoji(":rocket:")[0].emoji, "🚀");
  const hearts = searchEmoji("red heart").map((e) => e.emoji);
  assert.ok(hearts.includes("❤️") || hearts.includes("❤"), hearts.join(" "));
  assert.ok(searchEmoji("woman technologist").some((e) => e.emoji === "👩‍💻"));
  assert.ok(searchEmoji("JAPAN").some((e) => e.emoji === "🇯🇵"), "case-insensitive, flags");
  assert.deepEqual(searchEmoji("   "), []);
  assert.equal(searchEmoji("face", 5).length, 5);
  assert.deepEqual(searchEmoji("qqqqzz"), []);
});

Deno.test(":shortcode completion and replacement", () => {
  const done = completeShortcode("nice :tad", 9);
  assert.ok(done);
  assert.deepEqual([done.start, done.end, done.query], [5, 9, "tad"]);
  assert.equal(done.matches[0].emoji, "🎉");
  assert.equal(completeShortcode(":ro", 3)?.matches[0].emoji !== undefined, true);
  assert.equal(completeShortcode("nice :t", 7), null, "too short");
  assert.equal(completeShortcode("time 10:30", 10), null, "not at the start of a word");
  assert.equal(completeShortcode("nice :tada: x", 13), null, "after the word");
  assert.equal(replaceShortcodes("ship it :rocket: :nope: 10:30:00"), "ship it 🚀 :nope: 10:30:00");
});
