/**
 * The chat benchmark: runs our server (`main.ts`) in its default
 * configuration (history in a Deno KV file), with other stores (`:memory:`
 * KV, Redis), and a baseline (Node + ws, `bench/baseline/`), each as its own
 * process on 127.0.0.1 and fresh for every step, against load-generator
 * processes (`bench/load.ts`), in three shapes of load (one room of 32;
 * 2,000 clients in rooms of 20, or 1,000 in the CPU phase; 500 clients in 10
 * rooms of 20 each, for the CPU and membership phases). Prints a comparison
 * table, the checks against the speed targets, and writes a JSON report.
 *
 * ```sh
 * deno run -A bench/run.ts            # the full run, about 20 minutes
 * deno run -A bench/run.ts --quick    # a smoke run, seconds
 * deno run -A bench/run.ts --json out.json
 * ```
 *
 * Options (flags, or the environment variable in brackets):
 * - `--quick` [`BENCH_QUICK=1`]: a few clients, one short step per shape,
 *   our default configuration and the baseline only.
 * - `--json PATH` [`BENCH_JSON`]: where to write the report (default
 *   `bench/results/latest.json`, or `bench/results/quick.json` with `--quick`).
 * - `--servers ours,ours-memory,ours-redis,baseline` [`BENCH_SERVERS`]: which
 *   configurations to measure.
 * - `--shapes room,rooms,multi` [`BENCH_SHAPES`]: which load shapes.
 * - `--phases sweep,latency,overload,join,idle,membership,cpu`
 *   [`BENCH_PHASES`]: which phases.
 * - `--rooms-clients N` [`BENCH_ROOMS_CLIENTS`]: clients of the many-rooms
 *   shape in the sweep (default 2,000, in rooms of 20).
 * - `--cpu-rate N` [`BENCH_CPU_RATE`]: says/s of the CPU phase, every shape
 *   (default 2,000).
 * - `--cpu-rooms-clients N` [`BENCH_CPU_ROOMS_CLIENTS`]: clients of the
 *   many-rooms shape in the CPU phase (default 1,000, in rooms of 20).
 * - `--cpu-rounds N` [`BENCH_CPU_ROUNDS`]: rounds of the CPU and membership
 *   phases (default 3).
 * - `--multi-clients N` [`BENCH_MULTI_CLIENTS`]: clients of the `multi`
 *   shape, each in 10 rooms of 20 (default 500).
 * - `--ours-entry PATH` [`BENCH_OURS_ENTRY`]: our server's entry point
 *   (default `main.ts`), for measuring another checkout.
 *
 * See `bench/README.md` for what each number means.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { killAllChildren } from "./lib/child.ts";
import { cpuPhase } from "./lib/cpu_phase.ts";
import { checkLayout, PASS_DELIVERED_RATIO, PASS_P99_MS } from "./lib/load_runner.ts";
import { membership } from "./lib/membership.ts";
import {
  type BenchParameters,
  type FixedShape,
  idle,
  joinCost,
  latencyAt,
  type Log,
  overload,
  type Phase,
  PHASES,
  type ServerReport,
  type Shape,
  SHAPE_IDS,
  type ShapeId,
  sweep,
} from "./lib/phases.ts";
import { commandOutput, initClockTicks, loadAverage } from "./lib/proc.ts";
import {
  checkTargets,
  compare,
  type ComparisonRow,
  renderChecks,
  renderTable,
  type TargetCheck,
} from "./lib/report.ts";
import {
  ensureBaselineInstalled,
  nodeVersion,
  oursCommand,
  redisMissing,
  ROOT,
  type ServerSettings,
  type Target,
  type TargetId,
  TARGETS,
} from "./lib/servers.ts";

/** Clients of the many-rooms shape in the sweep, by default. */
const ROOMS_CLIENTS = 2000;
/** Says per second of the CPU phase, every shape, by default (issue #21). */
const CPU_RATE = 2000;
/** Clients of the many-rooms shape in the CPU phase, by default: 50 rooms of 20 (issue #21). */
const CPU_ROOMS_CLIENTS = 1000;
/** Rounds of the CPU and membership phases, by default. */
const CPU_ROUNDS = 3;
/** Clients of the `multi` shape, by default (issue #18). */
const MULTI_CLIENTS = 500;
/** Rooms each client of the `multi` shape is in. */
const MULTI_ROOMS_PER_CLIENT = 10;
/** Members of every room of the many-rooms and `multi` shapes. */
const SMALL_ROOM = 20;
/** Load-generator processes per step. */
const LOAD_PROCESSES = 2;

