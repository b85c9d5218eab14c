/**
 * The moderation contract: what a room's owner and moderators decided, kept
 * in the shared store so it holds across reconnects, restarts and
 * instances: the room's owner and moderators, its mutes and bans (with
 * their reason and expiry), slow mode, topic, the open reports, and the
 * audit log of every moderation act. The acts themselves are also events in
 * the room's sequence (`kind: "moderation"`), which every instance applies
 * as it delivers them; this store is what a new instance, or one after a
 * restart, starts from.
 *
 * Implementations: `kv_moderation.ts` (Deno KV) and `redis_moderation.ts`
 * (Redis); one contract test suite runs against both.
 *
 * @module
 */

import type { ChatMessage, Member } from "../protocol.ts";

/** Audit log entries kept per room; older ones are dropped. */
export const AUDIT_LIMIT = 1000;
/** Open reports kept per room; past it new reports are refused. */
export const MAX_OPEN_REPORTS = 200;

/** A mute or a ban: who decided it, when, why, and until when (absent: for good). */
export interface Sanction {
  by: string;
  at: number;
  until?: number;
  reason?: string;
}

/** What a room's moderation decided. */
export interface RoomPolicy {
  /** The owner's user id (an account); absent until one creates the room or is given it. */
  owner?: string;
  /** The moderators' user ids (accounts), appointed by the owner. */
  moderators: string[];
  /** Shown in the page's header and carried in `welcome`. */
  topic?: string;
  /** Slow mode: at most one `say` per member per this many ms; 0 is off. */
  slowMs: number;
  /** Muted users, by user id. */
  mutes: Record<string, Sanction>;
  /** Banned users (a guest by its session's id), by user id. */
  bans: Record<string, Sanction>;
}

/** A flagged message, open until a moderator acts on it or dismisses it. */
export interface Report {
  /** A random id. */
  id: string;
  /** The message reported. */
  ref: number;
  reason: string;
  /** Who reported it. */
  by: Member;
  at: number;
}

/** The policy of a room nothing was decided for. */
export function emptyPolicy(): RoomPolicy {
  return { moderators: [], slowMs: 0, mutes: {}, bans: {} };
}

/** `sanction` if it still holds at `now`, else `undefined`. */
export function inForce(sanction: Sanction | undefined, now: number): Sanction | undefined {
  return sanction && (sanction.until === undefined || sanction.until > now) ? sanction : undefined;
}

/** Moderation in the shared store. */
export interface ModerationStore {
  /** The room's policy ({@linkcode emptyPolicy} when none is stored). One point read. */
  policy(room: string): Promise<RoomPolicy>;
  /**
   * Replaces the room's policy with `change(current)`, atomically across
   * instances (compare-and-set, retried: `change` may run more than once and
   * must be pure). Resolves with the policy stored.
   */
  update(room: string, change: (policy: RoomPolicy) => RoomPolicy): Promise<RoomPolicy>;
  /** Adds a moderation event to the room's audit log (the newest {@linkcode AUDIT_LIMIT} are kept). */
  log(room: string, event: ChatMessage): Promise<void>;
  /** Audit log entries with ids below `before` (all when absent), newest first, at most `limit`. */
  audit(
    room: string,
    before: number | undefined,
    limit: number,
  ): Promise<{ entries: ChatMessage[]; hasMore: boolean }>;
  /** Opens a report; `false` when the room has {@linkcode MAX_OPEN_REPORTS} open already. */
  report(room: string, report: Report): Promise<boolean>;
  /** The room's open reports, oldest first. */
  reports(room: string): Promise<Report[]>;
  /** Closes the reports of message `ref` (acted on) or the one with `id` (dismissed); how many. */
  close(room: string, which: { ref: number } | { id: string }): Promise<number>;
  /** Forgets everything of a room (it was deleted). */
  clear(room: string): Promise<void>;
}
