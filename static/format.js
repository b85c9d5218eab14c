/**
 * A message's text parsed into a tree of a small, safe subset of formatting,
 * for the page to build with DOM nodes (never as HTML). No DOM here: Deno
 * tests import it.
 *
 * Blocks: paragraphs (lines joined by `break`s), fenced code blocks
 * (```` ``` ```` lines, an optional language name), `> quotes` (nested up to
 * {@link MAX_DEPTH}), and lists (`- `, `* `, `+ ` or `1. ` items, one level).
 * Inline: `**bold**`, `_italic_`, `~~strike~~`, `` `code` ``, and the links
 * and `@mentions` of `rich_text.js` (only `http:` and `https:` links exist:
 * nothing else in a text can become one). Anything else is text. The node
 * types are exactly {@link NODE_TYPES}.
 *
 * @module
 */

import { parseText } from "./rich_text.js";

/**
 * @typedef {{ type: "text", text: string }
 *   | { type: "break" }
 *   | { type: "code", text: string }
 *   | { type: "link", text: string, href: string }
 *   | { type: "mention", text: string, name: string, me: boolean }
 *   | { type: "bold" | "italic" | "strike", children: InlineNode[] }} InlineNode
 * @typedef {{ type: "paragraph", children: InlineNode[] }
 *   | { type: "code_block", text: string, lang: string }
 *   | { type: "quote", children: BlockNode[] }
 *   | { type: "list", ordered: boolean, start: number, items: ListItem[] }} BlockNode
 * @typedef {{ type: "item", children: InlineNode[] }} ListItem
 * @typedef {BlockNode | ListItem | InlineNode} FormatNode
 */

/** Every node type the parser makes; nothing else ever appears in a tree. */
export const NODE_TYPES = Object.freeze(
  new Set([
    "paragraph",
    "code_block",
    "quote",
    "list",
    "item",
    "text",
    "break",
    "code",
    "link",
    "mention",
    "bold",
    "italic",
    "strike",
  ]),
);

/** How deep quotes and inline styles nest; deeper markup stays text. */
export const MAX_DEPTH = 4;
/** Longer texts get blocks and links, but no inline styles (whose matching is quadratic). */
const MAX_STYLED_LENGTH = 10_000;
const FENCE = /^ {0,3}```\s*([A-Za-z0-9_+#.-]{0,20})\s*$/;
const FENCE_END = /^ {0,3}```\s*$/;
const QUOTE = /^ {0,3}> ?/;
const ITEM = /^ {0,3}(?:([-*+])|(\d{1,9})[.)])\s+(.*)$/;
const WORD = /[\p{L}\p{N}_]/u;
const SPACE = /\s/u;
/** Inline delimiters, longest first. */
const STYLES = /** @type {const} */ ([["**", "bold"], ["~~", "strike"], ["_", "italic"]]);

/**
 * Parses a message's text into blocks of the safe subset.
 *
 * @example
 * ```js
 * parseFormatted("**hi** @ada, see https://deno.com", ["ada"]);
 * // [{ type: "paragraph", children: [
 * //   { type: "bold", children: [{ type: "text", text: "hi" }] },
 * //   { type: "text", text: " " },
 * //   { type: "mention", text: "@ada", name: "ada", me: false },
 * //   { type: "text", text: ", see " },
 * //   { type: "link", text: "https://deno.com", href: "https://deno.com/" }] }]
 * ```
 *
 * @param {string} text
 * @param {string[]} [names] Names that can be mentioned (the room's members).
 * @param {string} [me] This tab's name: its mentions are marked `me`.
 * @returns {BlockNode[]}
 */
export function parseFormatted(text, names = [], me = "") {
  const lines = String(text).replace(/\r\n?/g, "\n").split("\n");
  return blocks(lines, { names, me, styled: text.length <= MAX_STYLED_LENGTH }, 0);
}

/**
 * The text a tree shows, without its markup (for a notification or a reply's
 * quote).
 *
 * @example
 * ```js
 * plainText(parseFormatted("**bold** and `code`")); // "bold and code"
 * ```
 *
 * @param {FormatNode[]} nodes
 * @returns {string}
 */
export function plainText(nodes) {
  return nodes.map((node) => {
    switch (node.type) {
      case "break":
        return "\n";
      case "text":
      case "code":
      case "link":
      case "mention":
      case "code_block":
        return node.text;
      case "list":
        return node.items.map((item) => plainText(item.children)).join("\n");
      case "paragraph":
      case "quote":
        return plainText(node.children) + "\n";
      default:
        return plainText(node.children);
    }
  }).join("").replace(/\n+$/, "");
}

/**
 * @param {string[]} lines
 * @param {{ names: string[], me: string, styled: boolean }} context
 * @param {number} depth
 * @returns {BlockNode[]}
 */
