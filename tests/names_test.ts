import assert from "node:assert/strict";
import { checkName, nameKey, normalizeName, parseClientMessage } from "../src/protocol.ts";
import { startServer, TestClient } from "./helpers.ts";
import CONFUSABLES from "unhomoglyph/data.json" with { type: "json" };

/** The error message a join under `name` gets, or `undefined` when it is valid. */
function joinError(name: string, room = "lobby"): string | undefined {
  const result = parseClientMessage({ type: "join", room, name });
  return result.ok ? undefined : result.error.message;
}

function assertRefused(name: string, label: string) {
  assert.equal(normalizeName(name), null, label);
  assert.match(joinError(name) ?? "", /^Cannot join room: name must be /, label);
}

function assertSameKey(names: string[]) {
  const keys = names.map(nameKey);
  for (const [i, key] of keys.entries()) {
    assert.equal(key, keys[0], `${JSON.stringify(names[i])} and ${JSON.stringify(names[0])}`);
  }
}

function assertDifferentKeys(a: string, b: string) {
  assert.notEqual(nameKey(a), nameKey(b), `${JSON.stringify(a)} and ${JSON.stringify(b)}`);
}

// --- normalization -----------------------------------------------------------

Deno.test("a name is normalized to NFKC and trimmed", () => {
  assert.equal(normalizeName(" ａｄａ "), "ada", "fullwidth letters");
  assert.equal(normalizeName("Zoe\u0308"), "Zoë", "NFD becomes NFC");
  assert.equal(normalizeName("ﬁona"), "fiona", "the ligature is split");
  assert.equal(normalizeName("ada\n"), "ada", "trailing white space goes");
});

Deno.test("a room name is normalized to NFKC too", () => {
  const result = parseClientMessage({ type: "join", room: "Cafe\u0301 ", name: "ada" });
  assert.deepEqual(result, {
    ok: true,
    message: { type: "join", room: "Caf\u00E9", name: "ada" },
  });
});

Deno.test("a name is at most 32 characters after normalization", () => {
  assert.equal(normalizeName("a".repeat(32)), "a".repeat(32));
  assert.equal(normalizeName("\uFDFA"), "\uFDFA".normalize("NFKC"), "one character, 18 after NFKC");
  assert.equal(normalizeName("\uFDFA\uFDFA"), null, "two characters, 36 after NFKC");
  assert.equal(normalizeName("x".repeat(5000)), null);
});

// --- refused characters ------------------------------------------------------

const INVISIBLE: [string, string][] = [
  ["a name with a zero-width space is refused", "ad\u200Bmin"],
  ["a name with a zero-width joiner is refused", "ad\u200Dmin"],
  ["a name with a zero-width non-joiner is refused", "ad\u200Cmin"],
  ["a name with a word joiner is refused", "ad\u2060min"],
  ["a name with a byte order mark is refused", "ad\uFEFFmin"],
  ["a name starting with a byte order mark is refused", "\uFEFFadmin"],
  ["a name with a soft hyphen is refused", "ad\u00ADmin"],
  ["a name with a combining grapheme joiner (U+034F) is refused", "ad\u034Fmin"],
  ["a name with an Arabic letter mark (U+061C) is refused", "ad\u061Cmin"],
  ["a name with a Mongolian vowel separator is refused", "ad\u180Emin"],
  ["a name with a tag character is refused", "admin\u{E0061}\u{E007F}"],
  ["a name with a variation selector is refused", "admin\uFE0F"],
  ["a name with an ideographic variation selector is refused", "admin\u{E0100}"],
  ["a name with a right-to-left override is refused", "a\u202Edmin"],
  ["a name with a right-to-left mark is refused", "admin\u200F"],
  ["a name with a bidi isolate is refused", "\u2067admin\u2069"],
  ["a name with a line separator is refused", "ad\u2028min"],
  ["a Hangul filler name (U+3164) is refused", "\u3164"],
  ["a name padded with a Hangul filler is refused", "admin\u3164"],
  ["a Hangul choseong filler (U+115F) is refused", "\u115Fadmin"],
  ["a Hangul jungseong filler (U+1160) is refused", "admin\u1160"],
  ["a halfwidth Hangul filler (U+FFA0) is refused", "admin\uFFA0"],
  ["a blank Braille name (U+2800) is refused", "\u2800"],
  ["a name padded with blank Braille is refused", "admin\u2800"],
  ["a name with a control character is refused", "ad\u0007min"],
  ["a name with an object replacement character (U+FFFC) is refused", "admin\uFFFC"],
  ["a name with a replacement character (U+FFFD) is refused", "admin\uFFFD"],
  ["a name with interlinear annotation characters is refused", "\uFFF9admin\uFFFAx\uFFFB"],
  ["a name with a noncharacter (U+FFFE) is refused", "admin\uFFFE"],
  ["a name with a noncharacter (U+FDD0) is refused", "ad\uFDD0min"],
  ["a name with a noncharacter (U+1FFFF) is refused", "admin\u{1FFFF}"],
  ["a name with a musical null notehead (U+1D159) is refused", "admin\u{1D159}"],
];

