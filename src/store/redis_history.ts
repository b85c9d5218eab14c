/**
 * Room history in Redis, with the same behaviour as `KvHistory`: a
 * contiguous message sequence per room (1, 2, 3, …), idempotent appends
 * keyed by the client's `cid`, and pruning to the newest `limit` messages.
 *
 * Per room, with the default prefix and the room name URI-encoded:
 *
 * - `chat:room:<room>:seq`: the newest id (a counter);
 * - `chat:room:<room>:stream`: a stream of the retained messages, entry id
 *   `<id>-0`, field `message` holding the message as JSON;
 * - `chat:room:<room>:cid:<cid>`: the id stored for a `cid`, for a day.
 *
 * Each append is one Lua script, so it is atomic however many server
 * processes share the Redis.
 *
 * @module
 */

import type { RedisClientType } from "redis";
import {
  type AppendResult,
  type HistoryStore,
  type MessageDraft,
  type Replay,
  RoomLimitError,
  type StoredRoom,
} from "./history.ts";
import type { ChatMessage } from "../protocol.ts";

/** Options for {@linkcode RedisHistory}. */
export interface RedisHistoryOptions {
  /**
   * Messages kept per room; older ones are deleted.
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

/**
 * KEYS: seq, stream, cid, room count. ARGV: limit, the message JSON without
 * its leading `{` and without `id`, cid TTL in ms, most rooms. Returns
 * `{id, 1}` for a known cid, `{0, 2}` when a new room does not fit, else
 * `{id, 0}` for the message just stored under the next id.
 */
const APPEND_SCRIPT = `
local seen = redis.call('GET', KEYS[3])
if seen then return {tonumber(seen), 1} end
local id = redis.call('INCR', KEYS[1])
if id == 1 and redis.call('INCR', KEYS[4]) > tonumber(ARGV[4]) then
  redis.call('DECR', KEYS[4])
  redis.call('DEL', KEYS[1])
  return {0, 2}
end
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[1], id .. '-0', 'message', '{"id":' .. id .. ',' .. ARGV[2])
redis.call('SET', KEYS[3], id, 'PX', ARGV[3])
return {id, 0}
`;

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
  #sha: Promise<string> | undefined;

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

  /** Messages kept per room. */
  get limit(): number {
    return this.#limit;
  }

  /**
   * Stores several messages in order. The scripts go out together on one
   * connection, and Redis runs them in that order.
   */
  appendMany(room: string, drafts: MessageDraft[]): Promise<AppendResult[]> {
    return Promise.all(drafts.map((draft) => this.append(room, draft)));
  }

  /** Stores a message under the room's next id, once per `cid`. */
  async append(room: string, draft: MessageDraft): Promise<AppendResult> {
    const ts = Date.now();
    // Spliced after `{"id":N,` by the script, which alone knows N.
    const rest = JSON.stringify({ type: "message", ts, ...draft }).slice(1);
    const reply = await this.#evalAppend(
      [
        this.#key(room, "seq"),
        this.#key(room, "stream"),
        this.#cidKey(room, draft.userId, draft.cid),
        `${this.#prefix}rooms`,
      ],
      [String(this.#limit), rest, String(this.#cidTtlMs), String(this.#maxRooms)],
    );
    if (Array.isArray(reply) && reply[1] === 2) throw new RoomLimitError(this.#maxRooms);
    if (
      !Array.isArray(reply) || !Number.isSafeInteger(reply[0]) ||
      (reply[1] !== 0 && reply[1] !== 1)
    ) {
      throw new TypeError(`Cannot store message: unexpected reply ${JSON.stringify(reply)}`);
    }
    const id = reply[0] as number;
    if (reply[1] === 0) {
      return { message: { type: "message", id, ts, ...draft }, duplicate: false };
    }
    const entries = await this.#client.xRange(this.#key(room, "stream"), `${id}-0`, `${id}-0`);
    if (entries.length > 0) return { message: parseEntry(entries[0]), duplicate: true };
    return { message: { type: "message", id, ts: 0, ...draft }, duplicate: true };
  }

  /** The newest `count` messages of a room, oldest first. */
  async recent(room: string, count: number): Promise<ChatMessage[]> {
    if (!(count >= 1)) return [];
    const entries = await this.#client.xRevRange(this.#key(room, "stream"), "+", "-", {
      COUNT: Math.floor(count),
    });
    return entries.map(parseEntry).reverse();
  }