function blocks(lines, context, depth) {
  /** @type {BlockNode[]} */
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const fence = FENCE.exec(line);
    if (fence) {
      let end = i + 1;
      while (end < lines.length && !FENCE_END.test(lines[end])) end++;
      out.push({ type: "code_block", lang: fence[1], text: lines.slice(i + 1, end).join("\n") });
      i = end + 1;
      continue;
    }
    if (QUOTE.test(line) && depth < MAX_DEPTH) {
      let end = i;
      while (end < lines.length && QUOTE.test(lines[end])) end++;
      const inner = lines.slice(i, end).map((l) => l.replace(QUOTE, ""));
      out.push({ type: "quote", children: blocks(inner, context, depth + 1) });
      i = end;
      continue;
    }
    const item = ITEM.exec(line);
    if (item) {
      const ordered = item[2] !== undefined;
      /** @type {ListItem[]} */
      const items = [];
      let end = i;
      for (let m = item; m && (m[2] !== undefined) === ordered; m = ITEM.exec(lines[++end] ?? "")) {
        items.push({ type: "item", children: inline(m[3], context) });
      }
      out.push({ type: "list", ordered, start: ordered ? Number(item[2]) : 1, items });
      i = end;
      continue;
    }
    if (line.trim() === "") {
      i++;
      continue;
    }
    let end = i;
    while (
      end < lines.length && lines[end].trim() !== "" && !(end > i && startsBlock(lines[end], depth))
    ) end++;
    /** @type {InlineNode[]} */
    const children = [];
    lines.slice(i, end).forEach((l, n) => {
      if (n > 0) children.push({ type: "break" });
      children.push(...inline(l, context));
    });
    out.push({ type: "paragraph", children });
    i = end;
  }
  return out;
}

/**
 * @param {string} line
 * @param {number} depth
 */
function startsBlock(line, depth) {
  return FENCE.test(line) || ITEM.test(line) || (QUOTE.test(line) && depth < MAX_DEPTH);
}

/**
 * One line's inline nodes: code spans first (literal), then links and
 * mentions (`rich_text.js`), then styles around them.
 *
 * @param {string} text
 * @param {{ names: string[], me: string, styled: boolean }} context
 * @returns {InlineNode[]}
 */
function inline(text, context) {
  /** @type {(string | InlineNode)[]} */
  const units = [];
  const pushText = (/** @type {string} */ s) => {
    for (const part of parseText(s, context.names, context.me)) {
      if (part.type === "text") units.push(...part.text);
      else if (part.type === "link") units.push(...trimStyle(part));
      else units.push(part);
    }
  };
  let rest = text;
  for (let m = /`([^`]+)`/.exec(rest); m; m = /`([^`]+)`/.exec(rest)) {
    pushText(rest.slice(0, m.index));
    units.push({ type: "code", text: m[1] });
    rest = rest.slice(m.index + m[0].length);
  }
  pushText(rest);
  return styled(units, 0, units.length, context.styled ? 0 : MAX_DEPTH);
}

/**
 * Styles in `units[start, end)`: characters (strings of one code point) and
 * nodes that are already whole (code, links, mentions).
 *
 * @param {(string | InlineNode)[]} units
 * @param {number} start
 * @param {number} end
 * @param {number} depth
 * @returns {InlineNode[]}
 */
function styled(units, start, end, depth) {
  /** @type {InlineNode[]} */
  const out = [];
  let text = "";
  const flush = () => {
    if (text) out.push({ type: "text", text });
    text = "";
  };
  for (let i = start; i < end;) {
    const unit = units[i];
    if (typeof unit !== "string") {
      flush();
      out.push(unit);
      i++;
      continue;
    }
    const style = depth < MAX_DEPTH ? opener(units, i, end) : undefined;
    if (style) {
      const [delimiter, type] = style;
      const close = closer(units, i + delimiter.length, end, delimiter);
      if (close >= 0) {
        flush();
        const children = styled(units, i + delimiter.length, close, depth + 1);
        out.push({ type, children });
        i = close + delimiter.length;
        continue;
      }
    }
    text += unit;
    i++;
  }
  flush();
  return out;
}

/**
 * The style whose delimiter opens at `i`, if one can.
 *
 * @param {(string | InlineNode)[]} units
 * @param {number} i
 * @param {number} end
 */
function opener(units, i, end) {
  for (const style of STYLES) {
    const [delimiter] = style;
    if (!at(units, i, delimiter, end)) continue;
    const next = units[i + delimiter.length];
    if (next === undefined || i + delimiter.length >= end) continue;
    if (typeof next === "string" && SPACE.test(next)) continue;
    if (delimiter === "_" && isWord(units[i - 1])) continue; // snake_case is no style
    return style;
  }
  return undefined;
}

/**
 * Where `delimiter` closes after `from` (not right at it), or −1.
 *
 * @param {(string | InlineNode)[]} units
 * @param {number} from
 * @param {number} end
 * @param {string} delimiter
 */
function closer(units, from, end, delimiter) {
  for (let j = from + 1; j <= end - delimiter.length; j++) {
    if (!at(units, j, delimiter, end)) continue;
    const before = units[j - 1];
    if (typeof before === "string" && SPACE.test(before)) continue;
    if (delimiter === "_" && isWord(units[j + 1])) continue;
    return j;
  }
  return -1;
}

/**
 * @param {(string | InlineNode)[]} units
 * @param {number} i
 * @param {string} delimiter
 * @param {number} end
 */
function at(units, i, delimiter, end) {
  if (i + delimiter.length > end) return false;
  for (let k = 0; k < delimiter.length; k++) if (units[i + k] !== delimiter[k]) return false;
  return true;
}

/**
 * A link without style delimiters at its end (`**https://deno.com**`):
 * they close a style rather than belong to the URL. Its `href` stays
 * `http:` or `https:`: the scheme is not touched.
 *
 * @param {{ type: "link", text: string, href: string }} link
 * @returns {(string | InlineNode)[]}
 */
function trimStyle(link) {
  const tail = /[*_~]+$/.exec(link.text);
  if (!tail) return [link];
  const text = link.text.slice(0, tail.index);
  let href;
  try {
    href = new URL(text).href;
  } catch {
    return [link];
  }
  if (!/^https?:$/.test(new URL(href).protocol)) return [link];
  return [{ type: "link", text, href }, ...tail[0]];
}

/** @param {string | InlineNode | undefined} unit */
function isWord(unit) {
  return typeof unit === "string" && WORD.test(unit);
}
