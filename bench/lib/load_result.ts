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
  mode: "publish" | "idle" | "join-cost";
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
  /**
   * Deliveries this process's clients should see: the publishes into their
   * rooms × the members of those rooms (0 in the idle and join-cost modes).
   */
  expected: number;
  /** `message` events received (inside arrays too), each id counted once per client. */
  delivered: number;
  /** `message` events with an id already seen by that client. */
  duplicates: number;
  /** Frames received while publishing and draining (a frame may carry several events). */
  framesReceived: number;
  /** Payload bytes received while publishing and draining. */
  bytesReceived: number;
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
  /** With `--join-cost`: what one join into the room cost. */
  joinCost?: JoinCostResult;
}

/** What one more join into a room of `members` sent, in payload bytes (UTF-8) and frames. */
export interface JoinCostResult {
  /** Members in the room before the join. */
  members: number;
  /** Bytes all those members received until the traffic settled. */
  memberBytes: number;
  memberFrames: number;
  /** Members that received anything. */
  membersReached: number;
  /** Bytes the newcomer received (its `welcome`, with members and history, and what followed). */
  newcomerBytes: number;
  newcomerFrames: number;
  /** memberBytes + newcomerBytes. */
  totalBytes: number;
  /** From opening the newcomer's socket to its `welcome`, in ms (-1 if it never came). */
  welcomeMs: number;
  /** Until no frame arrived for 500 ms (at most 10 s). */
  settledMs: number;
}
