/**
 * The benchmark's phases for one server configuration: rate sweeps per load
 * shape, latency at half the headline rate, a 10× overload step, idle
 * connections, and the cost of one join; and the types every phase shares.
 * Every step starts a fresh server process (with a fresh KV file or Redis)
 * and kills it at the end. The CPU phase (`cpu_phase.ts`) and the membership
 * phase (`membership.ts`) have files of their own.
 *
 * @module
 */

import type { CpuRun } from "./cpu_phase.ts";
import { round } from "./histogram.ts";
import type { JoinCostResult } from "./load_result.ts";
import {
  openIdleWave,
  runJoinCost,
  runStep,
  type StepParams,
  type StepResult,
} from "./load_runner.ts";
import type { Membership } from "./membership.ts";
import { isAlive, waitForQuiet } from "./proc.ts";
import {
  checkHealth,
  type Health,
  type RunningServer,
  type ServerSettings,
  startServer,
  type Target,
} from "./servers.ts";

const MB = 1024 * 1024;
/** Attempts at one sweep rate at most. */
const MAX_ATTEMPTS = 3;
/** Before retrying a disturbed step, wait at most this long for the machine to become quiet. */
const DISTURBED_RETRY_WAIT_MS = 30_000;
/** Steps below the first rate when even that one fails. */
const MAX_STEPS_DOWN = 3;

/**
 * The shapes of load: one busy room (`room`), many rooms of 20 (`rooms`), and clients in 10
 * rooms of 20 each (`multi`, in the CPU and membership phases only).
 */
export const SHAPE_IDS = ["room", "rooms", "multi"] as const;
/** One shape of load. */
export type ShapeId = typeof SHAPE_IDS[number];

/** A shape of load for the sweep: how many clients, in rooms of what size. */
export interface Shape {
  /** `room` (one shared room) or `rooms` (many rooms). */
  id: "room" | "rooms";
  /** For tables: "one room of 32", "2,000 clients in rooms of 20". */
  name: string;
  clients: number;
  /** Clients per room; equal to `clients` for one room. */
  roomSize: number;
  /** The sweep's first rate, in says (publishes) per second over all clients. */
  startRate: number;
}

/** A shape at one fixed rate (the CPU phase). */
export interface FixedShape {
  id: ShapeId;
  /** For tables: "one room of 32", "1,000 clients in rooms of 20". */
  name: string;
  clients: number;
  /** Members per room; equal to `clients` for one room. */
  roomSize: number;
  /** Rooms each client is in, on its one connection. */
  roomsPerClient: number;
  /** Says per second over all clients. */
  rate: number;
}

/** The membership phase: `clients` in one room each, then in `roomsPerClient` rooms each. */
export interface MembershipParams {
  clients: number;
  roomSize: number;
  roomsPerClient: number;
  /** Rounds (each: a fresh server per level); the median counts. */
  rounds: number;
}

/**
 * The phases of a run, in the order they run: per configuration sweep to membership; then the
 * CPU phase, which alternates the configurations. Latency and overload need the sweep's headline.
 */
export const PHASES = [
  "sweep",
  "latency",
  "overload",
  "join",
  "idle",
  "membership",
  "cpu",
] as const;
/** One phase of a run. */
export type Phase = typeof PHASES[number];