/** The two shapes of a full run: one busy room, and many small rooms. */
function fullShapes(roomsClients: number): Shape[] {
  return [
    { id: "room", name: "one room of 32", clients: 32, roomSize: 32, startRate: 1000 },
    {
      id: "rooms",
      name: `${roomsClients.toLocaleString("en-US")} clients in rooms of 20`,
      clients: roomsClients,
      roomSize: 20,
      startRate: 250,
    },
  ];
}

/** The shapes of the CPU phase of a full run, each at `rate` says/s. */
function fullCpuShapes(rate: number, roomsClients: number, multiClients: number): FixedShape[] {
  const count = (n: number) => n.toLocaleString("en-US");
  return [
    { id: "room", name: "one room of 32", clients: 32, roomSize: 32, roomsPerClient: 1, rate },
    {
      id: "rooms",
      name: `${count(roomsClients)} clients in rooms of ${SMALL_ROOM}`,
      clients: roomsClients,
      roomSize: SMALL_ROOM,
      roomsPerClient: 1,
      rate,
    },
    {
      id: "multi",
      name: `${count(multiClients)} clients in ${MULTI_ROOMS_PER_CLIENT} rooms of ${SMALL_ROOM} ` +
        `each`,
      clients: multiClients,
      roomSize: SMALL_ROOM,
      roomsPerClient: MULTI_ROOMS_PER_CLIENT,
      rate,
    },
  ];
}

/** Parameters of the full run. */
export const FULL_PARAMETERS: BenchParameters = {
  mode: "full",
  phases: [...PHASES],
  shapes: fullShapes(ROOMS_CLIENTS),
  growth: 1.5,
  maxSteps: 12,
  refine: true,
  retryFailedStep: true,
  stepSeconds: 3,
  stepWarmupSeconds: 1,
  drainSeconds: 2,
  loadProcesses: LOAD_PROCESSES,
  quietMaxMs: 8000,
  textBytes: 32,
  passDeliveredRatio: PASS_DELIVERED_RATIO,
  passP99Ms: PASS_P99_MS,
  latencyFraction: 0.5,
  latencySeconds: 4,
  warmupSeconds: 2,
  overloadFactor: 10,
  overloadSeconds: 3,
  idleTargets: [5000, 10_000],
  idleRoomSize: 20,
  joinCostMembers: 199,
  joinCostHistory: 50,
  extraPhases: ["sweep"],
  cpuShapes: fullCpuShapes(CPU_RATE, CPU_ROOMS_CLIENTS, MULTI_CLIENTS),
  cpuRounds: CPU_ROUNDS,
  cpuWarmupSeconds: 2,
  cpuSeconds: 4,
  membership: {
    clients: MULTI_CLIENTS,
    roomSize: SMALL_ROOM,
    roomsPerClient: MULTI_ROOMS_PER_CLIENT,
    rounds: CPU_ROUNDS,
  },
};

/** Parameters of `--quick`: one short step per shape with a few clients, and a small join. */
export const QUICK_PARAMETERS: BenchParameters = {
  ...FULL_PARAMETERS,
  mode: "quick",
  shapes: [
    { id: "room", name: "one room of 4", clients: 4, roomSize: 4, startRate: 100 },
    { id: "rooms", name: "8 clients in rooms of 4", clients: 8, roomSize: 4, startRate: 40 },
  ],
  maxSteps: 1,
  refine: false,
  retryFailedStep: false,
  stepSeconds: 1,
  stepWarmupSeconds: 0.5,
  drainSeconds: 1,
  // The smoke run checks no speed: it does not wait long for a quiet machine.
  quietMaxMs: 1000,
  latencyFraction: 0,
  overloadFactor: 0,
  idleTargets: [],
  joinCostMembers: 9,
  joinCostHistory: 5,
  extraPhases: [],
  cpuShapes: [
    { id: "room", name: "one room of 4", clients: 4, roomSize: 4, roomsPerClient: 1, rate: 200 },
    {
      id: "rooms",
      name: "8 clients in rooms of 4",
      clients: 8,
      roomSize: 4,
      roomsPerClient: 1,
      rate: 80,
    },
    {
      id: "multi",
      name: "16 clients in 10 rooms of 4 each",
      clients: 16,
      roomSize: 4,
      roomsPerClient: 10,
      rate: 80,
    },
  ],
  cpuRounds: 1,
  cpuWarmupSeconds: 0.5,
  cpuSeconds: 1,
  membership: { clients: 16, roomSize: 4, roomsPerClient: 10, rounds: 1 },
};

