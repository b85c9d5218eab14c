/**
 * {@linkcode RedisUsage}: usage counts in Redis, one key per key and window,
 * changed and given its expiry by one script.
 *
 * @module
 */

import type { RedisClientType } from "redis";
import { quotaWindow } from "./quota.ts";
import { checkAmount, type Usage } from "./usage.ts";

/** How long after its window a count is kept, in ms. */
const EXPIRY_MARGIN_MS = 1000;
/** KEYS: the count. ARGV: amount, limit, expiry in ms. Returns 1 when added, 0 when refused. */
const ADD_SCRIPT = `
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if amount > 0 and count + amount > tonumber(ARGV[2]) then return 0 end
local new = count + amount
if new < 0 then new = 0 end
redis.call('SET', KEYS[1], new, 'PX', ARGV[3])
return 1`;

/** Options for {@linkcode RedisUsage}. */
export interface RedisUsageOptions {
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
 * Usage counts in Redis.
 *
 * @example Usage
 * ```ts ignore
 * import { connectRedis } from "../redis/connection.ts";
 * import { RedisUsage } from "./redis_usage.ts";
 * const usage = new RedisUsage((await connectRedis("redis://127.0.0.1:6379")).client);
 * await usage.add("upload:user:u1", 700, 1000, 86_400_000); // 0: added
 * ```
 */
export class RedisUsage implements Usage {
  #client: RedisClientType;
  #prefix: string;
  #now: () => number;

  /** Wraps a connected client; see {@linkcode RedisUsageOptions}. */
  constructor(client: RedisClientType, options: RedisUsageOptions = {}) {
    this.#client = client;
    this.#prefix = options.prefix ?? "chat:";
    this.#now = options.now ?? Date.now;
  }

  /** Adds an amount; see {@linkcode Usage.add}. */
  async add(key: string, amount: number, limit: number, windowMs: number): Promise<number> {
    checkAmount(amount);
    const { index, remainingMs } = quotaWindow(this.#now(), limit, windowMs);
    const added = await this.#client.eval(ADD_SCRIPT, {
      keys: [this.key(key, windowMs, index)],
      arguments: [String(amount), String(limit), String(remainingMs + EXPIRY_MARGIN_MS)],
    });
    return Number(added) === 1 ? 0 : remainingMs;
  }

  /** The current count; see {@linkcode Usage.used}. */
  async used(key: string, windowMs: number): Promise<number> {
    const { index } = quotaWindow(this.#now(), 0, windowMs);
    return Number(await this.#client.get(this.key(key, windowMs, index)) ?? 0);
  }

  /** The Redis key of `key`'s count in window `index` of `windowMs`. */
  key(key: string, windowMs: number, index: number): string {
    return `${this.#prefix}usage:${JSON.stringify([key, windowMs, index])}`;
  }
}
