/**
 * Message search (src/store/search.ts) over a real history store: words
 * without case or accents, whole words and prefixes, every term, newest
 * first across rooms, pages with a cursor, edits and deletes (also ones
 * made after the index was built, and by another instance), pruning, a
 * deleted room, refusals; and the index agreeing with a plain scan on a
 * seeded random history.
 */
import assert from "node:assert/strict";
import type { MessageDraft } from "../src/store/history.ts";
import { KvHistory } from "../src/store/kv_history.ts";
import {
  MessageSearch,
  queryTerms,
  scanSearch,
  type SearchCursor,
  type SearchQuery,
  searchWords,
} from "../src/store/search.ts";
import { seededRandom } from "./helpers.ts";

let cid = 0;
function say(room: string, text: string, userId = "u1"): MessageDraft {
  return { room, userId, name: userId, text, cid: `c${++cid}` };
}
function edit(room: string, ref: number, text: string, userId = "u1"): MessageDraft {
  return { room, userId, name: userId, text, cid: `c${++cid}`, kind: "edit", ref };
}
function remove(room: string, ref: number, userId = "u1"): MessageDraft {
  return { room, userId, name: userId, text: "", cid: `c${++cid}`, kind: "delete", ref };
}

async function store(limit?: number) {
  const kv = await Deno.openKv(":memory:");
  const history = new KvHistory(kv, { limit });
  return { history, [Symbol.dispose]: () => kv.close() };
}

async function texts(search: MessageSearch, query: SearchQuery): Promise<string[]> {
  const result = await search.search(query);
  assert.ok(result.ok, JSON.stringify(result));
  return result.messages.map((m) => m.text);
}

Deno.test("searchWords and queryTerms: no case, no accents, words only", () => {
  assert.deepEqual(searchWords("Crème BRÛLÉE, naïve café!"), ["creme", "brulee", "naive", "cafe"]);
  assert.deepEqual(searchWords("ＦＵＬＬ width ﬁle"), ["full", "width", "file"]);
  assert.deepEqual(searchWords("日本語 и Ёлка"), ["日本語", "и", "елка"]);
  assert.deepEqual(queryTerms("ana ANAÏS"), { ok: true, terms: ["anais"] });
  assert.equal(queryTerms("  ,,, ").ok, false);
  assert.equal(queryTerms("x".repeat(201)).ok, false);
  assert.equal(queryTerms("a b c d e f g h i").ok, false);
  assert.equal(queryTerms(42).ok, false);
});

Deno.test("finds whole words and prefixes of every term, without case or accents", async () => {
  using s = await store();
  await s.history.appendMany("lobby", [
    say("lobby", "Anaïs deployed the café app"),
    say("lobby", "ana is here"),
    say("lobby", "banana bread"),
    say("lobby", "Deploying on Friday"),
    say("lobby", "CAFE DEPLOY"),
  ]);
  const search = new MessageSearch(s.history);
  const q = (query: string) => texts(search, { q: query, rooms: ["lobby"] });
  assert.deepEqual(await q("ana"), ["ana is here", "Anaïs deployed the café app"]);
  assert.deepEqual(await q("ANAÏS"), ["Anaïs deployed the café app"]);
  assert.deepEqual(await q("deploy cafe"), ["CAFE DEPLOY", "Anaïs deployed the café app"]);
  assert.deepEqual(await q("café deploy friday"), []);
  assert.deepEqual(await q("nana"), [], "not inside a word");
  assert.deepEqual(await q("deploying"), ["Deploying on Friday"]);
});

Deno.test("newest first across rooms, a page at a time, with hasMore and a cursor", async () => {
  using s = await store();
  for (let i = 1; i <= 7; i++) {
    await s.history.append("a", say("a", `match a${i}`));
    await s.history.append("b", say("b", `match b${i}`));
    await s.history.append("c", say("c", `other c${i}`));
  }
  const search = new MessageSearch(s.history);
  const seen: string[] = [];
  let before: SearchCursor | undefined;
  for (let page = 0; page < 10; page++) {
    const result = await search.search({ q: "match", rooms: ["a", "b", "c"], limit: 4, before });
    assert.ok(result.ok);
    seen.push(...result.messages.map((m) => m.text));
    if (!result.hasMore) {
      assert.equal(result.next, undefined);
      break;
    }
    before = result.next;
  }
  const expected = [];
  for (let i = 7; i >= 1; i--) expected.push(`match b${i}`, `match a${i}`);
  // Same ts is possible: compare as sets per ts order, but every one exactly once, newest first.
  assert.equal(seen.length, 14);
  assert.deepEqual([...new Set(seen)].length, 14);
  assert.deepEqual(seen.map((t) => Number(t.slice(-1))), expected.map((t) => Number(t.slice(-1))));
  assert.deepEqual(await texts(search, { q: "match", rooms: ["c"] }), []);
  assert.deepEqual(await texts(search, { q: "match", rooms: [] }), []);
});