/** The JSON report. */
export interface BenchReport {
  benchmark: string;
  /** 3: with the CPU and membership phases and the `multi` shape. */
  schema: number;
  date: string;
  mode: "quick" | "full";
  environment: Record<string, string | number | null>;
  parameters: BenchParameters;
  /** Per configuration: `ours` (default, KV file), `ours-memory`, `ours-redis`, `baseline`. */
  servers: Partial<Record<TargetId, ServerReport>>;
  comparison: ComparisonRow[];
  targets: TargetCheck[];
  notes: string[];
  durationSeconds: number;
}

/** Each child process is killed after this long whatever happens, in seconds. */
const CHILD_MAX_SECONDS = { quick: 60, full: 300 };
/** The whole run gives up after this long, in seconds. */
const RUN_MAX_SECONDS = { quick: 180, full: 3600 };
const TARGET_IDS = Object.keys(TARGETS) as TargetId[];

interface CliOptions {
  quick: boolean;
  json: string;
  targets: TargetId[];
  shapes: ShapeId[];
  phases: Phase[];
  roomsClients: number;
  cpuRate: number;
  cpuRoomsClients: number;
  cpuRounds: number;
  multiClients: number;
  oursEntry: string;
}

function list<T extends string>(value: string, allowed: readonly T[], what: string): T[] {
  const items = value.split(",").map((s) => s.trim()).filter(Boolean);
  for (const item of items) {
    if (!allowed.includes(item as T)) {
      throw new TypeError(
        `Cannot run the benchmark: unknown ${what} '${item}' (one of ${allowed.join(", ")})`,
      );
    }
  }
  return items as T[];
}

function parseCli(args: string[]): CliOptions {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      json: { type: "string" },
      servers: { type: "string" },
      shapes: { type: "string" },
      phases: { type: "string" },
      "rooms-clients": { type: "string" },
      "cpu-rate": { type: "string" },
      "cpu-rooms-clients": { type: "string" },
      "cpu-rounds": { type: "string" },
      "multi-clients": { type: "string" },
      "ours-entry": { type: "string" },
    },
  });
  const env = (name: string) => Deno.env.get(name);
  const quick = values.quick || env("BENCH_QUICK") === "1";
  const targets = list(
    values.servers ?? env("BENCH_SERVERS") ?? (quick ? "ours,baseline" : TARGET_IDS.join(",")),
    TARGET_IDS,
    "server",
  );
  const number = (flag: keyof typeof values, variable: string, fallback: number) =>
    Number(values[flag] ?? env(variable) ?? fallback);
  const roomsClients = number("rooms-clients", "BENCH_ROOMS_CLIENTS", ROOMS_CLIENTS);
  const cpuRoomsClients = number("cpu-rooms-clients", "BENCH_CPU_ROOMS_CLIENTS", CPU_ROOMS_CLIENTS);
  for (
    const [flag, value] of [["rooms-clients", roomsClients], [
      "cpu-rooms-clients",
      cpuRoomsClients,
    ]] as const
  ) {
    if (!Number.isInteger(value) || value < SMALL_ROOM || value % SMALL_ROOM !== 0) {
      throw new TypeError(
        `Cannot run the benchmark: --${flag} must be a multiple of ${SMALL_ROOM}`,
      );
    }
  }
  const cpuRate = number("cpu-rate", "BENCH_CPU_RATE", CPU_RATE);
  if (!Number.isFinite(cpuRate) || cpuRate <= 0) {
    throw new TypeError("Cannot run the benchmark: --cpu-rate must be a positive number");
  }
  const cpuRounds = number("cpu-rounds", "BENCH_CPU_ROUNDS", CPU_ROUNDS);
  if (!Number.isInteger(cpuRounds) || cpuRounds < 1 || cpuRounds > 9) {
    throw new TypeError("Cannot run the benchmark: --cpu-rounds must be 1 to 9");
  }
  const multiClients = number("multi-clients", "BENCH_MULTI_CLIENTS", MULTI_CLIENTS);
  try {
    checkLayout(multiClients, SMALL_ROOM, MULTI_ROOMS_PER_CLIENT, LOAD_PROCESSES);
  } catch (error) {
    throw new TypeError(
      `Cannot run the benchmark: --multi-clients: ${(error as Error).message}`,
    );
  }
  return {
    quick,
    json: values.json ?? env("BENCH_JSON") ??
      `${ROOT}bench/results/${quick ? "quick" : "latest"}.json`,
    // The baseline first: our rows are compared with it.
    targets: TARGET_IDS.filter((id) => targets.includes(id)),
    shapes: list(values.shapes ?? env("BENCH_SHAPES") ?? SHAPE_IDS.join(","), SHAPE_IDS, "shape"),
    phases: list(values.phases ?? env("BENCH_PHASES") ?? PHASES.join(","), PHASES, "phase"),
    roomsClients,
    cpuRate,
    cpuRoomsClients,
    cpuRounds,
    multiClients,
    oursEntry: values["ours-entry"] ?? env("BENCH_OURS_ENTRY") ?? `${ROOT}main.ts`,
  };
}

