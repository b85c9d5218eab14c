/**
 * Runs `bench/load.ts` processes against a server: one open-loop publish step
 * split over several processes that start together, or a fleet of idle
 * connections. Merges what the processes print.
 *
 * @module
 */

import { Child } from "./child.ts";
import { LatencyHistogram, round } from "./histogram.ts";
import { type LoadResult, READY_LINE } from "./load_result.ts";
import {
  type CpuMark,
  cpuPercentSince,
  cpuSecondsSince,
  machineBusyPercentSince,
  markCpu,
  markMachine,
  type Quiet,
  waitForQuiet,
} from "./proc.ts";
import type { JoinCostResult } from "./load_result.ts";
import type { RunningServer } from "./servers.ts";

const LOAD_SCRIPT = new URL("../load.ts", import.meta.url).pathname;
/** Share of deliveries that must arrive for a step to pass. */
export const PASS_DELIVERED_RATIO = 0.999;
/** Highest p99 latency for a step to pass, in milliseconds. */
export const PASS_P99_MS = 50;
/** How long the load processes may take to connect and join, per 1,000 clients. */
const READY_TIMEOUT_MS_PER_1000 = 30_000;
/** Extra time a load process gets after publishing and draining before it is killed. */
const FINISH_GRACE_MS = 20_000;
/** Longest wait for a quiet machine before a step, unless the step says otherwise. */
const QUIET_MAX_MS = 8000;
/** Other work above this share of a core, on average while publishing, marks a step disturbed. */
const DISTURBED_OTHER_CPU_PERCENT = 25;
/** Or above this share of a core in any one window of publishing (a burst). */
const DISTURBED_OTHER_PEAK_PERCENT = 75;
/** The window for bursts of other work. */
const OTHER_WINDOW_MS = 250;
/** A load process above this share of a core may itself be the limit. */
const LOAD_BOUND_CPU_PERCENT = 90;
/** Both cores above this share busy: server and generators compete for CPU. */
const MACHINE_SATURATED_PERCENT = 95;
/** The generator sent this late at worst: it could not keep to its schedule. */
const LOAD_BOUND_SEND_LAG_MS = 25;
/** Late sends while the machine was this busy count as the machine's limit. */
const LATE_ON_BUSY_MACHINE_PERCENT = 80;
const CORES = navigator.hardwareConcurrency || 1;
const MB = 1024 * 1024;

/** One publish step. */
export interface StepParams {
  clients: number;
  /** Clients per room; `clients` itself for one shared room. */
  roomSize: number;
  /**
   * Rooms each client joins on its one connection (default 1); above 1, every room still has
   * `roomSize` members, and each client's says go to its rooms in turn.
   */
  roomsPerClient?: number;
  /** Publishes per second, over all clients. */
  rate: number;
  /** Publishing time, in seconds. */
  duration: number;
  /** Publishing at the same rate just before, not measured, in seconds (0 for none). */
  warmup?: number;
  /** How long to wait for the last deliveries, in seconds. */
  drain: number;
  /** Load processes to split the clients over. */
  processes: number;
  /** The room (one shared room), or the prefix of the rooms' names. */
  room: string;
  textBytes: number;
  /** Longest wait for a quiet machine before publishing, in ms (default 8 s). */
  quietMaxMs?: number;
}