for (const [label, name] of INVISIBLE) {
  Deno.test(label, () => assertRefused(name, label));
}

Deno.test("the refusal says which character it found, in Deno's style", () => {
  assert.equal(
    joinError("ad\u200Bmin"),
    "Cannot join room: name must be free of control, format, bidi and invisible characters (found U+200B)",
  );
  assert.equal(
    joinError("ada", "lo\u200Dbby"),
    "Cannot join room: room must be free of control, format, bidi and invisible characters (found U+200D)",
  );
  assert.equal(
    joinError("admin\uFFFC"),
    "Cannot join room: name must be free of control, format, bidi and invisible characters (found U+FFFC)",
  );
  assert.equal(
    joinError("admin\u{1D159}"),
    "Cannot join room: name must be free of control, format, bidi and invisible characters (found U+1D159)",
  );
});

Deno.test("visible placeholders stay allowed: dotted circle, two- and three-em dashes", () => {
  for (const name of ["a\u25CCb", "ada \u2E3A", "\u2E3B ada"]) {
    assert.equal(normalizeName(name), name, name);
  }
});

Deno.test("a name that is blank or only combining marks is refused", () => {
  for (const name of ["", "   ", "\u3000", "\u0301", "\u0301\u0302 \u0303"]) {
    assertRefused(name, JSON.stringify(name));
  }
  assert.equal(
    joinError("\u0301"),
    "Cannot join room: name must be visible: it has no letter, digit or symbol",
  );
  assert.equal(joinError("  "), "Cannot join room: name must be 1-32 characters");
});

Deno.test("a name or room with more than 4 combining marks on one character is refused (N9)", () => {
  const message = "Cannot join room: name must have at most 4 combining marks on one character";
  assert.equal(joinError("a" + "\u0301".repeat(50)), message);
  assert.equal(joinError("Z" + "\u0489".repeat(5)), message);
  assert.equal(joinError("Z\u0300\u0489\u20DD\u0361\u0302 ok"), message);
  assert.deepEqual(checkName("ada" + "\u0300".repeat(9), "room"), {
    ok: false,
    problem: "marks",
    message: "Cannot join room: room must have at most 4 combining marks on one character",
  });
  assert.equal(normalizeName("Z" + "\u0489".repeat(4)), "Z" + "\u0489".repeat(4));
  // Counted after NFKC, which composes "a" and the first acute into "á".
  assert.equal(normalizeName("a" + "\u0301".repeat(5)), "\u00E1" + "\u0301".repeat(4));
  for (const name of ["Nguyễn".normalize("NFD"), "ज़ूँ", "שִּׁ", "བསྒྲུབས"]) {
    assert.equal(normalizeName(name), name.normalize("NFKC"), name);
  }
});

Deno.test("a name that is not well-formed is refused", () => {
  assert.deepEqual(checkName("ad\uD800", "name"), {
    ok: false,
    problem: "ill_formed",
    message: "Cannot join room: name must be well-formed Unicode (no lone surrogates)",
  });
});

