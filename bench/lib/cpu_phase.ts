/**
 * The CPU phase: what a delivered message costs the server in CPU, at a
 * fixed rate that every server holds, per shape. For each shape, rounds of
 * one measurement per configuration in turn (ours, baseline, ours, baseline,
 * …; `ours-memory` after `ours` when selected), each on a fresh server: a
 * warm-up at the rate, then a measured window. The figure is the server's
 * user + system CPU over the window (all its threads) divided by the
 * deliveries of the says sent in it (every member's copy, the sender's
 * included); the medians over the rounds count.
 *
 * @module
 */

import { round } from "./histogram.ts";
import type { StepResult } from "./load_runner.ts";
import {
  type BenchParameters,
  describe,
  type FixedShape,
  leastDisturbed,
  type Log,
  median,
  type ServerReport,
  type ShapeId,
  stepParams,
} from "./phases.ts";
import { type ServerSettings, TARGETS } from "./servers.ts";

/** Medians over the rounds, each figure on its own. */
export interface CpuMedians {
  /** Server CPU per delivery while publishing, in µs. */
  usPerDelivery: number;
  /** Deliveries per second of publishing. */
  deliveredPerSecond: number;
  /** Delivered / expected. */
  deliveredRatio: number;
  /** Delivery latency, in ms. */
  p50: number;
  p99: number;
  /** The server's CPU while publishing, in % of one core. */
  serverCpuPercent: number;
}

/** The CPU phase of one shape for one configuration. */
export interface CpuRun {
  shape: ShapeId;
  name: string;
  clients: number;
  roomSize: number;
  roomsPerClient: number;
  rooms: number;
  /** Says per second over all clients. */
  rate: number;
  /** Warm-up and measured window, in seconds. */
  warmupSeconds: number;
  seconds: number;
  /** The measurement that counts in each round: the first undisturbed attempt, else the least. */
  rounds: StepResult[];
  /** Every attempt, retaken ones included. */
  attempts: StepResult[];
  median: CpuMedians;
  /** Rounds whose counted measurement was disturbed by other work on the machine. */
  disturbedRounds: number;
  /** Rounds that passed the sweep's rule (≥ 99.9% delivered, p99 ≤ 50 ms). */
  heldRounds: number;
  /**
   * The server held the rate: most rounds passed. When it did not, the deliveries lag the
   * window and the CPU per delivery is not comparable.
   */
  held: boolean;
}

/** Configurations the CPU phase measures, in the order each round runs them. */
const CPU_TARGETS = ["ours", "ours-memory", "baseline"] as const;

/** Why a configuration skips a shape, or `null`. */
function skipReason(report: ServerReport, shape: FixedShape): string | null {
  if (report.kind === "baseline" && shape.roomsPerClient > 1) {
    return `${shape.name}: not measured for the baseline (one room per connection: a second ` +
      `join is ignored)`;
  }
  return null;
}

function summarize(
  shape: FixedShape,
  p: BenchParameters,
  rounds: StepResult[],
  attempts: StepResult[],
): CpuRun {
  const mid = (pick: (step: StepResult) => number) => median(rounds.map(pick));
  const heldRounds = rounds.filter((step) => step.pass).length;
  return {
    shape: shape.id,
    name: shape.name,
    clients: shape.clients,
    roomSize: shape.roomSize,
    roomsPerClient: shape.roomsPerClient,
    rooms: rounds[0].rooms,
    rate: shape.rate,
    warmupSeconds: p.cpuWarmupSeconds,
    seconds: p.cpuSeconds,
    rounds,
    attempts,
    median: {
      usPerDelivery: round(mid((s) => s.serverCpuUsPerDelivery), 2),
      deliveredPerSecond: Math.round(mid((s) => s.deliveredPerSecond)),
      deliveredRatio: round(mid((s) => s.deliveredRatio), 6),
      p50: round(mid((s) => s.p50), 2),
      p99: round(mid((s) => s.p99), 2),
      serverCpuPercent: round(mid((s) => s.serverCpuPercent), 1),
    },
    disturbedRounds: rounds.filter((step) => step.disturbed).length,
    heldRounds,
    held: heldRounds * 2 > rounds.length,
  };
}

/**
 * Runs the CPU phase for the configurations in `reports` that it measures (`ours`,
 * `ours-memory`, `baseline`), adding a {@linkcode CpuRun} per shape to each report's `cpu`, and
 * what went wrong to its `notes` (a failed measurement as "… failed: …").
 */
export async function cpuPhase(
  reports: ServerReport[],
  settings: ServerSettings,
  p: BenchParameters,
  log: Log,
): Promise<void> {
  const measured = CPU_TARGETS.map((id) => reports.find((r) => r.target === id))
    .filter((r): r is ServerReport => r !== undefined);
  for (const shape of p.cpuShapes) {
    const taking = measured.filter((report) => {
      const reason = skipReason(report, shape);
      if (reason !== null) report.notes.push(reason);
      return reason === null;
    });
    const rounds = new Map(taking.map((r) => [r, [] as StepResult[]]));
    const attempts = new Map(taking.map((r) => [r, [] as StepResult[]]));
    for (let n = 1; n <= p.cpuRounds; n++) {
      for (const report of taking) {
        const label = `${report.target} ${shape.name} cpu @ ${shape.rate}/s, round ${n}`;
        try {
          const result = await leastDisturbed(
            TARGETS[report.target],
            settings,
            p,
            () => stepParams(p, shape, shape.rate, p.cpuSeconds, p.cpuWarmupSeconds),
            (step) =>
              log(
                `  ${label}${step.attempt > 1 ? ` (attempt ${step.attempt})` : ""}: ` +
                  `${step.serverCpuUsPerDelivery} µs per delivery, ${describe(step)}`,
              ),
          );
          rounds.get(report)!.push(result.step);
          attempts.get(report)!.push(...result.attempts);
        } catch (error) {
          report.notes.push(`${label} failed: ${(error as Error).message}`);
          log(`  ${label} failed: ${(error as Error).message}`);
        }
      }
    }
    for (const report of taking) {
      const counted = rounds.get(report)!;
      if (counted.length === 0) continue;
      const run = summarize(shape, p, counted, attempts.get(report)!);
      report.cpu.push(run);
      log(
        `  ${report.target} ${shape.name} cpu @ ${shape.rate}/s: median ` +
          `${run.median.usPerDelivery} µs per delivery, ${run.median.deliveredPerSecond} ` +
          `deliveries/s, p50 ${run.median.p50} ms, p99 ${run.median.p99} ms ` +
          `(${counted.length} rounds, ${run.disturbedRounds} disturbed, ${run.heldRounds} held)`,
      );
      if (run.disturbedRounds > 0) {
        report.notes.push(
          `cpu, ${shape.name}: ${run.disturbedRounds} of ${counted.length} rounds were ` +
            `disturbed by other work on the machine: their numbers are suspect`,
        );
      }
      if (!run.held) {
        report.notes.push(
          `cpu, ${shape.name}: the server did not hold ${shape.rate} says/s (${run.heldRounds} ` +
            `of ${counted.length} rounds passed): its CPU per delivery is not comparable`,
        );
      }
    }
  }
}
