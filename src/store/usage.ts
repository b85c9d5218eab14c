/**
 * The usage contract: an amount per key and time window (bytes uploaded by
 * a user or to a room per day), kept in the shared store so that every
 * instance counts against the same limit. Like `quota.ts`, which counts
 * one slot per take, but an add carries an amount, and a refund is a
 * negative one. Windows are fixed, as `quota.ts` defines them.
 *
 * Implementations: `kv_usage.ts` (Deno KV) and `redis_usage.ts` (Redis).
 *
 * @module
 */

/** An amount per key and window in the shared store. */
export interface Usage {
  /**
   * Adds `amount` to `key`'s count in the current window of `windowMs`,
   * unless that would take the count over `limit`: resolves with 0 when
   * added, or else with the milliseconds until the window ends (nothing
   * is added then). A negative `amount` (a refund) is always added.
   * Atomic across instances: adds at once never pass the limit together.
   * Throws a `RangeError` for an `amount` that is not an integer, a
   * `limit` that is not a non-negative integer, or a `windowMs` that is
   * not a positive one; rejects when the store cannot be reached.
   */
  add(key: string, amount: number, limit: number, windowMs: number): Promise<number>;
  /** `key`'s count in the current window of `windowMs` (0 when none). */
  used(key: string, windowMs: number): Promise<number>;
}

/**
 * Checks an add's amount (the window's numbers are checked by
 * `quotaWindow`); shared by the implementations.
 *
 * @example Usage
 * ```ts
 * import { checkAmount } from "./usage.ts";
 * checkAmount(-5); // fine: a refund
 * ```
 */
export function checkAmount(amount: number): void {
  if (!Number.isSafeInteger(amount)) {
    throw new RangeError(`Cannot add usage: 'amount' must be an integer (${amount})`);
  }
}