Deno.test("common non-Latin names and emoji are accepted", () => {
  for (const name of ["مريم", "小明", "Ελένη", "ana 🌸", "Мария", "שירה", "प्रिया", "José", "🦕"]) {
    assert.equal(normalizeName(name), name.normalize("NFKC"), name);
  }
});

// --- uniqueness ----------------------------------------------------------------

Deno.test("case variants of a name share a key", () => {
  assertSameKey(["admin", "ADMIN", "Admin", "aDmIn"]);
  assertSameKey(["Σοφία", "ΣΟΦΊΑ", "σοφία"]);
  assertSameKey(["Мария", "МАРИЯ", "мария"]);
  assertSameKey(["straße", "STRASSE", "Strasse"]);
});

Deno.test("a Turkish dotted capital I shares the key of i", () => {
  assertSameKey(["admin", "ADMİN", "admi\u0307n", "adm\u0131n"]);
});

Deno.test("a Cyrillic lookalike letter shares the key of the Latin one", () => {
  assertSameKey(["admin", "\u0430dmin", "\u0430\u0501min"]);
  assertSameKey(["paypal", "\u0440\u0430\u0443\u0440\u0430l"]);
});

Deno.test("Cyrillic capitals that look like Latin capitals share its key", () => {
  assertSameKey(["ADMIN", "\u0410D\u041CIN", "admin"]);
  assertSameKey(["HOME", "\u041D\u041E\u041C\u0415", "home"]);
});

// Every Greek and Cyrillic capital letter that the Unicode confusables table
// maps to Latin capitals (A-Z, other Latin capitals such as "Ʌ", or "l", the
// table's prototype for "I"), perhaps with combining marks: "Ν" → "N",
// "Ң" → "H" + U+0329, "Ю" → "lO". Letters that NFKC changes are left out, as a
// name never holds them ("ϒ" becomes "Υ").
const LATIN_CAPITAL_PROTOTYPE = /^(?:(?=\p{Lu})\p{Script=Latin}\p{M}*|l)+$/u;
const CAPITAL_LOOKALIKES = Object.entries(CONFUSABLES as Record<string, string>).filter((
  [source, prototype],
) =>
  /^(?=\p{Lu})[\p{Script=Greek}\p{Script=Cyrillic}]$/u.test(source) &&
  source.normalize("NFKC") === source && LATIN_CAPITAL_PROTOTYPE.test(prototype)
);
// Every Greek and Cyrillic small letter that the table maps to plain ASCII:
// "ν" → "v", "а" → "a", "б" → "6".
const SMALL_LOOKALIKES = Object.entries(CONFUSABLES as Record<string, string>).filter((
  [source, prototype],
) =>
  /^(?=\p{Ll})[\p{Script=Greek}\p{Script=Cyrillic}]$/u.test(source) &&
  source.normalize("NFKC") === source && /^[\x21-\x7E]+$/.test(prototype)
);

Deno.test("every Greek and Cyrillic capital that looks Latin shares the Latin key", () => {
  assert.equal(CAPITAL_LOOKALIKES.length, 65);
  const different = CAPITAL_LOOKALIKES.filter(([source, prototype]) =>
    nameKey(source) !== nameKey(prototype)
  );
  // "Σ" (prototype "Ʃ", Latin esh) keeps the key of "σ", which looks like "o":
  // one of the two had to go, and "o" is the one ASCII names hold.
  assert.deepEqual(different, [["\u03A3", "\u01A9"]]);
  assert.equal(nameKey("\u03A3"), nameKey("\u03C3"));
  assert.equal(nameKey("\u03C3"), nameKey("o"));
});

Deno.test("every Greek and Cyrillic small letter that looks ASCII shares the ASCII key", () => {
  assert.equal(SMALL_LOOKALIKES.length, 35);
  for (const [source, prototype] of SMALL_LOOKALIKES) {
    assert.equal(nameKey(source), nameKey(prototype), `${source} and ${prototype}`);
  }
});

