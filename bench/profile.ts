/**
 * Where our server spends CPU under load: starts `main.ts` with `--cpu-prof`
 * (a fresh KV file by default, like the benchmark's default configuration),
 * runs the benchmark's open-loop load against it (by default 2,000 clients in
 * rooms of 20 at 1,200 says/s, after a warm-up step), stops it with SIGTERM
 * so V8 writes the profile, and prints the top functions and files by self
 * time, and the project's functions by total time, counting only the samples
 * taken while the measured step published (so the join storm, the warm-up and
 * the closes stay out of it).
 *
 * (Not `--inspect`: with an inspector session attached, Deno reports every
 * WebSocket frame to it, which then takes about half of the server's time.)
 *
 * ```sh
 * deno run -A bench/profile.ts                         # many rooms, 1,200 says/s, 10 s
 * deno run -A bench/profile.ts --rate 800 --seconds 20
 * deno run -A bench/profile.ts --shape room --rate 5000 --store memory
 * deno run -A bench/profile.ts --shape multi          # 500 clients, 10 rooms of 20 each
 * deno run -A bench/profile.ts --summarize path/to/CPU.123.cpuprofile  # all of it
 * ```
 *
 * The `.cpuprofile` is kept (its path is printed); open it in Chrome DevTools
 * for the full picture. Everything runs on 127.0.0.1 and is bounded in time.
 * The profile covers the server's main thread (JavaScript, and the ops it
 * calls synchronously); work on Deno's other threads (KV's SQLite writer,
 * socket I/O) shows only as the server's CPU % in the step line.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { killAllChildren } from "./lib/child.ts";
import { runStep, type StepParams } from "./lib/load_runner.ts";
import { describe } from "./lib/phases.ts";
import { initClockTicks, threadCpuPercents, threadCpuSeconds } from "./lib/proc.ts";
import { ROOT, type ServerSettings, startServer, type Store, TARGETS } from "./lib/servers.ts";

/** Rooms each client is in with `--shape multi` (as the benchmark's `multi` shape). */
const MULTI_ROOMS_PER_CLIENT = 10;

/** A V8 CPU profile, as `--cpu-prof` writes it. */
interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** One line of a summary: a function or file and its share. */
export interface ProfileEntry {
  name: string;
  ms: number;
  /** Share of the busy (non-idle) time, in %. */
  percent: number;
}

/** A summary of a CPU profile. */
export interface ProfileSummary {
  /** Wall time the profile covers, in ms. */
  wallMs: number;
  /** Time the main thread was busy (not idle), in ms. */
  busyMs: number;
  /** Self time per function (`name file:line`), busiest first. */
  functions: ProfileEntry[];
  /** Self time per file (runtime internals by their `ext:` name), busiest first. */
  files: ProfileEntry[];
  /** Total (self + callees) time of the project's own functions, busiest first. */
  projectTotals: ProfileEntry[];
}

