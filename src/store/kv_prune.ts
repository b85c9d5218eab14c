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
 * It reads no message. Every id above the floor of plain messages is a
 * retained plain message or a change, and the changes are listed apart
 * (under "chg"), so walking the ids up from the floor, past the changes,
 * finds the oldest plain messages. (Listing a KV entry costs about 3 times
 * deleting it, measured: 13–17 µs against 5–6 µs in memory.) Only when the
 * bound on changes pruned changes above that floor, whose ids are then
 * neither, does it list the messages instead; and when `onFiles` is given:
 * the messages' files go with them, so their ids are read.
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
  chgKey,
  DELETES_PER_COMMIT,
  type DirEntry,
  dirKey,
  type Floor,
  floorKey,
  isChange,
  msgKey,
  seqKey,
} from "./kv_layout.ts";

const MAX_ATTEMPTS = 20;
/** Most entries one list read fetches at once (a remote KV's limit). */
const MAX_LIST_BATCH = 500;

/** One pruning commit being planned. */
interface Round {
  op: Deno.AtomicOperation;
  /** The floor as read. */
  floor: Floor;
  /** The floor once it is committed. */
  next: Floor;
  /** Deletions left in this commit. */
  budget: number;
  /** The files of the messages this commit deletes, when they are read (`withFiles`). */
  files?: string[];
}

/**
 * Prunes `room` to its newest `limit` plain messages and `limit` changes.
 * Resolves with the room's floor afterwards, or `null` when the room is
 * gone or is one the previous version wrote, not upgraded yet.
 */
export async function pruneRoom(
  kv: Deno.Kv,
  room: string,
  limit: number,
  onFiles?: (ids: string[]) => void,
): Promise<Floor | null> {
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

    const round: Round = {
      op: kv.atomic().check(floorEntry),
      floor,
      next: { ...floor },
      budget: DELETES_PER_COMMIT,
      ...(onFiles ? { files: [] } : {}),
    };
    if (excessPlain > 0) {
      // Whatever the counts say, a plain message among the newest `limit`
      // ids is among the newest `limit` plain messages: never prune one.
      const want = Math.min(excessPlain, round.budget);
      const through = seq.value - limit;
      // Without reading, unless the messages' files must go too.
      if (floor.changes <= floor.plain && !onFiles) await walkPlain(kv, room, round, want, through);
      else await listPlain(kv, room, round, want, through);
    }
    if (round.budget > 0) await pruneChanges(kv, room, round, excessChanges);
    if (round.budget === DELETES_PER_COMMIT) return floor; // Nothing could go.
    round.op.set(floorKey(room), round.next);
    if ((await commitOrConflict(round.op)).ok) {
      if (round.files?.length) onFiles?.(round.files);
      // Done, unless the commit was full. (What was appended meanwhile is
      // left for the next pruning, once it is some more than the limit.)
      if (round.budget > 0) return round.next;
      continue;
    }
    await backoff(attempt++);
  }
  throw new Error(`Cannot prune room '${room}': too contended`);
}

/**
 * Deletes the `want` oldest plain messages (at most up to id `through`)
 * without reading them: the ids above the floor that are not changes. The
 * changes met on the way are below the new floor, and go too.
 */
async function walkPlain(
  kv: Deno.Kv,
  room: string,
  round: Round,
  want: number,
  through: number,
): Promise<void> {
  const { next } = round;
  const prefix = ["rooms", room, "chg"];
  const changes = kv.list<ChatMessage>(
    { start: [...prefix, next.plain + 1], end: [...prefix, through + 1] },
    { batchSize: Math.min(want + 1, MAX_LIST_BATCH) },
  );
  const nextChange = async () => {
    const { done, value } = await changes.next();
    return done ? Infinity : value.key[3] as number;
  };
  let change = await nextChange();
  let pruned = 0;
  for (let id = next.plain + 1; pruned < want && id <= through && round.budget > 0; id++) {
    round.budget--;
    if (id === change) {
      round.op.delete(chgKey(room, id));
      next.changes = id;
      next.prunedChanges++;
      change = await nextChange();
      continue;
    }
    round.op.delete(msgKey(room, id));
    next.plain = id;
    next.prunedPlain++;
    pruned++;
  }
}

/** Deletes the `want` oldest plain messages (at most up to id `through`), found by listing them. */
async function listPlain(
  kv: Deno.Kv,
  room: string,
  round: Round,
  want: number,
  through: number,
): Promise<void> {
  const { next } = round;
  const prefix = ["rooms", room, "msg"];
  const entries = kv.list<ChatMessage>(
    { prefix, start: [...prefix, next.plain + 1] },
    { batchSize: Math.min(want + 1, MAX_LIST_BATCH) },
  );
  let pruned = 0;
  for await (const entry of entries) {
    const id = entry.key[3] as number;
    if (pruned === want || id > through || round.budget === 0) break;
    round.op.delete(entry.key);
    round.budget--;
    next.plain = id;
    for (const file of entry.value.attachments ?? []) round.files?.push(file.id);
    // A change the previous version kept among the messages is not counted.
    if (!isChange(entry.value)) next.prunedPlain++, pruned++;
  }
}

/**
 * Deletes the changes older than the oldest retained plain message (theirs
 * is pruned), and the oldest past the bound on changes.
 */
async function pruneChanges(
  kv: Deno.Kv,
  room: string,
  round: Round,
  excess: number,
): Promise<void> {
  const { next } = round;
  const prefix = ["rooms", room, "chg"];
  const entries = kv.list<ChatMessage>(
    { prefix, start: [...prefix, next.changes + 1] },
    { batchSize: Math.min(Math.max(excess, 0) + 1, MAX_LIST_BATCH) },
  );
  for await (const entry of entries) {
    const id = entry.key[3] as number;
    const pruned = next.prunedChanges - round.floor.prunedChanges;
    if (round.budget === 0 || (id > next.plain && pruned >= excess)) break;
    round.op.delete(entry.key);
    round.budget--;
    next.changes = id;
    next.prunedChanges++;
  }
}