/**
 * The parameters for `cli`: quick or full (with the sizes, rate and rounds asked for), with only
 * the shapes and phases asked for.
 */
function parametersFor(cli: CliOptions): BenchParameters {
  const base: BenchParameters = cli.quick ? QUICK_PARAMETERS : {
    ...FULL_PARAMETERS,
    shapes: fullShapes(cli.roomsClients),
    cpuShapes: fullCpuShapes(cli.cpuRate, cli.cpuRoomsClients, cli.multiClients),
    cpuRounds: cli.cpuRounds,
    membership: {
      ...FULL_PARAMETERS.membership!,
      clients: cli.multiClients,
      rounds: cli.cpuRounds,
    },
  };
  const has = (phase: Phase) => cli.phases.includes(phase);
  return {
    ...base,
    phases: PHASES.filter(has),
    shapes: base.shapes.filter((s) => cli.shapes.includes(s.id)),
    cpuShapes: has("cpu") ? base.cpuShapes.filter((s) => cli.shapes.includes(s.id)) : [],
    membership: has("membership") && cli.shapes.includes("multi") ? base.membership : null,
    latencyFraction: has("latency") ? base.latencyFraction : 0,
    overloadFactor: has("overload") ? base.overloadFactor : 0,
    idleTargets: has("idle") ? base.idleTargets : [],
    joinCostMembers: has("join") ? base.joinCostMembers : 0,
    extraPhases: base.extraPhases.filter((phase) => has(phase)),
  };
}

function cpuModel(): string | null {
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    return info.match(/^model name\s*:\s*(.+)$/m)?.[1].trim() ?? null;
  } catch {
    return null;
  }
}

/** The commit measured and how many tracked files differ from it, from read-only git commands. */
async function gitState(): Promise<{ commit: string | null; changedFiles: number | null }> {
  const git = (...args: string[]) => commandOutput("git", "-C", ROOT, ...args);
  const commit = await git("rev-parse", "--short", "HEAD");
  const status = await git("status", "--porcelain", "--untracked-files=no");
  return {
    commit,
    changedFiles: status === null ? null : status.split("\n").filter(Boolean).length,
  };
}

async function environment(oursEntry: string): Promise<Record<string, string | number | null>> {
  let ours: string | null = null;
  try {
    ours = ["deno", ...oursCommand(oursEntry).slice(1)].join(" ");
  } catch {
    // Entry point missing: the ours phases will say so.
  }
  const git = await gitState();
  return {
    gitCommit: git.commit,
    gitChangedFiles: git.changedFiles,
    oursCommand: ours,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    node: await nodeVersion(),
    redis: await commandOutput("redis-server", "--version"),
    cpuModel: cpuModel(),
    cpuCores: navigator.hardwareConcurrency,
    kernel: Deno.osRelease(),
    memoryGb: Math.round(Deno.systemMemoryInfo().total / 1024 ** 3),
    clockTicks: await initClockTicks(),
    loadAverageAtStart: loadAverage(),
  };
}

