/**
 * Edits, deletes and reactions: whether one may be made, decided from the
 * current state of the message it refers to (one read, whatever the size of
 * the room). Pure code: the hub reads the message from the store, this
 * decides. A retried change is recognised before this, by its `cid`.
 *
 * @module
 */

import type {
  ChatMessage,
  DeleteMessage,
  EditMessage,
  ErrorCode,
  MessageKind,
  ReactMessage,
} from "../protocol.ts";
import { hasReacted } from "../store/fold.ts";

/** A change a member asks for. */
export type ChangeRequest = EditMessage | DeleteMessage | ReactMessage;

/** What the hub stores for an allowed change, besides who sent it. */
export interface ChangeEvent {
  kind: MessageKind;
  ref: number;
  text: string;
  emoji?: string;
  on?: boolean;
}

/** The decision: store this event, or refuse. */
export type ChangeVerdict =
  | { ok: true; event: ChangeEvent }
  | { ok: false; code: ErrorCode; message: string };

const KINDS = { edit: "edit", delete: "delete", react: "reaction" } as const;
/** Different emoji one message may carry. */
export const MAX_EMOJI = 20;
/**
 * Reactions one message may carry in all (each user's each emoji): its state
 * must stay within what one store value holds.
 */
export const MAX_REACTIONS = 500;

/**
 * Decides a change by `userId` to `original`: message `request.ref` in its
 * current state, or `null` when the room holds no such message.
 *
 * @example Usage
 * ```ts
 * import { decideChange } from "./changes.ts";
 * const original = { type: "message", id: 1, room: "r", userId: "u1", name: "ada", text: "hi", ts: 0, cid: "c1" } as const;
 * decideChange({ type: "react", ref: 1, emoji: "👍", cid: "c2" }, "u2", original);
 * // { ok: true, event: { kind: "reaction", ref: 1, text: "", emoji: "👍", on: true } }
 * ```
 */
export function decideChange(
  request: ChangeRequest,
  userId: string,
  original: ChatMessage | null,
): ChangeVerdict {
  const doing = request.type === "react" ? "react to" : request.type;
  if (!original || original.id !== request.ref || original.kind !== undefined) {
    return refuse("not_found", `Cannot ${doing} message: no message ${request.ref} in this room`);
  }
  if (original.deleted) return refuse("deleted", `Cannot ${doing} message: it was deleted`);
  if (request.type !== "react" && original.userId !== userId) {
    return refuse("forbidden", `Cannot ${doing} message: it is someone else's`);
  }
  const kind = KINDS[request.type];
  if (request.type === "edit") {
    return { ok: true, event: { kind, ref: request.ref, text: request.text } };
  }
  if (request.type === "delete") return { ok: true, event: { kind, ref: request.ref, text: "" } };
  const on = !hasReacted(original, userId, request.emoji);
  if (on) {
    const reactions = original.reactions ?? [];
    const given = reactions.reduce((sum, r) => sum + r.users.length, 0);
    if (!reactions.some((r) => r.emoji === request.emoji) && reactions.length >= MAX_EMOJI) {
      return refuse(
        "invalid_message",
        `Cannot react to message: it has ${MAX_EMOJI} different reactions`,
      );
    }
    if (given >= MAX_REACTIONS) {
      return refuse(
        "invalid_message",
        `Cannot react to message: it has ${MAX_REACTIONS} reactions`,
      );
    }
  }
  return { ok: true, event: { kind, ref: request.ref, text: "", emoji: request.emoji, on } };
}

function refuse(code: ErrorCode, message: string): ChangeVerdict {
  return { ok: false, code, message };
}
