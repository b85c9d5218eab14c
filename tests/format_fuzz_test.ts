/**
 * Message formatting (static/format.js): what each piece of markup becomes,
 * and a seeded fuzzer (FORMAT_SEED, 5,000 texts of markup characters, URL
 * schemes and Unicode) showing that no input gives a node type outside the
 * subset, or a link that is not http(s) (no `javascript:`, no `data:`).
 */
import assert from "node:assert/strict";
import { NODE_TYPES, parseFormatted, plainText } from "../static/format.js";
import { seededRandom } from "./helpers.ts";

const t = (text: string) => ({ type: "text", text });

Deno.test("inline styles, code, links and mentions", () => {
  assert.deepEqual(parseFormatted("**bold** _it_ ~~gone~~ `x**y`"), [{
    type: "paragraph",
    children: [
      { type: "bold", children: [t("bold")] },
      t(" "),
      { type: "italic", children: [t("it")] },
      t(" "),
      { type: "strike", children: [t("gone")] },
      t(" "),
      { type: "code", text: "x**y" },
    ],
  }]);
  assert.deepEqual(parseFormatted("**see https://deno.com/a_b_c** @ada", ["ada"], "ada"), [{
    type: "paragraph",
    children: [
      {
        type: "bold",
        children: [t("see "), {
          type: "link",
          text: "https://deno.com/a_b_c",
          href: "https://deno.com/a_b_c",
        }],
      },
      t(" "),
      { type: "mention", text: "@ada", name: "ada", me: true },
    ],
  }]);
  assert.deepEqual(parseFormatted("snake_case_name and 2 * 3 * 4"), [{
    type: "paragraph",
    children: [t("snake_case_name and 2 * 3 * 4")],
  }]);
  assert.deepEqual(parseFormatted("** not bold ** and **unclosed"), [{
    type: "paragraph",
    children: [t("** not bold ** and **unclosed")],
  }]);
  assert.deepEqual(parseFormatted("**_both_**")[0], {
    type: "paragraph",
    children: [{ type: "bold", children: [{ type: "italic", children: [t("both")] }] }],
  });
});

Deno.test("blocks: paragraphs with breaks, fenced code, quotes, lists", () => {
  const tree = parseFormatted(
    "line one\nline two\n\n```ts\nconst a = **1**;\n```\n> quoted **bold**\n> > nested\n- one\n- _two_\n1. first\n2. second",
  );
  assert.deepEqual(tree, [
    { type: "paragraph", children: [t("line one"), { type: "break" }, t("line two")] },
    { type: "code_block", lang: "ts", text: "const a = **1**;" },
    {
      type: "quote",
      children: [
        { type: "paragraph", children: [t("quoted "), { type: "bold", children: [t("bold")] }] },
        { type: "quote", children: [{ type: "paragraph", children: [t("nested")] }] },
      ],
    },
    {
      type: "list",
      ordered: false,
      start: 1,
      items: [
        { type: "item", children: [t("one")] },
        { type: "item", children: [{ type: "italic", children: [t("two")] }] },
      ],
    },
    {
      type: "list",
      ordered: true,
      start: 1,
      items: [{ type: "item", children: [t("first")] }, { type: "item", children: [t("second")] }],
    },
  ]);
  assert.deepEqual(parseFormatted("```\nunclosed <b>"), [
    { type: "code_block", lang: "", text: "unclosed <b>" },
  ]);
  assert.equal(plainText(parseFormatted("**bold** and `code`\n> q")), "bold and code\nq");
});

Deno.test("no link but http(s): javascript:, data: and friends stay text", () => {
  for (
    const text of [
      "javascript:alert(1)",
      "[x](javascript:alert(1))",
      "data:text/html,<script>alert(1)</script>",
      "**javascript:alert(1)**",
      "`https://in.code`",
      "<a href='javascript:x'>y</a>",
      "vbscript:msgbox",
      "JaVaScRiPt:alert(1)",
    ]
  ) {
    const links = collect(parseFormatted(text)).filter((n) => n.type === "link");
    assert.deepEqual(links, [], text);
  }
});

// deno-lint-ignore no-explicit-any
function collect(nodes: any[]): any[] {
  // deno-lint-ignore no-explicit-any
  const out: any[] = [];
  // deno-lint-ignore no-explicit-any
  const walk = (node: any) => {
    out.push(node);
    for (const child of node.children ?? []) walk(child);
    for (const item of node.items ?? []) walk(item);
  };
  nodes.forEach(walk);
  return out;
}

const PIECES = [
  "*",
  "**",
  "_",
  "__",
  "~",
  "~~",
  "`",
  "```",
  "```js",
  ">",
  "> ",
  "- ",
  "* ",
  "1. ",
  "2) ",
  "\n",
  "\n\n",
  " ",
  "  ",
  "\t",
  "[",
  "]",
  "(",
  ")",
  "<",
  ">",
  "@",
  "@ada",
  "@Ada Lovelace",
  "http://",
  "https://",
  "https://deno.com/",
  "javascript:",
  "JAVASCRIPT:",
  "data:",
  "data:text/html,",
  "vbscript:",
  "file:///etc/passwd",
  "//evil.example",
  "&lt;",
  "<script>",
  "alert(1)",
  "a",
  "b",
  "word",
  "é",
  "\u0301",
  "🎉",
  "👩‍💻",
  "\u202e",
  "\u200b",
  "\r",
  "\u0000",
  ":",
  "/",
  ".",
  ",",
];

Deno.test("fuzz: only the subset's node types, only http(s) links (FORMAT_SEED)", () => {
  const seed = Number(Deno.env.get("FORMAT_SEED") ?? 1234);
  const random = seededRandom(seed);
  for (let n = 0; n < 5000; n++) {
    let text = "";
    const length = Math.floor(random() * 60);
    for (let i = 0; i < length; i++) {
      text += random() < 0.9
        ? PIECES[Math.floor(random() * PIECES.length)]
        : String.fromCharCode(Math.floor(random() * 0x3000));
    }
    const tree = parseFormatted(text, ["ada", "Ada Lovelace"], "ada");
    const where = `seed ${seed}, case ${n}: ${JSON.stringify(text)}`;
    let shown = 0;
    for (const node of collect(tree)) {
      assert.ok(NODE_TYPES.has(node.type), `${where}: node type ${node.type}`);
      const keys = Object.keys(node).sort().join();
      assert.ok(
        [
          "children,type",
          "text,type",
          "type",
          "href,text,type",
          "me,name,text,type",
          "lang,text,type",
          "items,ordered,start,type",
        ].includes(keys),
        `${where}: fields ${keys}`,
      );
      if ("text" in node) {
        assert.equal(typeof node.text, "string", where);
        shown += node.text.length;
      }
      if (node.type === "link") {
        const url = new URL(node.href);
        assert.ok(url.protocol === "http:" || url.protocol === "https:", `${where}: ${node.href}`);
        assert.ok(!/^\s*(javascript|data|vbscript):/i.test(node.href), where);
      }
    }
    assert.ok(shown <= text.length, `${where}: shows more text than it was given`);
  }
});