/** Runs `phase`; a failure becomes a note instead of ending the run. */
async function attempt(report: ServerReport, what: string, phase: () => Promise<void>) {
  try {
    await phase();
  } catch (error) {
    report.notes.push(`${what} failed: ${(error as Error).message}`);
    console.error(`bench: ${report.target} ${what} failed: ${(error as Error).message}`);
  }
}

/** Runs every phase of `p` against `target` (only `p.extraPhases` for the extra stores). */
async function measure(
  target: Target,
  settings: ServerSettings,
  p: BenchParameters,
  log: Log,
): Promise<ServerReport> {
  const report: ServerReport = {
    target: target.id,
    kind: target.kind,
    store: target.store,
    label: target.label,
    sweeps: [],
    latency: [],
    overload: [],
    idle: null,
    joinCost: null,
    cpu: [],
    membership: null,
    notes: [],
  };
  const main = target.id === "ours" || target.id === "baseline";
  const runs = (phase: "sweep" | "latency") => main || p.extraPhases.includes(phase);
  const sweeping = p.phases.includes("sweep") && runs("sweep");
  if (!p.phases.includes("sweep") && (p.latencyFraction > 0 || p.overloadFactor > 0)) {
    report.notes.push("no latency or overload phase: they need the sweep's headline");
  }
  for (const shape of sweeping ? p.shapes : []) {
    await attempt(report, `sweep of ${shape.name}`, async () => {
      report.sweeps.push(await sweep(target, settings, p, shape, log));
    });
  }
  for (const s of report.sweeps) {
    if (p.latencyFraction <= 0 || !runs("latency")) break;
    const shape = p.shapes.find((shape) => shape.id === s.shape)!;
    if (s.headlineRate === 0) {
      report.notes.push(`no latency run for ${s.name}: no sweep step passed`);
      continue;
    }
    await attempt(report, `latency for ${s.name}`, async () => {
      const rate = s.headlineRate * p.latencyFraction;
      report.latency.push(await latencyAt(target, settings, p, shape, rate, log));
    });
  }
  for (const s of report.sweeps) {
    if (p.overloadFactor <= 0 || !main) break;
    const shape = p.shapes.find((shape) => shape.id === s.shape)!;
    await attempt(report, `overload for ${s.name}`, async () => {
      const rate = (s.headlineRate || s.startRate) * p.overloadFactor;
      report.overload.push(await overload(target, settings, p, shape, rate, log));
    });
  }
  if (p.joinCostMembers > 0 && main) {
    await attempt(report, "join cost", async () => {
      report.joinCost = await joinCost(target, settings, p, log);
    });
  }
  if (p.membership !== null && target.id === "ours") {
    const m = p.membership;
    await attempt(report, "membership", async () => {
      report.membership = await membership(target, settings, p, m, log);
    });
  }
  if (p.idleTargets.length > 0 && main) {
    await attempt(report, "idle connections", async () => {
      report.idle = await idle(target, settings, p, log);
      if (report.idle.mostHeld < p.idleTargets.at(-1)!) {
        report.notes.push(
          `idle: held ${report.idle.mostHeld} of ${p.idleTargets.at(-1)} connections ` +
            `(open-file limit ${report.idle.nofile}); ${report.idle.errorSamples[0] ?? ""}`,
        );
      }
    });
  }
  const allSteps = [
    ...report.sweeps.flatMap((s) => s.steps),
    ...report.latency.map((l) => l.step),
    ...report.overload.map((o) => o.step),
  ];
  const disturbed = allSteps.filter((step) => step.disturbed).length;
  if (disturbed > 0) {
    report.notes.push(
      `${disturbed} of ${allSteps.length} steps were disturbed by other work on the machine ` +
        `(other work > 25% of a core on average, or > 75% in a 250 ms window): ` +
        `their numbers are suspect`,
    );
  }
  for (const s of p.maxSteps > 1 ? report.sweeps : []) {
    if (s.atGridTop) {
      report.notes.push(`${s.name}: the grid's top (${s.headlineRate}/s) passed; "≥" it`);
    } else if (s.failedLimit !== "server" && s.failedLimit !== null) {
      report.notes.push(
        `${s.name}: at the first failing rate (${s.failedRate}/s) the ${s.failedLimit} was at ` +
          `its limit, not only the server: the headline is partly the machine's`,
      );
    }
  }
  return report;
}

async function writeReport(path: string, report: BenchReport): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf("/"));
  if (dir) await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(path, JSON.stringify(report, null, 2) + "\n");
}

