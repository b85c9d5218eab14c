/**
 * {@linkcode KvUsage}: usage counts in Deno KV, one entry per key and window
 * (`["usage", key, windowMs, window]`), changed by a checked commit and set
 * to expire when its window ends.
 *
 * @module
 */

import { backoff, commitOrConflict } from "./kv_contention.ts";
import { quotaWindow } from "./quota.ts";
import { checkAmount, type Usage } from "./usage.ts";

/** How long after its window a count is kept, in ms (KV deletes expired keys lazily). */
const EXPIRY_MARGIN_MS = 1000;
/** Commits tried before an add gives up (each retry waits longer, at random). */
const MAX_ATTEMPTS = 50;

/** Options for {@linkcode KvUsage}. */
export interface KvUsageOptions {
  /**
   * The wall clock, in ms since the epoch (instances share windows by it).
   * @default {Date.now}
   */
  now?: () => number;
}

/**
 * Usage counts in Deno KV: an add reads the count and commits the new one,
 * checked against what it read, so two instances cannot both pass the
 * limit; a lost race, or a locked file, is retried after a random wait.
 *
 * @example Usage
 * ```ts
 * import { KvUsage } from "./kv_usage.ts";
 * using kv = await Deno.openKv(":memory:");
 * const usage = new KvUsage(kv);
 * await usage.add("upload:user:u1", 700, 1000, 86_400_000); // 0: added
 * await usage.add("upload:user:u1", 700, 1000, 86_400_000); // > 0: ms until the day ends
 * ```
 */
export class KvUsage implements Usage {
  #kv: Deno.Kv;
  #now: () => number;

  /** Counts in `kv`; see {@linkcode KvUsageOptions}. */
  constructor(kv: Deno.Kv, options: KvUsageOptions = {}) {
    this.#kv = kv;
    this.#now = options.now ?? Date.now;
  }

  /** Adds an amount; see {@linkcode Usage.add}. */
  async add(key: string, amount: number, limit: number, windowMs: number): Promise<number> {
    checkAmount(amount);
    const { index, remainingMs } = quotaWindow(this.#now(), limit, windowMs);
    const entryKey: Deno.KvKey = ["usage", key, windowMs, index];
    for (let attempt = 0;; attempt++) {
      const entry = await this.#kv.get<number>(entryKey);
      const count = entry.value ?? 0;
      if (amount > 0 && count + amount > limit) return remainingMs;
      const op = this.#kv.atomic().check(entry).set(entryKey, Math.max(0, count + amount), {
        expireIn: remainingMs + EXPIRY_MARGIN_MS,
      });
      if ((await commitOrConflict(op)).ok) return 0;
      if (attempt + 1 >= MAX_ATTEMPTS) {
        throw new Error(`Cannot add usage: ${MAX_ATTEMPTS} commits lost to other adds`);
      }
      await backoff(attempt);
    }
  }

  /** The current count; see {@linkcode Usage.used}. */
  async used(key: string, windowMs: number): Promise<number> {
    const { index } = quotaWindow(this.#now(), 0, windowMs);
    return (await this.#kv.get<number>(["usage", key, windowMs, index])).value ?? 0;
  }
}
