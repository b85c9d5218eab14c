/**
 * A message's formatted text (the tree of `format.js`) built as DOM nodes
 * with `createElement` and `textContent` only, never as HTML: paragraphs,
 * code blocks, quotes, lists, bold, italic, strike, code, links (opening in
 * a new tab) and mentions (yours marked).
 *
 * @module
 */

/** @typedef {import("./format.js").BlockNode} BlockNode */
/** @typedef {import("./format.js").InlineNode} InlineNode */
/** @typedef {import("./format.js").FormatNode} FormatNode */

const INLINE_TAGS = /** @type {const} */ ({ bold: "strong", italic: "em", strike: "s" });

/**
 * The nodes of a message's text: a text of one paragraph gives its inline
 * nodes only (no `<p>`), anything else its blocks.
 *
 * @param {BlockNode[]} blocks
 * @returns {Node[]}
 */
export function renderFormatted(blocks) {
  if (blocks.length === 1 && blocks[0].type === "paragraph") {
    return blocks[0].children.map(inlineNode);
  }
  return blocks.map(blockNode);
}

/**
 * True when the tree mentions this tab's user.
 *
 * @param {FormatNode[]} nodes
 * @returns {boolean}
 */
export function mentionsMe(nodes) {
  return nodes.some((node) => {
    if (node.type === "mention") return node.me;
    if (node.type === "list") return mentionsMe(node.items);
    return "children" in node && mentionsMe(node.children);
  });
}

/**
 * @param {BlockNode} node
 * @returns {HTMLElement}
 */
function blockNode(node) {
  switch (node.type) {
    case "paragraph": {
      const p = document.createElement("p");
      p.append(...node.children.map(inlineNode));
      return p;
    }
    case "code_block": {
      const pre = document.createElement("pre");
      const code = document.createElement("code");
      code.textContent = node.text;
      if (node.lang) code.dataset.lang = node.lang;
      pre.append(code);
      return pre;
    }
    case "quote": {
      const quote = document.createElement("blockquote");
      quote.append(...node.children.map(blockNode));
      return quote;
    }
    case "list": {
      const list = document.createElement(node.ordered ? "ol" : "ul");
      if (node.ordered && node.start !== 1) {
        /** @type {HTMLOListElement} */ (list).start = node.start;
      }
      list.append(...node.items.map((item) => {
        const li = document.createElement("li");
        li.append(...item.children.map(inlineNode));
        return li;
      }));
      return list;
    }
  }
}

/**
 * @param {InlineNode} node
 * @returns {Node}
 */
function inlineNode(node) {
  switch (node.type) {
    case "text":
      return document.createTextNode(node.text);
    case "break":
      return document.createElement("br");
    case "code": {
      const code = document.createElement("code");
      code.textContent = node.text;
      return code;
    }
    case "link": {
      const a = document.createElement("a");
      a.href = node.href;
      a.rel = "noopener noreferrer";
      a.target = "_blank";
      a.tabIndex = -1;
      a.textContent = node.text;
      return a;
    }
    case "mention": {
      const span = document.createElement(node.me ? "mark" : "span");
      span.className = node.me ? "mention me" : "mention";
      span.textContent = node.text;
      return span;
    }
    default: {
      const element = document.createElement(INLINE_TAGS[node.type]);
      element.append(...node.children.map(inlineNode));
      return element;
    }
  }
}
