/**
 * Counters for `/metrics`, shared by the hub, the transports and admission.
 *
 * @module
 */

import type { ErrorCode } from "./protocol.ts";

/**
 * What happened since start, counted.
 *
 * @example Usage
 * ```ts
 * import { Stats } from "./stats.ts";
 * const stats = new Stats();
 * stats.count(stats.errors, "rate_limited");
 * stats.errors.get("rate_limited"); // 1
 * ```
 */
export class Stats {
  /** Frames received from clients. */
  framesIn = 0;
  /** Chat messages stored and broadcast. */
  stored = 0;
  /** Error events sent, by code. */
  readonly errors: Map<ErrorCode, number> = new Map();
  /** Connections closed by the server for a violation, by close code. */
  readonly closes: Map<number, number> = new Map();
  /** Connections refused before the upgrade, by HTTP status. */
  readonly refusals: Map<number, number> = new Map();

  /** Adds one to `key` in `map`. */
  count<K>(map: Map<K, number>, key: K): void {
    map.set(key, (map.get(key) ?? 0) + 1);
  }
}
