/**
 * The rate budget of a remote address: one token bucket per address (IPv4,
 * or IPv6 /64, as {@linkcode addressKey} counts them), shared by every
 * connection from it, WebSockets and event streams alike, and kept after
 * they close, so reconnecting does not refill it. Each inbound frame takes a
 * token from its connection's bucket and from its address's (`inbound.ts`).
 *
 * @module
 */

import { DEFAULTS } from "../config.ts";
import { addressKey } from "../http/admission.ts";
import { KeyedBuckets, MAX_KEYED_BUCKETS, type TokenBucket } from "../rate_limit.ts";

/** Options for {@linkcode AddressBudgets}. */
export interface AddressBudgetsOptions {
  /**
   * Frames all connections from one address may send at once.
   * @default {DEFAULTS.ratePerAddressBurst}
   */
  ratePerAddressBurst?: number;
  /**
   * Sustained frames per second from one address, all its connections
   * together.
   * @default {DEFAULTS.ratePerAddressPerSecond}
   */
  ratePerAddressPerSecond?: number;
  /**
   * Addresses whose buckets are kept at most; past it full buckets go first
   * (they are what a new one would be), then the least recently used.
   * @default {MAX_KEYED_BUCKETS}
   */
  maxAddresses?: number;
  /**
   * The clock for the buckets, in ms.
   * @default {() => performance.now()}
   */
  clock?: () => number;
}

/**
 * The buckets of every address. One chat keeps one, shared by its
 * transports.
 *
 * @example Usage
 * ```ts
 * import { AddressBudgets } from "./address_budget.ts";
 * const budgets = new AddressBudgets({ ratePerAddressBurst: 1 });
 * budgets.of("2001:db8:1:2::a")().take(); // true
 * budgets.of("2001:db8:1:2::b")().take(); // false: the same /64, the same bucket
 * ```
 */
export class AddressBudgets {
  #buckets: KeyedBuckets;

  /** Creates the buckets; see {@linkcode AddressBudgetsOptions}. */
  constructor(options: AddressBudgetsOptions = {}) {
    this.#buckets = new KeyedBuckets({
      burst: options.ratePerAddressBurst ?? DEFAULTS.ratePerAddressBurst,
      perSecond: options.ratePerAddressPerSecond ?? DEFAULTS.ratePerAddressPerSecond,
      maxBuckets: options.maxAddresses ?? MAX_KEYED_BUCKETS,
      ...(options.clock ? { now: options.clock } : {}),
    });
  }

  /** Addresses whose buckets are kept now. */
  get size(): number {
    return this.#buckets.size;
  }

  /**
   * The bucket of `ip`'s address, looked up again for each frame (so a
   * bucket dropped at the cap is never used on the side).
   */
  of(ip: string): () => TokenBucket {
    const key = addressKey(ip);
    return () => this.#buckets.get(key);
  }
}
