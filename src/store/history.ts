/**
 * The history contract: a durable, gap-free event sequence per room.
 * Implementations: `kv_history.ts` (Deno KV) and `redis_history.ts` (Redis);
 * one contract test suite runs against both.
 *
 * A room's sequence holds two kinds of event under one id counter: plain
 * messages (no `kind`) and changes to them (`kind`: an edit, a delete, a
 * reaction; later moderation acts). A change is also folded into the plain
 * message it changes (see `fold.ts`), so a stored message always reads in
 * its current state: newcomers and scrollback get that state without the
 * changes, and a resume gets the changes too, which fold again to the same.
 *
 * @module
 */

import type { ChatMessage } from "../protocol.ts";

/**
 * Most drafts the hub passes to one `appendMany` (a KV commit takes each
 * message as a few of its 1,000 mutations).
 */
export const MAX_BATCH = 200;

/** What a sender supplies; the store adds the id and timestamp. */
export type MessageDraft = Omit<
  ChatMessage,
  "type" | "id" | "ts" | "edited" | "deleted" | "reactions"
>;

/** The result of {@linkcode HistoryStore.append}. */
export interface AppendResult {
  /** The stored event (the earlier one, for a duplicate `cid`). */
  message: ChatMessage;
  /** `true` when this `cid` was already stored: do not broadcast again. */
  duplicate: boolean;
}

/** The result of {@linkcode HistoryStore.after}. */
export interface Replay {
  /** Events after the asked id, oldest first. */
  messages: ChatMessage[];
  /**
   * `false` when some event after the asked id was pruned already, or the
   * asked id is past the room's newest (a wiped or deleted room).
   */
  complete: boolean;
  /** `true` when more events follow than the `limit` asked for: `messages` stops short. */
  more?: boolean;
}

/** A room the store holds, as the room directory lists it. */
export interface StoredRoom {
  name: string;
  /** The room's newest event id. */
  lastId: number;
  /** When that event was stored, in ms since the epoch. */
  lastTs: number;
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
 * The ordering rule: each room's events get ids 1, 2, 3, … with no gaps and
 * no reuse, in the order `append`/`appendMany` calls complete, even when
 * several server instances append to one store at once. An event is durable
 * once its append resolves. A `cid` already stored by the same `userId` in
 * the room is never stored again: the append answers with the first event
 * (`duplicate: true`).
 *
 * The retention rule: a room keeps its newest {@linkcode HistoryStore.limit}
 * plain messages, whatever the number of changes to them, and at most as
 * many changes. Changes to pruned messages are pruned with them; older
 * changes past that bound are pruned too, which loses nothing, since their
 * effect is folded into the messages they changed. Pruning may lag behind an
 * append a little (the store may prune in batches), but never loses a
 * message among the newest `limit`.
 */
export interface HistoryStore {
  /** Plain messages kept per room. */
  readonly limit: number;
  /**
   * Stores an event under the room's next id, once per sender and `cid`. A
   * change (a draft with `kind` and `ref`) is also folded into message
   * `ref` in the same atomic step (see `fold.ts`); a change whose message
   * is not retained is stored all the same. The first event of a new room
   * throws {@linkcode RoomLimitError} when the store holds its most rooms.
   */
  append(room: string, draft: MessageDraft): Promise<AppendResult>;
  /**
   * Calls `listener` with the ids of the files that messages pruned from
   * `room` carried, once they are gone, so that the files go too. Optional:
   * a store without it keeps the files of pruned messages.
   */
  onPrunedFiles?(listener: (room: string, ids: string[]) => void): void;
  /** Stores several events, in order, as `append` would one by one. */
  appendMany(room: string, drafts: MessageDraft[]): Promise<AppendResult[]>;
  /**
   * Plain message `id` in its current state (its changes folded in), or
   * `null` when there is no such plain message (pruned, never stored, or
   * `id` is a change). One point read: its cost does not depend on the room.
   */
  get(room: string, id: number): Promise<ChatMessage | null>;
  /**
   * The id stored for `userId`'s `cid` in `room`, or `null`: whether a
   * retried request was stored already.
   */
  stored(room: string, userId: string, cid: string): Promise<number | null>;
  /** The newest `count` plain messages of a room in their current state, oldest first. */
  recent(room: string, count: number): Promise<ChatMessage[]>;
  /**
   * Up to `limit` retained plain messages with ids below `before`, in their
   * current state, oldest first, and whether older ones are still retained.
   */
  before(
    room: string,
    before: number,
    limit: number,
  ): Promise<{ messages: ChatMessage[]; hasMore: boolean }>;
  /**
   * The retained events after `since` (plain messages in their current
   * state, and changes), oldest first, at most `limit` of them (`more` says
   * when more follow), and whether none is missing. Reads no more than
   * `limit` + 1 events, however long the room.
   */
  after(room: string, since: number, limit?: number): Promise<Replay>;
  /** The room's newest event id, or 0. */
  latest(room: string): Promise<number>;
  /**
   * Every room the store holds history for, with its newest id and when it
   * was stored, in no particular order.
   */
  rooms(): Promise<StoredRoom[]>;
  /**
   * Deletes a room's whole history, its `cid`s and its directory entry, and
   * frees its place under `maxRooms`. A later append starts it again at id
   * 1. Resolves `false` when the store held nothing of it.
   */
  deleteRoom(room: string): Promise<boolean>;
  /**
   * The store's epoch: a random id made the first time it is asked for, and
   * kept as long as the store's data. A wiped store gets a new one, so a
   * client resuming with ids from before the wipe is told its history is not
   * complete (ids restart at 1 after a wipe). A store without one (a test
   * double) is never taken for wiped.
   */
  epoch?(): Promise<string>;
  /**
   * Calls `onChange(room, latest)` when a room's newest id changes, until
   * the returned function is called. Only where the store pushes changes
   * across instances (Deno Deploy's KV); elsewhere absent, and the
   * cluster's watcher polls {@linkcode HistoryStore.latest} instead.
   */
  watch?(rooms: string[], onChange: (room: string, latest: number) => void): () => void;
}
