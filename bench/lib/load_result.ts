/**
 * What one load-generator process (`bench/load.ts`) prints: one JSON line on
 * stdout, read back by the orchestrator. Shared so both sides agree.
 *
 * @module
 */

import type { HistogramData, LatencySummary } from "./histogram.ts";

/** The line a load process writes to stderr once every client has joined. */
export const READY_LINE = "READY";

/** The result of one load process. */
export interface LoadResult {
  mode: "publish" | "idle";
  /** Connections this process was asked to open. */
  clients: number;
  /** Connections that got a `welcome`. */
  joined: number;
  /** Publishes the schedule asked for (rate × duration). */
  scheduled: number;
  /** `say` frames actually sent. */
  published: number;
  /** Scheduled publishes not sent (their client was not open, or time ran out). */
  skipped: number;
  /** Deliveries this process's clients should see: roomPublishes × clients. */
  expected: number;
  /** `message` events received (inside arrays too), each id counted once per client. */
  delivered: number;
  /** `message` events with an id already seen by that client. */
  duplicates: number;
  /** Delivery latency: receive time minus the publish's scheduled time. */
  latency: LatencySummary;
  /** The same latencies as a histogram, so the orchestrator merges processes exactly. */
  histogram: HistogramData;
  /** Closes with 1013 (server backpressure). */
  closes1013: number;
  /** Rejoins with `since` after a 1013. */
  reconnects: number;
  /** Failed connects or joins, unexpected closes, and `error` frames. */
  errors: number;
  /** The first few error descriptions. */
  errorSamples: string[];
  /** Largest delay between a publish's scheduled time and its actual send. */
  sendLagMaxMs: number;
  /** Time to connect and join every client. */
  connectMs: number;
  /** Time from the start of publishing to the end of the drain. */
  runMs: number;
}
