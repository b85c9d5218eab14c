/**
 * Edits, deletes and reactions: whether one may be made, decided from the
 * message it refers to and the events after it. Pure code: the hub reads the
 * events from the store, this decides.
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

/** The decision: store this event, acknowledge an earlier one again, or refuse. */
export type ChangeVerdict =
  | { ok: true; event: ChangeEvent }
  | { ok: true; duplicate: ChatMessage }
  | { ok: false; code: ErrorCode; message: string };

const KINDS = { edit: "edit", delete: "delete", react: "reaction" } as const;

/**
 * Decides a change by `userId`, given `events`: the room's messages from the
 * one it refers to (`request.ref`) onwards, oldest first.
 *
 * @example Usage
 * ```ts
 * import { decideChange } from "./changes.ts";
 * const original = { type: "message", id: 1, room: "r", userId: "u1", name: "ada", text: "hi", ts: 0, cid: "c1" } as const;
 * decideChange({ type: "react", ref: 1, emoji: "👍", cid: "c2" }, "u2", [original]);
 * // { ok: true, event: { kind: "reaction", ref: 1, text: "", emoji: "👍", on: true } }
 * ```
 */
export function decideChange(
  request: ChangeRequest,
  userId: string,
  events: ChatMessage[],
): ChangeVerdict {
  const doing = request.type === "react" ? "react to" : request.type;
  const original = events[0];
  if (!original || original.id !== request.ref || original.kind !== undefined) {
    return refuse("not_found", `Cannot ${doing} message: no message ${request.ref} in this room`);
  }
  // A retry of a change already stored is acknowledged again, whatever came since.
  const earlier = events.find((m) =>
    m.userId === userId && m.cid === request.cid && m.ref === request.ref
  );
  if (earlier) return { ok: true, duplicate: earlier };
  if (events.some((m) => m.kind === "delete" && m.ref === request.ref)) {
    return refuse("deleted", `Cannot ${doing} message: it was deleted`);
  }
  if (request.type !== "react" && original.userId !== userId) {
    return refuse("forbidden", `Cannot ${doing} message: it is someone else's`);
  }
  const kind = KINDS[request.type];
  if (request.type === "edit") {
    return { ok: true, event: { kind, ref: request.ref, text: request.text } };
  }
  if (request.type === "delete") return { ok: true, event: { kind, ref: request.ref, text: "" } };
  const on = !reacted(events, userId, request.ref, request.emoji);
  return { ok: true, event: { kind, ref: request.ref, text: "", emoji: request.emoji, on } };
}

/** Whether `userId`'s reaction `emoji` to message `ref` is on after `events`. */
function reacted(events: ChatMessage[], userId: string, ref: number, emoji: string): boolean {
  let on = false;
  for (const m of events) {
    if (m.kind === "reaction" && m.ref === ref && m.userId === userId && m.emoji === emoji) {
      on = m.on === true;
    }
  }
  return on;
}

function refuse(code: ErrorCode, message: string): ChangeVerdict {
  return { ok: false, code, message };
}
