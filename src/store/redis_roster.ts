/**
 * {@linkcode RedisRoster}: name claims in Redis (a `SET … PX` guarded by a
 * script, so a claim is atomic across instances). Presence crosses over the
 * Redis bus, so this roster keeps no presence entries.
 *
 * @module
 */

import type { RedisClientType } from "redis";
import type { AnnouncedRoom, Roster, RosterEntry } from "./roster.ts";

const CLAIM_SCRIPT = `
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`;

/**
 * The roster in Redis.
 *
 * @example Usage
 * ```ts ignore
 * import { connectRedis } from "../redis/connection.ts";
 * import { RedisRoster } from "./redis_roster.ts";
 * const roster = new RedisRoster((await connectRedis("redis://127.0.0.1:6379")).client);
 * await roster.claim("lobby", "ada", "u1", 30_000); // true
 * ```
 */
export class RedisRoster implements Roster {
  #client: RedisClientType;
  #prefix: string;

  /** Wraps a connected client; `prefix` starts every key. */
  constructor(client: RedisClientType, prefix = "chat:") {
    this.#client = client;
    this.#prefix = prefix;
  }

  /** Claims a name for `userId`; see {@linkcode Roster.claim}. */
  async claim(room: string, key: string, userId: string, ttlMs: number): Promise<boolean> {
    const reply = await this.#client.eval(CLAIM_SCRIPT, {
      keys: [this.#key(room, key)],
      arguments: [userId, String(ttlMs)],
    });
    return reply === 1;
  }

  /** Frees a claim `userId` holds. */
  async release(room: string, key: string, userId: string): Promise<void> {
    await this.#client.eval(RELEASE_SCRIPT, { keys: [this.#key(room, key)], arguments: [userId] });
  }

  /** Extends the members' name claims; presence itself travels on the bus. */
  async announce(
    _instance: string,
    rooms: Map<string, AnnouncedRoom>,
    ttlMs: number,
  ): Promise<void> {
    const multi = this.#client.multi();
    let any = false;
    for (const [room, { members, keys }] of rooms) {
      members.forEach(({ id }, i) => {
        multi.set(this.#key(room, keys[i]), id, { PX: ttlMs });
        any = true;
      });
    }
    if (any) await multi.exec();
  }

  /** None: presence travels on the Redis bus. */
  entries(): Promise<RosterEntry[]> {
    return Promise.resolve([]);
  }

  #key(room: string, key: string): string {
    return `${this.#prefix}name:${JSON.stringify([room, key])}`;
  }
}
