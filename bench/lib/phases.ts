/**
 * The benchmark's phases for one server: rate sweeps, latency at half the
 * headline rate, a 10× overload step, and idle connections. Each phase starts
 * a fresh server process and kills it at the end.
 *
 * @module
 */

import { round } from "./histogram.ts";
import { openIdleWave, runStep, type StepParams, type StepResult } from "./load_runner.ts";
import { isAlive, waitForQuiet } from "./proc.ts";
import {
  checkHealth,
  type Health,
  type RunningServer,
  type ServerKind,
  type ServerSettings,
  startServer,
} from "./servers.ts";

const MB = 1024 * 1024;
/** Attempts at one sweep rate at most. */
const MAX_ATTEMPTS = 3;

/** Everything that shapes a run; written into the JSON as `parameters`. */
export interface BenchParameters {
  mode: "quick" | "full";
  /** Client counts to sweep. */
  clientCounts: number[];
  /** The sweep's first step delivers this many messages per second (rate × clients). */
  startDeliveriesPerSecond: number;
  /** Each sweep step's rate is the previous one times this. */
  growth: number;
  /** Steps per sweep at most. */
  maxSteps: number;
  /** Run a failing sweep step once more before ending the sweep. */
  retryFailedStep: boolean;
  /** Publishing time per step, in seconds. */
  stepSeconds: number;
  /** Wait for late deliveries after each step, at most, in seconds. */
  drainSeconds: number;
  /** Load-generator processes per step. */
  loadProcesses: number;
  textBytes: number;
  /** Share of deliveries a step needs to pass. */
  passDeliveredRatio: number;
  /** Highest p99 for a step to pass, in milliseconds. */
  passP99Ms: number;
  /** Latency phase: this fraction of the headline rate. */
  latencyFraction: number;
  latencySeconds: number;
  /** Warm-up before the latency step, in seconds. */
  warmupSeconds: number;
  /** Overload phase: this multiple of the 32-client headline rate; 0 skips it. */
  overloadFactor: number;
  overloadSeconds: number;
  /** Idle phase: connection counts to reach, in order; empty skips it. */
  idleTargets: number[];
  /** Idle connections per room. */
  idleRoomSize: number;
}

/** One sweep at one client count. */
export interface Sweep {
  clients: number;
  startRate: number;
  /** Highest passing rate in publishes per second; 0 when the first step failed. */
  headlineRate: number;
  /** Deliveries per second at the headline step. */
  headlineDeliveredPerSecond: number;
  steps: StepResult[];
}

/** The latency phase at one client count. */
export interface LatencyRun {
  clients: number;
  rate: number;
  step: StepResult;
  /** The warm-up step on the same server just before, not counted. */
  warmup: StepResult;
}

