/**
 * {@linkcode RedisModeration}: moderation in Redis. Per room, with the room
 * name URI-encoded after the prefix:
 *
 * - `chat:mod:<room>:policy`: the {@linkcode RoomPolicy} as JSON, replaced
 *   by a compare-and-set script (retried on a race);
 * - `chat:mod:<room>:log`: the audit log, a sorted set of event JSON by id;
 * - `chat:mod:<room>:reports`: the open reports, a hash of JSON by id.
 *
 * @module
 */

import type { RedisClientType } from "redis";
import type { ChatMessage } from "../protocol.ts";
import {
  AUDIT_LIMIT,
  emptyPolicy,
  MAX_OPEN_REPORTS,
  type ModerationStore,
  type Report,
  type RoomPolicy,
} from "./moderation.ts";

/** KEYS: the policy. ARGV: the JSON read (or "" for none), the new JSON. Returns 1 when set. */
const SWAP_SCRIPT = `
local now = redis.call('GET', KEYS[1]) or ''
if now ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1`;
const MAX_ATTEMPTS = 50;

/**
 * Moderation in Redis.
 *
 * @example Usage
 * ```ts ignore
 * import { RedisModeration } from "./redis_moderation.ts";
 * const moderation = new RedisModeration(client);
 * await moderation.update("lobby", (p) => ({ ...p, slowMs: 5000 }));
 * ```
 */
export class RedisModeration implements ModerationStore {
  #client: RedisClientType;
  #prefix: string;

  /** Uses `client`, connected and closed by the caller; `prefix` starts every key. */
  constructor(client: RedisClientType, prefix = "chat:") {
    this.#client = client;
    this.#prefix = prefix;
  }

  /** The room's policy; see {@linkcode ModerationStore.policy}. */
  async policy(room: string): Promise<RoomPolicy> {
    const json = await this.#client.get(this.#key(room, "policy"));
    return json ? JSON.parse(json) as RoomPolicy : emptyPolicy();
  }

  /** Replaces the policy by compare-and-set; see {@linkcode ModerationStore.update}. */
  async update(room: string, change: (policy: RoomPolicy) => RoomPolicy): Promise<RoomPolicy> {
    const key = this.#key(room, "policy");
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const json = await this.#client.get(key) ?? "";
      const next = change(json ? JSON.parse(json) as RoomPolicy : emptyPolicy());
      const swapped = await this.#client.eval(SWAP_SCRIPT, {
        keys: [key],
        arguments: [json, JSON.stringify(next)],
      });
      if (swapped === 1) return next;
    }
    throw new Error(`Cannot moderate room: its policy in '${room}' is too contended`);
  }

  /** Adds an audit entry, dropping the oldest past {@linkcode AUDIT_LIMIT}. */
  async log(room: string, event: ChatMessage): Promise<void> {
    const key = this.#key(room, "log");
    await this.#client.multi()
      .zAdd(key, { score: event.id, value: JSON.stringify(event) })
      .zRemRangeByRank(key, 0, -AUDIT_LIMIT - 1)
      .exec();
  }

  /** The audit log, newest first; see {@linkcode ModerationStore.audit}. */
  async audit(
    room: string,
    before: number | undefined,
    limit: number,
  ): Promise<{ entries: ChatMessage[]; hasMore: boolean }> {
    const max = before === undefined ? "+inf" : `(${before}`;
    // With REV, ZRANGE … BYSCORE takes the high bound first.
    const json = await this.#client.zRange(this.#key(room, "log"), max, "-inf", {
      BY: "SCORE",
      REV: true,
      LIMIT: { offset: 0, count: limit + 1 },
    });
    const entries = json.map((text) => JSON.parse(text) as ChatMessage);
    return { entries: entries.slice(0, limit), hasMore: entries.length > limit };
  }

  /** Opens a report; see {@linkcode ModerationStore.report}. */
  async report(room: string, report: Report): Promise<boolean> {
    const key = this.#key(room, "reports");
    if (await this.#client.hLen(key) >= MAX_OPEN_REPORTS) return false;
    await this.#client.hSet(key, report.id, JSON.stringify(report));
    return true;
  }

  /** The open reports, oldest first. */
  async reports(room: string): Promise<Report[]> {
    const all = await this.#client.hVals(this.#key(room, "reports"));
    return all.map((text) => JSON.parse(text) as Report).sort((a, b) => a.at - b.at);
  }

  /** Closes reports; see {@linkcode ModerationStore.close}. */
  async close(room: string, which: { ref: number } | { id: string }): Promise<number> {
    const ids = (await this.reports(room))
      .filter((r) => "id" in which ? r.id === which.id : r.ref === which.ref)
      .map((r) => r.id);
    if (ids.length === 0) return 0;
    return await this.#client.hDel(this.#key(room, "reports"), ids);
  }

  /** Forgets the room. */
  async clear(room: string): Promise<void> {
    await this.#client.del(["policy", "log", "reports"].map((part) => this.#key(room, part)));
  }

  #key(room: string, part: string): string {
    return `${this.#prefix}mod:${encodeURIComponent(room)}:${part}`;
  }
}
