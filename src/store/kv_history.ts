/**
 * Room history in Deno KV: a contiguous, durable message sequence per room
 * (1, 2, 3, …), idempotent appends keyed by the client's `cid`, and pruning
 * to the newest `limit` messages.
 *
 * Several server instances may append to one KV at once: each append is an
 * atomic check-and-set on the room's counter, retried on conflict.
 *
 * @module
 */

import type { ChatMessage } from "../protocol.ts";
import {
  type AppendResult,
  type HistoryStore,
  MAX_BATCH,
  type MessageDraft,
  type Replay,
  RoomLimitError,
  type StoredRoom,
} from "./history.ts";
import { fold } from "./fold.ts";
import { backoff, commitOrConflict } from "./kv_contention.ts";

/** Options for {@linkcode KvHistory}. */
export interface KvHistoryOptions {
  /**
   * Messages kept per room; older ones are deleted.
   * @default {1000}
   */
  limit?: number;
  /**
   * How long a `cid` is remembered for deduplication, in milliseconds.
   * @default {86400000}
   */
  cidTtlMs?: number;
  /**
   * Rooms the store may hold; the first message of one more is refused with
   * `RoomLimitError`.
   * @default {10000}
   */
  maxRooms?: number;
  /**
   * Checks one commit may make: Deno KV allows 100 in a local file; a remote
   * KV may allow fewer. Several rooms' appends share a commit within it.
   * @default {100}
   */
  maxChecks?: number;
}

/** One room's append, waiting for a shared commit. */
interface Gathered {
  room: string;
  drafts: MessageDraft[];
  resolve: (results: AppendResult[]) => void;
  reject: (error: unknown) => void;
}

const MAX_ATTEMPTS = 50;
/** Checks one commit may make on the fast path (KV allows 10 on some backends). */
const MAX_FAST_CHECKS = 10;
/** How many rooms the store holds. */
const ROOM_COUNT_KEY = ["meta", "rooms"];
/** Keys one `kv.watch` may watch. */
const MAX_WATCHED_KEYS = 10;
/** Rooms whose counter an instance remembers. */
const MAX_KNOWN_COUNTERS = 10_000;
/** Bytes one commit may carry, with room to spare under KV's 800 KiB. */
const COMMIT_BYTES = 600 * 1024;

/**
 * Room history stored in Deno KV.
 *
 * @example Usage
 * ```ts ignore
 * import { KvHistory } from "./kv_history.ts";
 * const history = new KvHistory(await Deno.openKv(":memory:"));
 * const { message } = await history.append("lobby", {
 *   room: "lobby", userId: "u1", name: "ada", text: "hi", cid: "c1",
 * });
 * message.id; // 1
 * ```
 */
export class KvHistory implements HistoryStore {
  #kv: Deno.Kv;
  #limit: number;
  #cidTtlMs: number;
  #maxRooms: number;
  #maxChecks: number;
  /** Appends waiting for the next shared commit. */
  #gathering: Gathered[] = [];
  /** Whether the shared commits are running. */
  #sharing = false;
  /** Rooms' counters as this instance last committed them, newest last. */
  #counters = new Map<string, Deno.KvEntryMaybe<number>>();

  /** Wraps an open KV; the caller closes it. */
  constructor(kv: Deno.Kv, options: KvHistoryOptions = {}) {
    this.#kv = kv;
    this.#limit = options.limit ?? 1000;
    this.#cidTtlMs = options.cidTtlMs ?? 86_400_000;
    this.#maxRooms = options.maxRooms ?? 10_000;
    this.#maxChecks = options.maxChecks ?? 100;
  }

  /** Messages kept per room. */
  get limit(): number {
    return this.#limit;
  }

  /** Stores a message under the room's next id, once per `cid`. */
  async append(room: string, draft: MessageDraft): Promise<AppendResult> {
    return (await this.appendMany(room, [draft]))[0];
  }