  /** Older messages, a page at a time; see {@linkcode HistoryStore.before}. */
  async before(
    room: string,
    before: number,
    limit: number,
  ): Promise<{ messages: ChatMessage[]; hasMore: boolean }> {
    if (before <= 1) return { messages: [], hasMore: false };
    const entries = await this.#client.xRevRange(
      this.#key(room, "stream"),
      `${Math.floor(before) - 1}-0`,
      "-",
      { COUNT: limit + 1 },
    );
    const messages = entries.map(parseEntry);
    return { messages: messages.slice(0, limit).reverse(), hasMore: messages.length > limit };
  }

  /** The store's epoch; see {@linkcode HistoryStore.epoch}. */
  async epoch(): Promise<string> {
    const key = `${this.#prefix}epoch`;
    await this.#client.set(key, crypto.randomUUID().slice(0, 8), { NX: true });
    return await this.#client.get(key) ?? "";
  }

  /** The room's newest message id, or 0. */
  async latest(room: string): Promise<number> {
    return toId(await this.#client.get(this.#key(room, "seq")));
  }

  // TEMP stubs until the store branch lands.
  async get(room: string, id: number): Promise<ChatMessage | null> {
    const e = await this.#client.xRange(this.#key(room, "stream"), `${id}-0`, `${id}-0`);
    const m = e.length ? parseEntry(e[0]) : null;
    return m && !m.kind ? m : null;
  }
  async stored(room: string, userId: string, cid: string): Promise<number | null> {
    const v = await this.#client.get(this.#cidKey(room, userId, cid));
    return v === null ? null : Number(v);
  }
  rooms(): Promise<StoredRoom[]> {
    return Promise.resolve([]);
  }
  deleteRoom(_room: string): Promise<boolean> {
    return Promise.resolve(false);
  }

  /** Every retained message after `since`, and whether none is missing. */
  async after(room: string, since: number, _limit = Infinity): Promise<Replay> {
    const start = since >= 0 ? `${Math.floor(since) + 1}-0` : "-";
    // One round trip, and a replay consistent with the id it is checked against.
    const [entries, seq] = await this.#client.multi()
      .xRange(this.#key(room, "stream"), start, "+")
      .get(this.#key(room, "seq"))
      .execTyped();
    const messages = entries.map(parseEntry);
    const latest = toId(seq);
    const complete = since <= latest &&
      (messages.length === 0 ? since === latest : messages[0].id === since + 1);
    return { messages, complete };
  }

  async #evalAppend(keys: string[], args: string[]): Promise<unknown> {
    this.#sha ??= sha1Hex(APPEND_SCRIPT);
    try {
      return await this.#client.evalSha(await this.#sha, { keys, arguments: args });
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      return await this.#client.eval(APPEND_SCRIPT, { keys, arguments: args });
    }
  }

  #key(room: string, name: "seq" | "stream"): string {
    return `${this.#prefix}room:${encodeURIComponent(room)}:${name}`;
  }

  /** A cid is the sender's own: two senders may pick the same one. */
  #cidKey(room: string, userId: string, cid: string): string {
    const owner = `${encodeURIComponent(userId)}:${encodeURIComponent(cid)}`;
    return `${this.#prefix}room:${encodeURIComponent(room)}:cid:${owner}`;
  }
}

/** A stream entry as node-redis returns it. */
interface StreamEntry {
  id: string;
  message: Record<string, string>;
}

function parseEntry(entry: StreamEntry): ChatMessage {
  const json = entry.message.message;
  if (typeof json !== "string") {
    throw new TypeError(`Cannot read message ${entry.id}: it has no 'message' field`);
  }
  return JSON.parse(json) as ChatMessage;
}

function toId(value: string | null): number {
  if (value === null) return 0;
  const id = Number(value);
  if (!Number.isSafeInteger(id)) throw new TypeError(`Cannot read message id '${value}'`);
  return id;
}

async function sha1Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
