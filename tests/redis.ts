/**
 * Runs a throwaway `redis-server` for tests: a free port on 127.0.0.1, no
 * disk writes, and `restart()` on the same port for fault tests.
 *
 * When `redis-server` is not on PATH, tests that need it are skipped with a
 * printed reason, except on CI (`CI=true`), where they fail instead:
 *
 * ```ts ignore
 * import { skipRedis, startRedis } from "./redis.ts";
 * Deno.test({ name: "…", ignore: skipRedis }, async () => {
 *   await using redis = await startRedis();
 *   // … connect to redis.url
 * });
 * ```
 *
 * @module
 */

import { within } from "./helpers.ts";

/** The server binary looked up on PATH. */
const REDIS_SERVER = "redis-server";
/** How long `startRedis` waits for the server to say it is ready. */
const START_TIMEOUT_MS = 10_000;

/** Why Redis tests cannot run, or `undefined` when `redis-server` is on PATH. */
export const REDIS_MISSING: string | undefined = await findRedisServer();

/**
 * `true` when Redis tests should be skipped (`ignore: skipRedis`):
 * `redis-server` is missing and this is not CI. On CI a missing server makes
 * {@linkcode startRedis} throw, so those tests fail with the reason.
 */
export const skipRedis: boolean = REDIS_MISSING !== undefined && Deno.env.get("CI") !== "true";

if (skipRedis) console.log(`Skipping Redis tests: ${REDIS_MISSING}`);

/** A running `redis-server`. Disposing it stops the server. */
export interface TestRedis extends AsyncDisposable {
  /** `redis://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  /** Everything the server printed so far, one line per entry. */
  readonly output: string[];
  /** Stops the server (SIGTERM by default) and waits for it to exit. Idempotent. */
  stop(signal?: Deno.Signal): Promise<void>;
  /** Stops the server, then starts a new one on the same port (data kept only with `dataDir`). */
  restart(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open but nothing answers. */
  pause(): void;
  /** Unfreezes the server (SIGCONT). */
  resume(): void;
}

/**
 * Starts `redis-server` on `port` (a free one by default) and resolves once
 * it is ready to accept connections. Throws when `redis-server` is missing or does not start.
 */
export async function startRedis(
  port?: number,
  options: { dataDir?: string } = {},
): Promise<TestRedis> {
  if (REDIS_MISSING !== undefined) {
    throw new Error(`Cannot run Redis tests: ${REDIS_MISSING} (install redis-server)`);
  }
  const chosen = port ?? freePort();
  const output: string[] = [];
  let server: RunningServer | undefined = await spawnServer(chosen, output, options.dataDir);
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    const running = server;
    server = undefined;
    if (running) await running.stop(signal);
  };
  return {
    url: `redis://127.0.0.1:${chosen}`,
    port: chosen,
    output,
    stop,
    async restart() {
      await stop();
      server = await spawnServer(chosen, output, options.dataDir);
    },
    pause: () => server?.signal("SIGSTOP"),
    resume: () => server?.signal("SIGCONT"),
    [Symbol.asyncDispose]: () => stop(),
  };
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

interface RunningServer {
  stop(signal: Deno.Signal): Promise<void>;
  signal(signal: Deno.Signal): void;
}

async function spawnServer(
  port: number,
  output: string[],
  dataDir?: string,
): Promise<RunningServer> {
  // Without a data dir nothing touches the disk; with one, an fsync'd
  // append-only file keeps the data across a restart.
  const persistence = dataDir
    ? ["--dir", dataDir, "--appendonly", "yes", "--appendfsync", "always"]
    : ["--appendonly", "no"];
  const child = new Deno.Command(REDIS_SERVER, {
    args: [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      ...persistence,
      "--protected-mode",
      "no",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // redis-server logs this line once it listens (after loading its data, if any).
  const ready = Promise.withResolvers<void>();
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      output.push(...lines);
      if (lines.some((line) => line.includes("Ready to accept connections"))) ready.resolve();
    }
    if (rest) output.push(rest);
  };
  const drained = Promise.all([collect(child.stdout), collect(child.stderr)]);
  const exited = child.status.then(async (status) => {
    await drained;
    return status;
  });
  const signal = (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch { /* already exited */ }
  };
  const stop = async (stopSignal: Deno.Signal) => {
    signal(stopSignal);
    signal("SIGCONT"); // a paused server handles the signal only once it runs
    await exited;
  };
  try {
    const died = exited.then((status) => {
      throw new Error(
        `redis-server exited with ${status.code} before it was ready:\n${output.join("\n")}`,
      );
    });
    died.catch(() => {}); // Once ready, a later exit is no error here.
    const what = `redis-server on port ${port} to be ready`;
    await within(Promise.race([ready.promise, died]), what, START_TIMEOUT_MS);
  } catch (error) {
    await stop("SIGKILL");
    throw error;
  }
  return { stop, signal };
}

async function findRedisServer(): Promise<string | undefined> {
  try {
    const { success } = await new Deno.Command(REDIS_SERVER, {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success ? undefined : `'${REDIS_SERVER} --version' failed`;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return `'${REDIS_SERVER}' is not on PATH`;
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      return `no permission to run '${REDIS_SERVER}' (run the tests with --allow-run)`;
    }
    throw error;
  }
}
