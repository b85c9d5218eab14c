/**
 * The chat benchmark: runs our server (`main.ts`) and a baseline (Node + ws,
 * `bench/baseline/`) side by side, each as its own process on 127.0.0.1,
 * against load-generator processes (`bench/load.ts`), and prints a comparison
 * table and a JSON report.
 *
 * ```sh
 * deno run -A bench/run.ts            # the full run, about 5 minutes
 * deno run -A bench/run.ts --quick    # a smoke run, seconds
 * deno run -A bench/run.ts --json out.json
 * ```
 *
 * Options (flags, or the environment variable in brackets):
 * - `--quick` [`BENCH_QUICK=1`]: a few clients, one 2-second step, no
 *   latency, overload or idle phase.
 * - `--json PATH` [`BENCH_JSON`]: where to write the report (default
 *   `bench/results/latest.json`, or `bench/results/quick.json` with `--quick`).
 * - `--servers ours,baseline` [`BENCH_SERVERS`]: which servers to measure.
 * - `--ours-entry PATH` [`BENCH_OURS_ENTRY`]: our server's entry point
 *   (default `main.ts`), for measuring another checkout.
 *
 * See `bench/README.md` for what each number means.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { killAllChildren } from "./lib/child.ts";
import { PASS_DELIVERED_RATIO, PASS_P99_MS } from "./lib/load_runner.ts";
import {
  type BenchParameters,
  idle,
  latencyAt,
  type Log,
  overload,
  type ServerReport,
  sweep,
} from "./lib/phases.ts";
import { commandOutput, initClockTicks, loadAverage } from "./lib/proc.ts";
import { compare, type ComparisonRow, renderTable } from "./lib/report.ts";
import {
  ensureBaselineInstalled,
  nodeVersion,
  oursCommand,
  ROOT,
  SERVER_LABELS,
  type ServerKind,
  type ServerSettings,
} from "./lib/servers.ts";

/** Parameters of the full run (about 5 minutes on 2 cores). */
export const FULL_PARAMETERS: BenchParameters = {
  mode: "full",
  clientCounts: [32, 256],
  startDeliveriesPerSecond: 32_000,
  growth: 1.5,
  maxSteps: 9,
  retryFailedStep: true,
  stepSeconds: 3,
  drainSeconds: 2,
  loadProcesses: 2,
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
};

/** Parameters of `--quick`: one short step with a few clients. */
export const QUICK_PARAMETERS: BenchParameters = {
  ...FULL_PARAMETERS,
  mode: "quick",
  clientCounts: [4],
  startDeliveriesPerSecond: 400,
  maxSteps: 1,
  retryFailedStep: false,
  stepSeconds: 2,
  drainSeconds: 1,
  latencyFraction: 0,
  overloadFactor: 0,
  idleTargets: [],
};

/** The JSON report. */
export interface BenchReport {
  benchmark: string;
  schema: number;
  date: string;
  mode: "quick" | "full";
  environment: Record<string, string | number | null>;
  parameters: BenchParameters;
  servers: Partial<Record<ServerKind, ServerReport>>;
  comparison: ComparisonRow[];
  notes: string[];
  durationSeconds: number;
}

/** Each child process is killed after this long whatever happens, in seconds. */
const CHILD_MAX_SECONDS = { quick: 60, full: 300 };
/** The whole run gives up after this long, in seconds. */
const RUN_MAX_SECONDS = { quick: 180, full: 1200 };
const SERVER_KINDS: ServerKind[] = ["ours", "baseline"];

interface CliOptions {
  quick: boolean;
  json: string;
  servers: ServerKind[];
  oursEntry: string;
}

function parseCli(args: string[]): CliOptions {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      json: { type: "string" },
      servers: { type: "string" },
      "ours-entry": { type: "string" },
    },
  });
  const quick = values.quick || Deno.env.get("BENCH_QUICK") === "1";
  const servers = (values.servers ?? Deno.env.get("BENCH_SERVERS") ?? "ours,baseline")
    .split(",").map((s) => s.trim()).filter(Boolean);
  for (const server of servers) {
    if (!SERVER_KINDS.includes(server as ServerKind)) {
      throw new TypeError(`Cannot run the benchmark: unknown server '${server}'`);
    }
  }
  return {
    quick,
    json: values.json ?? Deno.env.get("BENCH_JSON") ??
      `${ROOT}bench/results/${quick ? "quick" : "latest"}.json`,
    servers: servers as ServerKind[],
    oursEntry: values["ours-entry"] ?? Deno.env.get("BENCH_OURS_ENTRY") ?? `${ROOT}main.ts`,
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
    console.error(`bench: ${report.kind} ${what} failed: ${(error as Error).message}`);
  }
}

