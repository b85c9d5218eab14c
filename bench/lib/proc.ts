/**
 * Process measurements from Linux's `/proc`: CPU time, resident memory, and
 * the child of a wrapper process. Every reader returns `null` (or an empty
 * list) once the process is gone, instead of throwing.
 *
 * @module
 */

/** How often {@linkcode RssSampler} reads VmRSS. */
export const RSS_SAMPLE_MS = 100;
/** Clock ticks per second for `/proc/<pid>/stat` (Linux's USER_HZ, 100 nearly everywhere). */
let clockTicks = 100;

/** What `command args…` prints, trimmed, or `null` when it fails or is missing. */
export async function commandOutput(command: string, ...args: string[]): Promise<string | null> {
  try {
    const { stdout, success } = await new Deno.Command(command, {
      args,
      stdout: "piped",
      stderr: "null",
    }).output();
    return success ? new TextDecoder().decode(stdout).trim() : null;
  } catch {
    return null;
  }
}

/** Reads USER_HZ with `getconf CLK_TCK` once; keeps 100 when that fails. */
export async function initClockTicks(): Promise<number> {
  const ticks = Number(await commandOutput("getconf", "CLK_TCK"));
  if (Number.isInteger(ticks) && ticks > 0) clockTicks = ticks;
  return clockTicks;
}

/** The fields of `/proc/<pid>/stat` after the command name (field 3 is index 0). */
function statFields(pid: number): string[] | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** User plus system CPU time of `pid`, in seconds, or `null` when it is gone. */
export function cpuSeconds(pid: number): number | null {
  const fields = statFields(pid);
  if (fields === null) return null;
  // utime and stime are fields 14 and 15 of the stat line.
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/** CPU seconds per thread of `pid`, by thread id, with the thread's name; empty when gone. */
export function threadCpuSeconds(pid: number): Map<number, { name: string; seconds: number }> {
  const threads = new Map<number, { name: string; seconds: number }>();
  try {
    for (const entry of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const stat = Deno.readTextFileSync(`/proc/${pid}/task/${entry.name}/stat`);
        const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        const seconds = (Number(fields[11]) + Number(fields[12])) / clockTicks;
        threads.set(Number(entry.name), { name, seconds });
      } catch {
        // The thread ended.
      }
    }
  } catch {
    // The process is gone.
  }
  return threads;
}

/** CPU % of one core per thread name (threads of one name summed) between two readings. */
export function threadCpuPercents(
  before: Map<number, { name: string; seconds: number }>,
  after: Map<number, { name: string; seconds: number }>,
  wallSeconds: number,
): Record<string, number> {
  const byName: Record<string, number> = {};
  for (const [tid, { name, seconds }] of after) {
    const used = seconds - (before.get(tid)?.seconds ?? 0);
    byName[name] = (byName[name] ?? 0) + used;
  }
  for (const name of Object.keys(byName)) {
    byName[name] = Math.round((byName[name] / wallSeconds) * 1000) / 10;
  }
  return byName;
}

/** Resident memory of `pid` in bytes (VmRSS), or `null` when it is gone. */
export function rssBytes(pid: number): number | null {
  let status: string;
  try {
    status = Deno.readTextFileSync(`/proc/${pid}/status`);
  } catch {
    return null;
  }
  const match = status.match(/^VmRSS:\s+(\d+) kB/m);
  return match ? Number(match[1]) * 1024 : null;
}

/** Whether `pid` exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const fields = statFields(pid);
  return fields !== null && fields[0] !== "Z" && fields[0] !== "X";
}

/** The processes whose parent is `pid`. */
export function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const fields = statFields(Number(entry.name));
    if (fields !== null && Number(fields[1]) === pid) children.push(Number(entry.name));
  }
  return children;
}

/** A CPU-time reading, for {@linkcode cpuPercentSince}. */
export interface CpuMark {
  pid: number;
  cpu: number;
  wall: number;
}