function shortUrl(url: string): string {
  if (!url) return "";
  if (url.startsWith("file://")) {
    const path = new URL(url).pathname;
    return path.startsWith(ROOT) ? path.slice(ROOT.length) : path.split("/").slice(-2).join("/");
  }
  return url.replace(/^.*\/node_modules\//, "npm:");
}

/** Summarizes a `.cpuprofile`: self time by function and by file, totals of project code. */
export function summarize(
  profile: CpuProfile,
  top = 25,
  window?: { from: number; to: number },
): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const self = new Map<number, number>();
  // timeDeltas[i] is the time before sample i; it belongs to the sample before it.
  let at = profile.startTime;
  let first = Infinity, last = -Infinity;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i];
    if (window && (at < window.from || at > window.to)) continue;
    first = Math.min(first, at);
    last = Math.max(last, at);
    const next = profile.timeDeltas[i + 1] ?? 0;
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + Math.max(0, next));
  }
  const functions = new Map<string, number>();
  const files = new Map<string, number>();
  const totals = new Map<string, number>();
  let idle = 0, all = 0;
  for (const [id, micros] of self) {
    const node = byId.get(id)!;
    const frame = node.callFrame;
    all += micros;
    if (frame.functionName === "(idle)") {
      idle += micros;
      continue;
    }
    const url = shortUrl(frame.url);
    const name = url
      ? `${frame.functionName || "(anonymous)"} ${url}:${frame.lineNumber + 1}`
      : frame.functionName;
    functions.set(name, (functions.get(name) ?? 0) + micros);
    const file = url || frame.functionName;
    files.set(file, (files.get(file) ?? 0) + micros);
    // Total time: once per project function on the stack of this sample.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)!.callFrame;
      const u = shortUrl(f.url);
      if (!f.url.startsWith("file://") || u.startsWith("bench/")) continue;
      const key = `${f.functionName || "(anonymous)"} ${u}:${f.lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      totals.set(key, (totals.get(key) ?? 0) + micros);
    }
  }
  const busy = all - idle;
  const list = (map: Map<string, number>): ProfileEntry[] =>
    [...map].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, micros]) => ({
      name,
      ms: Math.round(micros / 1000),
      percent: busy === 0 ? 0 : Math.round((micros / busy) * 1000) / 10,
    }));
  return {
    wallMs: Math.round(Math.max(0, last - first) / 1000),
    busyMs: Math.round(busy / 1000),
    functions: list(functions),
    files: list(files),
    projectTotals: list(totals),
  };
}

/** The summary as text. */
export function renderSummary(summary: ProfileSummary): string {
  const section = (title: string, entries: ProfileEntry[]) =>
    [
      title,
      ...entries.map((e) =>
        `${e.percent.toFixed(1).padStart(5)}%  ${String(e.ms).padStart(6)} ms  ${e.name}`
      ),
    ].join("\n");
  return [
    `main thread busy ${summary.busyMs} ms of ${summary.wallMs} ms ` +
    `(${
      Math.round((summary.busyMs / Math.max(1, summary.wallMs)) * 100)
    }%); shares are of busy time`,
    section("\nSelf time by function:", summary.functions),
    section("\nSelf time by file:", summary.files),
    section("\nTotal time (self + callees) of the project's functions:", summary.projectTotals),
  ].join("\n");
}

/** CLOCK_MONOTONIC in µs, as V8's profile timestamps (from `/proc/uptime`, 10 ms steps). */
function monotonicMicros(): number {
  return Number(Deno.readTextFileSync("/proc/uptime").split(" ")[0]) * 1e6;
}

async function profileServer(values: Record<string, string | boolean | undefined>) {
  const store = String(values.store) as Store;
  const target = Object.values(TARGETS).find((t) => t.kind === "ours" && t.store === store);
  if (!target) throw new TypeError(`Cannot profile: unknown store '${store}'`);
  const shape = values.shape === "room" || values.shape === "multi" ? values.shape : "rooms";
  const clients = Number(values.clients ?? { room: 32, rooms: 2000, multi: 500 }[shape]);
  const rate = Number(values.rate ?? (shape === "room" ? 5000 : 1200));
  const roomsPerClient = shape === "multi" ? MULTI_ROOMS_PER_CLIENT : 1;
  const seconds = Math.min(60, Number(values.seconds ?? 10));
  const outDir = String(values.out ?? await Deno.makeTempDir({ prefix: "chat-profile-" }));
  await Deno.mkdir(outDir, { recursive: true });
  const tempDir = await Deno.makeTempDir({ prefix: "chat-profile-kv-" });
  const settings: ServerSettings = {
    oursEntry: String(values["ours-entry"] ?? `${ROOT}main.ts`),
    maxSeconds: seconds + 120,
    tempDir,
  };
  const params = (duration: number): StepParams => ({
    clients,
    roomSize: shape === "room" ? clients : 20,
    roomsPerClient,
    rate,
    duration,
    drain: 2,
    processes: 2,
    room: `profile-${Date.now().toString(36)}-${duration}`,
    textBytes: 32,
  });
  await initClockTicks();
  console.error(
    `profile: ${target.id}, ${clients} clients${
      { room: " in one room", rooms: " in rooms of 20", multi: " in 10 rooms of 20 each" }[shape]
    }, ` +
      `${rate} says/s for ${seconds} s (after a 3 s warm-up)`,
  );
  const server = await startServer(target, settings, {
    denoFlags: ["--cpu-prof", `--cpu-prof-dir=${outDir}`],
  });
  const window = { from: 0, to: 0 };
  let threads: Record<string, number> = {};
  try {
    const warmup = await runStep(server, params(3));
    console.error(`  warm-up ${describe(warmup)}`);
    let before = threadCpuSeconds(server.pid);
    let started = 0;
    const step = await runStep(server, params(seconds), {
      beforeGo: () => {
        window.from = monotonicMicros();
        before = threadCpuSeconds(server.pid);
        started = performance.now();
        return Promise.resolve();
      },
      afterPublish: () => {
        window.to = monotonicMicros();
        const wall = (performance.now() - started) / 1000;
        threads = threadCpuPercents(before, threadCpuSeconds(server.pid), wall);
        return Promise.resolve();
      },
    });
    console.error(`  measured ${describe(step)}`);
    console.error(
      `  server threads while publishing (% of a core): ${
        Object.entries(threads).sort((a, b) => b[1] - a[1]).map(([n, v]) => `${n} ${v}%`)
          .join(", ")
      }`,
    );
    // SIGTERM to the server alone (not to its `timeout` wrapper, which would follow up with
    // SIGKILL after 2 s): it shuts down, exits, and V8 writes the profile.
    Deno.kill(server.pid, "SIGTERM");
    await Promise.race([server.child.status, new Promise((r) => setTimeout(r, 20_000))]);
  } finally {
    await server.stop();
    await Deno.remove(tempDir, { recursive: true }).catch(() => {});
  }
  const profiles = [...Deno.readDirSync(outDir)].filter((e) => e.name.endsWith(".cpuprofile"));
  if (profiles.length === 0) {
    throw new Error(`Cannot summarize: no profile was written in ${outDir}`);
  }
  const path = `${outDir}/${profiles.sort((a, b) => a.name.localeCompare(b.name)).at(-1)!.name}`;
  return { path, window, threads };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      summarize: { type: "string" },
      store: { type: "string", default: "file" },
      shape: { type: "string", default: "rooms" },
      clients: { type: "string" },
      rate: { type: "string" },
      seconds: { type: "string" },
      out: { type: "string" },
      top: { type: "string", default: "25" },
      "ours-entry": { type: "string" },
    },
  });
  const { path, window, threads } = values.summarize
    ? { path: values.summarize, window: undefined, threads: undefined }
    : await profileServer(values);
  const profile = JSON.parse(await Deno.readTextFile(path)) as CpuProfile;
  console.log(`Profile: ${path}${window ? " (only the measured step's publishing)" : ""}`);
  if (threads) {
    const list = Object.entries(threads).sort((a, b) => b[1] - a[1]);
    console.log(
      `Server CPU by thread (% of a core): ${list.map(([n, v]) => `${n} ${v}%`).join(", ")}`,
    );
  }
  console.log(renderSummary(summarize(profile, Number(values.top) || 25, window)));
}

if (import.meta.main) {
  const stop = async () => {
    await killAllChildren();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", stop);
  try {
    await main();
  } finally {
    await killAllChildren();
  }
  Deno.exit(0);
}
