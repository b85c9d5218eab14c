/**
 * {@linkcode RedisQuota}: the quota counters in Redis, one key per key and
 * window, increased and given its expiry by one script.
 *
 * @module
 */

import type { RedisClientType } from "redis";
import { type Quota, quotaWindow } from "./quota.ts";

/** How long after its window a counter is kept, in ms. */
const EXPIRY_MARGIN_MS = 1000;
/** INCR, and PEXPIRE on the first take of the window: atomic, one round trip. */
const TAKE_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count`;

/** Options for {@linkcode RedisQuota}. */
export interface RedisQuotaOptions {
  /**
   * Starts every key.
   * @default {"chat:"}
   */
  prefix?: string;
  /**
   * The wall clock, in ms since the epoch (instances share windows by it).
   * @default {Date.now}
   */
  now?: () => number;
}

/**
 * Quotas in Redis. A take counts itself with `INCR` (a refused take counts
 * too, which changes nothing: the window is full either way) and is taken
 * when the count is within the limit; the key expires when its window ends.
 *
 * @example Usage
 * ```ts ignore
 * import { connectRedis } from "../redis/connection.ts";
 * import { RedisQuota } from "./redis_quota.ts";
 * const quota = new RedisQuota((await connectRedis("redis://127.0.0.1:6379")).client);
 * await quota.take("rooms:192.0.2.1", 10, 3_600_000); // 0: taken
 * ```
 */
export class RedisQuota implements Quota {
  #client: RedisClientType;
  #prefix: string;
  #now: () => number;

  /** Wraps a connected client; see {@linkcode RedisQuotaOptions}. */
  constructor(client: RedisClientType, options: RedisQuotaOptions = {}) {
    this.#client = client;
    this.#prefix = options.prefix ?? "chat:";
    this.#now = options.now ?? Date.now;
  }

  /** Takes a slot; see {@linkcode Quota.take}. */
  async take(key: string, limit: number, windowMs: number): Promise<number> {
    const { index, remainingMs } = quotaWindow(this.#now(), limit, windowMs);
    if (limit === 0) return remainingMs;
    const count = await this.#client.eval(TAKE_SCRIPT, {
      keys: [this.key(key, windowMs, index)],
      arguments: [String(remainingMs + EXPIRY_MARGIN_MS)],
    });
    return Number(count) <= limit ? 0 : remainingMs;
  }

  /** The Redis key of `key`'s counter in window `index` of `windowMs`. */
  key(key: string, windowMs: number, index: number): string {
    return `${this.#prefix}quota:${JSON.stringify([key, windowMs, index])}`;
  }
}