/** The merged result of one publish step. */
export interface StepResult {
  clients: number;
  roomSize: number;
  /** Rooms each client is in. */
  roomsPerClient: number;
  rooms: number;
  joined: number;
  /** Target publishes per second. */
  rate: number;
  durationSeconds: number;
  scheduled: number;
  published: number;
  skipped: number;
  /** published × room size (every member receives every publish of its room, its own too). */
  expected: number;
  delivered: number;
  deliveredRatio: number;
  /** Deliveries per second of publishing time. */
  deliveredPerSecond: number;
  /** Publishes sent per second of publishing time. */
  publishedPerSecond: number;
  /** Frames the clients received (ours batches several events into one frame). */
  framesReceived: number;
  /** Payload bytes the clients received per delivery (acks and presence included). */
  bytesPerDelivery: number;
  p50: number;
  p99: number;
  p999: number;
  maxMs: number;
  meanMs: number;
  closes1013: number;
  reconnects: number;
  errors: number;
  duplicates: number;
  errorSamples: string[];
  /** Server CPU while publishing, in % of one core. */
  serverCpuPercent: number;
  /**
   * Server CPU milliseconds per 1,000 deliveries: its CPU from the start of the measured
   * publishing until the load processes exited (so the drain, and the closes at the end, too).
   */
  serverCpuMsPer1kDeliveries: number;
  /**
   * Server CPU microseconds per delivery while publishing only: its CPU rate over the measured
   * publishing window (`serverCpuPercent`) divided by the rate of deliveries (every member's copy
   * of every measured say, the sender's included, per second of publishing). Leaves out the
   * joins, the warm-up, the drain and the closes.
   */
  serverCpuUsPerDelivery: number;
  serverRssStartMb: number;
  serverPeakRssMb: number;
  /** CPU of all load processes together, in % of one core. */
  loadCpuPercent: number;
  /** CPU of each load process, in % of one core. */
  loadCpuPercents: number[];
  /** CPU of the server's store process (`redis-server`), in % of one core; 0 without one. */
  storeCpuPercent: number;
  /** The whole machine's CPU use while publishing, in % of all cores (kernel networking too). */
  machineCpuPercent: number;
  /** How late the generators sent, at worst. */
  sendLagMaxMs: number;
  /**
   * Wait after every client joined until server, generators and machine were idle (the join
   * storm is over, nothing else runs), at most 8 s.
   */
  quietMs: number;
  /** The machine went quiet before the step started (else it started after 8 s anyway). */
  quietBeforeStart: boolean;
  /**
   * CPU used on the machine by anything but the server and the generators while publishing, in
   * % of one core: other programs, or kernel work not charged to a process.
   */
  otherCpuPercent: number;
  /** The most other work in one 250 ms window of publishing, in % of one core. */
  otherCpuPeakPercent: number;
  /**
   * More than 25% of a core went to other work on average, or more than 75% in one 250 ms
   * window: the step's numbers are suspect.
   */
  disturbed: boolean;
  /** ≥ 99.9% delivered and p99 ≤ 50 ms. */
  pass: boolean;
  /**
   * When the step failed, what was at its limit: `machine` (both cores ≥ 95% busy: server,
   * generators and any other work competed), else `load generator` (a load process ≥ 90% of a
   * core, or sending > 25 ms late while the machine was < 80% busy; late on a busier machine is
   * `machine`), else `server`. `null` on a pass.
   */
  limit: "server" | "load generator" | "machine" | null;
  /** Fresh server's start time before the step, in ms. */
  serverStartMs: number;
  /** Which attempt at this rate (1, or 2–3 for retries). */
  attempt: number;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * The fewest clients that fill whole rooms of `roomSize` when each is in `roomsPerClient`
 * rooms: `roomSize` with one room each, 2 for 10 rooms of 20.
 */
export function clientsPerUnit(roomSize: number, roomsPerClient: number): number {
  return roomSize / gcd(roomSize, roomsPerClient);
}

function splitEvenly(total: number, parts: number): number[] {
  const count = Math.max(1, Math.min(parts, total));
  return Array.from(
    { length: count },
    (_, i) => Math.floor(total / count) + (i < total % count ? 1 : 0),
  );
}

/** The last stdout line of `child` that parses as a {@linkcode LoadResult}. */
function parseResult(child: Child): LoadResult | null {
  for (let i = child.stdout.length - 1; i >= 0; i--) {
    const line = child.stdout[i].trim();
    if (!line.startsWith("{")) continue;
    try {
      return JSON.parse(line) as LoadResult;
    } catch {
      // Not the result line.
    }
  }
  return null;
}

function startLoad(label: string, args: string[]): Child {
  return new Child({
    label,
    command: [Deno.execPath(), "run", "--allow-net=127.0.0.1", LOAD_SCRIPT, ...args],
    env: { NO_COLOR: "1" },
    stdin: true,
  });
}

async function waitReady(children: Child[], clients: number): Promise<number[]> {
  const timeout = 10_000 + Math.ceil(clients / 1000) * READY_TIMEOUT_MS_PER_1000;
  const lines = await Promise.all(
    children.map((child) => child.waitForLine((l) => l.startsWith(READY_LINE), timeout)),
  );
  return lines.map((line) => Number(line.split(" ")[1]) || 0);
}

async function finish(children: Child[], timeoutMs: number): Promise<(LoadResult | null)[]> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<"expired">((resolve) => {
    timer = setTimeout(() => resolve("expired"), timeoutMs);
  });
  const outcome = await Promise.race([Promise.all(children.map((c) => c.status)), expired]);
  clearTimeout(timer);
  if (outcome === "expired") await Promise.all(children.map((c) => c.kill()));
  return children.map(parseResult);
}

