/**
 * Runs `main.ts` as a real server process with `deno serve`, as
 * `deno task start` does, on a free port (or a given one, to restart "the
 * same" server).
 *
 * @module
 */

import { within } from "./helpers.ts";

/** A server process and what it printed. */
export interface ServerProcess extends AsyncDisposable {
  port: number;
  origin: string;
  wsUrl: string;
  /** Lines printed so far, stdout and stderr together. */
  output: string[];
  /** Resolves with the exit status. */
  status: Promise<Deno.CommandStatus>;
  /**
   * Resolves with the first printed line matching `pattern` (of the lines
   * from index `from` of {@linkcode ServerProcess.output} on), waiting if
   * needed.
   */
  waitFor(pattern: RegExp, from?: number): Promise<string>;
  /** Sends a signal, then waits for the exit. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/**
 * Starts `main.ts` with `env`; resolves once it listens. `serveArgs` go to
 * `deno serve` (such as `--parallel`). With `command: "run"` it runs
 * `deno run -A main.ts` instead (with `runArgs`), as container hosts and Deno
 * Deploy do, on `PORT`.
 */
export async function startProcess(
  env: Record<string, string> = {},
  port = 0,
  serveArgs: string[] = [],
  { command = "serve", runArgs = [] }: { command?: "serve" | "run"; runArgs?: string[] } = {},
): Promise<ServerProcess> {
  const args = command === "run" ? ["run", "--allow-all", ...runArgs, MAIN] : [
    "serve",
    ...serveArgs,
    "--allow-net",
    "--allow-read",
    "--allow-env",
    "--allow-write",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    MAIN,
  ];
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: { NO_COLOR: "1", ...(command === "run" ? { PORT: String(port) } : {}), ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output: string[] = [];
  const waiters = new Set<{ pattern: RegExp; resolve: (line: string) => void }>();
  let announce: (port: number) => void;
  const listening = new Promise<number>((resolve) => announce = resolve);
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      for (const line of lines) {
        output.push(line);
        for (const waiter of waiters) {
          if (waiter.pattern.test(line)) {
            waiters.delete(waiter);
            waiter.resolve(line);
          }
        }
        const match = line.match(/Listening on http:\/\/[^:]+:(\d+)\//);
        if (match) announce(Number(match[1]));
      }
    }
  };
  const drained = Promise.all([collect(child.stdout), collect(child.stderr)]);
  const status = child.status.then(async (status) => {
    await drained;
    return status;
  });
  const exitedEarly = status.then((s) => {
    throw new Error(`Server exited with ${s.code} before listening:\n${output.join("\n")}`);
  });
  let actualPort: number;
  try {
    actualPort = await within(
      Promise.race([listening, exitedEarly]),
      "the server to listen",
      15_000,
    );
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await status;
    throw error;
  }
  exitedEarly.catch(() => {});
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    try {
      child.kill(signal);
    } catch { /* already gone */ }
    return await status;
  };
  return {
    port: actualPort,
    origin: `http://127.0.0.1:${actualPort}`,
    wsUrl: `ws://127.0.0.1:${actualPort}/ws`,
    output,
    status,
    stop,
    waitFor(pattern, from = 0) {
      const seen = output.slice(from).find((line) => pattern.test(line));
      if (seen !== undefined) return Promise.resolve(seen);
      let waiter: { pattern: RegExp; resolve: (line: string) => void };
      const found = new Promise<string>((resolve) => {
        waiter = { pattern, resolve };
        waiters.add(waiter);
      });
      return within(found, `the server to print ${pattern}`).finally(() => waiters.delete(waiter));
    },
    async [Symbol.asyncDispose]() {
      await stop("SIGKILL");
    },
  };
}