/** The overload phase. */
export interface Overload {
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

/** Everything measured for one server. */
export interface ServerReport {
  kind: ServerKind;
  label: string;
  /** Why the server was not measured, when it was not. */
  skipped?: string;
  sweeps: Sweep[];
  latency: LatencyRun[];
  overload: Overload | null;
  idle: Idle | null;
  notes: string[];
}

/** Where progress lines go. */
export type Log = (line: string) => void;

let stepCounter = 0;

/** A fresh room name per step, so no step sees another's messages. */
function nextRoom(): string {
  stepCounter++;
  return `bench-${Date.now().toString(36)}-${stepCounter}`;
}

function describe(step: StepResult): string {
  const percent = (step.deliveredRatio * 100).toFixed(3);
  const parts = [
    `${step.clients} clients @ ${step.rate}/s: delivered ${percent}% (${step.deliveredPerSecond}/s)`,
    `p50 ${step.p50} ms`,
    `p99 ${step.p99} ms`,
    `cpu ${step.serverCpuPercent}%`,
    `rss ${step.serverPeakRssMb} MB`,
    `load cpu ${step.loadCpuPercent}%`,
    `other cpu ${step.otherCpuPercent}%${step.disturbed ? " (disturbed)" : ""}`,
    `quiet after ${step.quietMs} ms${step.quietBeforeStart ? "" : " (not quiet)"}`,
  ];
  if (step.closes1013) parts.push(`1013 closes ${step.closes1013}`);
  if (step.errors) parts.push(`errors ${step.errors}`);
  return `${parts.join(", ")} → ${step.pass ? "pass" : "FAIL"}`;
}

function stepParams(
  p: BenchParameters,
  clients: number,
  rate: number,
  seconds: number,
): StepParams {
  return {
    clients,
    rate,
    duration: seconds,
    drain: p.drainSeconds,
    processes: p.loadProcesses,
    room: nextRoom(),
    textBytes: p.textBytes,
  };
}

/** Runs `body` with a fresh server of `kind`, and always stops it. */
async function withServer<T>(
  kind: ServerKind,
  settings: ServerSettings,
  body: (server: RunningServer) => Promise<T>,
): Promise<T> {
  const server = await startServer(kind, settings);
  try {
    return await body(server);
  } finally {
    await server.stop();
  }
}

/** Sweeps rates at `clients` until a step fails or the steps run out. */
export async function sweep(
  kind: ServerKind,
  settings: ServerSettings,
  p: BenchParameters,
  clients: number,
  log: Log,
  rates?: number[],
): Promise<Sweep> {
  const startRate = p.startDeliveriesPerSecond / clients;
  const plan = rates ?? Array.from({ length: p.maxSteps }, (_, i) => startRate * p.growth ** i);
  const steps: StepResult[] = [];
  await withServer(kind, settings, async (server) => {
    for (const rate of plan) {
      let step = await runStep(server, stepParams(p, clients, round(rate, 1), p.stepSeconds));
      steps.push(step);
      log(`  ${kind} sweep ${describe(step)}`);
      // A failed step runs again: once, or up to MAX_ATTEMPTS times while other work on the
      // machine disturbed it, so that a hiccup elsewhere does not end the sweep.
      for (
        let attempt = 2;
        !step.pass && p.retryFailedStep && isAlive(server.pid) &&
        (attempt === 2 || step.disturbed) && attempt <= MAX_ATTEMPTS;
        attempt++
      ) {
        step = await runStep(server, stepParams(p, clients, round(rate, 1), p.stepSeconds));
        step.retry = true;
        steps.push(step);
        log(`  ${kind} sweep (attempt ${attempt}) ${describe(step)}`);
      }
      if (!step.pass || !isAlive(server.pid)) break;
    }
  });
  const best = steps.filter((s) => s.pass).at(-1);
  return {
    clients,
    startRate: round(plan[0], 1),
    headlineRate: best?.rate ?? 0,
    headlineDeliveredPerSecond: best?.deliveredPerSecond ?? 0,
    steps,
  };
}

/** Measures latency at `rate` with `clients`. */
export async function latencyAt(
  kind: ServerKind,
  settings: ServerSettings,
  p: BenchParameters,
  clients: number,
  rate: number,
  log: Log,
): Promise<LatencyRun> {
  return await withServer(kind, settings, async (server) => {
    // A fresh process runs cold (JIT, heap growth): a short unrecorded step warms it up first.
    const warmup = await runStep(server, stepParams(p, clients, round(rate, 1), p.warmupSeconds));
    log(`  ${kind} latency warm-up ${describe(warmup)}`);
    const step = await runStep(server, stepParams(p, clients, round(rate, 1), p.latencySeconds));
    log(`  ${kind} latency ${describe(step)}`);
    return { clients, rate: step.rate, step, warmup };
  });
}

/** Runs one step at `rate` (far beyond capacity), then checks that the server still answers. */
export async function overload(
  kind: ServerKind,
  settings: ServerSettings,
  p: BenchParameters,
  clients: number,
  rate: number,
  log: Log,
): Promise<Overload> {
  return await withServer(kind, settings, async (server) => {
    const step = await runStep(server, stepParams(p, clients, round(rate, 1), p.overloadSeconds));
    const peakRssMb = round(server.rss.peak / MB, 1);
    const alive = isAlive(server.pid);
    const health = alive ? await checkHealth(server.origin) : {
      answered: false,
      ms: 0,
      detail: "the server process is gone",
    };
    log(
      `  ${kind} overload ${describe(step)}; peak rss ${peakRssMb} MB, alive ${alive}, ` +
        `healthz ${health.answered ? `answered in ${health.ms} ms` : `failed: ${health.detail}`}`,
    );
    return { rate: step.rate, step, peakRssMb, alive, health };
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

async function settledRss(server: RunningServer): Promise<number> {
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
  kind: ServerKind,
  settings: ServerSettings,
  p: BenchParameters,
  log: Log,
): Promise<Idle> {
  return await withServer(kind, settings, async (server) => {
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
      for (const [i, target] of p.idleTargets.entries()) {
        const count = target - held;
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
          log(`  ${kind} idle: could not open ${count} more connections: ${error}`);
          break;
        }
        waves.push(wave);
        held += wave.joined;
        await waitForQuiet([server.pid], { maxMs: 10_000 });
        const rss = await settledRss(server);
        const level: IdleLevel = {
          target,
          held,
          serverConnections: await serverConnections(server),
          rssMb: round(rss / MB, 1),
          kbPerConnection: held === 0 ? 0 : round((rss - emptyRss) / 1024 / held, 2),
          connectMs: wave.connectMs,
        };
        result.levels.push(level);
        result.mostHeld = Math.max(result.mostHeld, held);
        log(
          `  ${kind} idle ${held}/${target} held, server rss ${level.rssMb} MB, ` +
            `${level.kbPerConnection} KiB per connection (joined in ${wave.connectMs} ms)`,
        );
        if (held < target) break;
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
