/**
 * The servers under test, started as processes on 127.0.0.1 and a free port:
 * ours (`main.ts`, Deno) in its default configuration (history in a Deno KV
 * file) and with other stores (`:memory:` KV, Redis), and the baseline
 * (`bench/baseline/server.mjs`, Node + ws). Also installs the baseline's
 * dependencies when missing.
 *
 * @module
 */

import { Child } from "./child.ts";
import { commandOutput, RssSampler } from "./proc.ts";

/** The project root. */
export const ROOT = new URL("../../", import.meta.url).pathname;
/** The baseline's folder. */
export const BASELINE_DIR = new URL("../baseline/", import.meta.url).pathname;
/** How long a server may take to print its `Listening on` line. */
const LISTEN_TIMEOUT_MS = 30_000;
/** How long `redis-server` may take to accept connections. */
const REDIS_TIMEOUT_MS = 10_000;
/** How long `npm ci` may take. */
const NPM_CI_TIMEOUT_MS = 180_000;
/** How long a health check may take. */
const HEALTH_TIMEOUT_MS = 5000;

/** Which program. */
export type ServerKind = "ours" | "baseline";
/** Where our server keeps history. */
export type Store = "file" | "memory" | "redis";
/**
 * A server configuration under test: `ours` is our server as users run it
 * (history in a KV file), `ours-memory` and `ours-redis` the other stores.
 */
export type TargetId = "ours" | "ours-memory" | "ours-redis" | "baseline";

/** A server configuration under test. */
export interface Target {
  id: TargetId;
  kind: ServerKind;
  /** Our server's history store; `null` for the baseline. */
  store: Store | null;
  label: string;
}

/** Every configuration, in the order a full run measures them. */
export const TARGETS: Record<TargetId, Target> = {
  baseline: {
    id: "baseline",
    kind: "baseline",
    store: null,
    label: "Node + ws (tutorial broadcast, no storage)",
  },
  ours: {
    id: "ours",
    kind: "ours",
    store: "file",
    label: "Deno chat, default: history in a Deno KV file (fresh temp file per server)",
  },
  "ours-memory": {
    id: "ours-memory",
    kind: "ours",
    store: "memory",
    label: "Deno chat, KV_PATH=:memory:",
  },
  "ours-redis": {
    id: "ours-redis",
    kind: "ours",
    store: "redis",
    label: "Deno chat, REDIS_URL (fresh redis-server per server, no persistence)",
  },
};

/** Short names of the stores, for tables. */
export const STORE_NAMES: Record<Store, string> = {
  file: "KV file",
  memory: "KV :memory:",
  redis: "Redis",
};

/** A started server: its process, address and memory sampler. */
export interface RunningServer {
  target: Target;
  child: Child;
  /** The server process itself (not its `timeout` wrapper). */
  pid: number;
  /** Processes the server depends on (`redis-server`), measured as the store. */
  storePids: number[];
  port: number;
  wsUrl: string;
  origin: string;
  rss: RssSampler;
  /** From spawning to `Listening on`, in ms. */
  startMs: number;
  /** Stops sampling and kills the server (and its store, and removes its KV file). */
  stop(): Promise<void>;
}

/** Settings for starting servers. */
export interface ServerSettings {
  /** Path of our server's entry point. */
  oursEntry: string;
  /** Each server process is killed after this many seconds whatever happens. */
  maxSeconds: number;
  /** A folder for the KV files of this run (removed at the end of the run). */
  tempDir: string;
}

/**
 * The environment our server runs with: its defaults, except that the rate
 * limit and the connection caps are lifted (a benchmark would only measure
 * them), and history goes to `store`.
 */
export function oursEnv(store: { kvPath?: string; redisUrl?: string }): Record<string, string> {
  return {
    LISTEN_HOST: "127.0.0.1",
    PORT: "0",
    ...(store.kvPath ? { KV_PATH: store.kvPath } : {}),
    ...(store.redisUrl ? { REDIS_URL: store.redisUrl } : {}),
    RATE_BURST: "1000000",
    RATE_PER_SECOND: "1000000",
    RATE_PER_ADDRESS_BURST: "1000000",
    RATE_PER_ADDRESS_PER_SECOND: "1000000",
    NEW_ROOMS_PER_ADDRESS_PER_HOUR: "0",
    MAX_CONNECTIONS: "1000000",
    MAX_CONNECTIONS_PER_IP: "1000000",
    NO_COLOR: "1",
  };
}

/**
 * How our server starts: `deno serve` (as `deno task start` does) for a
 * module with a default export (`{ fetch }`), even when it can also serve
 * under `deno run`; `deno run` for an older `main.ts` without one.
 * `BENCH_OURS_MODE=serve|run` overrides the guess.
 */
export function oursMode(entry: string): "serve" | "run" {
  const forced = Deno.env.get("BENCH_OURS_MODE");
  if (forced === "serve" || forced === "run") return forced;
  const source = Deno.readTextFileSync(entry);
  return /^export default\b/m.test(source) ? "serve" : "run";
}

