/**
 * Runs a throwaway S3 API server for tests (`tests/s3_server.ts`: npm's
 * `s3rver` in a child process, never a mock) on a free port of 127.0.0.1,
 * storing into a temporary folder.
 *
 * When it cannot run here (the npm package cannot be loaded), tests that
 * need it are skipped with a printed reason, except on CI (`CI=true`), where
 * they fail instead:
 *
 * ```ts ignore
 * import { skipS3, startS3 } from "./s3.ts";
 * Deno.test({ name: "…", ignore: skipS3 }, async () => {
 *   await using s3 = await startS3();
 *   // … new S3Files(s3.location)
 * });
 * ```
 *
 * @module
 */

import type { S3Location } from "../src/store/s3_files.ts";
import { within } from "./helpers.ts";

const SERVER = new URL("./s3_server.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;
const START_TIMEOUT_MS = 30_000;
const PROBE_TIMEOUT_MS = 120_000;

/** Why S3 tests cannot run, or `undefined` when the server loads. */
export const S3_MISSING: string | undefined = await probe();

/** `true` when S3 tests should be skipped: the server cannot run and this is not CI. */
export const skipS3: boolean = S3_MISSING !== undefined && Deno.env.get("CI") !== "true";

if (skipS3) console.log(`Skipping S3 tests: ${S3_MISSING}`);

/** A running S3 API server. Disposing it stops it and removes its folder. */
export interface TestS3 extends AsyncDisposable {
  /** `http://127.0.0.1:PORT` */
  readonly endpoint: string;
  /** The bucket, the endpoint and credentials it accepts. */
  readonly location: S3Location;
  /** The folder it stores objects in. */
  readonly directory: string;
  /** Stops the server. Idempotent. */
  stop(): Promise<void>;
}

/** Starts the server with one bucket, `chat`; resolves once it listens. */
export async function startS3(): Promise<TestS3> {
  if (S3_MISSING !== undefined) throw new Error(`Cannot run S3 tests: ${S3_MISSING}`);
  const directory = await Deno.makeTempDir({ prefix: "chat-s3-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, SERVER, "0", directory, "chat"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const output: string[] = [];
  const listening = Promise.withResolvers<number>();
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      for (const line of lines) {
        output.push(line);
        const match = line.match(/^S3 listening on (\d+)$/);
        if (match) listening.resolve(Number(match[1]));
      }
    }
  };
  const drained = Promise.all([collect(child.stdout), collect(child.stderr)]);
  const exited = child.status.then(async (status) => {
    await drained;
    return status;
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await exited;
    await Deno.remove(directory, { recursive: true }).catch(() => {});
  };
  let port: number;
  try {
    const died = exited.then((status) => {
      throw new Error(`s3rver exited with ${status.code} before listening:\n${output.join("\n")}`);
    });
    died.catch(() => {});
    port = await within(Promise.race([listening.promise, died]), "s3rver", START_TIMEOUT_MS);
  } catch (error) {
    await stop();
    throw error;
  }
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    directory,
    location: {
      endpoint,
      bucket: "chat",
      accessKeyId: "S3RVER",
      secretAccessKey: "S3RVER",
      region: "us-east-1",
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

async function probe(): Promise<string | undefined> {
  try {
    // Loading it may mean fetching it from npm the first time: bounded, and killed after that.
    const { success, stderr, signal } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", CONFIG, SERVER, "--probe"],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    }).output();
    if (success) return undefined;
    if (signal) return `npm:s3rver did not load within ${PROBE_TIMEOUT_MS / 1000} s`;
    const reason = new TextDecoder().decode(stderr).trim().split("\n").at(-1);
    return `npm:s3rver does not load (${reason})`;
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      return "no permission to run a child process (run the tests with --allow-run)";
    }
    throw error;
  }
}
