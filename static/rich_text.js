/**
 * A message's text cut into plain text, links and mentions, for the page to
 * build with DOM nodes (never as HTML). No DOM here: Deno tests import it.
 *
 * @module
 */

/**
 * One piece of a message's text.
 *
 * @typedef {{ type: "text", text: string }
 *   | { type: "link", text: string, href: string }
 *   | { type: "mention", text: string, name: string, me: boolean }} TextPart
 */

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"]+/giu;
/** Punctuation that ends a sentence rather than a URL. */
const TRAILING = /[.,;:!?'"…]$/u;
const WORD = /[\p{L}\p{N}\p{M}_]/u;
const PAIRS = { ")": "(", "]": "[", "}": "{" };

/**
 * The URL at the start of `candidate`, without the punctuation after it: a
 * closing bracket stays only when the URL opened one.
 *
 * @param {string} candidate
 */
function trimUrl(candidate) {
  let url = candidate;
  for (;;) {
    const last = url.at(-1) ?? "";
    if (TRAILING.test(last)) {
      url = url.slice(0, -1);
      continue;
    }
    const open = PAIRS[/** @type {keyof PAIRS} */ (last)];
    if (open && url.split(open).length <= url.split(last).length - 1) {
      url = url.slice(0, -1);
      continue;
    }
    return url;
  }
}

/**
 * The `http:`/`https:` URL that `text` spells, or null.
 *
 * @param {string} text
 */
function safeHref(text) {
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

/**
 * Cuts `text` into plain text and `@name` mentions of `names` (matched
 * without regard to case, longest name first, not inside a word or an
 * e-mail address).
 *
 * @param {string} text
 * @param {string[]} names
 * @param {string} me This tab's name: its mentions are marked `me`.
 * @returns {TextPart[]}
 */
function mentions(text, names, me) {
  /** @type {TextPart[]} */
  const parts = [];
  const sorted = [...new Set(names.filter((n) => n))].sort((a, b) => b.length - a.length);
  const lower = text.toLowerCase();
  let start = 0;
  for (let i = text.indexOf("@"); i >= 0; i = text.indexOf("@", i + 1)) {
    if (i > 0 && WORD.test(text[i - 1])) continue;
    const name = sorted.find((n) => {
      if (lower.slice(i + 1, i + 1 + n.length) !== n.toLowerCase()) return false;
      const after = text.slice(i + 1 + n.length);
      return after === "" || !WORD.test([...after][0]);
    });
    if (!name) continue;
    if (i > start) parts.push({ type: "text", text: text.slice(start, i) });
    const end = i + 1 + name.length;
    const isMe = me !== "" && name.toLowerCase() === me.toLowerCase();
    parts.push({ type: "mention", text: text.slice(i, end), name, me: isMe });
    start = end;
    i = end - 1;
  }
  if (start < text.length) parts.push({ type: "text", text: text.slice(start) });
  return parts;
}

/**
 * Cuts a message's text into plain text, links (`http:` and `https:` URLs
 * only) and mentions of `names`.
 *
 * @example
 * ```js
 * parseText("see https://deno.com, @ada", ["ada"], "bob");
 * // [{ type: "text", text: "see " },
 * //  { type: "link", text: "https://deno.com", href: "https://deno.com/" },
 * //  { type: "text", text: ", " },
 * //  { type: "mention", text: "@ada", name: "ada", me: false }]
 * ```
 *
 * @param {string} text
 * @param {string[]} [names] Names that can be mentioned (the room's members).
 * @param {string} [me] This tab's name.
 * @returns {TextPart[]}
 */
export function parseText(text, names = [], me = "") {
  /** @type {TextPart[]} */
  const parts = [];
  let start = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    const url = trimUrl(match[0]);
    const href = safeHref(url);
    if (!href) continue;
    if (match.index > start) parts.push(...mentions(text.slice(start, match.index), names, me));
    parts.push({ type: "link", text: url, href });
    start = match.index + url.length;
  }
  if (start < text.length) parts.push(...mentions(text.slice(start), names, me));
  return parts;
}

/**
 * True when `text` mentions `name`.
 *
 * @param {string} text
 * @param {string} name
 */
export function mentionsName(text, name) {
  return name !== "" && parseText(text, [name], name).some((p) => p.type === "mention" && p.me);
}
