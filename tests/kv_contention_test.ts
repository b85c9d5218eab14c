import assert from "node:assert/strict";
import { commitOrConflict, isLocked } from "../src/store/kv_contention.ts";

const LOCKED = new Error("database is locked");

/** An atomic operation whose commit fails with `error`. */
function failingCommit(error: Error): Deno.AtomicOperation {
  return { commit: () => Promise.reject(error) } as unknown as Deno.AtomicOperation;
}

Deno.test("a locked KV file is a conflict to retry: a commit answers ok: false", async () => {
  assert.equal(isLocked(LOCKED), true);
  assert.deepEqual(await commitOrConflict(failingCommit(LOCKED)), { ok: false });
});

Deno.test("any other KV error is thrown, not retried", async () => {
  const broken = new Error("disk I/O error");
  assert.equal(isLocked(broken), false);
  await assert.rejects(commitOrConflict(failingCommit(broken)), /disk I\/O error/);
});
