import assert from "node:assert/strict";
import {
  decodeClientMessage,
  MAX_TEXT_LENGTH,
  normalizeName,
  parseClientMessage,
} from "../src/protocol.ts";
import { startServer, TestClient } from "./helpers.ts";

function codeOf(value: unknown): string | undefined {
  const result = parseClientMessage(value);
  return result.ok ? undefined : result.error.code;
}

Deno.test("a valid join is returned trimmed, with since when given", () => {
  assert.deepEqual(parseClientMessage({ type: "join", room: " lobby ", name: " ada " }), {
    ok: true,
    message: { type: "join", room: "lobby", name: "ada" },
  });
  assert.deepEqual(parseClientMessage({ type: "join", room: "r", name: "n", since: 7 }), {
    ok: true,
    message: { type: "join", room: "r", name: "n", since: 7 },
  });
});

Deno.test("a valid say keeps its text and cid, and drops unknown fields", () => {
  assert.deepEqual(
    parseClientMessage({ type: "say", text: " hi\nthere ", cid: "A_b-1", userId: "x" }),
    { ok: true, message: { type: "say", text: " hi\nthere ", cid: "A_b-1" } },
  );
});

Deno.test("names are 1-32 characters without control or bidi characters", () => {
  assert.equal(normalizeName("  ada  "), "ada");
  assert.equal(normalizeName("é".repeat(32)), "é".repeat(32));
  assert.equal(normalizeName("🦕".repeat(32)), "🦕".repeat(32), "counted in characters");
  assert.equal(normalizeName("x".repeat(33)), null);
  assert.equal(normalizeName("   "), null);
  assert.equal(normalizeName("a\nb"), null);
  assert.equal(normalizeName("a\u202Eb"), null);
  assert.equal(normalizeName(42), null);
});

Deno.test("anything that is not an object with a string type is invalid_message", () => {
  for (const value of [null, 1, "join", [], [{ type: "join" }], {}, { type: 5 }]) {
    assert.equal(codeOf(value), "invalid_message", JSON.stringify(value));
  }
});

Deno.test("an unknown type is unknown_type", () => {
  assert.equal(codeOf({ type: "shout" }), "unknown_type");
  assert.equal(codeOf({ type: "__proto__" }), "unknown_type");
});

Deno.test("say fields are checked: text present, not blank, not too long, cid well-formed", () => {
  assert.equal(codeOf({ type: "say", cid: "c" }), "invalid_message");
  assert.equal(codeOf({ type: "say", cid: "c", text: "  " }), "invalid_message");
  assert.equal(codeOf({ type: "say", cid: "c", text: 5 }), "invalid_message");
  assert.equal(codeOf({ type: "say", cid: "c", text: "x".repeat(MAX_TEXT_LENGTH) }), undefined);
  assert.equal(
    codeOf({ type: "say", cid: "c", text: "x".repeat(MAX_TEXT_LENGTH + 1) }),
    "invalid_message",
  );
  assert.equal(codeOf({ type: "say", cid: "c", text: "\uD800" }), "invalid_message");
  assert.equal(codeOf({ type: "say", text: "hi" }), "invalid_message");
  assert.equal(codeOf({ type: "say", text: "hi", cid: "" }), "invalid_message");
  assert.equal(codeOf({ type: "say", text: "hi", cid: "has space" }), "invalid_message");
  assert.equal(codeOf({ type: "say", text: "hi", cid: "c".repeat(65) }), "invalid_message");
});

Deno.test("a refused say carries its cid, so the sender can mark it failed", () => {
  const result = parseClientMessage({ type: "say", cid: "c9", text: "" });
  assert.equal(result.ok, false);
  assert.equal(!result.ok && result.error.cid, "c9");
});

Deno.test("join since must be a non-negative integer", () => {
  for (const since of [-1, 1.5, "3", null, Number.MAX_VALUE]) {
    assert.equal(codeOf({ type: "join", room: "r", name: "n", since }), "invalid_message");
  }
});

