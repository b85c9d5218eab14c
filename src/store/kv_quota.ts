/**
 * {@linkcode KvQuota}: the quota counters in Deno KV, one entry per key and
 * window (`["quota", key, windowMs, window]`), increased by a checked
 * commit and set to expire when its window ends.
 *
 * @module
 */

import { backoff, commitOrConflict } from "./kv_contention.ts";
import { type Quota, quotaWindow } from "./quota.ts";

/** How long after its window a counter is kept, in ms (KV deletes expired keys lazily). */
const EXPIRY_MARGIN_MS = 1000;
/** Commits tried before a take gives up (each retry waits longer, at random). */
const MAX_ATTEMPTS = 50;

/** Options for {@linkcode KvQuota}. */
export interface KvQuotaOptions {
  /**
   * The wall clock, in ms since the epoch (instances share windows by it).
   * @default {Date.now}
   */
  now?: () => number;
}

/**
 * Quotas in Deno KV. A take reads the counter and commits it one higher,
 * checked against what it read, so two instances cannot both take the last
 * slot; the counter is written with `expireIn` (a KV `sum` cannot carry an
 * expiry), and a commit that loses a race, or meets a locked file
 * (`kv_contention.ts`), is retried after a random wait.
 *
 * @example Usage
 * ```ts
 * import { KvQuota } from "./kv_quota.ts";
 * using kv = await Deno.openKv(":memory:");
 * const quota = new KvQuota(kv);
 * await quota.take("rooms:192.0.2.1", 1, 3_600_000); // 0: taken
 * await quota.take("rooms:192.0.2.1", 1, 3_600_000); // > 0: ms until the hour ends
 * ```
 */
export class KvQuota implements Quota {
  #kv: Deno.Kv;
  #now: () => number;

  /** Counts in `kv`; see {@linkcode KvQuotaOptions}. */
  constructor(kv: Deno.Kv, options: KvQuotaOptions = {}) {
    this.#kv = kv;
    this.#now = options.now ?? Date.now;
  }

  /** Takes a slot; see {@linkcode Quota.take}. */
  async take(key: string, limit: number, windowMs: number): Promise<number> {
    const { index, remainingMs } = quotaWindow(this.#now(), limit, windowMs);
    if (limit === 0) return remainingMs;
    const entryKey: Deno.KvKey = ["quota", key, windowMs, index];
    for (let attempt = 0;; attempt++) {
      const entry = await this.#kv.get<Deno.KvU64>(entryKey);
      const count = entry.value?.value ?? 0n;
      if (count >= BigInt(limit)) return remainingMs;
      const op = this.#kv.atomic().check(entry).set(entryKey, new Deno.KvU64(count + 1n), {
        expireIn: remainingMs + EXPIRY_MARGIN_MS,
      });
      if ((await commitOrConflict(op)).ok) return 0;
      if (attempt + 1 >= MAX_ATTEMPTS) {
        throw new Error(`Cannot take quota: ${MAX_ATTEMPTS} commits lost to other takes`);
      }
      await backoff(attempt);
    }
  }
}
