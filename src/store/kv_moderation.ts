/**
 * {@linkcode KvModeration}: moderation in Deno KV. Per room:
 *
 * - `["mod", room, "policy"]`: the {@linkcode RoomPolicy}, replaced by a
 *   checked commit (compare-and-set on its versionstamp, retried);
 * - `["mod", room, "log", id]`: the audit log, one entry per moderation
 *   event, by its id in the room's sequence;
 * - `["mod", room, "report", id]`: the open reports.
 *
 * @module
 */

import type { ChatMessage } from "../protocol.ts";
import { backoff, commitOrConflict } from "./kv_contention.ts";
import {
  AUDIT_LIMIT,
  emptyPolicy,
  MAX_OPEN_REPORTS,
  type ModerationStore,
  type Report,
  type RoomPolicy,
} from "./moderation.ts";

const MAX_ATTEMPTS = 50;

/**
 * Moderation in Deno KV.
 *
 * @example Usage
 * ```ts
 * import { KvModeration } from "./kv_moderation.ts";
 * using kv = await Deno.openKv(":memory:");
 * const moderation = new KvModeration(kv);
 * await moderation.update("lobby", (p) => ({ ...p, topic: "Be nice" }));
 * (await moderation.policy("lobby")).topic; // "Be nice"
 * ```
 */
export class KvModeration implements ModerationStore {
  #kv: Deno.Kv;

  /** Uses `kv`; the caller closes it. */
  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** The room's policy; see {@linkcode ModerationStore.policy}. */
  async policy(room: string): Promise<RoomPolicy> {
    return (await this.#kv.get<RoomPolicy>(["mod", room, "policy"])).value ?? emptyPolicy();
  }

  /** Replaces the policy by compare-and-set; see {@linkcode ModerationStore.update}. */
  async update(room: string, change: (policy: RoomPolicy) => RoomPolicy): Promise<RoomPolicy> {
    const key = ["mod", room, "policy"];
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const entry = await this.#kv.get<RoomPolicy>(key);
      const next = change(entry.value ?? emptyPolicy());
      if ((await commitOrConflict(this.#kv.atomic().check(entry).set(key, next))).ok) return next;
      await backoff(attempt);
    }
    throw new Error(`Cannot moderate room: its policy in '${room}' is too contended`);
  }

  /** Adds an audit entry, dropping the oldest past {@linkcode AUDIT_LIMIT}. */
  async log(room: string, event: ChatMessage): Promise<void> {
    const prefix = ["mod", room, "log"];
    await this.#kv.set([...prefix, event.id], event);
    const old = this.#kv.list({ prefix }, { reverse: true });
    let kept = 0;
    for await (const entry of old) if (++kept > AUDIT_LIMIT) await this.#kv.delete(entry.key);
  }

  /** The audit log, newest first; see {@linkcode ModerationStore.audit}. */
  async audit(
    room: string,
    before: number | undefined,
    limit: number,
  ): Promise<{ entries: ChatMessage[]; hasMore: boolean }> {
    const prefix = ["mod", room, "log"];
    const selector = before === undefined ? { prefix } : { prefix, end: [...prefix, before] };
    const entries: ChatMessage[] = [];
    for await (
      const entry of this.#kv.list<ChatMessage>(selector, {
        reverse: true,
        limit: limit + 1,
      })
    ) {
      entries.push(entry.value);
    }
    return { entries: entries.slice(0, limit), hasMore: entries.length > limit };
  }

  /** Opens a report; see {@linkcode ModerationStore.report}. */
  async report(room: string, report: Report): Promise<boolean> {
    if ((await this.reports(room)).length >= MAX_OPEN_REPORTS) return false;
    await this.#kv.set(["mod", room, "report", report.id], report);
    return true;
  }

  /** The open reports, oldest first. */
  async reports(room: string): Promise<Report[]> {
    const reports: Report[] = [];
    for await (const entry of this.#kv.list<Report>({ prefix: ["mod", room, "report"] })) {
      reports.push(entry.value);
    }
    return reports.sort((a, b) => a.at - b.at);
  }

  /** Closes reports; see {@linkcode ModerationStore.close}. */
  async close(room: string, which: { ref: number } | { id: string }): Promise<number> {
    let closed = 0;
    for (const report of await this.reports(room)) {
      if ("id" in which ? report.id === which.id : report.ref === which.ref) {
        await this.#kv.delete(["mod", room, "report", report.id]);
        closed++;
      }
    }
    return closed;
  }

  /** Forgets the room. */
  async clear(room: string): Promise<void> {
    for await (const entry of this.#kv.list({ prefix: ["mod", room] })) {
      await this.#kv.delete(entry.key);
    }
  }
}