Deno.test("errors read like Deno's: 'Cannot <do>: <why>'", () => {
  const result = decodeClientMessage("{nope");
  assert.deepEqual(result, {
    ok: false,
    error: {
      type: "error",
      code: "invalid_json",
      message: "Cannot parse message: it is not valid JSON",
    },
  });
});

Deno.test("a join token must be a string of at most 256 characters", () => {
  assert.equal(codeOf({ type: "join", room: "r", name: "n", token: "abc.def" }), undefined);
  assert.equal(codeOf({ type: "join", room: "r", name: "n", token: 5 }), "invalid_message");
  assert.equal(
    codeOf({ type: "join", room: "r", name: "n", token: "t".repeat(257) }),
    "invalid_message",
  );
});

Deno.test("a join auth token must be a string of at most 8192 characters", () => {
  assert.equal(codeOf({ type: "join", room: "r", name: "n", auth: "a.b.c" }), undefined);
  assert.equal(codeOf({ type: "join", room: "r", name: "n", auth: {} }), "invalid_message");
  assert.equal(
    codeOf({ type: "join", room: "r", name: "n", auth: "a".repeat(8193) }),
    "invalid_message",
  );
});

Deno.test("a room with a lone surrogate is refused, so it cannot alias another room", () => {
  for (const room of ["s\uD800", "s\uDBFF", "s\uDC00", "\uDFFFs"]) {
    const result = parseClientMessage({ type: "join", room, name: "ada" });
    assert.deepEqual(result, {
      ok: false,
      error: {
        type: "error",
        code: "invalid_message",
        message: "Cannot join room: room must be well-formed Unicode (no lone surrogates)",
      },
    }, JSON.stringify(room));
  }
  // Nor is the replacement character a lone surrogate becomes: U+FFFD is refused too.
  assert.equal(codeOf({ type: "join", room: "s\uFFFD", name: "ada" }), "invalid_message");
  assert.equal(codeOf({ type: "join", room: "s\u{1F995}", name: "ada" }), undefined);
});

Deno.test("every string field is refused with invalid_message when it has a lone surrogate", () => {
  const join = { type: "join", room: "lobby", name: "ada" };
  const say = { type: "say", text: "hi", cid: "c1" };
  for (
    const [label, message] of [
      ["room", { ...join, room: "lobby\uD800" }],
      ["name", { ...join, name: "ada\uDC00" }],
      ["token", { ...join, token: "abc\uD800.def" }],
      ["auth", { ...join, auth: "a.b\uDBFF.c" }],
      ["cid", { ...say, cid: "c\uD800" }],
      ["text", { ...say, text: "hi \uD83D" }],
    ] as const
  ) {
    assert.equal(codeOf(message), "invalid_message", label);
  }
  for (const message of [join, say, { ...join, token: "abc.def", auth: "a.b.c" }]) {
    assert.equal(codeOf(message), undefined, JSON.stringify(message));
  }
});

Deno.test("a frame with a lone surrogate escaped in JSON is refused, not stored", () => {
  const result = decodeClientMessage('{"type":"join","room":"s\\ud800","name":"ada"}');
  assert.equal(result.ok, false);
  assert.equal(!result.ok && result.error.code, "invalid_message");
});

Deno.test("an unknown type with a lone surrogate is echoed well-formed", () => {
  const result = parseClientMessage({ type: "x\uD800" });
  assert.equal(!result.ok && result.error.message, "Cannot handle message: unknown type 'x\uFFFD'");
});