/** Everything that shapes a run; written into the JSON as `parameters`. */
export interface BenchParameters {
  mode: "quick" | "full";
  /** The phases run. */
  phases: Phase[];
  /** The load shapes, each swept on its own. */
  shapes: Shape[];
  /** Each sweep step's rate is the previous one times this. */
  growth: number;
  /** Steps up the grid at most; if the last one passes, the headline is "≥" it. */
  maxSteps: number;
  /** After the first failure, one more step between the last pass and the failure. */
  refine: boolean;
  /** Run a failing sweep step once more (on a fresh server) before ending the sweep. */
  retryFailedStep: boolean;
  /** Publishing time per step, in seconds. */
  stepSeconds: number;
  /**
   * Publishing at the step's rate just before each sweep step, not measured, in seconds: every
   * step starts a fresh server, and a cold process (JIT, heap growth) stalls at first.
   */
  stepWarmupSeconds: number;
  /** Wait for late deliveries after each step, at most, in seconds. */
  drainSeconds: number;
  /** Load-generator processes per step. */
  loadProcesses: number;
  /** Longest wait for a quiet machine (join storm over, nothing else running) before a step. */
  quietMaxMs: number;
  textBytes: number;
  /** Share of deliveries a step needs to pass. */
  passDeliveredRatio: number;
  /** Highest p99 for a step to pass, in milliseconds. */
  passP99Ms: number;
  /** Latency phase: this fraction of the headline rate; 0 skips it. */
  latencyFraction: number;
  latencySeconds: number;
  /** Warm-up (publishing at the same rate, not measured) before the latency step, in seconds. */
  warmupSeconds: number;
  /** Overload phase: this multiple of each shape's headline rate; 0 skips it. */
  overloadFactor: number;
  overloadSeconds: number;
  /** Idle phase: connection counts to reach, in order; empty skips it. */
  idleTargets: number[];
  /** Idle connections per room. */
  idleRoomSize: number;
  /** Join cost: members already in the room (199: the join makes it 200); 0 skips it. */
  joinCostMembers: number;
  /** Join cost: messages in the room's history before the join. */
  joinCostHistory: number;
  /** Phases run for the extra configurations (`ours-memory`, `ours-redis`). */
  extraPhases: ("sweep" | "latency")[];
  /**
   * CPU phase: the shapes, each at its fixed rate; empty skips it. Measured for `ours`,
   * `ours-memory` and `baseline` (not for `multi`, which the baseline cannot do).
   */
  cpuShapes: FixedShape[];
  /** CPU phase: rounds; each runs every configuration once, in turn (ours, baseline, ours, …). */
  cpuRounds: number;
  /** CPU phase: publishing at the rate before the measured window, not measured, in seconds. */
  cpuWarmupSeconds: number;
  /** CPU phase: the measured window, in seconds. */
  cpuSeconds: number;
  /** Membership phase (`ours` only); `null` skips it. */
  membership: MembershipParams | null;
}

/** One sweep of one shape. */
export interface Sweep {
  shape: Shape["id"];
  name: string;
  clients: number;
  roomSize: number;
  rooms: number;
  startRate: number;
  /** Highest passing rate in says per second; 0 when no step passed. */
  headlineRate: number;
  /** The grid's top step passed: the server did not fail, the headline is a lower bound. */
  atGridTop: boolean;
  /** Deliveries per second at the headline step. */
  headlineDeliveredPerSecond: number;
  /** p99 at the headline step, in ms. */
  headlineP99: number;
  /** The lowest failing rate, or `null` when none failed. */
  failedRate: number | null;
  /** What was at its limit in that failing step (see {@linkcode StepResult.limit}). */
  failedLimit: StepResult["limit"];
  steps: StepResult[];
}

/** The latency phase for one shape. */
export interface LatencyRun {
  shape: Shape["id"];
  clients: number;
  rate: number;
  /** The attempt that counts: the first undisturbed one, else the least disturbed. */
  step: StepResult;
  /** Every attempt (a disturbed one is taken again, up to 3 times). */
  attempts: StepResult[];
}

/** The overload phase for one shape. */
export interface Overload {
  shape: Shape["id"];
  rate: number;
  step: StepResult;
  peakRssMb: number;
  /** The server process still ran after the step. */
  alive: boolean;
  /** `GET /healthz` after the step. */
  health: Health;
}

/** One level of the idle phase. */
export interface IdleLevel {
  target: number;
  /** Connections the load processes held (joined). */
  held: number;
  /** Connections the server counted (from `/healthz`), or `null`. */
  serverConnections: number | null;
  rssMb: number;
  /** (RSS − RSS with no connections) / held, in KiB. */
  kbPerConnection: number;
  connectMs: number;
}

/** The idle phase. */
export interface Idle {
  roomSize: number;
  emptyRssMb: number;
  /** Open-file limit of the load and server processes. */
  nofile: number;
  levels: IdleLevel[];
  mostHeld: number;
  errors: number;
  errorSamples: string[];
}

/** The join-cost phase: one join into a room of `members`. */
export interface JoinCost extends JoinCostResult {
  history: number;
}

/** Everything measured for one server configuration. */
export interface ServerReport {
  target: Target["id"];
  kind: Target["kind"];
  store: Target["store"];
  label: string;
  sweeps: Sweep[];
  latency: LatencyRun[];
  overload: Overload[];
  idle: Idle | null;
  joinCost: JoinCost | null;
  /** The CPU phase, per shape (filled in after every configuration's other phases). */
  cpu: CpuRun[];
  /** The membership phase. */
  membership: Membership | null;
  notes: string[];
}

/** Where progress lines go. */
export type Log = (line: string) => void;

let stepCounter = 0;