/** The command line that starts our server on 127.0.0.1 and a free port. */
export function oursCommand(entry: string, extraFlags: string[] = []): string[] {
  const permissions = ["--allow-net", "--allow-read", "--allow-env", "--allow-write"];
  return oursMode(entry) === "serve"
    ? [
      Deno.execPath(),
      "serve",
      ...permissions,
      ...extraFlags,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      entry,
    ]
    : [Deno.execPath(), "run", ...permissions, ...extraFlags, entry];
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Why Redis rows cannot run (no `redis-server` on PATH), or `null`. */
export async function redisMissing(): Promise<string | null> {
  const version = await commandOutput("redis-server", "--version");
  return version === null ? "redis-server is not installed (not on PATH)" : null;
}

/** Starts a throwaway `redis-server` on a free port: no persistence, 127.0.0.1 only. */
async function startRedis(maxSeconds: number): Promise<{ child: Child; url: string }> {
  const port = freePort();
  const child = new Child({
    label: "redis-server",
    command: [
      "redis-server",
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--protected-mode",
      "no",
    ],
    maxSeconds,
  });
  try {
    await child.waitForLine((l) => /Ready to accept connections/.test(l), REDIS_TIMEOUT_MS);
  } catch (error) {
    await child.kill();
    throw error;
  }
  return { child, url: `redis://127.0.0.1:${port}` };
}

let kvFiles = 0;

async function removeKvFile(path: string): Promise<void> {
  for (const file of [path, `${path}-shm`, `${path}-wal`]) {
    await Deno.remove(file).catch(() => {});
  }
}

/** The options for starting a server, beyond its target. */
export interface StartOptions {
  /** Extra `deno` flags for our server (e.g. `--cpu-prof`). */
  denoFlags?: string[];
  /** Extra environment variables. */
  env?: Record<string, string>;
}

/** Starts a fresh server for `target` (a fresh KV file, a fresh Redis); resolves once it listens. */
export async function startServer(
  target: Target,
  settings: ServerSettings,
  options: StartOptions = {},
): Promise<RunningServer> {
  let redis: { child: Child; url: string } | null = null;
  let kvPath: string | undefined;
  const cleanup: (() => Promise<void>)[] = [];
  if (target.store === "file") {
    kvPath = `${settings.tempDir}/chat-${Deno.pid}-${++kvFiles}.kv`;
    const path = kvPath;
    cleanup.push(() => removeKvFile(path));
  } else if (target.store === "memory") {
    kvPath = ":memory:";
  } else if (target.store === "redis") {
    redis = await startRedis(settings.maxSeconds);
    const child = redis.child;
    cleanup.push(() => child.kill());
  }
  const command = target.kind === "ours"
    ? oursCommand(settings.oursEntry, options.denoFlags)
    : ["node", `${BASELINE_DIR}server.mjs`];
  const env = target.kind === "ours"
    ? { ...oursEnv({ kvPath, redisUrl: redis?.url }), ...options.env }
    : { PORT: "0", NODE_ENV: "production", ...options.env };
  const started = performance.now();
  const child = new Child({
    label: `${target.id} server`,
    command,
    env,
    // Our server runs from its own folder, so that `deno` finds that checkout's deno.json.
    cwd: target.kind === "ours"
      ? settings.oursEntry.slice(0, settings.oursEntry.lastIndexOf("/") + 1)
      : BASELINE_DIR,
    maxSeconds: settings.maxSeconds,
  });
  const stopAll = async () => {
    await child.kill();
    for (const step of cleanup.reverse()) await step();
  };
  try {
    const line = await child.waitForLine(
      (l) => /Listening on http:\/\/(127\.0\.0\.1|localhost):\d+\//.test(l),
      LISTEN_TIMEOUT_MS,
    );
    const startMs = Math.round(performance.now() - started);
    const port = Number(line.match(/:(\d+)\//)![1]);
    const pid = await child.workerPid();
    const storePids = redis ? [await redis.child.workerPid()] : [];
    const rss = new RssSampler(pid);
    return {
      target,
      child,
      pid,
      storePids,
      port,
      wsUrl: `ws://127.0.0.1:${port}/ws`,
      origin: `http://127.0.0.1:${port}`,
      rss,
      startMs,
      async stop() {
        rss.stop();
        await stopAll();
      },
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** The result of {@linkcode checkHealth}. */
export interface Health {
  /** `GET /healthz` answered 200 within the timeout. */
  answered: boolean;
  /** How long it took, in milliseconds (the timeout when it did not answer). */
  ms: number;
  /** The body, or the error. */
  detail: string;
}

/** Asks `GET /healthz`, bounded by `timeoutMs`. */
export async function checkHealth(
  origin: string,
  timeoutMs = HEALTH_TIMEOUT_MS,
): Promise<Health> {
  const started = performance.now();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const response = await fetch(`${origin}/healthz`, { signal: controller.signal });
    const body = await response.text();
    return {
      answered: response.ok,
      ms: Math.round(performance.now() - started),
      detail: body.slice(0, 200),
    };
  } catch (error) {
    return {
      answered: false,
      ms: Math.round(performance.now() - started),
      detail: String(error).slice(0, 200),
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Makes sure the baseline's `node_modules` exist, running `npm ci` when they
 * do not. Returns `null` when ready, or why the baseline cannot run.
 */
export async function ensureBaselineInstalled(): Promise<string | null> {
  try {
    Deno.statSync(`${BASELINE_DIR}node_modules/ws/package.json`);
    return null;
  } catch {
    // Not installed yet.
  }
  console.error("bench: installing the baseline's dependencies (npm ci --prefix bench/baseline)");
  const child = new Child({
    label: "npm ci",
    command: ["npm", "ci", "--prefix", BASELINE_DIR, "--no-audit", "--no-fund"],
    cwd: ROOT,
    maxSeconds: NPM_CI_TIMEOUT_MS / 1000,
  });
  const status = await child.status;
  if (!status.success) return `npm ci failed with ${status.code}:${child.tail()}`;
  try {
    Deno.statSync(`${BASELINE_DIR}node_modules/ws/package.json`);
    return null;
  } catch {
    return "npm ci succeeded but node_modules/ws is missing";
  }
}

/** `node --version`, or `null` without Node. */
export function nodeVersion(): Promise<string | null> {
  return commandOutput("node", "--version");
}
