/**
 * A token bucket: a burst of `burst` messages, refilled at `perSecond`, and
 * buckets by key ({@linkcode KeyedBuckets}). The transports keep one per
 * connection and one per remote address, the server API one per token.
 *
 * It lives at the top of `src/`, beside the other leaves (`log.ts`,
 * `stats.ts`), because both `src/transport/` and `src/http/` use it and
 * `src/transport/` already imports from `src/http/` (bodies, responses):
 * kept in `src/transport/`, it made `src/http/api.ts` import from the layer
 * above it. It imports nothing, so every arrow to it points down.
 *
 * @module
 */

/** Options for {@linkcode TokenBucket}. */
export interface TokenBucketOptions {
  /**
   * Messages allowed at once before the refill rate applies.
   * @default {20}
   */
  burst?: number;
  /**
   * Messages added back per second.
   * @default {5}
   */
  perSecond?: number;
  /**
   * Clock in milliseconds, replaceable in tests.
   * @default {performance.now}
   */
  now?: () => number;
}

/**
 * Counts what a connection may still send.
 *
 * @example Usage
 * ```ts
 * import { TokenBucket } from "./rate_limit.ts";
 * const bucket = new TokenBucket({ burst: 2, perSecond: 1 });
 * bucket.take(); // true
 * bucket.take(); // true
 * bucket.take(); // false, until a second has passed
 * ```
 */
export class TokenBucket {
  #burst: number;
  #perMs: number;
  #now: () => number;
  #tokens: number;
  #last: number;

  /** Creates a full bucket. */
  constructor(options: TokenBucketOptions = {}) {
    this.#burst = options.burst ?? 20;
    this.#perMs = (options.perSecond ?? 5) / 1000;
    this.#now = options.now ?? (() => performance.now());
    this.#tokens = this.#burst;
    this.#last = this.#now();
  }

  /** Takes one token; `false` when the bucket is empty. */
  take(): boolean {
    if (!this.canTake()) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Whether a token is there now, without taking it (to check two buckets before taking). */
  canTake(): boolean {
    this.#refill();
    return this.#tokens >= 1;
  }

  /** Whether the bucket is full again: then it is no different from a new one. */
  get full(): boolean {
    this.#refill();
    return this.#tokens >= this.#burst;
  }

  /** Milliseconds until the next token, after a `take()` that returned `false`; else 0. */
  get waitMs(): number {
    return this.#tokens >= 1 ? 0 : Math.ceil((1 - this.#tokens) / this.#perMs);
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#perMs);
    this.#last = now;
  }
}

/** Buckets {@linkcode KeyedBuckets} keeps at most, by default. */
export const MAX_KEYED_BUCKETS = 10_000;

/** Options for {@linkcode KeyedBuckets}: each bucket's, and how many are kept. */
export interface KeyedBucketsOptions extends TokenBucketOptions {
  /**
   * Buckets kept at most. Past it, full buckets are dropped first (a full
   * bucket is what a new one would be, so nothing is lost), then the least
   * recently used, down to nine tenths of it.
   * @default {MAX_KEYED_BUCKETS}
   */
  maxBuckets?: number;
}

/**
 * One token bucket per key (such as a remote address), kept after its users
 * are gone: a bucket lives until the cap pushes it out, full ones first, so
 * a user that leaves and comes back finds its bucket as it left it.
 *
 * @example Usage
 * ```ts
 * import { KeyedBuckets } from "./rate_limit.ts";
 * const perAddress = new KeyedBuckets({ burst: 1, perSecond: 1 });
 * perAddress.get("192.0.2.1").take(); // true
 * perAddress.get("192.0.2.1").take(); // false: the same bucket, still empty
 * perAddress.get("192.0.2.2").take(); // true
 * ```
 */
export class KeyedBuckets {
  #options: TokenBucketOptions;
  #max: number;
  /** Least recently used first. */
  #buckets = new Map<string, TokenBucket>();

  /** Creates an empty set of buckets; see {@linkcode KeyedBucketsOptions}. */
  constructor(options: KeyedBucketsOptions = {}) {
    const { maxBuckets = MAX_KEYED_BUCKETS, ...bucket } = options;
    this.#options = bucket;
    this.#max = Math.max(1, maxBuckets);
  }

  /** Buckets kept now. */
  get size(): number {
    return this.#buckets.size;
  }

  /** The bucket of `key`: the one kept, or a new full one. */
  get(key: string): TokenBucket {
    let bucket = this.#buckets.get(key);
    if (bucket) this.#buckets.delete(key); // Re-inserted last: most recently used.
    else bucket = new TokenBucket(this.#options);
    this.#buckets.set(key, bucket);
    if (this.#buckets.size > this.#max) this.#prune(key);
    return bucket;
  }

  /** Drops every full bucket, then the least recently used down to 9/10 of the cap; never `keep`. */
  #prune(keep: string): void {
    for (const [key, bucket] of this.#buckets) {
      if (key !== keep && bucket.full) this.#buckets.delete(key);
    }
    const target = Math.floor(this.#max * 0.9);
    for (const key of this.#buckets.keys()) {
      if (this.#buckets.size <= target) break;
      if (key !== keep) this.#buckets.delete(key);
    }
  }
}
