/**
 * The two servers under test, started as processes on 127.0.0.1 and a free
 * port: ours (`main.ts`, Deno) and the baseline (`bench/baseline/server.mjs`,
 * Node + ws). Also installs the baseline's dependencies when missing.
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
/** How long `npm ci` may take. */
const NPM_CI_TIMEOUT_MS = 180_000;
/** How long a health check may take. */
const HEALTH_TIMEOUT_MS = 5000;

/** Which server. */
export type ServerKind = "ours" | "baseline";

/** What each server is, for the report. */
export const SERVER_LABELS: Record<ServerKind, string> = {
  ours: "Deno chat (main.ts, KV history)",
  baseline: "Node + ws (tutorial broadcast, no storage)",
};

/** A started server: its process, address and memory sampler. */
export interface RunningServer {
  kind: ServerKind;
  child: Child;
  /** The server process itself (not its `timeout` wrapper). */
  pid: number;
  port: number;
  wsUrl: string;
  origin: string;
  rss: RssSampler;
  /** Stops sampling and kills the server. */
  stop(): Promise<void>;
}

/** Settings for starting servers. */
export interface ServerSettings {
  /** Path of our server's entry point. */
  oursEntry: string;
  /** Each server process is killed after this many seconds whatever happens. */
  maxSeconds: number;
}

/** The environment our server runs with: no rate limit that a benchmark would hit. */
export function oursEnv(): Record<string, string> {
  return {
    LISTEN_HOST: "127.0.0.1",
    PORT: "0",
    KV_PATH: ":memory:",
    RATE_BURST: "1000000",
    RATE_PER_SECOND: "1000000",
    MAX_CONNECTIONS: "1000000",
    MAX_CONNECTIONS_PER_IP: "1000000",
    SESSION_SECRET: "bench-only-secret-not-for-production",
    NO_COLOR: "1",
  };
}

/**
 * How our server starts: `deno serve` for a module that exports a default
 * `{ fetch }` handler and does not start itself, `deno run` otherwise (a
 * `main.ts` with an `import.meta.main` block). `BENCH_OURS_MODE=serve|run`
 * overrides the guess.
 */
export function oursMode(entry: string): "serve" | "run" {
  const forced = Deno.env.get("BENCH_OURS_MODE");
  if (forced === "serve" || forced === "run") return forced;
  const source = Deno.readTextFileSync(entry);
  return /^export default\b/m.test(source) && !source.includes("import.meta.main")
    ? "serve"
    : "run";
}

/** The command line that starts our server on 127.0.0.1 and a free port. */
export function oursCommand(entry: string): string[] {
  const permissions = ["--allow-net", "--allow-read", "--allow-env", "--allow-write"];
  return oursMode(entry) === "serve"
    ? [Deno.execPath(), "serve", ...permissions, "--host", "127.0.0.1", "--port", "0", entry]
    : [Deno.execPath(), "run", ...permissions, entry];
}

/** Starts a fresh server of `kind`; resolves once it listens. */
export async function startServer(
  kind: ServerKind,
  settings: ServerSettings,
): Promise<RunningServer> {
  const command = kind === "ours"
    ? oursCommand(settings.oursEntry)
    : ["node", `${BASELINE_DIR}server.mjs`];
  const env = kind === "ours" ? oursEnv() : { PORT: "0", NODE_ENV: "production" };
  const child = new Child({
    label: `${kind} server`,
    command,
    env,
    // Our server runs from its own folder, so that `deno` finds that checkout's deno.json.
    cwd: kind === "ours"
      ? settings.oursEntry.slice(0, settings.oursEntry.lastIndexOf("/") + 1)
      : BASELINE_DIR,
    maxSeconds: settings.maxSeconds,
  });
  try {
    const line = await child.waitForLine(
      (l) => /Listening on http:\/\/127\.0\.0\.1:\d+\//.test(l),
      LISTEN_TIMEOUT_MS,
    );
    const port = Number(line.match(/:(\d+)\//)![1]);
    const pid = await child.workerPid();
    const rss = new RssSampler(pid);
    return {
      kind,
      child,
      pid,
      port,
      wsUrl: `ws://127.0.0.1:${port}/ws`,
      origin: `http://127.0.0.1:${port}`,
      rss,
      async stop() {
        rss.stop();
        await child.kill();
      },
    };
  } catch (error) {
    await child.kill();
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