/** A fresh room name per step, so no step sees another's messages. */
export function nextRoom(): string {
  stepCounter++;
  return `bench-${Date.now().toString(36)}-${stepCounter}`;
}

/** One line about a step, for the progress log. */
export function describe(step: StepResult): string {
  const percent = (step.deliveredRatio * 100).toFixed(3);
  const load = step.loadCpuPercents.length > 1
    ? `${step.loadCpuPercent}% (${step.loadCpuPercents.join("+")})`
    : `${step.loadCpuPercent}%`;
  const parts = [
    `@ ${step.rate}/s: delivered ${percent}% (${step.deliveredPerSecond}/s)`,
    `p50 ${step.p50} ms`,
    `p99 ${step.p99} ms`,
    `cpu ${step.serverCpuPercent}%${
      step.storeCpuPercent ? ` + store ${step.storeCpuPercent}%` : ""
    }`,
    `rss ${step.serverPeakRssMb} MB`,
    `load cpu ${load}`,
    `machine ${step.machineCpuPercent}%`,
    `other cpu ${step.otherCpuPercent}% (peak ${step.otherCpuPeakPercent}%)${
      step.disturbed ? " (disturbed)" : ""
    }`,
    `quiet after ${step.quietMs} ms${step.quietBeforeStart ? "" : " (not quiet)"}`,
  ];
  if (step.sendLagMaxMs > 5) parts.push(`send lag ${step.sendLagMaxMs} ms`);
  if (step.closes1013) parts.push(`1013 closes ${step.closes1013}`);
  if (step.errors) parts.push(`errors ${step.errors}`);
  return `${parts.join(", ")} → ${step.pass ? "pass" : `FAIL (limit: ${step.limit})`}`;
}

/** The parameters of one step of `shape` at `rate`, with a fresh room name. */
export function stepParams(
  p: BenchParameters,
  shape: Pick<FixedShape, "clients" | "roomSize"> & { roomsPerClient?: number },
  rate: number,
  seconds: number,
  warmup: number,
): StepParams {
  return {
    clients: shape.clients,
    roomSize: shape.roomSize,
    roomsPerClient: shape.roomsPerClient ?? 1,
    rate: round(rate, 1),
    duration: seconds,
    warmup,
    drain: p.drainSeconds,
    processes: p.loadProcesses,
    room: nextRoom(),
    textBytes: p.textBytes,
    quietMaxMs: p.quietMaxMs,
  };
}

/** Runs `body` with a fresh server for `target`, and always stops it. */
export async function withServer<T>(
  target: Target,
  settings: ServerSettings,
  body: (server: RunningServer) => Promise<T>,
): Promise<T> {
  const server = await startServer(target, settings);
  try {
    return await body(server);
  } finally {
    await server.stop();
  }
}

/** One step on a fresh server. */
export function freshStep(
  target: Target,
  settings: ServerSettings,
  params: StepParams,
): Promise<StepResult> {
  return withServer(target, settings, (server) => runStep(server, params));
}

/**
 * Sweeps the rate for `shape`, a fresh server per step: up the grid (each
 * rate `growth` × the last) until a step fails or `maxSteps` passed; down
 * the grid when even the first fails; then one step between the last pass
 * and the first failure.
 */
