/**
 * The process's limit on open files, and how many connections fit under it.
 * Every TCP connection is one file descriptor; when the process runs out,
 * `accept()` fails with EMFILE and `Deno.serve` stops its accept loop (see
 * `serve_guard.ts`). So the connection cap is kept below the limit, with a
 * reserve for what else holds descriptors: KV's files, Redis, static files
 * being read, and requests that have not upgraded (yet).
 *
 * Deno raises its soft limit to the hard limit at start-up, so the figure
 * read here is usually the hard limit (`ulimit -Hn`), not `ulimit -n`.
 *
 * @module
 */

/** Descriptors kept free at least, whatever the limit. */
export const MIN_FD_RESERVE = 64;

/**
 * The soft "Max open files" limit from `/proc/self/limits`, or `null` where
 * it cannot be read (not Linux, no read permission, Deno Deploy) or is
 * unlimited.
 *
 * @example Usage
 * ```ts
 * import { readFdLimit } from "./fd_limit.ts";
 * const limit = readFdLimit(); // 1024, or null off Linux
 * ```
 */
export function readFdLimit(read: () => string = readProcLimits): number | null {
  let text: string;
  try {
    text = read();
  } catch {
    return null;
  }
  const soft = text.match(/^Max open files\s+(\S+)/m)?.[1];
  const limit = Number(soft);
  return Number.isSafeInteger(limit) && limit > 0 ? limit : null;
}

function readProcLimits(): string {
  const path = "/proc/self/limits";
  // Never prompt for it: without the permission there is simply no known limit.
  if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") {
    throw new Deno.errors.PermissionDenied(path);
  }
  return Deno.readTextFileSync(path);
}

/**
 * How many more descriptors this process can open, found by opening
 * `/dev/null` until `enough` are open or `open()` fails with EMFILE, then
 * closing them all: the fallback where `/proc/self/limits` cannot be read
 * (Deno asks `--allow-all` for anything under `/proc`, while `/dev/null`
 * needs `--allow-read`). Synchronous, so no connection is accepted while the
 * descriptors are taken; about 18 µs per descriptor. `Infinity` when
 * `enough` could be opened, `null` when not even one could be (no
 * permission, no `/dev/null`).
 *
 * @example Usage
 * ```ts ignore
 * import { probeFreeFds } from "./fd_limit.ts";
 * probeFreeFds(11_000); // 228 under `ulimit -n 256`, Infinity under a limit of 20,000
 * ```
 */
export function probeFreeFds(
  enough: number,
  open: () => { close(): void } = () => Deno.openSync("/dev/null"),
): number | null {
  const files: { close(): void }[] = [];
  try {
    while (files.length < enough) files.push(open());
    return Infinity;
  } catch (error) {
    if (files.length === 0) return null;
    return /\(os error 2[34]\)/.test(String(error)) ? files.length : null;
  } finally {
    for (const file of files) file.close();
  }
}

/** Descriptors kept free under `limit`: a tenth of it, and at least {@linkcode MIN_FD_RESERVE}. */
export function fdReserve(limit: number): number {
  return Math.max(MIN_FD_RESERVE, Math.ceil(limit / 10));
}

/**
 * How many connections fit under an open-file `limit`: the limit less
 * {@linkcode fdReserve}, never below 0. `null` (no known limit) means no cap.
 *
 * @example Usage
 * ```ts
 * import { connectionsThatFit } from "./fd_limit.ts";
 * connectionsThatFit(256); // 192
 * connectionsThatFit(1024); // 921
 * connectionsThatFit(null); // Infinity
 * ```
 */
export function connectionsThatFit(limit: number | null): number {
  if (limit === null) return Infinity;
  return Math.max(0, limit - fdReserve(limit));
}
