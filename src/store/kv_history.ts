/**
 * Room history in Deno KV: a contiguous, durable event sequence per room
 * (1, 2, 3, …), idempotent appends keyed by the sender's `cid`, changes
 * folded into their messages, and pruning to the newest `limit` plain
 * messages, off the append path.
 *
 * Several server instances may append to one KV at once: each append is an
 * atomic check-and-set on the room's counter, retried on conflict.
 *
 * The layout, per room `r`:
 *
 * | Key                          | Value                                                             |
 * | ---------------------------- | ----------------------------------------------------------------- |
 * | `["rooms", r, "seq"]`        | the newest event id: the room's check-and-set token, and watched  |
 * | `["rooms", r, "msg", id]`    | a plain message in its current state (its changes folded in)      |
 * | `["rooms", r, "chg", id]`    | a change (edit, delete, reaction) as it was appended              |
 * | `["rooms", r, "cid", u, c]`  | the id stored for sender `u`'s cid `c`; expires after `cidTtlMs`  |
 * | `["rooms", r, "floor"]`      | how far pruning went (`Floor` in `kv_layout.ts`); set at creation |
 * | `["dir", r]`                 | `{lastId, lastTs, plain, changes}`: the room directory and counts |
 *
 * and for the store, `["meta", "rooms"]` (the rooms held, a `Deno.KvU64`)
 * and `["meta", "epoch"]`.
 *
 * What an append writes, in one commit:
 *
 * - a plain message: the message, its cid (checked to be new), and once per
 *   room and commit the counter (checked) and the directory entry. A lone
 *   `say` is 4 mutations and 2 checks; a room's batch of n is 2n + 2; the
 *   rooms waiting at once share one commit (the fast path: no reads when
 *   this instance made the room's last commit);
 * - a change: the change, its cid, and message `ref` rewritten with
 *   `fold(message, change)` (checked, since pruning may delete it), after
 *   reading the counter, the cids and the messages the batch changes;
 * - the first event of a room also adds 1 to the room count, without
 *   checking it (so new rooms never contend on it), and sets the floor.
 *
 * A fold that would make a message larger than a KV value may be (64 KiB:
 * thousands of reactions) is not stored; the change itself is.
 *
 * Nothing is deleted on the append path. Once a room holds more than
 * `limit` + `pruneSlack` plain messages (or as many changes), this
 * instance prunes it in the background (`kv_prune.ts`): one commit deletes
 * the oldest (at most 500 a commit) and raises the floor, which `after`
 * reads to tell whether a replay is complete. One pruning runs at a time
 * per room; this instance's reads of that room wait for it, and
 * {@linkcode KvHistory.idle} waits for them all (before closing the KV).
 *
 * Files of the previous version (all events under "msg", no floor, no
 * directory) are read and appended to: a room is upgraded the first time
 * this version touches it (`kv_legacy.ts`): its changes are folded into
 * their messages and moved under "chg", and its counts, floor and
 * directory entry set. Ids and cids go on as they were, and the first
 * `rooms()` lists rooms not upgraded yet too. During a rolling upgrade, a
 * change an instance of the previous version stores (under "msg") reads as
 * a change, but is not folded into its message.
 *
 * @module
 */

import type { Logger } from "../log.ts";
import type { ChatMessage } from "../protocol.ts";
import { fold } from "./fold.ts";
import {
  type AppendResult,
  type HistoryStore,
  MAX_BATCH,
  type MessageDraft,
  type Replay,
  RoomLimitError,
  type StoredRoom,
} from "./history.ts";
import { backoff, commitOrConflict } from "./kv_contention.ts";
import {
  chgKey,
  cidKey,
  COMMIT_BYTES,
  DELETES_PER_COMMIT,
  type DirEntry,
  dirKey,
  type Floor,
  floorKey,
  getAll,
  isChange,
  MAX_VALUE_BYTES,
  msgKey,
  NO_FLOOR,
  ROOM_COUNT_KEY,
  seqKey,
  sizeOf,
  storedSize,
  valueSize,
} from "./kv_layout.ts";
import { indexLegacyRooms, upgradeRoom } from "./kv_legacy.ts";
import { pruneRoom } from "./kv_prune.ts";