Deno.test("multi-room frames: join without a name, leave, rename, and a room on scoped frames", () => {
  assert.deepEqual(parseClientMessage({ type: "join", room: " design " }), {
    ok: true,
    message: { type: "join", room: "design" },
  });
  assert.deepEqual(parseClientMessage({ type: "leave", room: " design " }), {
    ok: true,
    message: { type: "leave", room: "design" },
  });
  assert.deepEqual(parseClientMessage({ type: "rename", name: " ada2 " }), {
    ok: true,
    message: { type: "rename", name: "ada2" },
  });
  assert.deepEqual(parseClientMessage({ type: "say", room: " ops ", text: "hi", cid: "c1" }), {
    ok: true,
    message: { type: "say", room: "ops", text: "hi", cid: "c1" },
  });
  assert.deepEqual(parseClientMessage({ type: "typing", room: "ops" }), {
    ok: true,
    message: { type: "typing", room: "ops" },
  });
  assert.deepEqual(parseClientMessage({ type: "history", room: "ops", before: 9 }), {
    ok: true,
    message: { type: "history", room: "ops", before: 9, limit: 50 },
  });
  assert.deepEqual(
    parseClientMessage({ type: "react", room: "ops", ref: 2, emoji: "👍", cid: "r" }),
    {
      ok: true,
      message: { type: "react", room: "ops", ref: 2, emoji: "👍", cid: "r" },
    },
  );
});

Deno.test("a bad room on a scoped frame, leave or rename is invalid_message, worded for the action", () => {
  const say = parseClientMessage({ type: "say", room: "", text: "hi", cid: "c1" });
  assert.ok(!say.ok);
  assert.deepEqual([say.error.code, say.error.cid], ["invalid_message", "c1"]);
  assert.match(say.error.message, /^Cannot send message: room must be/);
  const edit = parseClientMessage({ type: "edit", room: 7, ref: 1, text: "x", cid: "c2" });
  assert.ok(!edit.ok);
  assert.match(edit.error.message, /^Cannot edit message: room must be/);
  const leave = parseClientMessage({ type: "leave" });
  assert.ok(!leave.ok);
  assert.match(leave.error.message, /^Cannot leave room: room must be/);
  const rename = parseClientMessage({ type: "rename", name: "a\u200Bb" });
  assert.ok(!rename.ok);
  assert.match(rename.error.message, /^Cannot rename: name must be free of/);
  assert.equal(codeOf({ type: "join", room: "r", name: "" }), "invalid_message");
});

Deno.test("a say or edit with more than 4 combining marks on one character is refused (N9)", () => {
  const zalgo = "Z" + "\u0489".repeat(300);
  assert.deepEqual(parseClientMessage({ type: "say", text: zalgo, cid: "z1" }), {
    ok: false,
    error: {
      type: "error",
      code: "invalid_message",
      message: "Cannot send message: text has more than 4 combining marks on one character",
      cid: "z1",
    },
  });
  assert.deepEqual(parseClientMessage({ type: "edit", ref: 3, text: zalgo, cid: "z2" }), {
    ok: false,
    error: {
      type: "error",
      code: "invalid_message",
      message: "Cannot edit message: text has more than 4 combining marks on one character",
      cid: "z2",
    },
  });
  const say = (text: string) => codeOf({ type: "say", text, cid: "c" });
  assert.equal(say("Z" + "\u0301".repeat(4)), undefined, "four marks");
  assert.equal(say("Z" + "\u0301".repeat(5)), "invalid_message", "five marks");
  assert.equal(say("ok Z" + "\u0489".repeat(5) + " ok"), "invalid_message", "in the middle");
  assert.equal(say("\u0301".repeat(5)), "invalid_message", "with no base");
  assert.equal(say("Z" + "\u0301\u200D".repeat(5)), "invalid_message", "joiners in between");
  assert.equal(say("Z" + "\u20DD\u0301\u0489\u0300\u0361"), "invalid_message", "mixed Mn, Me");
  assert.equal(say("Z\u0301\u0301\u0301\u0301 Z\u0301\u0301\u0301\u0301"), undefined, "4 + 4");
  // A spacing mark takes its own width: the marks after it sit on it.
  assert.equal(say("\u0995\u0301\u0301\u0301\u0301\u0983\u0301\u0301"), undefined, "spacing mark");
});