/** Marks the CPU time of `pid` now. */
export function markCpu(pid: number): CpuMark {
  return { pid, cpu: cpuSeconds(pid) ?? 0, wall: performance.now() };
}

/** CPU used since `mark`, as a percentage of one core (200% is two cores busy). */
export function cpuPercentSince(mark: CpuMark): number {
  const cpu = cpuSeconds(mark.pid);
  const wall = (performance.now() - mark.wall) / 1000;
  if (cpu === null || wall <= 0) return 0;
  return ((cpu - mark.cpu) / wall) * 100;
}

/** CPU seconds used since `mark`. */
export function cpuSecondsSince(mark: CpuMark): number {
  const cpu = cpuSeconds(mark.pid);
  return cpu === null ? 0 : cpu - mark.cpu;
}

/**
 * Samples a process's VmRSS every {@linkcode RSS_SAMPLE_MS} and keeps the
 * peak since the last {@linkcode RssSampler.resetPeak}. Stops by itself when
 * the process is gone; call {@linkcode RssSampler.stop} when done.
 */
export class RssSampler {
  #pid: number;
  #timer: ReturnType<typeof setInterval>;
  #peak = 0;
  #last = 0;

  /** Starts sampling `pid`. */
  constructor(pid: number) {
    this.#pid = pid;
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), RSS_SAMPLE_MS);
  }

  #sample(): void {
    const rss = rssBytes(this.#pid);
    if (rss === null) return this.stop();
    this.#last = rss;
    if (rss > this.#peak) this.#peak = rss;
  }

  /** The most recent sample, in bytes. */
  get last(): number {
    return this.#last;
  }

  /** The peak since the last reset, in bytes (sampled now too). */
  get peak(): number {
    this.#sample();
    return this.#peak;
  }

  /** Starts a new peak window from the current value. */
  resetPeak(): void {
    this.#peak = 0;
    this.#sample();
  }

  /** Stops sampling. */
  stop(): void {
    clearInterval(this.#timer);
  }
}

/** The result of {@linkcode waitForQuiet}. */
export interface Quiet {
  /** Time waited, in milliseconds. */
  ms: number;
  /** Whether the processes and the machine went quiet before the deadline. */
  quiet: boolean;
}

/**
 * Waits until every process in `pids` uses less than `thresholdPercent` of a
 * core over a `windowMs` window (the join storm of a step has been
 * processed) and the whole machine is less than `machinePercent` busy (no
 * other work on it), or `maxMs` passes.
 */
export async function waitForQuiet(
  pids: number[],
  { maxMs = 10_000, thresholdPercent = 10, machinePercent = 20, windowMs = 250 } = {},
): Promise<Quiet> {
  const started = performance.now();
  let quiet = false;
  while (!quiet && performance.now() - started < maxMs) {
    const marks = pids.map(markCpu);
    const machine = markMachine();
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    quiet = marks.every((mark) => cpuPercentSince(mark) < thresholdPercent) &&
      machineBusyPercentSince(machine) < machinePercent;
  }
  return { ms: Math.round(performance.now() - started), quiet };
}

/** A reading of the whole machine's CPU counters, for {@linkcode machineBusyPercentSince}. */
export interface MachineMark {
  busy: number;
  total: number;
}

/** Reads the machine's CPU counters from `/proc/stat` (all cores together). */
export function markMachine(): MachineMark {
  try {
    const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
    const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    // idle and iowait are fields 4 and 5.
    return { busy: total - fields[3] - fields[4], total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** Share of all cores busy since `mark`, in % (100 is every core busy). */
export function machineBusyPercentSince(mark: MachineMark): number {
  const now = markMachine();
  const total = now.total - mark.total;
  return total <= 0 ? 0 : ((now.busy - mark.busy) / total) * 100;
}

/** The 1-minute load average, or `null`. */
export function loadAverage(): number | null {
  try {
    return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  } catch {
    return null;
  }
}