Deno.test("Greek capitals that look Latin share the Latin key (N8)", () => {
  assertSameKey(["NY", "\u039D\u03A5", "ny", "Ny"]);
  assertSameKey(["NINA", "\u039D\u0399\u039D\u0391", "nina", "Nina"]);
  assertSameKey(["POMA", "\u03A1\u039F\u039C\u0391", "poma"]);
  assertSameKey(["ATOM", "\u0410\u0422\u041E\u041C", "\u0391\u03A4\u039F\u039C", "atom"]);
  assertSameKey(["KEY", "\u039A\u0395\u03A5", "\u041A\u0415\u04AE"]);
});

Deno.test("small Greek and Cyrillic letters that look Latin share the Latin key", () => {
  const cyrillic = "\u0430\u0435\u043E\u0440\u0441\u0443\u0445\u0456\u0458\u0455\u0501\u051B\u051D";
  assertSameKey(["aeopcyxijsdqw", cyrillic, cyrillic.toUpperCase()]);
  // ο α ν ι κ ρ τ υ χ
  assertSameKey(["oavikptux", "\u03BF\u03B1\u03BD\u03B9\u03BA\u03C1\u03C4\u03C5\u03C7"]);
  assertSameKey(["paypal", "p\u0430ypal", "\u0440\u0430\u0443\u0440\u0430l"]);
  assertSameKey(["vika", "\u03BD\u03B9\u03BA\u03B1"]); // νικα
});

Deno.test("a Greek or Cyrillic capital like Λ, Л or Ʌ shares the key of its look-alikes", () => {
  assertSameKey(["\u039B", "\u041B", "\u0245", "\u03BB", "\u043B", "\u028C"]);
  assertSameKey(["\u0110", "\u00D0", "\u0189"]); // Đ Ð Ɖ
});

Deno.test("N and ν, Y and υ keep apart: a Greek ν or υ is another name in capitals", () => {
  // Capital "Ν" looks like "N" and small "ν" like "v"; one key cannot be both
  // without "nina" and "vina" being one name, so case does not join them.
  assertDifferentKeys("nina", "vina");
  assertDifferentKeys("\u039D\u0399\u039D\u0391", "\u03BD\u03B9\u03BD\u03B1");
  assertDifferentKeys("\u03A5", "\u03C5");
  assertDifferentKeys("Ελένη", "ΕΛΈΝΗ");
});

Deno.test("fullwidth and mathematical letters share the key of the plain ones", () => {
  assertSameKey([
    "admin",
    "ａｄｍｉｎ",
    "ＡＤＭＩＮ",
    "\u{1D41A}\u{1D41D}\u{1D426}\u{1D422}\u{1D427}",
  ]);
});

Deno.test("the NFD form of a name shares the key of its NFC form", () => {
  assertSameKey(["Zoë", "Zoe\u0308", "ZOË"]);
  assertSameKey(["Ελένη", "Ελένη".normalize("NFD")]);
});

Deno.test("confusable sequences share a key: rn and m, l and I and 1, O and 0", () => {
  assertSameKey(["mary", "rnary"]);
  assertSameKey(["Alice", "AIice", "A1ice", "alice"]);
  assertSameKey(["bob", "b0b", "BOB"]);
});

Deno.test("runs of white space count as one space", () => {
  assertSameKey(["ada lovelace", "ada  lovelace", "ada\u3000lovelace"]);
});

Deno.test("genuinely different names have different keys", () => {
  for (
    const [a, b] of [
      ["ada", "adb"],
      ["bob", "rob"],
      ["ana", "anna"],
      ["José", "Jose"],
      ["Zoë", "Zoe"],
      ["小明", "小朋"],
      ["ana 🌸", "ana 🌷"],
      ["adalovelace", "ada lovelace"],
      ["Мария", "Марина"],
    ]
  ) {
    assertDifferentKeys(a, b);
  }
});

