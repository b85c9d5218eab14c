/**
 * A token bucket: a burst of `burst` messages, refilled at `perSecond`. The
 * transports keep one per connection and the server API one per token.
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
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#perMs);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Milliseconds until the next token, after a `take()` that returned `false`; else 0. */
  get waitMs(): number {
    return this.#tokens >= 1 ? 0 : Math.ceil((1 - this.#tokens) / this.#perMs);
  }
}
