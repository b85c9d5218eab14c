/**
 * Room history in Deno KV: a contiguous, durable message sequence per room
 * (1, 2, 3, …), idempotent appends keyed by the client's `cid`, and pruning
 * to the newest `limit` messages.
 *
 * Several server instances may append to one KV at once: each append is an
 * atomic check-and-set on the room's counter, retried on conflict.
 *
 * @module
 */

import type { ChatMessage } from "./protocol.ts";

/** What a sender supplies; the store adds the id and timestamp. */
export type MessageDraft = Omit<ChatMessage, "type" | "id" | "ts">;

/** The result of {@linkcode KvHistory.append}. */
export interface AppendResult {
  /** The stored message (the earlier one, for a duplicate `cid`). */
  message: ChatMessage;
  /** `true` when this `cid` was already stored: do not broadcast again. */
  duplicate: boolean;
}

/** The result of {@linkcode KvHistory.after}. */
export interface Replay {
  /** Messages after the asked id, oldest first. */
  messages: ChatMessage[];
  /** `false` when some messages after the asked id were pruned already. */
  complete: boolean;
}

/**
 * Where room history lives: Deno KV ({@linkcode KvHistory}) or Redis. The
 * hub only uses this interface.
 */
export interface HistoryStore {
  /** Messages kept per room. */
  readonly limit: number;
  /** Stores a message under the room's next id, once per `cid`. */
  append(room: string, draft: MessageDraft): Promise<AppendResult>;
  /** The newest `count` messages of a room, oldest first. */
  recent(room: string, count: number): Promise<ChatMessage[]>;
  /** Every retained message after `since`, and whether none is missing. */
  after(room: string, since: number): Promise<Replay>;
  /** The room's newest message id, or 0. */
  latest(room: string): Promise<number>;
}

/** Options for {@linkcode KvHistory}. */
export interface KvHistoryOptions {
  /**
   * Messages kept per room; older ones are deleted.
   * @default {1000}
   */
  limit?: number;
  /**
   * How long a `cid` is remembered for deduplication, in milliseconds.
   * @default {86400000}
   */
  cidTtlMs?: number;
}

const MAX_ATTEMPTS = 50;

/**
 * Room history stored in Deno KV.
 *
 * @example Usage
 * ```ts ignore
 * import { KvHistory } from "./history.ts";
 * const history = new KvHistory(await Deno.openKv(":memory:"));
 * const { message } = await history.append("lobby", {
 *   room: "lobby", userId: "u1", name: "ada", text: "hi", cid: "c1",
 * });
 * message.id; // 1
 * ```
 */
export class KvHistory implements HistoryStore {
  #kv: Deno.Kv;
  #limit: number;
  #cidTtlMs: number;

  /** Wraps an open KV; the caller closes it. */
  constructor(kv: Deno.Kv, options: KvHistoryOptions = {}) {
    this.#kv = kv;
    this.#limit = options.limit ?? 1000;
    this.#cidTtlMs = options.cidTtlMs ?? 86_400_000;
  }

  /** Messages kept per room. */
  get limit(): number {
    return this.#limit;
  }

  /** Stores a message under the room's next id, once per `cid`. */
  async append(room: string, draft: MessageDraft): Promise<AppendResult> {
    const seqKey = ["rooms", room, "seq"];
    const cidKey = ["rooms", room, "cid", draft.cid];
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const [seq, seen] = await this.#kv.getMany<[number, number]>([seqKey, cidKey]);
      if (seen.value !== null) {
        const earlier = await this.#kv.get<ChatMessage>(["rooms", room, "msg", seen.value]);
        if (earlier.value) return { message: earlier.value, duplicate: true };
        return { message: { type: "message", id: seen.value, ts: 0, ...draft }, duplicate: true };
      }
      const id = (seq.value ?? 0) + 1;
      const message: ChatMessage = { type: "message", id, ts: Date.now(), ...draft };
      const op = this.#kv.atomic()
        .check(seq, seen)
        .set(seqKey, id)
        .set(["rooms", room, "msg", id], message)
        .set(cidKey, id, { expireIn: this.#cidTtlMs });
      if (id > this.#limit) op.delete(["rooms", room, "msg", id - this.#limit]);
      if ((await commitOrBusy(op)).ok) return { message, duplicate: false };
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 2 * (attempt + 1)));
    }
    throw new Error(`Cannot store message: room '${room}' is too contended`);
  }

  /** The newest `count` messages of a room, oldest first. */
  async recent(room: string, count: number): Promise<ChatMessage[]> {
    const messages: ChatMessage[] = [];
    const entries = this.#kv.list<ChatMessage>({ prefix: ["rooms", room, "msg"] }, {
      reverse: true,
      limit: count,
    });
    for await (const entry of entries) messages.push(entry.value);
    return messages.reverse();
  }

  /** The room's newest message id, or 0. */
  async latest(room: string): Promise<number> {
    return (await this.#kv.get<number>(["rooms", room, "seq"])).value ?? 0;
  }

  /** Every retained message after `since`, and whether none is missing. */
  async after(room: string, since: number): Promise<Replay> {
    const messages: ChatMessage[] = [];
    const prefix = ["rooms", room, "msg"];
    for await (
      const entry of this.#kv.list<ChatMessage>({ prefix, start: [...prefix, since + 1] })
    ) {
      messages.push(entry.value);
    }
    const latest = await this.latest(room);
    const complete = since <= latest &&
      (messages.length === 0 ? since === latest : messages[0].id === since + 1);
    return { messages, complete };
  }
}

/**
 * Commits `op`. A local KV file shared by several processes may answer
 * "database is locked"; that is a conflict like any other, so it is retried.
 */
async function commitOrBusy(op: Deno.AtomicOperation): Promise<{ ok: boolean }> {
  try {
    return await op.commit();
  } catch (error) {
    if (error instanceof TypeError && /database is locked/.test(error.message)) {
      return { ok: false };
    }
    throw error;
  }
}
