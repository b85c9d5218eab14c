import assert from "node:assert/strict";
import {
  decodeClientMessage,
  MAX_TEXT_LENGTH,
  normalizeName,
  parseClientMessage,
} from "../src/protocol.ts";

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
