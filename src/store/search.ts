/**
 * Searching rooms' retained history for words: {@linkcode MessageSearch},
 * with an index per instance that reads its rooms from the history store
 * itself, so it needs no hook in the hub and every instance finds what any
 * instance stored.
 *
 * A query's terms are its words, compared without regard to case or accents
 * (`Café` finds `cafe` and `CAFÉ`): a message matches when every term is a
 * word of its text or the start of one (`ana` finds `Anaïs`). Results come
 * newest first, `limit` at a time, with `hasMore` and a cursor for the next
 * page. Deleted messages never match; an edited one matches its current
 * text only.
 *
 * How: per room, a sorted list of the words seen and, for each word, the
 * ids of the messages that had it, built from `HistoryStore.after` the first
 * time a search touches the room and brought up to date on every later
 * search from the id it reached (edits arrive there as events, and add
 * their words). The index may only over-approximate: a candidate is read
 * back with `HistoryStore.get` and matched against its current text before
 * it is answered, so a deleted, edited-away or pruned message never is.
 * `bench/search.ts` measures it against scanning the history
 * ({@linkcode scanSearch}) for 1,000 rooms of 1,000 messages.
 *
 * @module
 */

import type { ChatMessage } from "../protocol.ts";
import { fold } from "./fold.ts";
import type { HistoryStore } from "./history.ts";

/** Most results one page may ask for. */
export const MAX_SEARCH_LIMIT = 50;
/** Results per page when not asked. */
export const DEFAULT_SEARCH_LIMIT = 20;
/** Longest query, in characters. */
export const MAX_QUERY_LENGTH = 200;
/** Most terms a query may have. */
export const MAX_QUERY_TERMS = 8;
/** Events read per `after` call while an index catches up. */
const CATCH_UP_PAGE = 1000;

/** Where a page of results ends: the next page starts after it. */
export interface SearchCursor {
  ts: number;
  room: string;
  id: number;
}

/** A search: what to look for, where, and which page. */
export interface SearchQuery {
  /** The words to find. */
  q: string;
  /** The rooms to look in (already checked: the caller's rooms). */
  rooms: string[];
  /** Only results after this cursor (older ones), for the next page. */
  before?: SearchCursor;
  /** Results wanted, 1–{@linkcode MAX_SEARCH_LIMIT}. @default {DEFAULT_SEARCH_LIMIT} */
  limit?: number;
}

/** A page of results, or why the query was refused. */
export type SearchResult =
  | {
    ok: true;
    /** Matching messages in their current state, newest first. */
    messages: ChatMessage[];
    /** Whether older matches follow. */
    hasMore: boolean;
    /** The cursor for the next page, when `hasMore`. */
    next?: SearchCursor;
  }
  | { ok: false; code: "invalid_message"; message: string };

/**
 * The words of `text` as the search compares them: NFKD, marks removed,
 * lowercased, cut at anything that is not a letter, digit or `_`.
 *
 * @example Usage
 * ```ts
 * import { searchWords } from "./search.ts";
 * searchWords("Crème brûlée at 8, @Ana!"); // ["creme", "brulee", "at", "8", "ana"]
 * ```
 */
export function searchWords(text: string): string[] {
  return text.normalize("NFKD").replace(/\p{M}+/gu, "").toLowerCase()
    .match(/[\p{L}\p{N}_]+/gu) ?? [];
}

/**
 * The query's terms, or a refusal: at least one word, at most
 * {@linkcode MAX_QUERY_TERMS}, in at most {@linkcode MAX_QUERY_LENGTH}
 * characters.
 */