/** The folder for this run's KV files; removed at the end, and when interrupted. */
let tempDir: string | null = null;

async function removeTempDir(): Promise<void> {
  if (tempDir !== null) await Deno.remove(tempDir, { recursive: true }).catch(() => {});
  tempDir = null;
}

/** Runs the benchmark; resolves with the process exit code. */
async function main(): Promise<number> {
  const started = performance.now();
  const cli = parseCli(Deno.args);
  const p = parametersFor(cli);
  tempDir = await Deno.makeTempDir({ prefix: "chat-bench-" });
  const settings: ServerSettings = {
    oursEntry: cli.oursEntry,
    maxSeconds: CHILD_MAX_SECONDS[p.mode],
    tempDir,
  };
  const log: Log = (line) => console.error(line);
  const notes: string[] = [];
  const servers: Partial<Record<TargetId, ServerReport>> = {};
  let failed = false;

  const env = await environment(cli.oursEntry);
  log(`bench: ${p.mode} run, Deno ${env.deno}, Node ${env.node ?? "missing"}, ${env.cpuModel}`);
  try {
    for (const id of cli.targets) {
      const target = TARGETS[id];
      let problem: string | null = null;
      if (id === "baseline") {
        problem = env.node === null ? "node is not installed" : await ensureBaselineInstalled();
      } else if (id === "ours-redis") {
        problem = await redisMissing();
      }
      if (problem !== null) {
        notes.push(`${id} skipped: ${problem}`);
        log(`bench: ${id} skipped: ${problem}`);
        continue;
      }
      log(`bench: measuring ${id} (${target.label})`);
      const report = await measure(target, settings, p, log);
      if (p.phases.includes("sweep") && report.sweeps.length === 0 && p.shapes.length > 0) {
        failed = true;
      }
      servers[id] = report;
    }
    if (p.cpuShapes.length > 0) {
      log(`bench: CPU per delivery, ${p.cpuRounds} alternating rounds per shape`);
      await cpuPhase(Object.values(servers), settings, p, log);
    }
  } finally {
    await removeTempDir();
  }
  if (Object.values(servers).some((r) => r.notes.some((n) => n.includes(" failed: ")))) {
    failed = true;
  }

  const comparison = servers.ours ? compare(servers, p) : [];
  const targets = checkTargets(servers, comparison, p);
  const report: BenchReport = {
    benchmark: "deno-chat broadcast",
    schema: 3,
    date: new Date().toISOString(),
    mode: p.mode,
    environment: env,
    parameters: p,
    servers,
    comparison,
    targets,
    notes,
    durationSeconds: Math.round((performance.now() - started) / 1000),
  };
  console.log(`\nChat broadcast benchmark (${p.mode}), ${report.date}, commit ${env.gitCommit}`);
  console.log(
    `Deno ${env.deno}, Node ${env.node ?? "-"}, ${env.cpuModel}, ${env.cpuCores} cores\n`,
  );
  if (comparison.length > 0) console.log(renderTable(comparison));
  console.log(`\nTargets (our default configuration, ${servers.ours?.label ?? "not measured"}):`);
  console.log(renderChecks(targets));
  console.log("");
  for (const [id, r] of Object.entries(servers)) {
    for (const note of r.notes) console.log(`note (${id}): ${note}`);
  }
  for (const note of notes) console.log(`note: ${note}`);
  await writeReport(cli.json, report);
  console.log(`\nJSON report: ${cli.json} (${report.durationSeconds} s)`);
  return failed ? 1 : 0;
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick") || Deno.env.get("BENCH_QUICK") === "1";
  const stop = async (why: string, code: number) => {
    console.error(`bench: ${why}; stopping every child process`);
    await killAllChildren();
    await removeTempDir();
    Deno.exit(code);
  };
  const onSignal = () => stop("interrupted", 130);
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const lifetime = setTimeout(
    () => stop(`gave up after ${RUN_MAX_SECONDS[quick ? "quick" : "full"]} s`, 1),
    RUN_MAX_SECONDS[quick ? "quick" : "full"] * 1000,
  );
  let code = 1;
  try {
    code = await main();
  } catch (error) {
    console.error(`bench: ${(error as Error).stack ?? error}`);
  } finally {
    await killAllChildren();
    clearTimeout(lifetime);
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  Deno.exit(code);
}
