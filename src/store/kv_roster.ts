/**
 * {@linkcode KvRoster}: name claims and presence entries in Deno KV, with
 * expiring keys; claims are atomic check-and-set operations.
 *
 * @module
 */

import type { Member } from "../protocol.ts";
import { backoff, commitOrConflict } from "./kv_contention.ts";
import type { AnnouncedRoom, Roster, RosterEntry } from "./roster.ts";

const MAX_ATTEMPTS = 20;
/** Writes per announcing commit (KV allows 1,000 mutations and 800 KiB). */
const WRITES_PER_COMMIT = 500;

/**
 * The roster in Deno KV.
 *
 * @example Usage
 * ```ts
 * import { KvRoster } from "./kv_roster.ts";
 * using kv = await Deno.openKv(":memory:");
 * const roster = new KvRoster(kv);
 * await roster.claim("lobby", "ada", "u1", 30_000); // true
 * await roster.claim("lobby", "ada", "u2", 30_000); // false
 * ```
 */
export class KvRoster implements Roster {
  #kv: Deno.Kv;

  /** Wraps an open KV; the caller closes it. */
  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** Claims a name for `userId`; see {@linkcode Roster.claim}. */
  async claim(room: string, key: string, userId: string, ttlMs: number): Promise<boolean> {
    const nameKey = ["roster", "name", room, key];
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const held = await this.#kv.get<{ userId: string; expiresAt: number }>(nameKey);
      const now = Date.now();
      if (held.value && held.value.userId !== userId && held.value.expiresAt > now) return false;
      const value = { userId, expiresAt: now + ttlMs };
      const op = this.#kv.atomic().check(held).set(nameKey, value, { expireIn: ttlMs });
      if ((await commitOrConflict(op)).ok) return true;
      await backoff(attempt);
    }
    throw new Error(`Cannot claim name: room '${room}' is too contended`);
  }

  /** Frees a claim `userId` holds. */
  async release(room: string, key: string, userId: string): Promise<void> {
    const nameKey = ["roster", "name", room, key];
    const held = await this.#kv.get<{ userId: string }>(nameKey);
    if (held.value?.userId !== userId) return;
    await commitOrConflict(this.#kv.atomic().check(held).delete(nameKey));
  }

  /** Stores this instance's members per room; see {@linkcode Roster.announce}. */
  async announce(
    instance: string,
    rooms: Map<string, AnnouncedRoom>,
    ttlMs: number,
  ): Promise<void> {
    const expiresAt = Date.now() + ttlMs;
    const writes: [Deno.KvKey, unknown][] = [];
    for (const [room, { members, keys }] of rooms) {
      writes.push([["roster", "presence", room, instance], { members, expiresAt }]);
      // Extend the claims: the members still hold their names.
      members.forEach(({ id }, i) =>
        writes.push([["roster", "name", room, keys[i]], { userId: id, expiresAt }])
      );
    }
    for (let i = 0; i < writes.length; i += WRITES_PER_COMMIT) {
      const chunk = writes.slice(i, i + WRITES_PER_COMMIT);
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const op = this.#kv.atomic();
        for (const [key, value] of chunk) op.set(key, value, { expireIn: ttlMs });
        if ((await commitOrConflict(op)).ok) break;
        await backoff(attempt);
      }
    }
  }

  /** Every unexpired presence entry. */
  async entries(): Promise<RosterEntry[]> {
    const now = Date.now();
    const entries: RosterEntry[] = [];
    const list = this.#kv.list<{ members: Member[]; expiresAt: number }>({
      prefix: ["roster", "presence"],
    });
    for await (const { key, value } of list) {
      if (value.expiresAt <= now) continue;
      entries.push({
        room: String(key[2]),
        instance: String(key[3]),
        members: value.members,
        expiresAt: value.expiresAt,
      });
    }
    return entries;
  }
}