export function queryTerms(q: unknown): { ok: true; terms: string[] } | {
  ok: false;
  code: "invalid_message";
  message: string;
} {
  const refuse = (why: string) => ({
    ok: false as const,
    code: "invalid_message" as const,
    message: `Cannot search: ${why}`,
  });
  if (typeof q !== "string") return refuse("'q' must be a string");
  if (q.length > MAX_QUERY_LENGTH) {
    return refuse(`'q' must be at most ${MAX_QUERY_LENGTH} characters`);
  }
  const terms = [...new Set(searchWords(q))];
  if (terms.length === 0) return refuse("'q' must have a word to look for");
  if (terms.length > MAX_QUERY_TERMS) {
    return refuse(`'q' must have at most ${MAX_QUERY_TERMS} words`);
  }
  // A term that is the start of another adds nothing: "ana anaïs" is "anais".
  return { ok: true, terms: terms.filter((t) => !terms.some((u) => u !== t && u.startsWith(t))) };
}

/** Whether every term is a word of `text` or the start of one. */
export function matchesAll(text: string, terms: string[]): boolean {
  const words = searchWords(text);
  return terms.every((term) => words.some((word) => word.startsWith(term)));
}

/** Options for {@linkcode MessageSearch}. */
export interface MessageSearchOptions {
  /**
   * Messages the index holds at most, over all its rooms; past that the
   * rooms searched least recently are dropped (and built again when searched
   * again). 200,000 messages take about 120 MiB of heap (bench/search.ts:
   * 618 MiB for 1 M).
   * @default {200000}
   */
  maxIndexedMessages?: number;
  /**
   * Words indexed per message at most (the first ones); a longer text is
   * still found by its first words, and verified whole.
   * @default {200}
   */
  maxWordsPerMessage?: number;
}

/** One room's index. */
class RoomIndex {
  /** The newest event id applied. */
  upTo = 0;
  /** Each indexed plain message's timestamp, by id. */
  ts = new Map<number, number>();
  /** Word → ids of the messages that had it (ascending, mostly: edits append). */
  postings = new Map<string, number[]>();
  /** The words, sorted, for prefix ranges; `null` when words were added since. */
  #sorted: string[] | null = [];

  add(id: number, words: Iterable<string>): void {
    for (const word of words) {
      let ids = this.postings.get(word);
      if (!ids) {
        ids = [];
        this.postings.set(word, ids);
        this.#sorted = null;
      }
      if (ids.at(-1) !== id) ids.push(id);
    }
  }

  /** The ids of messages having a word that starts with `term`. */
  idsFor(term: string): Set<number> {
    this.#sorted ??= [...this.postings.keys()].sort();
    const words = this.#sorted;
    let lo = 0, hi = words.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (words[mid] < term) lo = mid + 1;
      else hi = mid;
    }
    const ids = new Set<number>();
    for (let i = lo; i < words.length && words[i].startsWith(term); i++) {
      for (const id of this.postings.get(words[i])!) ids.add(id);
    }
    return ids;
  }
}

/** A room's candidates, newest first, and how far a merge has taken them. */
interface Candidates {
  room: string;
  /** [ts, id] pairs, newest first. */
  list: [number, number][];
  at: number;
}

/**
 * Search over the history store, with an in-memory index per instance; see
 * the module doc.
 *
 * @example Usage
 * ```ts ignore
 * import { MessageSearch } from "./search.ts";
 * const search = new MessageSearch(history);
 * const page = await search.search({ q: "deploy friday", rooms: ["team", "ops"], limit: 20 });
 * if (page.ok && page.hasMore) await search.search({ q: "deploy friday", rooms: ["team", "ops"], before: page.next });
 * ```
 */
export class MessageSearch {
  #history: HistoryStore;
  #rooms = new Map<string, RoomIndex>();
  #catchingUp = new Map<string, Promise<RoomIndex>>();
  #maxWords: number;
  #maxMessages: number;

  /** Searches `history`; see {@linkcode MessageSearchOptions}. */
  constructor(history: HistoryStore, options: MessageSearchOptions = {}) {
    this.#history = history;
    this.#maxWords = options.maxWordsPerMessage ?? 200;
    this.#maxMessages = options.maxIndexedMessages ?? 200_000;
  }