/**
 * How `clients` in rooms of `roomSize`, `roomsPerClient` each, are spread over `processes` load
 * processes. Many rooms: each process holds whole rooms (every member of each of its rooms), so
 * it knows what its clients should receive.
 */
function layout(
  clients: number,
  roomSize: number,
  roomsPerClient: number,
  processes: number,
): { sizes: number[]; shared: boolean } {
  const shared = roomsPerClient === 1 && roomSize >= clients;
  if (shared) return { sizes: splitEvenly(clients, processes), shared };
  if (roomsPerClient === 1) {
    const rooms = Math.ceil(clients / roomSize);
    return { sizes: splitEvenly(rooms, processes).map((count) => count * roomSize), shared };
  }
  checkLayout(clients, roomSize, roomsPerClient, processes);
  const unit = clientsPerUnit(roomSize, roomsPerClient);
  return { sizes: splitEvenly(clients / unit, processes).map((count) => count * unit), shared };
}

/**
 * Throws a `RangeError` unless `clients` in `roomsPerClient` rooms each (more than one) split
 * over `processes` load processes so that each fills whole rooms of `roomSize`, at least
 * `roomsPerClient` of them: a multiple of {@linkcode clientsPerUnit} × `processes`, and at least
 * `roomSize` × `processes`.
 */
export function checkLayout(
  clients: number,
  roomSize: number,
  roomsPerClient: number,
  processes: number,
): void {
  if (roomsPerClient === 1) return;
  const unit = clientsPerUnit(roomSize, roomsPerClient) * processes;
  if (!Number.isInteger(clients) || clients % unit !== 0 || clients < roomSize * processes) {
    throw new RangeError(
      `Cannot lay out the load: ${clients} clients in ${roomsPerClient} rooms of ${roomSize} ` +
        `each must be a multiple of ${unit} and at least ${roomSize * processes}, so that each ` +
        `of ${processes} load processes fills whole rooms`,
    );
  }
}

/** Callbacks around the publishing of a step (for profiling). */
export interface StepHooks {
  /** Runs when the measured publishing starts (after the warm-up). */
  beforeGo?: () => Promise<void>;
  /** Runs when publishing ends (before the drain). */
  afterPublish?: () => Promise<void>;
}

