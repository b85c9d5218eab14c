/**
 * The history contract: a durable, gap-free message sequence per room.
 * Implementations: `kv_history.ts` (Deno KV) and `redis_history.ts` (Redis
 * Streams); one contract test suite runs against both.
 *
 * @module
 */

import type { ChatMessage } from "../protocol.ts";

/**
 * Most drafts the hub passes to one `appendMany` (a KV commit takes each
 * message as up to 3 of its 1,000 mutations).
 */
export const MAX_BATCH = 200;

/** What a sender supplies; the store adds the id and timestamp. */
export type MessageDraft = Omit<ChatMessage, "type" | "id" | "ts">;

/** The result of {@linkcode HistoryStore.append}. */
export interface AppendResult {
  /** The stored message (the earlier one, for a duplicate `cid`). */
  message: ChatMessage;
  /** `true` when this `cid` was already stored: do not broadcast again. */
  duplicate: boolean;
}

/** The result of {@linkcode HistoryStore.after}. */
export interface Replay {
  /** Messages after the asked id, oldest first. */
  messages: ChatMessage[];
  /** `false` when some messages after the asked id were pruned already. */
  complete: boolean;
}

/**
 * Thrown by an append that would create a room when the store already holds
 * its most rooms: the bound on disk use across rooms.
 */
export class RoomLimitError extends Error {
  /** Creates the error for a store of `max` rooms. */
  constructor(max: number) {
    super(`Cannot create room: the server holds its most rooms (${max})`);
    this.name = "RoomLimitError";
  }
}

/**
 * Where room history lives: Deno KV (`KvHistory`) or Redis
 * (`RedisHistory`). The hub only uses this interface.
 *
 * The ordering rule: each room's messages get ids 1, 2, 3, … with no gaps
 * and no reuse, in the order `append`/`appendMany` calls complete, even
 * when several server instances append to one store at once. A message is
 * durable once its append resolves. A `cid` already stored is never stored
 * again: the append answers with the first message (`duplicate: true`).
 */
export interface HistoryStore {
  /** Messages kept per room. */
  readonly limit: number;
  /**
   * Stores a message under the room's next id, once per `cid`. The first
   * message of a new room throws {@linkcode RoomLimitError} when the store
   * holds its most rooms.
   */
  append(room: string, draft: MessageDraft): Promise<AppendResult>;
  /** Stores several messages, in order, as `append` would one by one. */
  appendMany(room: string, drafts: MessageDraft[]): Promise<AppendResult[]>;
  /** The newest `count` messages of a room, oldest first. */
  recent(room: string, count: number): Promise<ChatMessage[]>;
  /**
   * Up to `limit` retained messages with ids below `before`, oldest first,
   * and whether older ones are still retained.
   */
  before(
    room: string,
    before: number,
    limit: number,
  ): Promise<{ messages: ChatMessage[]; hasMore: boolean }>;
  /** Every retained message after `since`, and whether none is missing. */
  after(room: string, since: number): Promise<Replay>;
  /** The room's newest message id, or 0. */
  latest(room: string): Promise<number>;
  /**
   * The store's epoch: a random id made the first time it is asked for, and
   * kept as long as the store's data. A wiped store gets a new one, so a
   * client resuming with ids from before the wipe is told its history is not
   * complete (ids restart at 1 after a wipe). A store without one (a test
   * double) is never taken for wiped.
   */
  epoch?(): Promise<string>;
  /**
   * Calls `onChange(room, latest)` when a room's newest message id changes,
   * until the returned function is called. Only where the store pushes
   * changes across instances (Deno Deploy's KV); elsewhere absent, and the
   * cluster's watcher polls {@linkcode HistoryStore.latest} instead.
   */
  watch?(rooms: string[], onChange: (room: string, latest: number) => void): () => void;
}
