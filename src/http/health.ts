/**
 * `/healthz`: whether the bus and the store work, and how busy this
 * instance is.
 *
 * @module
 */

import type { ServiceState } from "../state.ts";

/** What `/healthz` reports. */
export interface HealthReport {
  /** The states of the dependencies (bus, store). */
  states: ServiceState[];
  /** Open connections. */
  connections: number;
  /** Rooms with members or pending work. */
  rooms: number;
  /** When this instance started, in ms since the epoch. */
  startedAt: number;
}

/**
 * Answers `/healthz`: `"status":"ok"`, or `"degraded"` with the reasons.
 *
 * @example Usage
 * ```ts
 * import { healthResponse } from "./health.ts";
 * const response = healthResponse({ states: [{ ok: true }], connections: 0, rooms: 0, startedAt: Date.now() });
 * (await response.json()).status; // "ok"
 * ```
 */
export function healthResponse({ states, connections, rooms, startedAt }: HealthReport): Response {
  const problems = states.filter((state) => !state.ok);
  const ok = problems.length === 0;
  const reason = problems.map((state) => state.reason ?? "unavailable").join("; ");
  const body = {
    ok,
    status: ok ? "ok" : "degraded",
    ...(reason ? { reason } : {}),
    connections,
    rooms,
    uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
  };
  return Response.json(body, { headers: { "cache-control": "no-store" } });
}