/** Runs one open-loop publish step against `server` and merges the processes' results. */
export async function runStep(
  server: RunningServer,
  params: StepParams,
  hooks: StepHooks = {},
): Promise<StepResult> {
  const roomsPerClient = params.roomsPerClient ?? 1;
  const { sizes, shared } = layout(
    params.clients,
    params.roomSize,
    roomsPerClient,
    params.processes,
  );
  const rates = sizes.map((size) => (params.rate * size) / params.clients);
  const roomPublishes = rates.reduce((sum, rate) => sum + Math.round(rate * params.duration), 0);
  const children = sizes.map((size, i) =>
    startLoad(`load ${i}`, [
      "--url",
      server.wsUrl,
      "--clients",
      String(size),
      "--room",
      params.room,
      ...(shared ? ["--shared-room"] : ["--room-size", String(params.roomSize)]),
      "--rooms-per-client",
      String(roomsPerClient),
      "--prefix",
      `p${i}`,
      "--rate",
      String(rates[i]),
      "--duration",
      String(params.duration),
      "--warmup",
      String(params.warmup ?? 0),
      "--drain",
      String(params.drain),
      "--room-publishes",
      String(roomPublishes),
      "--text-bytes",
      String(params.textBytes),
      "--wait-go",
    ])
  );
  try {
    await waitReady(children, params.clients);
    const loadPids = await Promise.all(children.map((c) => c.workerPid()));
    const quiet = await waitForQuiet([server.pid, ...server.storePids, ...loadPids], {
      maxMs: params.quietMaxMs ?? QUIET_MAX_MS,
    });
    const rssStart = server.rss.last;
    await Promise.all(children.map((child) => child.writeLine("go")));
    // The warm-up publishes at the same rate first; everything is measured after it.
    const warmupMs = (params.warmup ?? 0) * 1000;
    if (warmupMs > 0) await new Promise((resolve) => setTimeout(resolve, warmupMs));
    await hooks.beforeGo?.();
    const serverMark = markCpu(server.pid);
    const storeMarks = server.storePids.map(markCpu);
    const loadMarks: CpuMark[] = loadPids.map(markCpu);
    const machineMark = markMachine();
    server.rss.resetPeak();
    const published = hooks.afterPublish
      ? new Promise((resolve) => setTimeout(resolve, params.duration * 1000)).then(
        hooks.afterPublish,
      )
      : Promise.resolve();
    // Other work on the machine, window by window: a burst spoils a p99 as much as a steady load.
    const pids = [server.pid, ...server.storePids, ...loadPids];
    let otherPeak = 0;
    let windowMarks = { own: pids.map(markCpu), machine: markMachine() };
    const windows = setInterval(() => {
      const own = windowMarks.own.reduce((sum, mark) => sum + cpuPercentSince(mark), 0);
      const other = machineBusyPercentSince(windowMarks.machine) * CORES - own;
      otherPeak = Math.max(otherPeak, other);
      windowMarks = { own: pids.map(markCpu), machine: markMachine() };
    }, OTHER_WINDOW_MS);
    // Sample CPU near the end of publishing, while everything surely runs.
    const sampled = new Promise<CpuSample>((resolve) => {
      const take = () => {
        clearInterval(windows);
        resolve({
          load: loadMarks.map(cpuPercentSince),
          store: storeMarks.reduce((sum, mark) => sum + cpuPercentSince(mark), 0),
          server: cpuPercentSince(serverMark),
          machine: machineBusyPercentSince(machineMark),
          otherPeak,
        });
      };
      const timer = setTimeout(take, Math.max(500, params.duration * 1000 - 100));
      Promise.all(children.map((c) => c.status)).then(() => {
        clearTimeout(timer);
        take();
      });
    });
    const results = await finish(
      children,
      (params.duration + params.drain) * 1000 + FINISH_GRACE_MS,
    );
    await published;
    const serverCpuSeconds = cpuSecondsSince(serverMark);
    const peak = server.rss.peak;
    return merge(params, results, children, {
      serverCpuSeconds,
      rssStart,
      peak,
      sample: await sampled,
      quiet,
      serverStartMs: server.startMs,
    });
  } finally {
    await Promise.all(children.map((child) => child.kill()));
  }
}

/** CPU use while publishing, in % of one core (machine: % of all cores). */
interface CpuSample {
  load: number[];
  store: number;
  server: number;
  machine: number;
  /** The most other work in one window of publishing, in % of one core. */
  otherPeak: number;
}

interface Usage {
  serverCpuSeconds: number;
  rssStart: number;
  peak: number;
  sample: CpuSample;
  quiet: Quiet;
  serverStartMs: number;
}