Deno.test("deleted messages never match; edited ones match their current text only", async () => {
  using s = await store();
  await s.history.appendMany("lobby", [
    say("lobby", "the secret plan"), // 1
    say("lobby", "a typo: plna"), // 2
    say("lobby", "keep this plan"), // 3
  ]);
  await s.history.appendMany("lobby", [edit("lobby", 2, "fixed: plan"), remove("lobby", 1)]);
  const search = new MessageSearch(s.history);
  assert.deepEqual(await texts(search, { q: "plan", rooms: ["lobby"] }), [
    "keep this plan",
    "fixed: plan",
  ]);
  assert.deepEqual(await texts(search, { q: "plna", rooms: ["lobby"] }), []);
  assert.deepEqual(await texts(search, { q: "secret", rooms: ["lobby"] }), []);
  // Changes after the index was built, made through another handle (another instance).
  await s.history.appendMany("lobby", [
    edit("lobby", 3, "keep this idea"),
    say("lobby", "new plan"),
  ]);
  await s.history.append("lobby", remove("lobby", 4));
  assert.deepEqual(await texts(search, { q: "plan", rooms: ["lobby"] }), [
    "new plan",
    "fixed: plan",
  ]);
  assert.deepEqual(await texts(search, { q: "idea", rooms: ["lobby"] }), ["keep this idea"]);
  assert.deepEqual(await texts(search, { q: "typo", rooms: ["lobby"] }), []);
  const result = await search.search({ q: "plan", rooms: ["lobby"] });
  assert.ok(result.ok);
  assert.equal(result.messages.find((m) => m.text === "fixed: plan")?.edited, true);
});

Deno.test("pruned messages and deleted rooms are gone from search", async () => {
  using s = await store(3);
  for (let i = 1; i <= 5; i++) await s.history.append("lobby", say("lobby", `note ${i}`));
  const search = new MessageSearch(s.history);
  assert.deepEqual(await texts(search, { q: "note", rooms: ["lobby"] }), [
    "note 5",
    "note 4",
    "note 3",
  ]);
  await s.history.deleteRoom("lobby");
  await s.history.append("lobby", say("lobby", "fresh note"));
  assert.deepEqual(await texts(search, { q: "note", rooms: ["lobby"] }), ["fresh note"]);
});

Deno.test("refusals are data with a stable code", async () => {
  using s = await store();
  const search = new MessageSearch(s.history);
  for (
    const query of [{ q: "" }, { q: "ok", limit: 0 }, { q: "ok", limit: 51 }, {
      q: "ok",
      limit: 1.5,
    }]
  ) {
    const result = await search.search({ rooms: ["lobby"], ...query });
    assert.equal(result.ok, false);
    assert.ok(
      !result.ok && result.code === "invalid_message" && /^Cannot search: /.test(result.message),
    );
  }
});

Deno.test("the index and a plain scan agree on a seeded random history (FUZZ_SEED)", async () => {
  const seed = Number(Deno.env.get("FUZZ_SEED") ?? 23);
  const random = seededRandom(seed);
  const words = ["alpha", "Álpha", "beta", "bêta", "gamma", "gam", "delta", "epsilon", "zeta"];
  const pick = () => words[Math.floor(random() * words.length)];
  using s = await store(40);
  const rooms = [
    "r1",
    "r2",
    "r3",
    "r4",
    "r5",
    "r6",
    "r7",
    "r8",
    "r9",
    "r10",
    "r11",
    "r12",
    "r13",
    "r14",
    "r15",
    "r16",
    "r17",
    "r18",
    "r19",
    "r20",
    "r21",
    "r22",
  ];
  const search = new MessageSearch(s.history);
  for (let round = 0; round < 2; round++) {
    for (const room of rooms) {
      const latest = await s.history.latest(room);
      const drafts: MessageDraft[] = [];
      for (let i = 0; i < 20; i++) {
        const r = random();
        if (r < 0.7 || latest === 0) drafts.push(say(room, `${pick()} ${pick()} ${pick()}`));
        else if (r < 0.85) {
          drafts.push(edit(room, 1 + Math.floor(random() * latest), `${pick()} ${pick()}`));
        } else drafts.push(remove(room, 1 + Math.floor(random() * latest)));
      }
      await s.history.appendMany(room, drafts);
    }
    for (const q of ["gam", "beta delta", "ALPHA ZETA", "eps"]) {
      for (const subset of [rooms, rooms.slice(0, 3)]) {
        let before: SearchCursor | undefined;
        for (let page = 0; page < 50; page++) {
          const query: SearchQuery = { q, rooms: subset, limit: 12, before };
          const [indexed, scanned] = [
            await search.search(query),
            await scanSearch(s.history, query),
          ];
          assert.deepEqual(indexed, scanned, `seed ${seed}, round ${round}, ${q}, page ${page}`);
          if (!indexed.ok || !indexed.hasMore) break;
          before = indexed.next;
        }
      }
    }
  }
  assert.ok(search.size.rooms === 22 && search.size.postings > 0);
});

Deno.test("the index holds at most maxIndexedMessages, dropping the rooms searched least recently", async () => {
  using s = await store();
  for (const room of ["a", "b", "c"]) {
    await s.history.appendMany(room, [1, 2, 3, 4, 5].map((i) => say(room, `word ${room}${i}`)));
  }
  const search = new MessageSearch(s.history, { maxIndexedMessages: 10 });
  assert.equal((await texts(search, { q: "word", rooms: ["a", "b", "c"], limit: 50 })).length, 15);
  assert.deepEqual(search.size, { rooms: 2, messages: 10, postings: 20 });
  await texts(search, { q: "word", rooms: ["a"] });
  assert.deepEqual(search.size.rooms, 2, "a came back, the oldest other went");
  assert.deepEqual(await texts(search, { q: "c5", rooms: ["c"] }), ["word c5"]);
});