export async function sweep(
  target: Target,
  settings: ServerSettings,
  p: BenchParameters,
  shape: Shape,
  log: Log,
): Promise<Sweep> {
  const steps: StepResult[] = [];
  const label = `${target.id} ${shape.name}`;

  /** Runs `rate` until it passes or the attempts run out; returns the last attempt. */
  async function tryRate(rate: number): Promise<StepResult> {
    const params = () => stepParams(p, shape, rate, p.stepSeconds, p.stepWarmupSeconds);
    let step = await freshStep(target, settings, params());
    steps.push(step);
    log(`  ${label} ${describe(step)}`);
    // A failed step runs again: once, or up to MAX_ATTEMPTS times while other work on the
    // machine disturbed it, so that a hiccup elsewhere does not end the sweep.
    for (
      let attempt = 2;
      !step.pass && p.retryFailedStep && (attempt === 2 || step.disturbed) &&
      attempt <= MAX_ATTEMPTS;
      attempt++
    ) {
      // Other work disturbed it: give the machine a while to become quiet first.
      if (step.disturbed) await waitForQuiet([], { maxMs: DISTURBED_RETRY_WAIT_MS });
      step = await freshStep(target, settings, params());
      step.attempt = attempt;
      steps.push(step);
      log(`  ${label} (attempt ${attempt}) ${describe(step)}`);
    }
    return step;
  }

  let lastPass: StepResult | null = null;
  let firstFail: StepResult | null = null;
  for (let i = 0; i < p.maxSteps; i++) {
    const step = await tryRate(shape.startRate * p.growth ** i);
    if (!step.pass) {
      firstFail = step;
      break;
    }
    lastPass = step;
  }
  if (lastPass === null && p.retryFailedStep) {
    for (let i = 1; i <= MAX_STEPS_DOWN; i++) {
      const step = await tryRate(shape.startRate / p.growth ** i);
      if (step.pass) {
        lastPass = step;
        break;
      }
      firstFail = step;
    }
  }
  if (p.refine && lastPass !== null && firstFail !== null) {
    const step = await tryRate(Math.sqrt(lastPass.rate * firstFail.rate));
    if (step.pass) lastPass = step;
    else firstFail = step;
  }
  const rooms = Math.ceil(shape.clients / shape.roomSize);
  const result: Sweep = {
    shape: shape.id,
    name: shape.name,
    clients: shape.clients,
    roomSize: shape.roomSize,
    rooms,
    startRate: round(shape.startRate, 1),
    headlineRate: lastPass?.rate ?? 0,
    atGridTop: firstFail === null,
    headlineDeliveredPerSecond: lastPass?.deliveredPerSecond ?? 0,
    headlineP99: lastPass?.p99 ?? 0,
    failedRate: firstFail?.rate ?? null,
    failedLimit: firstFail?.limit ?? null,
    steps,
  };
  log(
    `  ${label}: headline ${result.atGridTop ? "≥ " : ""}${result.headlineRate} says/s` +
      (firstFail
        ? ` (${firstFail.rate}/s failed, limit: ${firstFail.limit})`
        : " (the grid's top passed)"),
  );
  return result;
}

/**
 * Runs a step on a fresh server, and while other work on the machine disturbed it, takes it
 * again (a fresh server, after waiting up to 30 s for a quiet machine): up to 3 times with
 * `p.retryFailedStep`, else once. The first undisturbed attempt counts, else the least
 * disturbed. `params` makes each attempt's parameters (a fresh room name each time).
 */
export async function leastDisturbed(
  target: Target,
  settings: ServerSettings,
  p: BenchParameters,
  params: () => StepParams,
  onAttempt: (step: StepResult) => void,
): Promise<{ step: StepResult; attempts: StepResult[] }> {
  const attempts: StepResult[] = [];
  for (let attempt = 1; attempt <= (p.retryFailedStep ? MAX_ATTEMPTS : 1); attempt++) {
    if (attempts.length > 0) {
      if (!attempts.at(-1)!.disturbed) break;
      await waitForQuiet([], { maxMs: DISTURBED_RETRY_WAIT_MS });
    }
    const step = await freshStep(target, settings, params());
    step.attempt = attempt;
    attempts.push(step);
    onAttempt(step);
  }
  const step = attempts.find((a) => !a.disturbed) ??
    [...attempts].sort((a, b) => a.otherCpuPercent - b.otherCpuPercent)[0];
  return { step, attempts };
}

/** Measures latency at `rate` for `shape`, after a warm-up on the same fresh server. */
export async function latencyAt(
  target: Target,
  settings: ServerSettings,
  p: BenchParameters,
  shape: Shape,
  rate: number,
  log: Log,
): Promise<LatencyRun> {
  // Latency is what other work on the machine spoils first: a disturbed measurement is taken
  // again, and the least disturbed attempt counts. A fresh process runs cold (JIT, heap
  // growth): the step publishes a warm-up first.
  const { step, attempts } = await leastDisturbed(
    target,
    settings,
    p,
    () => stepParams(p, shape, rate, p.latencySeconds, p.warmupSeconds),
    (step) =>
      log(
        `  ${target.id} ${shape.name} latency${
          step.attempt > 1 ? ` (attempt ${step.attempt})` : ""
        } ${describe(step)}`,
      ),
  );
  return { shape: shape.id, clients: shape.clients, rate: step.rate, step, attempts };
}

