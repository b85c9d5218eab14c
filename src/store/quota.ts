/**
 * The quota contract: a counter per key and time window, kept in the shared
 * store so that every instance counts against the same limit (such as "new
 * rooms per address per hour"). Windows are fixed: the window of length
 * `windowMs` that holds the wall-clock time `now` starts at the last
 * multiple of `windowMs` since the epoch, the same on every instance (give
 * or take their clocks' skew), and its counter expires with it.
 *
 * Implementations: `kv_quota.ts` (Deno KV) and `redis_quota.ts` (Redis).
 *
 * @module
 */

/** A counter per key and window in the shared store. */
export interface Quota {
  /**
   * Takes one of the `limit` slots of `key` in the current window of
   * `windowMs`: resolves with 0 when taken, or else with the milliseconds
   * until the window ends and frees a slot. Atomic across instances: of
   * many takes at once, at most `limit` get 0. A `limit` of 0 takes
   * nothing. Throws a `RangeError` for a `limit` that is not a non-negative
   * integer or a `windowMs` that is not a positive one; rejects when the
   * store cannot be reached.
   */
  take(key: string, limit: number, windowMs: number): Promise<number>;
}

/** The window that `now` falls in: its number since the epoch, and the ms until it ends. */
export interface QuotaWindow {
  index: number;
  remainingMs: number;
}

/**
 * Checks `take`'s numbers and finds the window of `now` (ms since the
 * epoch); shared by the implementations.
 *
 * @example Usage
 * ```ts
 * import { quotaWindow } from "./quota.ts";
 * quotaWindow(10_250, 3, 1000); // { index: 10, remainingMs: 750 }
 * ```
 */
export function quotaWindow(now: number, limit: number, windowMs: number): QuotaWindow {
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new RangeError(`Cannot take quota: 'limit' must be a non-negative integer (${limit})`);
  }
  if (!Number.isSafeInteger(windowMs) || windowMs <= 0) {
    throw new RangeError(`Cannot take quota: 'windowMs' must be a positive integer (${windowMs})`);
  }
  const index = Math.floor(now / windowMs);
  return { index, remainingMs: (index + 1) * windowMs - now };
}
