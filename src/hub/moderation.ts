/**
 * The rules of moderation, pure: who may do what in a room (owner,
 * moderators, operators, members), what a moderation act does to the
 * room's policy, and whether a member may speak now (mutes, slow mode).
 * The hub reads the policy from the store, asks these rules, stores the
 * act as an event in the room's sequence, and applies it (here and on every
 * instance that delivers the event) with {@linkcode applyAct}.
 *
 * @module
 */

import type { ChatMessage, ErrorCode, Member, ModAction, ModMessage } from "../protocol.ts";
import { inForce, type RoomPolicy } from "../store/moderation.ts";

/** A member's standing in a room: `operator` is the server's (API token, JWT role). */
export type Role = "operator" | "owner" | "moderator" | "member";

/** An act a moderator asks for: a `mod` frame's fields (or the server API's), see `protocol.ts`. */
export type ModRequest = Omit<ModMessage, "type" | "room" | "cid">;

/** What an allowed act stores: the moderation event's fields. */
export type ModEvent =
  & Pick<
    ChatMessage,
    "action" | "target" | "ref" | "reason" | "until" | "durationMs"
  >
  & { text: string };

/** The decision on an act: store this event, or refuse. */
export type ModVerdict =
  | { ok: true; event: ModEvent }
  | { ok: false; code: ErrorCode; message: string };

/** Acts only the room's owner (or an operator) may do. */
const OWNER_ACTS: ReadonlySet<ModAction> = new Set(["promote", "demote", "owner"]);
/** Acts that need a target user. */
const ON_USER: ReadonlySet<ModAction> = new Set([
  "kick",
  "mute",
  "unmute",
  "ban",
  "unban",
  "promote",
  "demote",
  "owner",
]);
/** The longest mute or ban with an end: a year. */
export const MAX_SANCTION_MS = 365 * 86_400_000;
/** The longest slow mode interval: an hour. */
export const MAX_SLOW_MS = 3_600_000;
/** The longest topic, in characters. */
export const MAX_TOPIC_LENGTH = 300;

/**
 * `userId`'s role in a room with `policy`; `operator` (an operator's own
 * role, from the API token or a JWT's `role` claim) wins.
 *
 * @example Usage
 * ```ts
 * import { roleOf } from "./moderation.ts";
 * roleOf("u1", { owner: "u1", moderators: [], slowMs: 0, mutes: {}, bans: {} }); // "owner"
 * ```
 */
export function roleOf(
  userId: string,
  policy: RoomPolicy,
  operator?: "admin" | "moderator",
): Role {
  if (operator === "admin") return "operator";
  if (policy.owner === userId) return "owner";
  if (operator === "moderator" || policy.moderators.includes(userId)) return "moderator";
  return "member";
}

/**
 * Decides an act by `actor` (with role `role`) on a room with `policy`,
 * against `target` (the user acted on, with their role, when there is one)
 * at `now`. `isAccount` says whether a promoted user is an account.
 */