  /** Rooms indexed, and postings held: what the index costs. */
  get size(): { rooms: number; messages: number; postings: number } {
    let messages = 0, postings = 0;
    for (const index of this.#rooms.values()) {
      messages += index.ts.size;
      for (const ids of index.postings.values()) postings += ids.length;
    }
    return { rooms: this.#rooms.size, messages, postings };
  }

  /** A page of messages in `query.rooms` matching `query.q`; see the module doc. */
  async search(query: SearchQuery): Promise<SearchResult> {
    const parsed = queryTerms(query.q);
    if (!parsed.ok) return parsed;
    const limit = query.limit ?? DEFAULT_SEARCH_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_SEARCH_LIMIT) {
      return {
        ok: false,
        code: "invalid_message",
        message: `Cannot search: 'limit' must be an integer from 1 to ${MAX_SEARCH_LIMIT}`,
      };
    }
    const rooms = [...new Set(query.rooms)];
    const latest = await this.#latest(rooms);
    const indexes = await Promise.all(
      rooms.map((room) => this.#caughtUp(room, latest.get(room) ?? 0)),
    );
    this.#evict(rooms);
    const candidates: Candidates[] = [];
    rooms.forEach((room, i) => {
      const list = candidatesIn(indexes[i], parsed.terms, room, query.before);
      if (list.length) candidates.push({ room, list, at: 0 });
    });
    return await verified(this.#history, candidates, parsed.terms, limit);
  }

  /**
   * Marks `used` as the most recently searched rooms, then drops the least
   * recently searched others while the index holds more than its most.
   */
  #evict(used: string[]): void {
    for (const room of used) {
      const index = this.#rooms.get(room);
      if (!index) continue;
      this.#rooms.delete(room); // Map order is the use order: last is newest
      this.#rooms.set(room, index);
    }
    let total = 0;
    for (const index of this.#rooms.values()) total += index.ts.size;
    for (const [room, index] of this.#rooms) {
      if (total <= this.#maxMessages) break;
      this.#rooms.delete(room);
      total -= index.ts.size;
    }
  }

  /** Forgets every room's index (they are built again on the next search). */
  clear(): void {
    this.#rooms.clear();
  }

  /** Each room's newest id: one point read each, at once. */
  async #latest(rooms: string[]): Promise<Map<string, number>> {
    const ids = await Promise.all(rooms.map((room) => this.#history.latest(room)));
    return new Map(rooms.map((room, i) => [room, ids[i]]));
  }

  /** The room's index, brought up to `latest`; one catch-up per room at a time. */
  #caughtUp(room: string, latest: number): Promise<RoomIndex> {
    const index = this.#rooms.get(room);
    if (index && index.upTo === latest) return Promise.resolve(index);
    let running = this.#catchingUp.get(room);
    if (!running) {
      running = this.#catchUp(room, latest).finally(() => this.#catchingUp.delete(room));
      this.#catchingUp.set(room, running);
    }
    return running;
  }

  async #catchUp(room: string, latest: number): Promise<RoomIndex> {
    let index = this.#rooms.get(room);
    // A room deleted (or a store wiped) starts again at 1: start its index again too.
    if (!index || latest < index.upTo) {
      index = new RoomIndex();
      this.#rooms.set(room, index);
    }
    while (index.upTo < latest) {
      const replay = await this.#history.after(room, index.upTo, CATCH_UP_PAGE);
      for (const event of replay.messages) {
        if (!event.kind) {
          index.ts.set(event.id, event.ts);
          if (!event.deleted) index.add(event.id, searchWords(event.text).slice(0, this.#maxWords));
        } else if (event.kind === "edit" && event.ref !== undefined && index.ts.has(event.ref)) {
          index.add(event.ref, searchWords(event.text).slice(0, this.#maxWords));
        }
        index.upTo = Math.max(index.upTo, event.id);
      }
      if (!replay.more) {
        index.upTo = Math.max(index.upTo, latest);
        break;
      }
    }
    return index;
  }
}

/** The room's ids matching every term, below the cursor, as [ts, id] newest first. */
function candidatesIn(
  index: RoomIndex,
  terms: string[],
  room: string,
  before?: SearchCursor,
): [number, number][] {
  const sets = terms.map((term) => index.idsFor(term)).sort((a, b) => a.size - b.size);
  const out: [number, number][] = [];
  for (const id of sets[0]) {
    if (!sets.every((set) => set.has(id))) continue;
    const ts = index.ts.get(id);
    if (ts === undefined) continue;
    // Only what comes after the cursor in the order: older.
    if (before && compare([ts, id, room], [before.ts, before.id, before.room]) <= 0) continue;
    out.push([ts, id]);
  }
  return out.sort((a, b) => b[0] - a[0] || b[1] - a[1]);
}

/** Orders results: newest first (ts, then id, descending), then by room. */
function compare(a: [number, number, string], b: [number, number, string]): number {
  return b[0] - a[0] || b[1] - a[1] || (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0);
}

/**
 * Merges the rooms' candidates newest first, reading each back to check it
 * against its current state, until `limit` + 1 pass (the one more tells
 * `hasMore`).
 */
async function verified(
  history: HistoryStore,
  rooms: Candidates[],
  terms: string[],
  limit: number,
): Promise<SearchResult> {
  const messages: ChatMessage[] = [];
  while (messages.length <= limit) {
    let best: Candidates | undefined;
    for (const c of rooms) {
      if (c.at >= c.list.length) continue;
      if (!best) {
        best = c;
        continue;
      }
      const [ts, id] = c.list[c.at], [bts, bid] = best.list[best.at];
      if (compare([ts, id, c.room], [bts, bid, best.room]) < 0) best = c;
    }
    if (!best) break;
    const [, id] = best.list[best.at++];
    const message = await history.get(best.room, id);
    if (message && !message.deleted && !message.kind && matchesAll(message.text, terms)) {
      messages.push(message);
    }
  }
  const hasMore = messages.length > limit;
  if (hasMore) messages.length = limit;
  const last = messages.at(-1);
  return {
    ok: true,
    messages,
    hasMore,
    ...(hasMore && last ? { next: { ts: last.ts, room: last.room, id: last.id } } : {}),
  };
}

/**
 * The same search by scanning: every retained event of every room read
 * (`HistoryStore.after`, 1,000 at a time), changes folded into their
 * messages, and each message matched; no index. What the index is measured
 * against (`bench/search.ts`), and a check on it in the tests.
 *
 * @example Usage
 * ```ts ignore
 * import { scanSearch } from "./search.ts";
 * await scanSearch(history, { q: "deploy", rooms: ["team"] });
 * ```
 */
export async function scanSearch(history: HistoryStore, query: SearchQuery): Promise<SearchResult> {
  const parsed = queryTerms(query.q);
  if (!parsed.ok) return parsed;
  const limit = query.limit ?? DEFAULT_SEARCH_LIMIT;
  const found: ChatMessage[] = [];
  for (const room of new Set(query.rooms)) {
    const messages = new Map<number, ChatMessage>();
    for (let since = 0;;) {
      const replay = await history.after(room, since, CATCH_UP_PAGE);
      for (const event of replay.messages) {
        if (!event.kind) messages.set(event.id, event);
        else if (event.ref !== undefined && messages.has(event.ref)) {
          messages.set(event.ref, fold(messages.get(event.ref)!, event));
        }
        since = event.id;
      }
      if (!replay.more || replay.messages.length === 0) break;
    }
    const b = query.before;
    for (const message of messages.values()) {
      if (b && compare([message.ts, message.id, room], [b.ts, b.id, b.room]) <= 0) continue;
      if (!message.deleted && matchesAll(message.text, parsed.terms)) found.push(message);
    }
  }
  found.sort((a, b) => compare([a.ts, a.id, a.room], [b.ts, b.id, b.room]));
  const hasMore = found.length > limit;
  const messages = found.slice(0, limit);
  const last = messages.at(-1);
  return {
    ok: true,
    messages,
    hasMore,
    ...(hasMore && last ? { next: { ts: last.ts, room: last.room, id: last.id } } : {}),
  };
}