/** Options for {@linkcode KvHistory}. */
export interface KvHistoryOptions {
  /**
   * Plain messages kept per room; older ones are deleted, and so are
   * changes past as many.
   * @default {1000}
   */
  limit?: number;
  /**
   * How many plain messages (or changes) a room may hold past `limit`
   * before they are pruned, in the background and in one go.
   * @default {Math.floor(limit / 10)}
   */
  pruneSlack?: number;
  /**
   * How long a `cid` is remembered for deduplication, in milliseconds.
   * @default {86400000}
   */
  cidTtlMs?: number;
  /**
   * Rooms the store may hold; the first message of one more is refused with
   * `RoomLimitError`. New rooms are counted without a check, so that they
   * never contend on the count: rooms created at the same instant by
   * several instances may overshoot it by their number.
   * @default {10000}
   */
  maxRooms?: number;
  /**
   * Checks one commit may make: Deno KV allows 100 in a local file; a remote
   * KV may allow fewer. Several rooms' appends share a commit within it.
   * @default {100}
   */
  maxChecks?: number;
  /**
   * The least time between the starts of two commits shared by rooms, in
   * ms: while commits come faster, appends wait (up to this long) and go
   * together, so a busy server makes fewer commits (each one an `fsync` on
   * a KV file) at the cost of that much latency. 0 commits at once.
   * @default {COMMIT_INTERVAL_MS}
   */
  commitIntervalMs?: number;
  /**
   * Where a failed background pruning is reported (`prune_failed`, with the
   * room and the error); the next append to the room tries again.
   * @default {() => {}}
   */
  log?: Logger;
}

/** One room's append, waiting for a shared commit. */
interface Gathered {
  room: string;
  drafts: MessageDraft[];
  resolve: (results: AppendResult[]) => void;
  reject: (error: unknown) => void;
}

/** A room as this instance last committed to it: what the fast path needs. */
interface Known {
  seq: Deno.KvEntryMaybe<number>;
  dir: Required<DirEntry>;
  /** Pruned plain messages and changes, as last read (it may lag). */
  pruned: { plain: number; changes: number };
}

/** One room's append, planned into a commit. */
interface Plan {
  /** For each draft: the new event, or the id it duplicates. */
  outcome: (ChatMessage | number)[];
  /** The room after the commit (its counter's versionstamp still to come). */
  dir: Required<DirEntry>;
  fresh: number;
  checks: number;
  bytes: number;
}

const MAX_ATTEMPTS = 50;
/** The least time between two shared commits' starts, by default, in ms. */
export const COMMIT_INTERVAL_MS = 2;
/** Checks one commit may make on the fast path (KV allows 10 on some backends). */
const MAX_FAST_CHECKS = 10;
/** Keys one `kv.watch` may watch. */
const MAX_WATCHED_KEYS = 10;
/** Rooms whose counter an instance remembers. */
const MAX_KNOWN_ROOMS = 10_000;
/** Most entries one list read fetches at once (a remote KV's limit). */
const MAX_LIST_BATCH = 500;
/** -1 in a `Deno.KvU64` sum, which wraps modulo 2^64. */
const MINUS_ONE = 0xffff_ffff_ffff_ffffn;
/** A `Deno.KvU64` count above this wrapped below zero. */
const WRAPPED = 1n << 63n;

/**
 * Room history stored in Deno KV.
 *
 * @example Usage
 * ```ts
 * import { KvHistory } from "./kv_history.ts";
 * using kv = await Deno.openKv(":memory:");
 * const history = new KvHistory(kv);
 * const { message } = await history.append("lobby", {
 *   room: "lobby", userId: "u1", name: "ada", text: "hi", cid: "c1",
 * });
 * message.id; // 1
 * await history.append("lobby", {
 *   room: "lobby", userId: "u1", name: "ada", text: "hello", cid: "c2", kind: "edit", ref: 1,
 * });
 * (await history.get("lobby", 1))?.text; // "hello"
 * await history.idle();
 * ```
 */
export class KvHistory implements HistoryStore {
  #kv: Deno.Kv;
  #limit: number;
  #slack: number;
  #cidTtlMs: number;
  #maxRooms: number;
  #maxChecks: number;
  #log: Logger;
  /** Appends waiting for the next shared commit. */
  #gathering: Gathered[] = [];
  /** Whether the shared commits are running. */
  #sharing = false;
  #commitIntervalMs: number;
  /** When the last shared commit started (`performance.now()`). */
  #lastCommit = -Infinity;
  /** Rooms as this instance last committed to them, newest last. */
  #known = new Map<string, Known>();
  /** Rooms seen in the current layout (upgraded or new), newest last. */
  #current = new Map<string, true>();
  /** Each room's pruning in the background, while it runs. */
  #pruning = new Map<string, Promise<void>>();
  /** Whether every room of the previous version is in the directory. */
  #indexed = false;
  #onPrunedFiles: ((room: string, ids: string[]) => void) | undefined;