  /**
   * Stores several messages under the room's next ids, in order. A `cid`
   * already stored (or repeated in the batch) is a duplicate and takes no id.
   * Small batches of rooms this instance wrote to before share one commit
   * with other rooms' (see `#shareCommit`); the rest
   * commit on their own, {@linkcode MAX_BATCH} messages at most.
   */
  async appendMany(room: string, drafts: MessageDraft[]): Promise<AppendResult[]> {
    const results: AppendResult[] = [];
    for (const chunk of commits(drafts)) {
      const shared = this.#counters.has(room) && chunk.length < MAX_FAST_CHECKS;
      results.push(
        ...await (shared ? this.#shareCommit(room, chunk) : this.#appendBatch(room, chunk)),
      );
    }
    return results;
  }

  /**
   * Waits for the next commit shared by every room: while one commit is in
   * flight, the appends of other rooms gather and go together in the next,
   * each checking its room's counter and its cids inside the commit. When a
   * check fails, each room of that commit is stored on its own instead.
   */
  #shareCommit(room: string, drafts: MessageDraft[]): Promise<AppendResult[]> {
    const { promise, resolve, reject } = Promise.withResolvers<AppendResult[]>();
    this.#gathering.push({ room, drafts, resolve, reject });
    if (!this.#sharing) {
      this.#sharing = true;
      queueMicrotask(() => this.#commitGathered());
    }
    return promise;
  }

  async #commitGathered(): Promise<void> {
    try {
      while (this.#gathering.length > 0) {
        // Within KV's limits: checks (one per room, one per message) and bytes.
        const group: Gathered[] = [];
        let checks = 0, bytes = 0;
        const rooms = new Set<string>();
        for (const next of this.#gathering) {
          const size = next.drafts.reduce((sum, d) => sum + sizeOf(d), 0);
          const more = 1 + next.drafts.length;
          if (
            group.length > 0 && (checks + more > this.#maxChecks || bytes + size > COMMIT_BYTES)
          ) break;
          if (rooms.has(next.room)) break; // Keep one room's appends in order.
          group.push(next);
          rooms.add(next.room);
          checks += more;
          bytes += size;
        }
        this.#gathering.splice(0, group.length);
        await this.#commitGroup(group);
      }
    } finally {
      this.#sharing = false;
    }
  }

  async #commitGroup(group: Gathered[]): Promise<void> {
    const op = this.#kv.atomic();
    const plans = group.map(({ room, drafts }) => {
      const known = this.#counters.get(room);
      return known ? this.#plan(op, room, drafts, known, [], true) : null;
    });
    let committed: Deno.KvCommitResult | Deno.KvCommitError = { ok: false };
    if (plans.every((plan) => plan !== null)) {
      try {
        committed = await commitOrConflict(op);
      } catch { /* Stored one by one below. */ }
    }
    await Promise.all(group.map(async ({ room, drafts, resolve, reject }, i) => {
      try {
        const plan = plans[i];
        if (!committed.ok || !plan) {
          this.#counters.delete(room);
          return resolve(await this.#appendBatch(room, drafts));
        }
        if (plan.fresh > 0) {
          const seqKey = ["rooms", room, "seq"];
          this.#remember(room, {
            key: seqKey,
            value: plan.last,
            versionstamp: committed.versionstamp,
          });
        }
        resolve(await this.#answer(room, drafts, plan.outcome));
      } catch (error) {
        reject(error);
      }
    }));
  }