Deno.test("ASCII letters and digits keep distinct keys but for i/l/1 and o/0", () => {
  const groups = new Map<string, string[]>();
  for (const char of "abcdefghijklmnopqrstuvwxyz0123456789") {
    const key = nameKey(char);
    groups.set(key, [...groups.get(key) ?? [], char]);
  }
  const shared = [...groups.values()].filter((chars) => chars.length > 1).map((c) =>
    c.sort().join("")
  );
  assert.deepEqual(shared.sort(), ["0o", "1il"]);
});

Deno.test("nameKey is idempotent and ignores invisible characters", () => {
  for (const name of ["admin", "ADMİN", "Ελένη", "мария", "ana 🌸", "مريم", "ﷺ"]) {
    assert.equal(nameKey(nameKey(name)), nameKey(name), name);
  }
  assert.equal(nameKey("ad\u200Bmin\uFE0F"), nameKey("admin"));
  assert.equal(nameKey("admin\uFFFC"), nameKey("admin"));
});

Deno.test("nameKey takes microseconds", () => {
  const names = Array.from({ length: 2000 }, (_, i) => `Ρlayer ${i} Ελένη мария 🌸`);
  const start = performance.now();
  for (const name of names) nameKey(name);
  const perName = (performance.now() - start) / names.length;
  assert.ok(perName < 0.5, `${perName} ms per name`);
});

// --- end to end ------------------------------------------------------------------

Deno.test("a join under an invisible-character name gets invalid_message and stays open", async () => {
  await using server = await startServer();
  await using client = await TestClient.connect(server.wsUrl);
  client.send({ type: "join", room: "lobby", name: "ad\u200Bmin" });
  const error = await client.next("error");
  assert.equal(error.code, "invalid_message");
  assert.match(error.message, /^Cannot join room: name must be free of .*U\+200B/);
  client.send({ type: "join", room: "lobby", name: "admin" });
  assert.equal((await client.next("welcome")).name, "admin");
});

Deno.test("a join under a fullwidth name is welcomed under its NFKC form", async () => {
  await using server = await startServer();
  const { client, welcome } = await TestClient.join(server.wsUrl, "ｌｏｂｂｙ", "ａｄａ");
  await using _ = client;
  assert.deepEqual([welcome.room, welcome.name], ["lobby", "ada"]);
});

Deno.test("a join to a room with a lone surrogate gets invalid_message", async () => {
  await using server = await startServer();
  await using client = await TestClient.connect(server.wsUrl);
  client.send({ type: "join", room: "s\uD800", name: "ada" });
  const error = await client.next("error");
  assert.deepEqual([error.code, error.message], [
    "invalid_message",
    "Cannot join room: room must be well-formed Unicode (no lone surrogates)",
  ]);
  client.send({ type: "join", room: "s\uFFFD", name: "ada" });
  assert.match((await client.next("error")).message, /\(found U\+FFFD\)$/);
  client.send({ type: "join", room: "s", name: "ada" });
  const welcome = await client.next("welcome");
  assert.deepEqual([welcome.room, welcome.history], ["s", []]);
});

Deno.test("a lookalike of a member's name is refused in the room as name_taken", async () => {
  await using server = await startServer();
  await using _admin = (await TestClient.join(server.wsUrl, "lobby", "admin")).client;
  for (const spoof of ["ADMİN", "\u0430dmin", "ａｄｍｉｎ", "Admin"]) {
    await using client = await TestClient.connect(server.wsUrl);
    client.send({ type: "join", room: "lobby", name: spoof });
    assert.equal((await client.next("error")).code, "name_taken", spoof);
  }
});

Deno.test("Greek capitals that look like a member's Latin name are refused as name_taken", async () => {
  await using server = await startServer();
  await using _nina = (await TestClient.join(server.wsUrl, "lobby", "NINA")).client;
  await using _ny = (await TestClient.join(server.wsUrl, "lobby", "NY")).client;
  for (const spoof of ["\u039D\u0399\u039D\u0391", "\u039D\u03A5"]) {
    await using client = await TestClient.connect(server.wsUrl);
    client.send({ type: "join", room: "lobby", name: spoof });
    assert.equal((await client.next("error")).code, "name_taken", spoof);
  }
});
