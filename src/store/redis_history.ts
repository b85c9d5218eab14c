/**
 * Room history in Redis, with the same behaviour as `KvHistory`: a
 * contiguous event sequence per room (1, 2, 3, …), idempotent appends
 * keyed by the sender's `cid`, changes folded into their messages, and
 * pruning to the newest `limit` plain messages and `limit` changes.
 *
 * Per room, with the default prefix and the room name URI-encoded:
 *
 * - `chat:room:<room>:seq`: the newest id (a counter);
 * - `chat:room:<room>:msgs`: a sorted set of the retained plain messages,
 *   each as JSON in its current state, scored by id;
 * - `chat:room:<room>:chg`: a sorted set of the retained changes as JSON,
 *   scored by id;
 * - `chat:room:<room>:floor`: the highest id pruned, of either kind;
 * - `chat:room:<room>:cid:<user>:<cid>`: the id stored for a sender's
 *   `cid`, for a day;
 *
 * and for the store, `chat:rooms` (how many rooms it holds), `chat:dir` (a
 * hash of room name to `{"lastId":…,"lastTs":…}`, the room directory) and
 * `chat:epoch`.
 *
 * Each append is one Lua script (`redis_scripts.ts`), atomic however many
 * server processes share the Redis: it checks the cid, takes the next id
 * (`INCR`), adds the event to its sorted set, prunes past the limit
 * (`ZPOPMIN`: a plain message prunes the oldest message and the changes
 * below it, a change the oldest change) and raises the floor, and sets the
 * cid (`PX`) and the directory entry. A change is folded here, in
 * TypeScript (`fold.ts`), from the message as read (one `ZRANGE` by
 * score); the script replaces the stored message by the folded one only if
 * it is still the one read, and else answers so, and the fold is made
 * again. A room's plain messages go out pipelined, in order; a change waits
 * for what precedes it. `deleteRoom` finds the room's cids with `SCAN`, a
 * walk over every key of the Redis: it is meant for rare, deliberate use.
 *
 * Redis history of the previous version (a stream per room,
 * `chat:room:<room>:stream`, changes unfolded) is upgraded the first time
 * this version touches a room, and by the first `rooms()`, which looks for
 * such streams once (a `SCAN` of the keys).
 *
 * @module
 */

import type { RedisClientType } from "redis";
import type { ChatMessage } from "../protocol.ts";
import { fold } from "./fold.ts";
import {
  type AppendResult,
  type HistoryStore,
  type MessageDraft,
  type Replay,
  RoomLimitError,
  type StoredRoom,
} from "./history.ts";
import {
  APPEND_SCRIPT,
  APPENDED,
  DELETE_SCRIPT,
  DUPLICATE,
  LEGACY,
  ROOM_LIMIT,
  runScript,
  STALE,
  UPGRADE_SCRIPT,
} from "./redis_scripts.ts";

/** Options for {@linkcode RedisHistory}. */
export interface RedisHistoryOptions {
  /**
   * Plain messages kept per room; older ones are deleted, and so are
   * changes past as many.
   * @default {1000}
   */
  limit?: number;
  /**
   * Prefix of every key.
   * @default {"chat:"}
   */
  prefix?: string;
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
}

/** Folds made again before a change gives up (its message keeps changing). */
const MAX_ATTEMPTS = 50;
/** Keys one `SCAN` step asks for. */
const SCAN_COUNT = 500;
/** Rooms this instance knows are in the current layout. */
const MAX_KNOWN_ROOMS = 10_000;

/** The keys of one room. */
type RoomKey = "seq" | "msgs" | "chg" | "floor" | "stream";

/**
 * Room history stored in Redis. Errors from Redis (including "the client is
 * offline") are not caught: they reject the returned promises.
 *
 * @example Usage
 * ```ts ignore
 * import { connectRedis } from "../redis/connection.ts";
 * import { RedisHistory } from "./redis_history.ts";
 * await using redis = await connectRedis("redis://127.0.0.1:6379");
 * const history = new RedisHistory(redis.client, { limit: 500 });
 * const { message } = await history.append("lobby", {
 *   room: "lobby", userId: "u1", name: "ada", text: "hi", cid: "c1",
 * });
 * message.id; // 1 in a fresh Redis
 * ```
 */
