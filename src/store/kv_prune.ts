/**
 * Pruning a room in Deno KV down to the retention rule of `history.ts`: its
 * newest `limit` plain messages, at most `limit` changes, and no change
 * older than the oldest retained message. `KvHistory` runs it in the
 * background, off the append path, once a room holds some more than that.
 *
 * Pruning deletes the oldest events only, in commits of at most
 * {@linkcode DELETES_PER_COMMIT} deletions, and each commit raises the
 * room's {@linkcode Floor} with a check on it: two instances pruning one
 * room at once never count a deletion twice, and a reader never sees a gap
 * inside what is retained.
 *
 * @example Usage
 * ```ts ignore
 * import { pruneRoom } from "./kv_prune.ts";
 * const floor = await pruneRoom(kv, "lobby", 1000);
 * floor?.plain; // the newest pruned plain message's id
 * ```
 *
 * @module
 */

import type { ChatMessage } from "../protocol.ts";
import { backoff, commitOrConflict } from "./kv_contention.ts";
import {
  DELETES_PER_COMMIT,
  type DirEntry,
  dirKey,
  type Floor,
  floorKey,
  isChange,
  seqKey,
} from "./kv_layout.ts";

const MAX_ATTEMPTS = 20;

/**
 * Prunes `room` to its newest `limit` plain messages and `limit` changes.
 * Resolves with the room's floor afterwards, or `null` when the room is
 * gone or is one the previous version wrote, not upgraded yet.
 */
export async function pruneRoom(kv: Deno.Kv, room: string, limit: number): Promise<Floor | null> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS;) {
    const [seq, dir, floorEntry] = await kv.getMany<[number, DirEntry, Floor]>([
      seqKey(room),
      dirKey(room),
      floorKey(room),
    ]);
    const floor = floorEntry.value;
    if (seq.value === null || dir.value?.plain === undefined || floor === null) return null;
    const excessPlain = dir.value.plain - floor.prunedPlain - limit;
    const excessChanges = (dir.value.changes ?? 0) - floor.prunedChanges - limit;
    if (excessPlain <= 0 && excessChanges <= 0) return floor;

    const op = kv.atomic().check(floorEntry);
    const next = { ...floor };
    let budget = DELETES_PER_COMMIT;
    if (excessPlain > 0) {
      // Whatever the counts say, a plain message among the newest `limit`
      // ids is among the newest `limit` plain messages: never prune one.
      const keep = seq.value - limit;
      const want = Math.min(excessPlain, budget);
      const prefix = ["rooms", room, "msg"];
      const entries = kv.list<ChatMessage>(
        { prefix, start: [...prefix, floor.plain + 1] },
        { batchSize: Math.min(want + 1, 500) },
      );
      for await (const entry of entries) {
        const id = entry.key[3] as number;
        if (next.prunedPlain - floor.prunedPlain === want || id > keep || budget === 0) break;
        op.delete(entry.key);
        budget--;
        next.plain = id;
        // A change the previous version kept among the messages is not counted.
        if (!isChange(entry.value)) next.prunedPlain++;
      }
    }
    if (budget > 0) {
      // Changes older than the oldest retained message (theirs is pruned),
      // and the oldest past the bound on changes.
      const prefix = ["rooms", room, "chg"];
      const entries = kv.list<ChatMessage>(
        { prefix, start: [...prefix, floor.changes + 1] },
        { batchSize: Math.min(Math.max(excessChanges, 0) + 100, 500) },
      );
      for await (const entry of entries) {
        const id = entry.key[3] as number;
        const pruned = next.prunedChanges - floor.prunedChanges;
        if (budget === 0 || (id > next.plain && pruned >= excessChanges)) break;
        op.delete(entry.key);
        budget--;
        next.changes = id;
        next.prunedChanges++;
      }
    }
    if (budget === DELETES_PER_COMMIT) return floor; // Nothing could go.
    op.set(floorKey(room), next);
    if ((await commitOrConflict(op)).ok) {
      // Done, unless the commit was full. (What was appended meanwhile is
      // left for the next pruning, once it is some more than the limit.)
      if (budget > 0) return next;
      continue;
    }
    await backoff(attempt++);
  }
  throw new Error(`Cannot prune room '${room}': too contended`);
}
