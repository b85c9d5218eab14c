/**
 * Where `KvHistory` keeps a room in Deno KV: its keys, the values of its
 * bookkeeping entries, and the sizes that keep a commit within KV's limits.
 * The layout itself is described in `kv_history.ts`.
 *
 * @module
 */

import type { ChatMessage } from "../protocol.ts";
import type { MessageDraft } from "./history.ts";

/**
 * A room's entry in the directory (`["dir", room]`), set with every commit
 * that appends to the room. `plain` and `changes` count the events ever
 * appended since the room was created; with {@linkcode Floor}'s counts of
 * pruned ones they give what the room holds. A room the previous version
 * wrote has a directory entry without counts until it is upgraded.
 */
export interface DirEntry {
  /** The room's newest event id. */
  lastId: number;
  /** When that event was stored, in ms since the epoch. */
  lastTs: number;
  /** Plain messages appended. */
  plain?: number;
  /** Changes appended. */
  changes?: number;
}

/**
 * How far pruning has gone in a room (`["rooms", room, "floor"]`): the
 * highest pruned id of each kind, and how many of each were pruned. Every
 * event at or below `plain` under "msg", and at or below `changes` under
 * "chg", is gone; nothing above them is. Set when a room is created (all
 * zero), so a room with a counter and no floor is one the previous version
 * wrote, not upgraded yet.
 */
export interface Floor {
  /** The newest pruned plain message's id (0: none). */
  plain: number;
  /** The newest pruned change's id (0: none). */
  changes: number;
  /** How many plain messages were pruned. */
  prunedPlain: number;
  /** How many changes were pruned. */
  prunedChanges: number;
}

/** The floor of a room nothing was pruned from. */
export const NO_FLOOR: Floor = { plain: 0, changes: 0, prunedPlain: 0, prunedChanges: 0 };

/** How many rooms the store holds, a `Deno.KvU64`. */
export const ROOM_COUNT_KEY: Deno.KvKey = ["meta", "rooms"];

/** Set once every room of the previous version has a directory entry. */
export const DIRECTORY_KEY: Deno.KvKey = ["meta", "directory"];

/** Bytes one commit may carry, with room to spare under KV's 800 KiB. */
export const COMMIT_BYTES = 600 * 1024;

/**
 * Bytes a stored message may take: KV refuses values over 64 KiB. A fold
 * that would make a message larger (thousands of reactions) is not stored.
 */
export const MAX_VALUE_BYTES = 60 * 1024;

/** Mutations one pruning or deleting commit makes, well within KV's 1,000. */
export const DELETES_PER_COMMIT = 500;

/** The room's newest event id (the room's check-and-set token). */
export function seqKey(room: string): Deno.KvKey {
  return ["rooms", room, "seq"];
}

/** A plain message (and, in a file of the previous version, a change). */
export function msgKey(room: string, id: number): Deno.KvKey {
  return ["rooms", room, "msg", id];
}

/** A change: an edit, a delete or a reaction. */
export function chgKey(room: string, id: number): Deno.KvKey {
  return ["rooms", room, "chg", id];
}

/** A cid is the sender's own: two senders may pick the same one. */
export function cidKey(room: string, userId: string, cid: string): Deno.KvKey {
  return ["rooms", room, "cid", userId, cid];
}

/** The room's {@linkcode Floor}. */
export function floorKey(room: string): Deno.KvKey {
  return ["rooms", room, "floor"];
}

/** The room's {@linkcode DirEntry}. */
export function dirKey(room: string): Deno.KvKey {
  return ["dir", room];
}

/** Whether a stored event is a change (a plain message has no `kind`). */
export function isChange(event: ChatMessage): boolean {
  return event.kind !== undefined;
}

/** At most how many bytes a draft takes in a commit: 3 per UTF-16 unit, and keys and ids. */
export function sizeOf(draft: MessageDraft): number {
  return 3 * (draft.text.length + draft.name.length + draft.room.length) + 512;
}

/** At most how many bytes a stored message takes in a commit. */
export function storedSize(message: ChatMessage): number {
  return 3 * JSON.stringify(message).length + 128;
}

/**
 * At most how many bytes KV's serializer makes of a message: two per UTF-16
 * unit of its JSON, which is longer than the message's strings.
 */
export function valueSize(message: ChatMessage): number {
  return 2 * JSON.stringify(message).length + 64;
}

/** Reads up to any number of keys, ten at a time (KV's `getMany` limit). */
export async function getAll<T>(kv: Deno.Kv, keys: Deno.KvKey[]): Promise<Deno.KvEntryMaybe<T>[]> {
  const chunks = [];
  for (let i = 0; i < keys.length; i += 10) {
    chunks.push(kv.getMany<T[]>(keys.slice(i, i + 10)));
  }
  return (await Promise.all(chunks)).flat();
}
