/**
 * Scanning the history against keeping an index, for message search
 * (`src/store/search.ts`): fills a Deno KV history with `--rooms` rooms of
 * `--messages` messages each (1,000 × 1,000 by default: 1 M messages, the
 * most the default `HISTORY_LIMIT` keeps in 1,000 rooms), then times
 *
 * - the scan (`scanSearch`): every retained event of every room read and
 *   matched, for a rare word and a common one;
 * - the index (`MessageSearch`): built on the first search (the same reads
 *   as one scan), its heap, then warm queries (rare, common, two terms, a
 *   prefix), and a query right after one new message in one room (the
 *   catch-up);
 * - both for one room, the usual case (a member searches the room open).
 *
 * The texts are 4–16 words from a vocabulary of 5,000 with Zipf-like
 * frequencies; one message in 10,000 holds the rare word `zephyr`.
 *
 * ```sh
 * deno run -A --v8-flags=--expose-gc bench/search.ts                  # 1,000 × 1,000, KV in memory
 * deno run -A --v8-flags=--expose-gc bench/search.ts --rooms 100 --messages 100
 * deno run -A --v8-flags=--expose-gc bench/search.ts --path /tmp/search.kv  # a KV file
 * ```
 *
 * The history branch's `KvHistory.get` is one point read; this tree's
 * interim one folds by listing the room after the id. So that the index's
 * verification is measured as it will run, `get` is the point read here
 * (the bench stores no edits, so the stored message is its current state).
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { ChatMessage } from "../src/protocol.ts";
import type { HistoryStore, MessageDraft } from "../src/store/history.ts";
import { KvHistory } from "../src/store/kv_history.ts";
import { MessageSearch, scanSearch, type SearchQuery } from "../src/store/search.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    rooms: { type: "string", default: "1000" },
    messages: { type: "string", default: "1000" },
    path: { type: "string", default: ":memory:" },
    runs: { type: "string", default: "5" },
  },
});
const ROOMS = Number(args.values.rooms);
const MESSAGES = Number(args.values.messages);
const RUNS = Number(args.values.runs);
const VOCABULARY = 5000;
const RARE = "zephyr";

/** A seeded PRNG (mulberry32). */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Word `n` of the vocabulary: pronounceable, 3–10 letters. */
function word(n: number): string {
  const syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "de", "po", "an", "el"];
  let w = "";
  for (let x = n + 1; x > 0; x = Math.floor(x / 12)) w += syllables[x % 12];
  return w;
}

const next = random(42);
/** Zipf-like: word n with weight 1/(n+1). */
function pick(): string {
  return word(Math.floor(Math.pow(VOCABULARY, next()) - 1));
}

function text(): string {
  const words = Array.from({ length: 4 + Math.floor(next() * 13) }, pick);
  if (next() < 1e-4) words[Math.floor(next() * words.length)] = RARE;
  return words.join(" ");
}

async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const start = performance.now();
  const value = await fn();
  return [performance.now() - start, value];
}

async function median(fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push((await time(fn))[0]);
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

function heap(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return Deno.memoryUsage().heapUsed;
}

const kv = await Deno.openKv(args.values.path);
const store = new KvHistory(kv, { limit: MESSAGES, maxRooms: ROOMS + 10 });
/** The store, with `get` as the one point read the history branch's is (see the module doc). */
async function pointGet(room: string, id: number): Promise<ChatMessage | null> {
  const { value } = await kv.get<ChatMessage>(["rooms", room, "msg", id]);
  return value && !value.kind ? value : null;
}
const history: HistoryStore = new Proxy(store, {
  get(target, name) {
    if (name === "get") return pointGet;
    const value = Reflect.get(target, name, target);
    return typeof value === "function" ? value.bind(target) : value;
  },
});
const rooms = Array.from({ length: ROOMS }, (_, i) => `room${i}`);

console.log(`Filling ${ROOMS} rooms × ${MESSAGES} messages (${args.values.path})…`);
const [fillMs] = await time(async () => {
  let cid = 0;
  for (const room of rooms) {
    for (let done = 0; done < MESSAGES; done += 200) {
      const drafts: MessageDraft[] = [];
      for (let i = done; i < Math.min(MESSAGES, done + 200); i++) {
        drafts.push({ room, userId: "u1", name: "ada", text: text(), cid: `c${++cid}` });
      }
      await store.appendMany(room, drafts);
    }
  }
});
console.log(`  filled in ${(fillMs / 1000).toFixed(1)} s`);

const common = word(1);
const all = (q: string): SearchQuery => ({ q, rooms, limit: 20 });
const results: Record<string, number | string> = {
  rooms: ROOMS,
  messagesPerRoom: MESSAGES,
  kv: args.values.path,
};

// The scan: one run each (they read everything).
const [scanRare, rare] = await time(() => scanSearch(history, all(RARE)));
const [scanCommon] = await time(() => scanSearch(history, all(common)));
results.scanRareMs = Math.round(scanRare);
results.scanCommonMs = Math.round(scanCommon);
results.rareMatches = rare.ok ? rare.messages.length : 0;

// The index: cold build, heap, warm queries.
const before = heap();
const search = new MessageSearch(history);
const [buildMs, first] = await time(() => search.search(all(RARE)));
const after = heap();
if (JSON.stringify(first) !== JSON.stringify(rare)) {
  throw new Error("the index and the scan differ");
}
results.indexBuildMs = Math.round(buildMs);
results.indexHeapMiB = Math.round((after - before) / 1024 / 1024);
results.indexPostings = search.size.postings;
results.indexRareMs = +(await median(() => search.search(all(RARE)))).toFixed(1);
results.indexCommonMs = +(await median(() => search.search(all(common)))).toFixed(1);
results.indexTwoTermsMs = +(await median(() => search.search(all(`${common} ${word(2)}`))))
  .toFixed(1);
results.indexPrefixMs = +(await median(() => search.search(all(word(3).slice(0, 2))))).toFixed(1);
await store.append("room7", {
  room: "room7",
  userId: "u1",
  name: "ada",
  text: `${RARE} news`,
  cid: "late",
});
const [catchUpMs] = await time(() => search.search(all(RARE)));
results.indexAfterOneNewMessageMs = +catchUpMs.toFixed(1);

// One room, the usual case.
const one: SearchQuery = { q: common, rooms: ["room3"], limit: 20 };
results.oneRoomScanMs = +(await median(() => scanSearch(history, one))).toFixed(1);
results.oneRoomIndexMs = +(await median(() => search.search(one))).toFixed(1);

console.log(JSON.stringify(results, null, 2));
kv.close();