function merge(
  params: StepParams,
  results: (LoadResult | null)[],
  children: Child[],
  usage: Usage,
): StepResult {
  const histogram = new LatencyHistogram();
  const errorSamples: string[] = [];
  let joined = 0, scheduled = 0, published = 0, skipped = 0, delivered = 0;
  let closes1013 = 0, reconnects = 0, errors = 0, duplicates = 0, sendLagMaxMs = 0;
  let frames = 0, bytes = 0;
  results.forEach((result, i) => {
    if (result === null) {
      errors++;
      errorSamples.push(`${children[i].label} printed no result${children[i].tail()}`);
      return;
    }
    histogram.merge(result.histogram);
    joined += result.joined;
    scheduled += result.scheduled;
    published += result.published;
    skipped += result.skipped;
    delivered += result.delivered;
    closes1013 += result.closes1013;
    reconnects += result.reconnects;
    errors += result.errors;
    duplicates += result.duplicates;
    frames += result.framesReceived;
    bytes += result.bytesReceived;
    sendLagMaxMs = Math.max(sendLagMaxMs, result.sendLagMaxMs);
    errorSamples.push(...result.errorSamples.slice(0, 3));
  });
  const roomsPerClient = params.roomsPerClient ?? 1;
  const roomSize = roomsPerClient === 1
    ? Math.min(params.roomSize, params.clients)
    : params.roomSize;
  const expected = published * roomSize;
  const deliveredRatio = expected === 0 ? 0 : delivered / expected;
  const latency = histogram.summary();
  const complete = results.every((r) => r !== null) && joined === params.clients;
  const { sample } = usage;
  const loadCpuPercent = sample.load.reduce((a, b) => a + b, 0);
  const other = Math.max(
    0,
    sample.machine * CORES - sample.server - loadCpuPercent - sample.store,
  );
  const pass = complete && skipped === 0 && deliveredRatio >= PASS_DELIVERED_RATIO &&
    latency.p99 <= PASS_P99_MS;
  let limit: StepResult["limit"] = null;
  if (!pass) {
    const lateSends = sendLagMaxMs > LOAD_BOUND_SEND_LAG_MS;
    if (sample.machine >= MACHINE_SATURATED_PERCENT) {
      limit = "machine";
    } else if (Math.max(...sample.load) >= LOAD_BOUND_CPU_PERCENT) {
      limit = "load generator";
    } else if (lateSends) {
      // Sending late with CPU to spare: on a busy machine the generator waited for a core.
      limit = sample.machine >= LATE_ON_BUSY_MACHINE_PERCENT ? "machine" : "load generator";
    } else {
      limit = "server";
    }
  }
  return {
    clients: params.clients,
    roomSize,
    roomsPerClient,
    rooms: Math.ceil((params.clients * roomsPerClient) / roomSize),
    joined,
    rate: round(params.rate, 1),
    durationSeconds: params.duration,
    scheduled,
    published,
    skipped,
    expected,
    delivered,
    deliveredRatio: round(deliveredRatio, 6),
    deliveredPerSecond: Math.round(delivered / params.duration),
    publishedPerSecond: Math.round(published / params.duration),
    framesReceived: frames,
    bytesPerDelivery: delivered === 0 ? 0 : round(bytes / delivered, 1),
    p50: latency.p50,
    p99: latency.p99,
    p999: latency.p999,
    maxMs: latency.max,
    meanMs: latency.mean,
    closes1013,
    reconnects,
    errors,
    duplicates,
    errorSamples: errorSamples.slice(0, 5),
    serverCpuPercent: round(sample.server, 1),
    serverCpuMsPer1kDeliveries: delivered === 0
      ? 0
      : round((usage.serverCpuSeconds * 1000 * 1000) / delivered, 3),
    serverCpuUsPerDelivery: delivered === 0
      ? 0
      : round((sample.server / 100) * 1e6 / (delivered / params.duration), 3),
    serverRssStartMb: round(usage.rssStart / MB, 1),
    serverPeakRssMb: round(usage.peak / MB, 1),
    loadCpuPercent: round(loadCpuPercent, 1),
    loadCpuPercents: sample.load.map((value) => round(value, 1)),
    storeCpuPercent: round(sample.store, 1),
    machineCpuPercent: round(sample.machine, 1),
    sendLagMaxMs: round(sendLagMaxMs, 1),
    quietMs: usage.quiet.ms,
    quietBeforeStart: usage.quiet.quiet,
    otherCpuPercent: round(other, 1),
    otherCpuPeakPercent: round(Math.max(0, sample.otherPeak), 1),
    disturbed: other > DISTURBED_OTHER_CPU_PERCENT ||
      sample.otherPeak > DISTURBED_OTHER_PEAK_PERCENT,
    pass,
    limit,
    serverStartMs: usage.serverStartMs,
    attempt: 1,
  };
}