  /** Wraps an open KV; the caller closes it (after {@linkcode KvHistory.idle}). */
  constructor(kv: Deno.Kv, options: KvHistoryOptions = {}) {
    this.#kv = kv;
    this.#limit = options.limit ?? 1000;
    this.#slack = options.pruneSlack ?? Math.floor(this.#limit / 10);
    this.#cidTtlMs = options.cidTtlMs ?? 86_400_000;
    this.#maxRooms = options.maxRooms ?? 10_000;
    this.#maxChecks = options.maxChecks ?? 100;
    this.#commitIntervalMs = options.commitIntervalMs ?? COMMIT_INTERVAL_MS;
    this.#log = options.log ?? (() => {});
    if (!Number.isSafeInteger(this.#limit) || this.#limit < 1) {
      throw new RangeError("Cannot keep history: limit must be a positive integer");
    }
    if (!Number.isSafeInteger(this.#slack) || this.#slack < 0) {
      throw new RangeError("Cannot keep history: pruneSlack must be an integer of at least 0");
    }
  }

  /** Plain messages kept per room. */
  get limit(): number {
    return this.#limit;
  }

  /** See {@linkcode HistoryStore.onPrunedFiles}: pruning then reads the messages it deletes. */
  onPrunedFiles(listener: (room: string, ids: string[]) => void): void {
    this.#onPrunedFiles = listener;
  }

  /** Stores an event under the room's next id; see {@linkcode HistoryStore.append}. */
  async append(room: string, draft: MessageDraft): Promise<AppendResult> {
    return (await this.appendMany(room, [draft]))[0];
  }

  /**
   * Stores several events under the room's next ids, in order. A `cid`
   * already stored (or repeated in the batch) is a duplicate and takes no id.
   * Small batches of plain messages to rooms this instance wrote to before
   * share one commit with other rooms' (see `#shareCommit`); the rest
   * commit on their own, {@linkcode MAX_BATCH} events at most.
   */
  async appendMany(room: string, drafts: MessageDraft[]): Promise<AppendResult[]> {
    const results: AppendResult[] = [];
    for (const chunk of commits(drafts)) {
      const shared = this.#known.has(room) && chunk.length < MAX_FAST_CHECKS &&
        !chunk.some(isChangeDraft);
      results.push(
        ...await (shared ? this.#shareCommit(room, chunk) : this.#appendBatch(room, chunk)),
      );
    }
    return results;
  }

  /**
   * Waits for the next commit shared by every room: while one commit is in
   * flight, the appends of other rooms gather and go together in the next,
   * each checking its room's counter and its cids inside the commit. When a
   * check fails, each room of that commit is stored on its own instead.
   */
  #shareCommit(room: string, drafts: MessageDraft[]): Promise<AppendResult[]> {
    const { promise, resolve, reject } = Promise.withResolvers<AppendResult[]>();
    this.#gathering.push({ room, drafts, resolve, reject });
    if (!this.#sharing) {
      this.#sharing = true;
      const wait = this.#lastCommit + this.#commitIntervalMs - performance.now();
      if (wait <= 0) queueMicrotask(() => this.#commitGathered());
      else setTimeout(() => this.#commitGathered(), wait);
    }
    return promise;
  }

  async #commitGathered(): Promise<void> {
    try {
      while (this.#gathering.length > 0) {
        // Within KV's limits: checks (one per room, one per message) and bytes.
        const group: Gathered[] = [];
        let checks = 0, bytes = 0;
        const rooms = new Set<string>();
        for (const next of this.#gathering) {
          const size = next.drafts.reduce((sum, d) => sum + sizeOf(d), 0);
          const more = 1 + next.drafts.length;
          if (
            group.length > 0 && (checks + more > this.#maxChecks || bytes + size > COMMIT_BYTES)
          ) break;
          if (rooms.has(next.room)) break; // Keep one room's appends in order.
          group.push(next);
          rooms.add(next.room);
          checks += more;
          bytes += size;
        }
        this.#gathering.splice(0, group.length);
        this.#lastCommit = performance.now();
        await this.#commitGroup(group);
        const wait = this.#lastCommit + this.#commitIntervalMs - performance.now();
        if (this.#gathering.length > 0 && wait > 0) {
          await new Promise((resolve) => setTimeout(resolve, wait));
        }
      }
    } finally {
      this.#sharing = false;
    }
  }

  async #commitGroup(group: Gathered[]): Promise<void> {
    const op = this.#kv.atomic();
    const plans = group.map(({ room, drafts }) => {
      const known = this.#known.get(room);
      return known ? this.#plan(op, room, drafts, known, [], new Map(), true) : null;
    });
    let committed: Deno.KvCommitResult | Deno.KvCommitError = { ok: false };
    if (plans.every((plan) => plan !== null)) {
      try {
        committed = await commitOrConflict(op);
      } catch { /* Stored one by one below. */ }
    }
    await Promise.all(group.map(async ({ room, drafts, resolve, reject }, i) => {
      try {
        const plan = plans[i];
        if (!committed.ok || !plan) {
          this.#known.delete(room);
          return resolve(await this.#appendBatch(room, drafts));
        }
        if (plan.fresh > 0) this.#committed(room, plan, committed.versionstamp);
        resolve(await this.#answer(room, drafts, plan.outcome));
      } catch (error) {
        reject(error);
      }
    }));
  }

  async #appendBatch(room: string, drafts: MessageDraft[]): Promise<AppendResult[]> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      // The fast path, for small batches of plain messages: no reads at all.
      // The counter comes from this instance's last commit, and each cid is
      // checked to be new inside the commit itself. Any surprise (another
      // instance appended, a repeated cid) fails the commit, and the next
      // attempt reads.
      const known = this.#known.get(room);
      const fast = attempt === 0 && known !== undefined && drafts.length < MAX_FAST_CHECKS &&
        !drafts.some(isChangeDraft);
      const read = fast ? undefined : await this.#read(room, drafts);
      if (read?.legacy) {
        await upgradeRoom(this.#kv, room, this.#maxChecks);
        continue;
      }
      const state = read?.state ?? known!;
      const op = this.#kv.atomic();
      const plan = this.#plan(op, room, drafts, state, read?.seen ?? [], read?.originals, fast);
      if (plan.fresh === 0) {
        // Nothing new (every cid was stored): the room as read is current.
        if (read && read.state.seq.value !== null) {
          this.#remember(room, read.state.seq, read.state.dir, read.pruned);
        }
        return await this.#answer(room, drafts, plan.outcome);
      }
      if ((plan.checks > this.#maxChecks || plan.bytes > COMMIT_BYTES) && drafts.length > 1) {
        // Rewritten messages made it too large for one commit: halve it.
        const half = drafts.length >> 1;
        return [
          ...await this.#appendBatch(room, drafts.slice(0, half)),
          ...await this.#appendBatch(room, drafts.slice(half)),
        ];
      }
      if (state.seq.value === null) {
        const count = read!.roomCount?.value ?? 0n;
        if (count >= BigInt(this.#maxRooms) && count < WRAPPED) {
          throw new RoomLimitError(this.#maxRooms);
        }
        op.sum(ROOM_COUNT_KEY, 1n).set(floorKey(room), NO_FLOOR);
      }
      const result = await commitOrConflict(op);
      if (!result.ok) {
        this.#known.delete(room);
        if (!fast) await backoff(attempt, 2);
        continue;
      }
      this.#committed(room, plan, result.versionstamp, read?.pruned);
      return await this.#answer(room, drafts, plan.outcome);
    }
    throw new Error(`Cannot store message: room '${room}' is too contended`);
  }

  /**
   * What the slow path reads before it commits, at once: the room's
   * counter, directory entry and floor, the store's room count, the batch's
   * cids, and the messages its changes change.
   */
  async #read(room: string, drafts: MessageDraft[]) {
    const refs = [...new Set(drafts.filter(isChangeDraft).map((d) => d.ref))].filter(isId);
    const [[seq, dir, floor, roomCount], seen, originals] = await Promise.all([
      this.#kv.getMany<[number, DirEntry, Floor, Deno.KvU64]>([
        seqKey(room),
        dirKey(room),
        floorKey(room),
        ROOM_COUNT_KEY,
      ]),
      getAll<number>(this.#kv, drafts.map((d) => cidKey(room, d.userId, d.cid))),
      getAll<ChatMessage>(this.#kv, refs.map((ref) => msgKey(room, ref))),
    ]);
    const known: Known = {
      seq,
      dir: {
        lastId: dir.value?.lastId ?? 0,
        lastTs: dir.value?.lastTs ?? 0,
        plain: dir.value?.plain ?? 0,
        changes: dir.value?.changes ?? 0,
      },
      pruned: { plain: 0, changes: 0 },
    };
    return {
      legacy: seq.value !== null && floor.value === null,
      state: known,
      pruned: floor.value ?? undefined,
      roomCount: roomCount.value,
      seen: seen.map((entry) => entry.value ?? undefined),
      originals: new Map(refs.map((ref, i) => [ref, originals[i]])),
    };
  }

  /**
   * Adds one room's append to `op`: the counter checked (and each cid
   * checked to be new, when `fast`), every new event and its cid, each
   * changed message in its new state (checked to be unchanged since it was
   * read), the new counter and the directory entry. `seen` holds the ids
   * the cids already have, and `originals` the messages the changes change,
   * when they were read.
   */
  #plan(
    op: Deno.AtomicOperation,
    room: string,
    drafts: MessageDraft[],
    known: Known,
    seen: (number | undefined)[],
    originals: Map<number, Deno.KvEntryMaybe<ChatMessage>> = new Map(),
    fast: boolean,
  ): Plan {
    // Checking the counter is enough for the cids on the slow path: a cid is
    // only ever written together with it.
    op.check(known.seq);
    let checks = 1, bytes = 0, id = known.seq.value ?? 0, ts = known.dir.lastTs;
    const dir = { ...known.dir };
    const fresh = new Map<string, number>();
    /** Plain messages to set, in their state after the batch's changes. */
    const states = new Map<number, ChatMessage>();
    /** Which of `states` were read (and are checked), not new. */
    const rewritten = new Set<number>();
    const outcome = drafts.map((draft, i): ChatMessage | number => {
      const owner = `${draft.userId}\n${draft.cid}`;
      const earlier = seen[i] ?? fresh.get(owner);
      if (earlier !== undefined) return earlier;
      ts = Date.now();
      const event: ChatMessage = { type: "message", id: ++id, ts, ...draft };
      if (fast) op.check({ key: cidKey(room, draft.userId, draft.cid), versionstamp: null });
      if (fast) checks++;
      op.set(cidKey(room, draft.userId, draft.cid), id, { expireIn: this.#cidTtlMs });
      fresh.set(owner, id);
      if (!isChange(event)) {
        states.set(id, event);
        dir.plain++;
        return event;
      }
      op.set(chgKey(room, id), event);
      bytes += storedSize(event);
      dir.changes++;
      const ref = event.ref;
      if (ref === undefined) return event;
      const original = originals.get(ref);
      const current = states.get(ref) ??
        (original?.value && !isChange(original.value) ? original.value : undefined);
      if (current === undefined) return event; // Not retained: stored all the same.
      const folded = fold(current, event);
      if (folded === current || valueSize(folded) > MAX_VALUE_BYTES) return event;
      states.set(ref, folded);
      if (original?.value && !rewritten.has(ref)) {
        op.check(original);
        checks++;
        rewritten.add(ref);
      }
      return event;
    });
    for (const [messageId, message] of states) {
      op.set(msgKey(room, messageId), message);
      if (!fast) bytes += storedSize(message); // The fast path's size was estimated before.
    }
    if (fresh.size > 0) {
      Object.assign(dir, { lastId: id, lastTs: ts });
      op.set(seqKey(room), id).set(dirKey(room), dir);
    }
    return { outcome, dir, fresh: fresh.size, checks, bytes };
  }

  /** Remembers a room's commit for the fast path, and prunes it when due. */
  #committed(room: string, plan: Plan, versionstamp: string, floor?: Floor): void {
    const seq = { key: seqKey(room), value: plan.dir.lastId, versionstamp };
    this.#remember(room, seq, plan.dir, floor);
  }

  /**
   * Remembers a room as committed or read (its counter's entry, and its
   * counts then), and prunes it when due. A pruning that ended while the
   * room was not remembered (a commit had failed) cannot have checked it.
   */
  #remember(
    room: string,
    seq: Deno.KvEntryMaybe<number>,
    dir: Required<DirEntry>,
    floor?: Floor,
  ): void {
    const before = this.#known.get(room);
    const pruned = floor
      ? { plain: floor.prunedPlain, changes: floor.prunedChanges }
      : before?.pruned ?? { plain: 0, changes: 0 };
    this.#known.delete(room);
    this.#known.set(room, { seq, dir, pruned });
    if (this.#known.size > MAX_KNOWN_ROOMS) {
      this.#known.delete(this.#known.keys().next().value!);
    }
    if (!this.#pruning.has(room) && this.#due(room)) this.#prune(room);
  }

  /**
   * Whether a room holds more than `limit` + `pruneSlack` plain messages or
   * changes, as far as this instance knows (it may know too few pruned:
   * then pruning finds less to do).
   */
  #due(room: string): boolean {
    const known = this.#known.get(room);
    const bound = this.#limit + this.#slack;
    return known !== undefined &&
      (known.dir.plain - known.pruned.plain > bound ||
        known.dir.changes - known.pruned.changes > bound);
  }

  /**
   * Prunes a room in the background, one pruning per room at a time, and
   * again when the room's appends meanwhile made it due again. A failure
   * (the KV is closed or failing) is logged, and left to the next append to
   * retry.
   */
  #prune(room: string): void {
    const run = (async () => {
      try {
        do {
          const onFiles = this.#onPrunedFiles &&
            ((ids: string[]) => this.#onPrunedFiles?.(room, ids));
          const floor = await pruneRoom(this.#kv, room, this.#limit, onFiles);
          const known = this.#known.get(room);
          if (!known || !floor) return;
          known.pruned = { plain: floor.prunedPlain, changes: floor.prunedChanges };
        } while (this.#due(room));
      } finally {
        // At once, so that an append committed from now on starts the next.
        this.#pruning.delete(room);
      }
    })().catch((error) => {
      const message = error instanceof Error ? error.message : String(error);
      this.#log({ event: "prune_failed", room, error: message });
    });
    this.#pruning.set(room, run);
  }

  /**
   * Resolves once this instance prunes no room in the background: await it
   * before closing the KV.
   */
  async idle(): Promise<void> {
    while (this.#pruning.size > 0) await Promise.all(this.#pruning.values());
  }

  /** The append's results; a duplicate answers with the event stored first. */
  async #answer(
    room: string,
    drafts: MessageDraft[],
    outcome: (ChatMessage | number)[],
  ): Promise<AppendResult[]> {
    const duplicates = outcome.filter((result) => typeof result === "number");
    if (duplicates.length === 0) {
      return outcome.map((result) => ({ message: result as ChatMessage, duplicate: false }));
    }
    const stored = await getAll<ChatMessage>(
      this.#kv,
      duplicates.flatMap((id) => [msgKey(room, id), chgKey(room, id)]),
    );
    let next = 0;
    return outcome.map((result, i) => {
      if (typeof result !== "number") return { message: result, duplicate: false };
      const [message, change] = stored.slice(next, next += 2);
      return {
        message: message.value ?? change.value ??
          { type: "message", id: result, ts: 0, ...drafts[i] },
        duplicate: true,
      };
    });
  }

  /**
   * Waits until a room reads in the current layout: its pruning here done,
   * and upgraded when the previous version wrote it.
   */
  async #ready(room: string): Promise<void> {
    await this.#pruning.get(room);
    if (this.#known.has(room) || this.#current.has(room)) return;
    await upgradeRoom(this.#kv, room, this.#maxChecks);
    this.#current.set(room, true);
    if (this.#current.size > MAX_KNOWN_ROOMS) {
      this.#current.delete(this.#current.keys().next().value!);
    }
  }

  /** Plain message `id` in its current state; see {@linkcode HistoryStore.get}. */
  async get(room: string, id: number): Promise<ChatMessage | null> {
    if (!isId(id)) return null;
    await this.#ready(room);
    const { value } = await this.#kv.get<ChatMessage>(msgKey(room, id));
    return value && !isChange(value) ? value : null;
  }

  /** The id stored for `userId`'s `cid`; see {@linkcode HistoryStore.stored}. */
  async stored(room: string, userId: string, cid: string): Promise<number | null> {
    return (await this.#kv.get<number>(cidKey(room, userId, cid))).value;
  }

  /** The newest `count` plain messages (at most `limit`), oldest first. */
  async recent(room: string, count: number): Promise<ChatMessage[]> {
    const want = Math.min(Math.floor(count), this.#limit);
    if (!(want >= 1)) return [];
    await this.#ready(room);
    return (await this.#plainBefore(room, undefined, want)).reverse();
  }

  /** Older messages, a page at a time; see {@linkcode HistoryStore.before}. */
  async before(
    room: string,
    before: number,
    limit: number,
  ): Promise<{ messages: ChatMessage[]; hasMore: boolean }> {
    const want = Math.floor(limit);
    if (!(want >= 1) || !(before > 1)) return { messages: [], hasMore: false };
    await this.#ready(room);
    const messages = await this.#plainBefore(room, Math.ceil(before), want + 1);
    const hasMore = messages.length > want;
    return { messages: messages.slice(0, want).reverse(), hasMore };
  }

  /** Up to `want` plain messages below `end` (or the newest), newest first. */
  async #plainBefore(room: string, end: number | undefined, want: number): Promise<ChatMessage[]> {
    const prefix = ["rooms", room, "msg"];
    const selector = end === undefined ? { prefix } : { prefix, end: [...prefix, end] };
    const messages: ChatMessage[] = [];
    const entries = this.#kv.list<ChatMessage>(selector, {
      reverse: true,
      batchSize: Math.min(want, MAX_LIST_BATCH),
    });
    for await (const entry of entries) {
      if (isChange(entry.value)) continue; // A change the previous version kept here.
      messages.push(entry.value);
      if (messages.length === want) break;
    }
    return messages;
  }

  /** The retained events after `since`; see {@linkcode HistoryStore.after}. */
  async after(room: string, since: number, limit?: number): Promise<Replay> {
    await this.#ready(room);
    const most = limit === undefined ? undefined : Math.max(0, Math.floor(limit));
    const from = Number.isFinite(since) ? Math.max(0, Math.floor(since)) + 1 : 1;
    const list = async (kind: "msg" | "chg") => {
      const prefix = ["rooms", room, kind];
      const found: ChatMessage[] = [];
      const entries = this.#kv.list<ChatMessage>(
        { prefix, start: [...prefix, from] },
        most === undefined
          ? {}
          : { limit: most + 1, batchSize: Math.min(most + 1, MAX_LIST_BATCH) },
      );
      for await (const entry of entries) found.push(entry.value);
      return found;
    };
    // The events first, then the floor: pruning in between shows in the floor.
    const [plain, changes] = await Promise.all([list("msg"), list("chg")]);
    const [seq, floor] = await this.#kv.getMany<[number, Floor]>([seqKey(room), floorKey(room)]);
    const events = merge(plain, changes);
    const more = most !== undefined && events.length > most;
    const latest = seq.value ?? 0;
    const pruned = Math.max(floor.value?.plain ?? 0, floor.value?.changes ?? 0);
    const replay: Replay = {
      messages: more ? events.slice(0, most) : events,
      complete: since <= latest && since >= pruned,
    };
    if (more) replay.more = true;
    return replay;
  }

  /** The room's newest event id, or 0. */
  async latest(room: string): Promise<number> {
    return (await this.#kv.get<number>(seqKey(room))).value ?? 0;
  }

  /** Every room with history; see {@linkcode HistoryStore.rooms}. */
  async rooms(): Promise<StoredRoom[]> {
    if (!this.#indexed) {
      await indexLegacyRooms(this.#kv);
      this.#indexed = true;
    }
    const rooms: StoredRoom[] = [];
    for await (const entry of this.#kv.list<DirEntry>({ prefix: ["dir"] })) {
      const { lastId, lastTs } = entry.value;
      rooms.push({ name: entry.key[1] as string, lastId, lastTs });
    }
    return rooms;
  }

  /**
   * Deletes a room's history, cids, floor and directory entry, in commits
   * of at most {@linkcode DELETES_PER_COMMIT}; its counter goes last, in a
   * commit that also takes it off the room count and fails (and deletes
   * again) when an append came in meanwhile.
   */
  async deleteRoom(room: string): Promise<boolean> {
    await this.#pruning.get(room);
    let deleted = false;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const [seq, floor, dir, count] = await this.#kv.getMany<
        [number, Floor, DirEntry, Deno.KvU64]
      >([seqKey(room), floorKey(room), dirKey(room), ROOM_COUNT_KEY]);
      let keys: Deno.KvKey[] = [];
      const entries = this.#kv.list({ prefix: ["rooms", room] }, { batchSize: MAX_LIST_BATCH });
      for await (const entry of entries) {
        if (entry.key.length === 3) continue; // The counter and the floor go last.
        keys.push(entry.key);
        if (keys.length === DELETES_PER_COMMIT) {
          await this.#deleteKeys(keys);
          keys = [];
        }
        deleted = true;
      }
      await this.#deleteKeys(keys);
      if (!seq.value && !floor.value && !dir.value) return deleted;
      const op = this.#kv.atomic().check(seq, floor).delete(seqKey(room)).delete(floorKey(room))
        .delete(dirKey(room));
      const held = count.value?.value ?? 0n;
      if (seq.value !== null && held > 0n && held < WRAPPED) op.sum(ROOM_COUNT_KEY, MINUS_ONE);
      if ((await commitOrConflict(op)).ok) {
        this.#known.delete(room);
        return true;
      }
      await backoff(attempt);
    }
    throw new Error(`Cannot delete room '${room}': it is too contended`);
  }

  async #deleteKeys(keys: Deno.KvKey[]): Promise<void> {
    if (keys.length === 0) return;
    const op = this.#kv.atomic();
    for (const key of keys) op.delete(key);
    for (let attempt = 0; !(await commitOrConflict(op)).ok; attempt++) {
      if (attempt === MAX_ATTEMPTS) throw new Error("Cannot delete room: too contended");
      await backoff(attempt);
    }
  }

  /** The store's epoch; see {@linkcode HistoryStore.epoch}. */
  async epoch(): Promise<string> {
    const key = ["meta", "epoch"];
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const stored = await this.#kv.get<string>(key);
      if (stored.value) return stored.value;
      const epoch = crypto.randomUUID().slice(0, 8);
      if ((await commitOrConflict(this.#kv.atomic().check(stored).set(key, epoch))).ok) {
        return epoch;
      }
      await backoff(attempt);
    }
    throw new Error("Cannot read the store's epoch: too contended");
  }

  /**
   * Calls `onChange(room, latest)` whenever a room's counter changes, with
   * `kv.watch`. On Deno Deploy's KV that includes other instances' appends;
   * on a local file only this process's own.
   */
  watch(rooms: string[], onChange: (room: string, latest: number) => void): () => void {
    const stops: (() => void)[] = [];
    // KV watches at most 10 keys per call.
    for (let i = 0; i < rooms.length; i += MAX_WATCHED_KEYS) {
      stops.push(this.#watchSome(rooms.slice(i, i + MAX_WATCHED_KEYS), onChange));
    }
    return () => stops.forEach((stop) => stop());
  }

  #watchSome(rooms: string[], onChange: (room: string, latest: number) => void): () => void {
    const stream = this.#kv.watch<number[]>(rooms.map((room) => seqKey(room)));
    const reader = stream.getReader();
    let stopped = false;
    (async () => {
      while (!stopped) {
        const { done, value } = await reader.read();
        if (done) return;
        value.forEach((entry, i) => onChange(rooms[i], entry.value ?? 0));
      }
    })().catch(() => {/* The watch ended (KV closed): the poll still runs. */});
    return () => {
      stopped = true;
      reader.cancel().catch(() => {});
    };
  }
}

function isId(id: number | undefined): id is number {
  return Number.isSafeInteger(id) && id! >= 1;
}

function isChangeDraft(draft: MessageDraft): boolean {
  return draft.kind !== undefined;
}

/** Two id-ordered lists as one. */
function merge(a: ChatMessage[], b: ChatMessage[]): ChatMessage[] {
  const merged: ChatMessage[] = [];
  let i = 0, j = 0;
  while (i < a.length || j < b.length) {
    merged.push(j >= b.length || (i < a.length && a[i].id < b[j].id) ? a[i++] : b[j++]);
  }
  return merged;
}

/**
 * Splits drafts into commits that fit KV's limits (1,000 mutations, 800 KiB
 * of keys and values in all): at most {@linkcode MAX_BATCH} events, and at
 * most {@linkcode COMMIT_BYTES} of message text each, so no `say` is ever
 * refused because of its neighbours. (A commit that also rewrites the
 * messages its changes change is halved again when it comes out larger.)
 */
function commits(drafts: MessageDraft[]): MessageDraft[][] {
  const chunks: MessageDraft[][] = [];
  let chunk: MessageDraft[] = [];
  let bytes = 0;
  for (const draft of drafts) {
    const size = sizeOf(draft);
    if (chunk.length === MAX_BATCH || (chunk.length > 0 && bytes + size > COMMIT_BYTES)) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(draft);
    bytes += size;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}