export class RedisHistory implements HistoryStore {
  #client: RedisClientType;
  #limit: number;
  #prefix: string;
  #maxRooms: number;
  #cidTtlMs: number;
  /** Rooms seen without a legacy stream, newest last. */
  #current = new Map<string, true>();
  /** Whether the legacy streams were looked for. */
  #indexed = false;
  #onPrunedFiles: ((room: string, ids: string[]) => void) | undefined;

  /**
   * Uses `client`, a node-redis client the caller connects and closes
   * (e.g. `(await connectRedis(url)).client`, a connection of its own).
   */
  constructor(client: RedisClientType, options: RedisHistoryOptions = {}) {
    this.#client = client;
    this.#limit = options.limit ?? 1000;
    this.#prefix = options.prefix ?? "chat:";
    this.#maxRooms = options.maxRooms ?? 10_000;
    this.#cidTtlMs = options.cidTtlMs ?? 86_400_000;
    if (!Number.isSafeInteger(this.#limit) || this.#limit < 1) {
      throw new RangeError(`Cannot keep history: limit must be a positive integer`);
    }
    if (!Number.isSafeInteger(this.#cidTtlMs) || this.#cidTtlMs < 1) {
      throw new RangeError(`Cannot keep history: cidTtlMs must be a positive integer`);
    }
  }

  /** Plain messages kept per room. */
  get limit(): number {
    return this.#limit;
  }

  /**
   * Stores several events in order. Plain messages' scripts go out together
   * on one connection, and Redis runs them in that order; a change waits
   * for the events before it, since its fold reads the message it changes.
   */
  async appendMany(room: string, drafts: MessageDraft[]): Promise<AppendResult[]> {
    const results: AppendResult[] = [];
    let plain: Promise<AppendResult>[] = [];
    for (const draft of drafts) {
      if (draft.kind === undefined) {
        plain.push(this.append(room, draft));
        continue;
      }
      results.push(...await Promise.all(plain), await this.append(room, draft));
      plain = [];
    }
    results.push(...await Promise.all(plain));
    return results;
  }

  /** Stores an event under the room's next id; see {@linkcode HistoryStore.append}. */
  async append(room: string, draft: MessageDraft): Promise<AppendResult> {
    // Every append of a batch waits alike, so their scripts still go out in order.
    if (!this.#current.has(room)) await this.#ready(room);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const ts = Date.now();
      const event: ChatMessage = { type: "message", id: 0, ts, ...draft };
      // Spliced after `{"id":N,` by the script, which alone knows N.
      const rest = JSON.stringify({ type: "message", ts, ...draft }).slice(1);
      const folding = draft.kind === undefined ? NO_FOLD : await this.#fold(room, event);
      const reply = await runScript(
        this.#client,
        APPEND_SCRIPT,
        [
          this.#key(room, "seq"),
          this.#key(room, "msgs"),
          this.#key(room, "chg"),
          this.#key(room, "floor"),
          this.#cidKey(room, draft.userId, draft.cid),
          `${this.#prefix}rooms`,
          `${this.#prefix}dir`,
          this.#key(room, "stream"),
        ],
        [
          String(this.#limit),
          rest,
          String(this.#cidTtlMs),
          String(this.#maxRooms),
          room,
          String(ts),
          draft.kind === undefined ? "plain" : "change",
          String(isId(draft.ref) ? draft.ref : 0),
          ...folding,
        ],
      );
      if (!Array.isArray(reply) || !Number.isSafeInteger(reply[0])) {
        throw new TypeError(`Cannot store message: unexpected reply ${JSON.stringify(reply)}`);
      }
      const [id, outcome, ...pruned] = reply as [number, number, ...string[]];
      switch (outcome) {
        case APPENDED:
          if (pruned.length > 0) this.#prunedFiles(room, pruned);
          return { message: { ...event, id }, duplicate: false };
        case DUPLICATE:
          return { message: await this.#stored(room, id, draft), duplicate: true };
        case ROOM_LIMIT:
          throw new RoomLimitError(this.#maxRooms);
        case STALE: // Another instance changed the message meanwhile: read and fold again.
          if (attempt > 2) {
            await new Promise((resolve) => setTimeout(resolve, Math.random() * attempt));
          }
          continue;
        case LEGACY:
          await this.#upgrade(room);
          continue;
        default:
          throw new TypeError(`Cannot store message: unexpected reply ${JSON.stringify(reply)}`);
      }
    }
    throw new Error(`Cannot store message: message ${draft.ref} in '${room}' is too contended`);
  }

  /** See {@linkcode HistoryStore.onPrunedFiles}: the append script answers with the messages it pruned. */
  onPrunedFiles(listener: (room: string, ids: string[]) => void): void {
    this.#onPrunedFiles = listener;
  }

  /** Tells the listener about the files of messages an append pruned (their JSON). */
  #prunedFiles(room: string, pruned: string[]): void {
    const ids = pruned.flatMap((json) => {
      const message = JSON.parse(json) as ChatMessage;
      return (message.attachments ?? []).map((file) => file.id);
    });
    if (ids.length > 0) this.#onPrunedFiles?.(room, ids);
  }

  /**
   * The script's last arguments for a change: whether its message is
   * retained, the message as read, and its folded JSON (empty when the fold
   * changes nothing).
   */
  async #fold(room: string, change: ChatMessage): Promise<string[]> {
    if (!isId(change.ref)) return NO_FOLD;
    const [json] = await this.#client.zRange(this.#key(room, "msgs"), change.ref, change.ref, {
      BY: "SCORE",
    });
    if (json === undefined) return NO_FOLD;
    const message = JSON.parse(json) as ChatMessage;
    const folded = fold(message, change);
    return ["1", json, folded === message ? "" : JSON.stringify(folded)];
  }

  /** The event stored under `id`, for a duplicate; ts 0 when it was pruned. */
  async #stored(room: string, id: number, draft: MessageDraft): Promise<ChatMessage> {
    const [plain, change] = await this.#client.multi()
      .zRange(this.#key(room, "msgs"), id, id, { BY: "SCORE" })
      .zRange(this.#key(room, "chg"), id, id, { BY: "SCORE" })
      .execTyped();
    const json = plain[0] ?? change[0];
    return json ? JSON.parse(json) : { type: "message", id, ts: 0, ...draft };
  }

  /** Plain message `id` in its current state; see {@linkcode HistoryStore.get}. */
  async get(room: string, id: number): Promise<ChatMessage | null> {
    if (!isId(id)) return null;
    await this.#ready(room);
    const [json] = await this.#client.zRange(this.#key(room, "msgs"), id, id, { BY: "SCORE" });
    return json === undefined ? null : JSON.parse(json);
  }

  /** The id stored for `userId`'s `cid`; see {@linkcode HistoryStore.stored}. */
  async stored(room: string, userId: string, cid: string): Promise<number | null> {
    const id = await this.#client.get(this.#cidKey(room, userId, cid));
    return id === null ? null : toId(id);
  }

  /** The newest `count` plain messages, oldest first. */
  async recent(room: string, count: number): Promise<ChatMessage[]> {
    const want = Math.min(Math.floor(count), this.#limit);
    if (!(want >= 1)) return [];
    await this.#ready(room);
    return parseAll(await this.#client.zRange(this.#key(room, "msgs"), -want, -1));
  }

  /** Older messages, a page at a time; see {@linkcode HistoryStore.before}. */
  async before(
    room: string,
    before: number,
    limit: number,
  ): Promise<{ messages: ChatMessage[]; hasMore: boolean }> {
    const want = Math.floor(limit);
    if (!(want >= 1) || !(before > 1)) return { messages: [], hasMore: false };
    await this.#ready(room);
    const found = await this.#client.zRange(this.#key(room, "msgs"), `(${before}`, "-inf", {
      BY: "SCORE",
      REV: true,
      LIMIT: { offset: 0, count: want + 1 },
    });
    const messages = parseAll(found.slice(0, want)).reverse();
    return { messages, hasMore: found.length > want };
  }

  /** The store's epoch; see {@linkcode HistoryStore.epoch}. */
  async epoch(): Promise<string> {
    const key = `${this.#prefix}epoch`;
    await this.#client.set(key, crypto.randomUUID().slice(0, 8), { NX: true });
    return await this.#client.get(key) ?? "";
  }

  /** The room's newest event id, or 0. */
  async latest(room: string): Promise<number> {
    return toId(await this.#client.get(this.#key(room, "seq")));
  }

  /** The retained events after `since`; see {@linkcode HistoryStore.after}. */
  async after(room: string, since: number, limit?: number): Promise<Replay> {
    await this.#ready(room);
    const most = limit === undefined ? undefined : Math.max(0, Math.floor(limit));
    const from = Number.isFinite(since) ? `(${Math.floor(since)}` : "-inf";
    const options = most === undefined
      ? { BY: "SCORE" as const }
      : { BY: "SCORE" as const, LIMIT: { offset: 0, count: most + 1 } };
    // One round trip, and a replay consistent with the ids it is checked against.
    const [plain, changes, seq, floor] = await this.#client.multi()
      .zRange(this.#key(room, "msgs"), from, "+inf", options)
      .zRange(this.#key(room, "chg"), from, "+inf", options)
      .get(this.#key(room, "seq"))
      .get(this.#key(room, "floor"))
      .execTyped();
    const events = merge(parseAll(plain), parseAll(changes));
    const more = most !== undefined && events.length > most;
    const replay: Replay = {
      messages: more ? events.slice(0, most) : events,
      complete: since <= toId(seq) && since >= toId(floor),
    };
    if (more) replay.more = true;
    return replay;
  }

  /** Every room with history; see {@linkcode HistoryStore.rooms}. */
  async rooms(): Promise<StoredRoom[]> {
    if (!this.#indexed) {
      await this.#upgradeAll();
      this.#indexed = true;
    }
    const entries = await this.#client.hGetAll(`${this.#prefix}dir`);
    return Object.entries(entries).map(([name, json]) => {
      const { lastId, lastTs } = JSON.parse(json) as { lastId: number; lastTs: number };
      return { name, lastId, lastTs };
    });
  }

  /**
   * Deletes a room: its cids first (found with `SCAN`, a walk over every
   * key of the Redis), then everything else in one script.
   */
  async deleteRoom(room: string): Promise<boolean> {
    const pattern = `${globEscape(this.#cidPrefix(room))}*`;
    let deleted = false;
    for await (const keys of this.#client.scanIterator({ MATCH: pattern, COUNT: SCAN_COUNT })) {
      if (keys.length === 0) continue;
      await this.#client.unlink(keys);
      deleted = true;
    }
    const held = await runScript(this.#client, DELETE_SCRIPT, [
      this.#key(room, "seq"),
      this.#key(room, "msgs"),
      this.#key(room, "chg"),
      this.#key(room, "floor"),
      `${this.#prefix}rooms`,
      `${this.#prefix}dir`,
      this.#key(room, "stream"),
    ], [room]);
    return held === 1 || deleted;
  }

  /** Upgrades the room first when it is a legacy stream. */
  async #ready(room: string): Promise<void> {
    if (this.#current.has(room)) return;
    if (await this.#client.exists(this.#key(room, "stream"))) await this.#upgrade(room);
    this.#current.set(room, true);
    if (this.#current.size > MAX_KNOWN_ROOMS) {
      this.#current.delete(this.#current.keys().next().value!);
    }
  }

  /** Upgrades every room still held as a legacy stream. */
  async #upgradeAll(): Promise<void> {
    const pattern = `${globEscape(`${this.#prefix}room:`)}*:stream`;
    for await (const keys of this.#client.scanIterator({ MATCH: pattern, COUNT: SCAN_COUNT })) {
      for (const key of keys) {
        const encoded = key.slice(`${this.#prefix}room:`.length, -":stream".length);
        await this.#upgrade(decodeURIComponent(encoded));
      }
    }
  }

  /**
   * Replaces a room's legacy stream (every event unfolded, in order) by
   * sorted sets of folded messages and changes, in one script that gives up
   * when the stream changed since it was read; then it is read again.
   */
  async #upgrade(room: string): Promise<void> {
    const stream = this.#key(room, "stream");
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const [entries, seq] = await this.#client.multi()
        .xRange(stream, "-", "+")
        .get(this.#key(room, "seq"))
        .execTyped();
      if (entries.length === 0) {
        await this.#client.del(stream); // An empty stream holds nothing to keep.
        return;
      }
      const messages = new Map<number, ChatMessage>();
      const changes: ChatMessage[] = [];
      for (const entry of entries) {
        const event = JSON.parse(entry.message.message) as ChatMessage;
        if (event.kind === undefined) {
          messages.set(event.id, event);
          continue;
        }
        changes.push(event);
        const target = event.ref === undefined ? undefined : messages.get(event.ref);
        if (target) messages.set(target.id, fold(target, event));
      }
      const first = JSON.parse(entries[0].message.message) as ChatMessage;
      const newest = entries[entries.length - 1];
      const lastTs = (JSON.parse(newest.message.message) as ChatMessage).ts;
      const pairs = (events: Iterable<ChatMessage>) =>
        [...events].flatMap((event) => [String(event.id), JSON.stringify(event)]);
      const upgraded = await runScript(this.#client, UPGRADE_SCRIPT, [
        stream,
        this.#key(room, "msgs"),
        this.#key(room, "chg"),
        this.#key(room, "floor"),
        `${this.#prefix}dir`,
      ], [
        String(entries.length),
        newest.id,
        String(first.id - 1),
        room,
        JSON.stringify({ lastId: toId(seq), lastTs }),
        String(messages.size),
        ...pairs(messages.values()),
        ...pairs(changes),
      ]);
      if (upgraded === 1) return;
    }
    throw new Error(`Cannot read room '${room}': its upgrade is too contended`);
  }

  #key(room: string, name: RoomKey): string {
    return `${this.#prefix}room:${encodeURIComponent(room)}:${name}`;
  }

  #cidPrefix(room: string): string {
    return `${this.#prefix}room:${encodeURIComponent(room)}:cid:`;
  }

  /** A cid is the sender's own: two senders may pick the same one. */
  #cidKey(room: string, userId: string, cid: string): string {
    return `${this.#cidPrefix(room)}${encodeURIComponent(userId)}:${encodeURIComponent(cid)}`;
  }
}

/** The script's fold arguments for an event that changes no message. */
const NO_FOLD = ["0", "", ""];

function isId(id: number | undefined): id is number {
  return Number.isSafeInteger(id) && id! >= 1;
}

function parseAll(json: string[]): ChatMessage[] {
  return json.map((text) => JSON.parse(text) as ChatMessage);
}

/** Two id-ordered lists as one. */
function merge(a: ChatMessage[], b: ChatMessage[]): ChatMessage[] {
  const merged: ChatMessage[] = [];
  let i = 0, j = 0;
  while (i < a.length || j < b.length) {
    merged.push(j >= b.length || (i < a.length && a[i].id < b[j].id) ? a[i++] : b[j++]);
  }
  return merged;
}

/** `text` matched literally by a `SCAN` pattern. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

function toId(value: string | null): number {
  if (value === null) return 0;
  const id = Number(value);
  if (!Number.isSafeInteger(id)) throw new TypeError(`Cannot read message id '${value}'`);
  return id;
}
