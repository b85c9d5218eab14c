/**
 * The roster contract: who is where, kept in the shared store so that
 * instances that share nothing else (Deno Deploy's isolated instances, two
 * processes on one KV file) still agree. It holds name claims and each
 * instance's presence entry per room, both expiring, so an instance that
 * dies leaves nothing behind for long.
 *
 * Implementations: `kv_roster.ts` (Deno KV) and `redis_roster.ts` (Redis).
 *
 * @module
 */

import type { Member } from "../protocol.ts";

/** One instance's members in one room, as it last announced them. */
export interface RosterEntry {
  room: string;
  /** The announcing instance's id. */
  instance: string;
  members: Member[];
  /** When the entry lapses without a new announcement, in ms since the epoch. */
  expiresAt: number;
}

/** What an instance announces of one room. */
export interface AnnouncedRoom {
  members: Member[];
  /** The members' name keys, whose claims the announcement extends. */
  keys: string[];
}

/** Names and presence in the shared store. */
export interface Roster {
  /**
   * Claims the name whose uniqueness key is `key` in `room` for `userId`,
   * until `ttlMs` from now. Atomic across instances: of two users claiming
   * one free name at once, exactly one gets `true`. A claim held by the
   * same user, or lapsed, is taken over.
   */
  claim(room: string, key: string, userId: string, ttlMs: number): Promise<boolean>;
  /** Frees a claim, if `userId` still holds it. */
  release(room: string, key: string, userId: string): Promise<void>;
  /**
   * Stores this instance's members of each room until `ttlMs` from now (an
   * empty list says everyone left), and extends their name claims (`keys`,
   * one per member) as long.
   */
  announce(instance: string, rooms: Map<string, AnnouncedRoom>, ttlMs: number): Promise<void>;
  /** Every unexpired entry, of every instance and room. */
  entries(): Promise<RosterEntry[]>;
}
