/**
 * Whether a dependency (the bus, the store, a Redis connection) works, as
 * `/healthz` reports it.
 *
 * @module
 */

/** `{ ok: true }`, or `{ ok: false, reason }` while the dependency is down. */
export interface ServiceState {
  /** `false` while the dependency cannot be used. */
  ok: boolean;
  /** Why not, when `ok` is `false`: e.g. `"redis: connect ECONNREFUSED 127.0.0.1:6379"`. */
  reason?: string;
}

/** The state of a working dependency. */
export const OK: ServiceState = Object.freeze({ ok: true });
/** The state of a closed one. */
export const CLOSED: ServiceState = Object.freeze({ ok: false, reason: "closed" });