/** One wave of idle connections, held open until {@linkcode IdleWave.close}. */
export interface IdleWave {
  /** Connections that joined. */
  joined: number;
  /** Time to open and join them all, in milliseconds. */
  connectMs: number;
  /** Releases the connections; resolves with the errors the processes counted. */
  close(): Promise<{ errors: number; errorSamples: string[] }>;
}

/** What {@linkcode openIdleWave} opens. */
export interface IdleWaveOptions {
  /** Connections. */
  count: number;
  processes: number;
  roomSize: number;
  /** Rooms each connection joins (default 1). */
  roomsPerClient?: number;
  /** Distinguishes this wave's names and rooms from the others'. */
  tag: string;
  /** The processes let go by themselves after this long, in seconds. */
  holdSeconds: number;
}

/** Opens `count` idle joined connections over `processes` load processes. */
export async function openIdleWave(
  server: RunningServer,
  options: IdleWaveOptions,
): Promise<IdleWave> {
  const roomsPerClient = options.roomsPerClient ?? 1;
  // Whole rooms per process, as in a step (with one shared room: an even split).
  const { sizes } = layout(options.count, options.roomSize, roomsPerClient, options.processes);
  const children = sizes.map((size, i) =>
    startLoad(`idle ${options.tag}${i}`, [
      "--idle",
      "--url",
      server.wsUrl,
      "--clients",
      String(size),
      "--room",
      "idle",
      "--prefix",
      `${options.tag}${i}`,
      "--room-size",
      String(options.roomSize),
      "--rooms-per-client",
      String(roomsPerClient),
      "--hold",
      String(options.holdSeconds),
    ])
  );
  const started = performance.now();
  try {
    const joined = await waitReady(children, options.count);
    const connectMs = Math.round(performance.now() - started);
    return {
      joined: joined.reduce((a, b) => a + b, 0),
      connectMs,
      async close() {
        await Promise.all(children.map((child) => child.closeStdin()));
        const results = await finish(children, FINISH_GRACE_MS);
        const errorSamples: string[] = [];
        let errors = 0;
        for (const result of results) {
          if (result === null) continue;
          errors += result.errors;
          errorSamples.push(...result.errorSamples.slice(0, 2));
        }
        return { errors, errorSamples };
      },
    };
  } catch (error) {
    await Promise.all(children.map((child) => child.kill()));
    throw error;
  }
}

/** The join cost: what one join into a room of `members` sends, measured by one load process. */
export async function runJoinCost(
  server: RunningServer,
  options: { members: number; history: number; room: string; quietMaxMs?: number },
): Promise<JoinCostResult> {
  const child = startLoad("join cost", [
    "--join-cost",
    "--url",
    server.wsUrl,
    "--clients",
    String(options.members),
    "--room",
    options.room,
    "--prefix",
    "j",
    "--history",
    String(options.history),
    "--max-seconds",
    "120",
  ]);
  try {
    const [joined] = await waitReady([child], options.members);
    if (joined < options.members) {
      throw new Error(`only ${joined} of ${options.members} members joined${child.tail()}`);
    }
    const loadPid = await child.workerPid();
    await waitForQuiet([server.pid, ...server.storePids, loadPid], {
      maxMs: options.quietMaxMs ?? QUIET_MAX_MS,
    });
    await child.writeLine("go");
    const [result] = await finish([child], FINISH_GRACE_MS);
    if (!result?.joinCost) {
      throw new Error(`the join-cost process printed no result${child.tail()}`);
    }
    if (result.errors > 0) {
      throw new Error(`the join-cost run saw errors: ${result.errorSamples.join("; ")}`);
    }
    return result.joinCost;
  } finally {
    await child.kill();
  }
}