/** Runs every phase of `p` against `kind`. */
async function measure(
  kind: ServerKind,
  settings: ServerSettings,
  p: BenchParameters,
  log: Log,
): Promise<ServerReport> {
  const report: ServerReport = {
    kind,
    label: SERVER_LABELS[kind],
    sweeps: [],
    latency: [],
    overload: null,
    idle: null,
    notes: [],
  };
  for (const clients of p.clientCounts) {
    await attempt(report, `sweep at ${clients} clients`, async () => {
      report.sweeps.push(await sweep(kind, settings, p, clients, log));
    });
  }
  if (p.latencyFraction > 0) {
    for (const s of report.sweeps) {
      if (s.headlineRate === 0) {
        report.notes.push(`no latency run at ${s.clients} clients: no sweep step passed`);
        continue;
      }
      await attempt(report, `latency at ${s.clients} clients`, async () => {
        const rate = s.headlineRate * p.latencyFraction;
        report.latency.push(await latencyAt(kind, settings, p, s.clients, rate, log));
      });
    }
  }
  const first = report.sweeps[0];
  if (p.overloadFactor > 0 && first) {
    const base = first.headlineRate || first.startRate;
    await attempt(report, "overload", async () => {
      report.overload = await overload(
        kind,
        settings,
        p,
        first.clients,
        base * p.overloadFactor,
        log,
      );
    });
  }
  if (p.idleTargets.length > 0) {
    await attempt(report, "idle connections", async () => {
      report.idle = await idle(kind, settings, p, log);
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
    ...(report.overload ? [report.overload.step] : []),
  ];
  const disturbed = allSteps.filter((step) => step.disturbed).length;
  if (disturbed > 0) {
    report.notes.push(
      `${disturbed} of ${allSteps.length} steps were disturbed by other work on the machine ` +
        `(otherCpuPercent > 25): their numbers are suspect`,
    );
  }
  return report;
}

async function writeReport(path: string, report: BenchReport): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf("/"));
  if (dir) await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(path, JSON.stringify(report, null, 2) + "\n");
}

/** Runs the benchmark; resolves with the process exit code. */
async function main(): Promise<number> {
  const started = performance.now();
  const cli = parseCli(Deno.args);
  const p = cli.quick ? QUICK_PARAMETERS : FULL_PARAMETERS;
  const settings: ServerSettings = {
    oursEntry: cli.oursEntry,
    maxSeconds: CHILD_MAX_SECONDS[p.mode],
  };
  const log: Log = (line) => console.error(line);
  const notes: string[] = [];
  const servers: Partial<Record<ServerKind, ServerReport>> = {};
  let failed = false;

  const env = await environment(cli.oursEntry);
  log(`bench: ${p.mode} run, Deno ${env.deno}, Node ${env.node ?? "missing"}, ${env.cpuModel}`);
  for (const kind of cli.servers) {
    if (kind === "baseline") {
      const problem = env.node === null ? "node is not installed" : await ensureBaselineInstalled();
      if (problem !== null) {
        notes.push(`baseline skipped: ${problem}`);
        log(`bench: baseline skipped: ${problem}`);
        continue;
      }
    }
    log(`bench: measuring ${kind} (${SERVER_LABELS[kind]})`);
    const report = await measure(kind, settings, p, log);
    if (report.notes.some((n) => n.includes(" failed: ")) || report.sweeps.length === 0) {
      failed = true;
    }
    servers[kind] = report;
  }

  const ours = servers.ours ?? null;
  const comparison = ours
    ? compare(ours, servers.baseline ?? null, p.clientCounts, p.idleTargets)
    : [];
  const report: BenchReport = {
    benchmark: "deno-chat broadcast",
    schema: 1,
    date: new Date().toISOString(),
    mode: p.mode,
    environment: env,
    parameters: p,
    servers,
    comparison,
    notes,
    durationSeconds: Math.round((performance.now() - started) / 1000),
  };
  console.log(`\nChat broadcast benchmark (${p.mode}), ${report.date}`);
  console.log(
    `Deno ${env.deno}, Node ${env.node ?? "-"}, ${env.cpuModel}, ${env.cpuCores} cores\n`,
  );
  if (comparison.length > 0) console.log(renderTable(comparison));
  for (const [kind, r] of Object.entries(servers)) {
    for (const note of r.notes) console.log(`note (${kind}): ${note}`);
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
