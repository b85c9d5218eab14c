/**
 * Contention on a Deno KV file that several processes share: what counts as
 * a conflict to retry, and how long to wait before the next try.
 *
 * A check-and-set commit may be answered "database is locked" while another
 * process (or `deno serve --parallel` isolate) writes to the file, and
 * opening a file another process is creating may be too. That is retried
 * like a failed check, never reported to a user. (Reads were not seen to
 * fail so.)
 *
 * @example Usage
 * ```ts
 * import { backoff, commitOrConflict } from "./kv_contention.ts";
 * using kv = await Deno.openKv(":memory:");
 * for (let attempt = 0; attempt < 10; attempt++) {
 *   const seen = await kv.get<number>(["count"]);
 *   const op = kv.atomic().check(seen).set(["count"], (seen.value ?? 0) + 1);
 *   if ((await commitOrConflict(op)).ok) break;
 *   await backoff(attempt);
 * }
 * ```
 *
 * @module
 */

/** The wait unit of {@linkcode backoff}, in ms. */
const BACKOFF_UNIT_MS = 5;

/**
 * `true` for the error a local KV file answers while another process holds
 * its lock ("database is locked"): a conflict like any other, to retry.
 */
export function isLocked(error: unknown): boolean {
  return error instanceof Error && /database is locked/.test(error.message);
}

/** Commits `op`; a locked KV file counts as a failed check (`ok: false`). */
export async function commitOrConflict(
  op: Deno.AtomicOperation,
): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
  try {
    return await op.commit();
  } catch (error) {
    if (isLocked(error)) return { ok: false };
    throw error;
  }
}

/**
 * Waits a random time that grows with `attempt` (0 for the first retry), so
 * that contenders spread out instead of colliding again.
 */
export function backoff(attempt: number, unitMs: number = BACKOFF_UNIT_MS): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * unitMs * (attempt + 1)));
}