export function decideAct(
  request: ModRequest,
  actor: Role,
  target: { member: Member; role: Role; account: boolean } | null,
  now: number,
): ModVerdict {
  const { action } = request;
  const doing = `Cannot ${action === "dismiss" ? "dismiss report" : action}`;
  if (actor === "member") {
    return refuse("forbidden", `${doing}: only the room's owner and moderators may`);
  }
  if (OWNER_ACTS.has(action) && actor !== "owner" && actor !== "operator") {
    return refuse("forbidden", `${doing}: only the room's owner may`);
  }
  if (action === "owner" && actor !== "operator") {
    return refuse("forbidden", `${doing}: only the server's operator gives a room an owner`);
  }
  if (ON_USER.has(action)) {
    if (!target) return refuse("invalid_message", `${doing}: 'userId' names the user`);
    if (
      actor === "moderator" && (target.role === "owner" || target.role === "operator") ||
      actor === "owner" && target.role === "operator"
    ) {
      return refuse("forbidden", `${doing}: not the room's owner or an operator`);
    }
    if (target.role === actor && actor !== "operator" && action !== "demote") {
      return refuse("forbidden", `${doing}: not another ${actor}`);
    }
    if ((action === "promote" || action === "owner") && !target.account) {
      return refuse("invalid_message", `${doing}: only an account can be given a role`);
    }
  }
  if ((action === "delete" || action === "dismiss") && request.ref === undefined) {
    return refuse("invalid_message", `${doing}: 'ref' names the message`);
  }
  const event: ModEvent = { action, text: "" };
  if (target) event.target = target.member;
  if (request.ref !== undefined) event.ref = request.ref;
  if (request.reason) event.reason = request.reason;
  if (action === "mute" || action === "ban") {
    const ms = request.durationMs;
    if (ms !== undefined) {
      if (ms < 1 || ms > MAX_SANCTION_MS) {
        return refuse("invalid_message", `${doing}: 'durationMs' must be 1 ms to a year`);
      }
      event.until = now + ms;
    }
  }
  if (action === "slow") {
    const ms = request.durationMs ?? 0;
    if (ms < 0 || ms > MAX_SLOW_MS) {
      return refuse("invalid_message", `${doing}: 'durationMs' must be 0 (off) to an hour`);
    }
    event.durationMs = ms;
  }
  if (action === "topic") {
    const topic = (request.topic ?? request.reason ?? "").trim();
    if ([...topic].length > MAX_TOPIC_LENGTH) {
      return refuse("invalid_message", `${doing}: at most ${MAX_TOPIC_LENGTH} characters`);
    }
    event.text = topic;
    delete event.reason;
  }
  return { ok: true, event };
}

/** `policy` after a moderation event (a new object; `policy` is not changed). */
export function applyAct(policy: RoomPolicy, event: ChatMessage): RoomPolicy {
  const next: RoomPolicy = {
    ...policy,
    moderators: [...policy.moderators],
    mutes: { ...policy.mutes },
    bans: { ...policy.bans },
  };
  const target = event.target?.id;
  const sanction = {
    by: event.by?.id ?? event.userId,
    at: event.ts,
    ...(event.until === undefined ? {} : { until: event.until }),
    ...(event.reason === undefined ? {} : { reason: event.reason }),
  };
  switch (event.action) {
    case "mute":
      if (target) next.mutes[target] = sanction;
      break;
    case "unmute":
      if (target) delete next.mutes[target];
      break;
    case "ban":
      if (target) next.bans[target] = sanction;
      break;
    case "unban":
      if (target) delete next.bans[target];
      break;
    case "slow":
      next.slowMs = event.durationMs ?? 0;
      break;
    case "topic":
      if (event.text) next.topic = event.text;
      else delete next.topic;
      break;
    case "promote":
      if (target && !next.moderators.includes(target)) next.moderators.push(target);
      break;
    case "demote":
      if (target) next.moderators = next.moderators.filter((id) => id !== target);
      break;
    case "owner":
      if (target) next.owner = target;
      break;
  }
  return next;
}

/**
 * Whether `userId` may post in a room with `policy` at `now`, with their
 * role and when they last posted there: refused while muted
 * (`muted`, with its end) and in slow mode (`slow_mode`, with the wait).
 * Owners, moderators and operators are neither muted by slow mode.
 */
export function mayPost(
  userId: string,
  role: Role,
  policy: RoomPolicy,
  lastSay: number | undefined,
  now: number,
): { ok: true } | { ok: false; code: ErrorCode; retryAfterMs?: number; until?: number } {
  const mute = inForce(policy.mutes[userId], now);
  if (mute) return { ok: false, code: "muted", ...(mute.until ? { until: mute.until } : {}) };
  if (policy.slowMs > 0 && role === "member" && lastSay !== undefined) {
    const wait = lastSay + policy.slowMs - now;
    if (wait > 0) return { ok: false, code: "slow_mode", retryAfterMs: wait };
  }
  return { ok: true };
}

function refuse(code: ErrorCode, message: string): ModVerdict {
  return { ok: false, code, message };
}