// Real text that stacks marks: each stays within 4 on one character.
const STACKED_TEXT: [string, string][] = [
  ["Vietnamese, decomposed (2)", "Tiếng Việt: Nguyễn Thị Phượng ở Huế".normalize("NFD")],
  ["Hindi (3)", "हिन्दी में ज़ूँ, क्षत्रिय, श्रृंगार और हैं"],
  ["Hebrew with niqqud and cantillation (3)", "בְּרֵאשִׁ֖ית בָּרָ֣א אֱלֹהִ֑ים אֵ֥ת הַשָּׁמַ֖יִם"],
  // הַשִּׁשִּֽׁי (Genesis 1:31): the second shin has hiriq, dagesh, meteg and shin dot.
  [
    "Hebrew, four on one letter",
    "י֥וֹם \u05D4\u05B7\u05E9\u05B4\u05BC\u05C1\u05E9\u05B4\u05BC\u05BD\u05C1\u05D9",
  ],
  ["Tibetan stacks (3)", "ཨོཾ་མ་ཎི་པདྨེ་ཧཱུྃ། བསྒྲུབས། སྒྲོལ་མ། ཧྲཱིཿ"],
  ["Burmese, with spacing marks (5 marks, 2 stacked)", "လျှော့ ချွေး မွှေး"],
  ["Arabic with harakat", "بِسْمِ ٱللَّهِ ٱلرَّحْمَٰنِ ٱلرَّحِيمِ"],
  ["emoji: keycap, tag flag, ZWJ sequences", "#️⃣ 🏴󠁧󠁢󠁳󠁣󠁴󠁿 👩🏽‍💻 ❤️‍🔥"],
];

for (const [label, text] of STACKED_TEXT) {
  Deno.test(`real text with stacked marks is accepted: ${label}`, () => {
    assert.equal(codeOf({ type: "say", text, cid: "c" }), undefined);
    assert.equal(codeOf({ type: "edit", ref: 1, text, cid: "c" }), undefined);
  });
}

Deno.test("a Zalgo say gets invalid_message with its cid and never reaches the room", async () => {
  await using server = await startServer();
  const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  const { client: bob } = await TestClient.join(server.wsUrl, "lobby", "bob");
  await using _bob = bob;
  ada.send({ type: "say", text: "Z" + "\u0489".repeat(300), cid: "zalgo" });
  const error = await ada.next("error");
  assert.deepEqual([error.code, error.cid], ["invalid_message", "zalgo"]);
  ada.send({ type: "say", text: "hello", cid: "hello" });
  assert.equal((await bob.next("message")).text, "hello");
});

Deno.test("direct conversations: dm by name, block and read frames, and dm: rooms by their shape", () => {
  assert.deepEqual(parseClientMessage({ type: "dm", name: " bob " }), {
    ok: true,
    message: { type: "dm", name: "bob" },
  });
  assert.deepEqual(parseClientMessage({ type: "block", userId: "0123abcd" }), {
    ok: true,
    message: { type: "block", userId: "0123abcd" },
  });
  assert.deepEqual(parseClientMessage({ type: "read", room: "dm:a1:b2", id: 4 }), {
    ok: true,
    message: { type: "read", room: "dm:a1:b2", id: 4 },
  });
  const long = `dm:${"a".repeat(16)}:${"b".repeat(16)}`; // longer than a room name may be
  assert.deepEqual(parseClientMessage({ type: "join", room: long }), {
    ok: true,
    message: { type: "join", room: long },
  });
  for (const room of ["dm:zzz:aaa", "dm:a:a", "dm:a", "dm:a:b:c", "dm:a b:c", "dm:"]) {
    assert.equal(codeOf({ type: "join", room }), "invalid_message", room);
    assert.equal(codeOf({ type: "say", room, text: "x", cid: "c" }), "invalid_message", room);
  }
  assert.equal(codeOf({ type: "block", userId: "a:b" }), "invalid_message");
  assert.equal(codeOf({ type: "read", room: "lobby", id: 0 }), "invalid_message");
  assert.equal(codeOf({ type: "dm", name: "" }), "invalid_message");
});
