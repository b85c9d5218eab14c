/**
 * Rooms the previous version of `KvHistory` wrote, brought to the current
 * layout (see `kv_history.ts`) the first time this version touches them.
 *
 * The previous version kept every event of a room under "msg" (plain
 * messages and changes alike, nothing folded), a counter, and no floor or
 * directory entry. Upgrading a room folds each change into its message,
 * moves the changes under "chg", counts what the room holds, and sets its
 * directory entry and floor last: a room with a counter and no floor is one
 * not upgraded yet. Every commit checks the room's counter and that the
 * floor is still absent, and each rewritten message's own entry, so two
 * instances upgrading one room at once, or an upgrade that stops half way,
 * fold no change twice: a change is moved in the same commit that folds it.
 *
 * @example Usage
 * ```ts ignore
 * import { upgradeRoom } from "./kv_legacy.ts";
 * await upgradeRoom(kv, "lobby", 100);
 * ```
 *
 * @module
 */

import type { ChatMessage } from "../protocol.ts";
import { fold } from "./fold.ts";
import { backoff, commitOrConflict } from "./kv_contention.ts";
import {
  chgKey,
  COMMIT_BYTES,
  DIRECTORY_KEY,
  type DirEntry,
  dirKey,
  type Floor,
  floorKey,
  isChange,
  MAX_VALUE_BYTES,
  msgKey,
  seqKey,
  storedSize,
  valueSize,
} from "./kv_layout.ts";

const MAX_ATTEMPTS = 20;
/** Mutations per upgrading commit, within KV's 1,000. */
const MUTATIONS_PER_COMMIT = 900;

/** A message being upgraded: its entry as read, and its state so far. */
interface Folding {
  entry: Deno.KvEntry<ChatMessage>;
  state: ChatMessage;
}

/**
 * Upgrades `room` when the previous version wrote it; resolves at once for
 * any other room. `maxChecks` is the most checks one commit may make.
 */
export async function upgradeRoom(kv: Deno.Kv, room: string, maxChecks: number): Promise<void> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const [seq, floor] = await kv.getMany<[number, Floor]>([seqKey(room), floorKey(room)]);
    if (seq.value === null || floor.value !== null) return;
    if (await upgradeOnce(kv, room, seq, maxChecks)) return;
    await backoff(attempt);
  }
  throw new Error(`Cannot read room '${room}': its upgrade is too contended`);
}

async function upgradeOnce(
  kv: Deno.Kv,
  room: string,
  seq: Deno.KvEntryMaybe<number>,
  maxChecks: number,
): Promise<boolean> {
  const events: Deno.KvEntry<ChatMessage>[] = [];
  for await (const entry of kv.list<ChatMessage>({ prefix: ["rooms", room, "msg"] })) {
    events.push(entry);
  }
  const messages = new Map<number, Folding>();
  let plain = 0, changes = 0, lastTs = 0;
  let op = newCommit(kv, room, seq);
  let checks = 2, mutations = 0, bytes = 0;
  /** Messages this commit rewrites: they are set when it is sent. */
  let touched = new Map<number, Folding>();
  const send = async (): Promise<boolean> => {
    for (const [id, folding] of touched) op.set(msgKey(room, id), folding.state);
    const result = await commitOrConflict(op);
    if (!result.ok) return false;
    for (const folding of touched.values()) {
      folding.entry = { ...folding.entry, value: folding.state, versionstamp: result.versionstamp };
    }
    op = newCommit(kv, room, seq);
    checks = 2, mutations = 0, bytes = 0;
    touched = new Map();
    return true;
  };
  for (const entry of events) {
    const event = entry.value;
    lastTs = Math.max(lastTs, event.ts);
    if (!isChange(event)) {
      plain++;
      messages.set(event.id, { entry, state: event });
      continue;
    }
    changes++;
    const target = event.ref === undefined ? undefined : messages.get(event.ref);
    const folded = target && fold(target.state, event);
    const rewrites = target && folded !== target.state && valueSize(folded!) <= MAX_VALUE_BYTES;
    const size = storedSize(event) + (rewrites ? storedSize(folded!) : 0);
    const full = mutations + 3 > MUTATIONS_PER_COMMIT || bytes + size > COMMIT_BYTES ||
      (rewrites && !touched.has(event.ref!) && checks + 1 > maxChecks);
    if (full && !await send()) return false;
    if (rewrites) {
      if (!touched.has(event.ref!)) {
        op.check(target.entry);
        checks++, mutations++;
      }
      target.state = folded!;
      touched.set(event.ref!, target);
    }
    op.delete(entry.key).set(chgKey(room, event.id), event);
    mutations += 2;
    bytes += size;
  }
  const first = events[0]?.value.id;
  const pruned = first === undefined ? seq.value! : first - 1;
  const floor: Floor = { plain: pruned, changes: pruned, prunedPlain: 0, prunedChanges: 0 };
  const dir: DirEntry = { lastId: seq.value!, lastTs: lastTs || Date.now(), plain, changes };
  op.set(dirKey(room), dir).set(floorKey(room), floor);
  return await send();
}

/** A commit that goes through only while the room is still not upgraded. */
function newCommit(
  kv: Deno.Kv,
  room: string,
  seq: Deno.KvEntryMaybe<number>,
): Deno.AtomicOperation {
  return kv.atomic().check(seq).check({ key: floorKey(room), versionstamp: null });
}

/**
 * Gives every room the previous version wrote a directory entry (its
 * newest id and when that was stored), once per store: rooms then lists
 * them before they are upgraded. Walks the rooms one key each, by skipping
 * from one room's keys to the next one's.
 */
export async function indexLegacyRooms(kv: Deno.Kv): Promise<void> {
  if ((await kv.get<boolean>(DIRECTORY_KEY)).value) return;
  let previous: string | undefined;
  for (;;) {
    const selector: Deno.KvListSelector = previous === undefined
      ? { prefix: ["rooms"] }
      : { prefix: ["rooms"], start: ["rooms", `${previous}\0`] };
    let room: string | undefined;
    for await (const entry of kv.list(selector, { limit: 1 })) room = String(entry.key[1]);
    if (room === undefined) break;
    previous = room;
    const [seq, floor, dir] = await kv.getMany<[number, Floor, DirEntry]>([
      seqKey(room),
      floorKey(room),
      dirKey(room),
    ]);
    if (seq.value === null || floor.value !== null || dir.value !== null) continue;
    let lastTs = 0;
    const newest = kv.list<ChatMessage>({ prefix: ["rooms", room, "msg"] }, {
      reverse: true,
      limit: 1,
    });
    for await (const entry of newest) lastTs = entry.value.ts;
    // Lost to a racing append or upgrade, which sets a directory entry itself.
    await commitOrConflict(
      kv.atomic().check(seq, floor, dir).set(dirKey(room), {
        lastId: seq.value,
        lastTs: lastTs || Date.now(),
      }),
    );
  }
  await commitOrConflict(kv.atomic().set(DIRECTORY_KEY, true));
}