/** Runs one step at `rate` (far beyond capacity), then checks that the server still answers. */
export async function overload(
  target: Target,
  settings: ServerSettings,
  p: BenchParameters,
  shape: Shape,
  rate: number,
  log: Log,
): Promise<Overload> {
  return await withServer(target, settings, async (server) => {
    const step = await runStep(server, stepParams(p, shape, rate, p.overloadSeconds, 0));
    const peakRssMb = round(server.rss.peak / MB, 1);
    const alive = isAlive(server.pid);
    const health = alive ? await checkHealth(server.origin) : {
      answered: false,
      ms: 0,
      detail: "the server process is gone",
    };
    log(
      `  ${target.id} ${shape.name} overload ${describe(step)}; peak rss ${peakRssMb} MB, ` +
        `alive ${alive}, healthz ${
          health.answered ? `answered in ${health.ms} ms` : `failed: ${health.detail}`
        }`,
    );
    return { shape: shape.id, rate: step.rate, step, peakRssMb, alive, health };
  });
}

/** What one join into a room of `p.joinCostMembers` sends, on a fresh server. */
export async function joinCost(
  target: Target,
  settings: ServerSettings,
  p: BenchParameters,
  log: Log,
): Promise<JoinCost> {
  return await withServer(target, settings, async (server) => {
    const result = await runJoinCost(server, {
      members: p.joinCostMembers,
      history: p.joinCostHistory,
      room: nextRoom(),
      quietMaxMs: p.quietMaxMs,
    });
    log(
      `  ${target.id} join cost: one join into a room of ${result.members} ` +
        `(${p.joinCostHistory} messages of history): ${result.totalBytes} bytes in all, ` +
        `${result.memberBytes} to the members (${result.memberFrames} frames, ` +
        `${result.membersReached} reached), ${result.newcomerBytes} to the newcomer, ` +
        `welcome after ${result.welcomeMs} ms`,
    );
    return { ...result, history: p.joinCostHistory };
  });
}

/** The median of `values` (the lower middle one of an even count); 0 for none. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
}

/** The server's RSS once settled: the median of 5 samples over a second, in bytes. */
export async function settledRss(server: RunningServer): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    samples.push(server.rss.last);
  }
  return median(samples);
}

async function serverConnections(server: RunningServer): Promise<number | null> {
  const health = await checkHealth(server.origin);
  if (!health.answered) return null;
  try {
    const body = JSON.parse(health.detail);
    return typeof body.connections === "number" ? body.connections : null;
  } catch {
    return null;
  }
}

/** Opens idle joined connections up to each target and measures the server's RSS. */
export async function idle(
  target: Target,
  settings: ServerSettings,
  p: BenchParameters,
  log: Log,
): Promise<Idle> {
  return await withServer(target, settings, async (server) => {
    await waitForQuiet([server.pid], { maxMs: 5000 });
    const emptyRss = await settledRss(server);
    const result: Idle = {
      roomSize: p.idleRoomSize,
      emptyRssMb: round(emptyRss / MB, 1),
      nofile: server.child.nofile,
      levels: [],
      mostHeld: 0,
      errors: 0,
      errorSamples: [],
    };
    const waves: Awaited<ReturnType<typeof openIdleWave>>[] = [];
    let held = 0;
    try {
      for (const [i, level] of p.idleTargets.entries()) {
        const count = level - held;
        if (count <= 0) continue;
        let wave;
        try {
          wave = await openIdleWave(server, {
            count,
            processes: p.loadProcesses,
            roomSize: p.idleRoomSize,
            tag: `w${i}p`,
            holdSeconds: 300,
          });
        } catch (error) {
          result.errorSamples.push(`opening ${count} more: ${(error as Error).message}`);
          log(`  ${target.id} idle: could not open ${count} more connections: ${error}`);
          break;
        }
        waves.push(wave);
        held += wave.joined;
        await waitForQuiet([server.pid], { maxMs: 10_000 });
        const rss = await settledRss(server);
        const entry: IdleLevel = {
          target: level,
          held,
          serverConnections: await serverConnections(server),
          rssMb: round(rss / MB, 1),
          kbPerConnection: held === 0 ? 0 : round((rss - emptyRss) / 1024 / held, 2),
          connectMs: wave.connectMs,
        };
        result.levels.push(entry);
        result.mostHeld = Math.max(result.mostHeld, held);
        log(
          `  ${target.id} idle ${held}/${level} held, server rss ${entry.rssMb} MB, ` +
            `${entry.kbPerConnection} KiB per connection (joined in ${wave.connectMs} ms)`,
        );
        if (held < level) break;
      }
    } finally {
      for (const wave of waves) {
        const { errors, errorSamples } = await wave.close();
        result.errors += errors;
        result.errorSamples.push(...errorSamples);
      }
      result.errorSamples = result.errorSamples.slice(0, 5);
    }
    return result;
  });
}