  async #appendBatch(room: string, drafts: MessageDraft[]): Promise<AppendResult[]> {
    const seqKey = ["rooms", room, "seq"];
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      // The fast path, for small batches: no reads at all. The counter comes
      // from this instance's last commit, and each cid is checked to be new
      // inside the commit itself. Any surprise (another instance appended, a
      // repeated cid) fails the commit, and the next attempt reads.
      const known = this.#counters.get(room);
      const fast = attempt === 0 && known !== undefined && drafts.length < MAX_FAST_CHECKS;
      const seq = fast ? known : await this.#kv.get<number>(seqKey);
      const seen = fast ? [] : await this.#idsOf(drafts.map((d) => cidKey(room, d)));
      const op = this.#kv.atomic();
      const plan = this.#plan(op, room, drafts, seq, seen, fast);
      if (plan.fresh > 0 && seq.value === null) await this.#countNewRoom(op);
      if (plan.fresh > 0) {
        const result = await commitOrConflict(op);
        if (!result.ok) {
          this.#counters.delete(room);
          if (!fast) await backoff(attempt, 2);
          continue;
        }
        this.#remember(room, { key: seqKey, value: plan.last, versionstamp: result.versionstamp });
      }
      return await this.#answer(room, drafts, plan.outcome);
    }
    throw new Error(`Cannot store message: room '${room}' is too contended`);
  }

  /**
   * Adds one room's append to `op`: the counter checked (and each cid
   * checked to be new, when `fast`), every new message, its cid, the pruned
   * one's deletion, and the new counter. `seen` holds the ids the cids
   * already have, when they were read.
   */
  #plan(
    op: Deno.AtomicOperation,
    room: string,
    drafts: MessageDraft[],
    seq: Deno.KvEntryMaybe<number>,
    seen: (number | undefined)[],
    fast: boolean,
  ): { outcome: (ChatMessage | number)[]; last: number; fresh: number } {
    // Checking the counter is enough on the slow path: a cid is only ever
    // written together with it.
    op.check(seq);
    let id = seq.value ?? 0;
    const fresh = new Map<string, number>();
    // For each draft: the new message, or the id it duplicates.
    const outcome = drafts.map((draft, i): ChatMessage | number => {
      const earlier = seen[i] ?? fresh.get(`${draft.userId}\n${draft.cid}`);
      if (earlier !== undefined) return earlier;
      const message: ChatMessage = { type: "message", id: ++id, ts: Date.now(), ...draft };
      if (fast) op.check({ key: cidKey(room, draft), versionstamp: null });
      op.set(msgKey(room, id), message).set(cidKey(room, draft), id, { expireIn: this.#cidTtlMs });
      if (id > this.#limit) op.delete(msgKey(room, id - this.#limit));
      fresh.set(`${draft.userId}\n${draft.cid}`, id);
      return message;
    });
    if (fresh.size > 0) op.set(["rooms", room, "seq"], id);
    return { outcome, last: id, fresh: fresh.size };
  }

  /** The append's results; a duplicate answers with the message stored first. */
  #answer(
    room: string,
    drafts: MessageDraft[],
    outcome: (ChatMessage | number)[],
  ): Promise<AppendResult[]> {
    return Promise.all(outcome.map(async (result, i) => {
      if (typeof result !== "number") return { message: result, duplicate: false };
      const stored = await this.#kv.get<ChatMessage>(msgKey(room, result));
      const message = stored.value ?? { type: "message", id: result, ts: 0, ...drafts[i] };
      return { message, duplicate: true };
    }));
  }

  /** Adds a new room to the store's room count, or throws when it is full. */
  async #countNewRoom(op: Deno.AtomicOperation): Promise<void> {
    const count = await this.#kv.get<Deno.KvU64>(ROOM_COUNT_KEY);
    if ((count.value?.value ?? 0n) >= BigInt(this.#maxRooms)) {
      throw new RoomLimitError(this.#maxRooms);
    }
    op.check(count).sum(ROOM_COUNT_KEY, 1n);
  }

  /** Keeps a room's counter as this instance last wrote it, for the fast path. */
  #remember(room: string, entry: Deno.KvEntryMaybe<number>): void {
    this.#counters.delete(room);
    this.#counters.set(room, entry);
    if (this.#counters.size > MAX_KNOWN_COUNTERS) {
      this.#counters.delete(this.#counters.keys().next().value!);
    }
  }

  /** The ids stored under `keys` (cid keys), looked up ten at a time. */
  async #idsOf(keys: Deno.KvKey[]): Promise<(number | undefined)[]> {
    const chunks = [];
    for (let i = 0; i < keys.length; i += 10) {
      chunks.push(this.#kv.getMany<number[]>(keys.slice(i, i + 10)));
    }
    return (await Promise.all(chunks)).flat().map((entry) => entry.value ?? undefined);
  }

  /** The newest `count` messages of a room, oldest first. */
  async recent(room: string, count: number): Promise<ChatMessage[]> {
    const messages: ChatMessage[] = [];
    const entries = this.#kv.list<ChatMessage>({ prefix: ["rooms", room, "msg"] }, {
      reverse: true,
      limit: count,
    });
    for await (const entry of entries) messages.push(entry.value);
    return messages.reverse();
  }

  /** Older messages, a page at a time; see {@linkcode HistoryStore.before}. */
  async before(
    room: string,
    before: number,
    limit: number,
  ): Promise<{ messages: ChatMessage[]; hasMore: boolean }> {
    const prefix = ["rooms", room, "msg"];
    const messages: ChatMessage[] = [];
    const entries = this.#kv.list<ChatMessage>({ prefix, end: [...prefix, before] }, {
      reverse: true,
      limit: limit + 1,
    });
    for await (const entry of entries) messages.push(entry.value);
    const hasMore = messages.length > limit;
    return { messages: messages.slice(0, limit).reverse(), hasMore };
  }

  /** The store's epoch; see {@linkcode HistoryStore.epoch}. */
  async epoch(): Promise<string> {
    const key = ["meta", "epoch"];
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const stored = await this.#kv.get<string>(key);
      if (stored.value) return stored.value;
      const epoch = crypto.randomUUID().slice(0, 8);
      if ((await commitOrConflict(this.#kv.atomic().check(stored).set(key, epoch))).ok) {
        return epoch;
      }
      await backoff(attempt);
    }
    throw new Error("Cannot read the store's epoch: too contended");
  }

  /** The room's newest message id, or 0. */
  async latest(room: string): Promise<number> {
    return (await this.#kv.get<number>(["rooms", room, "seq"])).value ?? 0;
  }

  /**
   * Calls `onChange(room, latest)` whenever a room's counter changes, with
   * `kv.watch`. On Deno Deploy's KV that includes other instances' appends;
   * on a local file only this process's own.
   */
  watch(rooms: string[], onChange: (room: string, latest: number) => void): () => void {
    const stops: (() => void)[] = [];
    // KV watches at most 10 keys per call.
    for (let i = 0; i < rooms.length; i += MAX_WATCHED_KEYS) {
      stops.push(this.#watchSome(rooms.slice(i, i + MAX_WATCHED_KEYS), onChange));
    }
    return () => stops.forEach((stop) => stop());
  }

  #watchSome(rooms: string[], onChange: (room: string, latest: number) => void): () => void {
    const stream = this.#kv.watch<number[]>(rooms.map((room) => ["rooms", room, "seq"]));
    const reader = stream.getReader();
    let stopped = false;
    (async () => {
      while (!stopped) {
        const { done, value } = await reader.read();
        if (done) return;
        value.forEach((entry, i) => onChange(rooms[i], entry.value ?? 0));
      }
    })().catch(() => {/* The watch ended (KV closed): the poll still runs. */});
    return () => {
      stopped = true;
      reader.cancel().catch(() => {});
    };
  }

  // TEMP stubs until the store branch lands.
  async get(room: string, id: number): Promise<ChatMessage | null> {
    const m = (await this.#kv.get<ChatMessage>(msgKey(room, id))).value;
    if (!m || m.kind) return null;
    let state = m;
    for (const e of (await this.after(room, id)).messages) {
      if (e.kind && e.ref === id) state = fold(state, e);
    }
    return state;
  }
  async stored(room: string, userId: string, cid: string): Promise<number | null> {
    return (await this.#kv.get<number>(["rooms", room, "cid", userId, cid])).value ?? null;
  }
  async rooms(): Promise<StoredRoom[]> {
    const out: StoredRoom[] = [];
    const seen = new Set<string>();
    for await (const e of this.#kv.list<unknown>({ prefix: ["rooms"] })) {
      const room = String(e.key[1]);
      if (seen.has(room)) continue;
      seen.add(room);
      const last = await this.recent(room, 1);
      out.push({ name: room, lastId: await this.latest(room), lastTs: last[0]?.ts ?? 0 });
    }
    return out;
  }
  async deleteRoom(room: string): Promise<boolean> {
    let any = false;
    for await (const e of this.#kv.list({ prefix: ["rooms", room] })) {
      any = true;
      await this.#kv.delete(e.key);
    }
    return any;
  }

  /** Every retained message after `since`, and whether none is missing. */
  async after(room: string, since: number, limit = Infinity): Promise<Replay> {
    const messages: ChatMessage[] = [];
    const prefix = ["rooms", room, "msg"];
    for await (
      const entry of this.#kv.list<ChatMessage>({ prefix, start: [...prefix, since + 1] })
    ) {
      if (messages.length >= limit) return { messages, complete: true, more: true };
      messages.push(entry.value);
    }
    const latest = await this.latest(room);
    const complete = since <= latest &&
      (messages.length === 0 ? since === latest : messages[0].id === since + 1);
    return { messages, complete };
  }
}

/** A cid is the sender's own: two senders may pick the same one. */
function cidKey(room: string, draft: MessageDraft): Deno.KvKey {
  return ["rooms", room, "cid", draft.userId, draft.cid];
}

function msgKey(room: string, id: number): Deno.KvKey {
  return ["rooms", room, "msg", id];
}

/** At most how many bytes a draft takes in a commit: 3 per UTF-16 unit, and keys and ids. */
function sizeOf(draft: MessageDraft): number {
  return 3 * (draft.text.length + draft.name.length + draft.room.length) + 512;
}

/**
 * Splits drafts into commits that fit KV's limits (1,000 mutations, 800 KiB
 * of keys and values in all): at most {@linkcode MAX_BATCH} messages, and at
 * most {@linkcode COMMIT_BYTES} of message text each, so no `say` is ever
 * refused because of its neighbours.
 */
function commits(drafts: MessageDraft[]): MessageDraft[][] {
  const chunks: MessageDraft[][] = [];
  let chunk: MessageDraft[] = [];
  let bytes = 0;
  for (const draft of drafts) {
    const size = sizeOf(draft);
    if (chunk.length === MAX_BATCH || (chunk.length > 0 && bytes + size > COMMIT_BYTES)) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(draft);
    bytes += size;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}
