/**
 * Folding a change into the message it changes: the message's current state
 * after an edit, a delete or a reaction. Pure code, shared by every store
 * (which folds each change into its message as it stores it) and by the
 * hub's decisions (which read that state).
 *
 * The rules match the page's `static/conversation.js`, so a state folded
 * here and a state folded there from the same events are equal:
 *
 * - an edit by the message's author replaces the text and marks it `edited`;
 * - a delete (its author's, or a moderator's: `kind: "moderation"` with
 *   `action: "delete"`) marks it `deleted`, empties the text and drops its
 *   reactions;
 * - a reaction adds (`on: true`) or takes back (`on: false`) one user's
 *   emoji, the first reaction of each emoji first;
 * - nothing changes a deleted message.
 *
 * @module
 */

import type { ChatMessage, Reaction } from "../protocol.ts";

/**
 * `message` with `change` applied, as a new object (`message` is not
 * modified). A change that does not apply (another author's edit, a change
 * to a deleted message, a change to another message) returns `message`.
 *
 * @example Usage
 * ```ts
 * import { fold } from "./fold.ts";
 * const hi = { type: "message", id: 1, room: "r", userId: "u1", name: "ada", text: "hi", ts: 0, cid: "c1" } as const;
 * const like = { ...hi, id: 2, userId: "u2", name: "bob", text: "", cid: "c2", kind: "reaction", ref: 1, emoji: "👍", on: true } as const;
 * fold(hi, like).reactions; // [{ emoji: "👍", users: [{ id: "u2", name: "bob" }] }]
 * ```
 */
export function fold(message: ChatMessage, change: ChatMessage): ChatMessage {
  if (message.deleted || change.ref !== message.id || message.kind !== undefined) return message;
  switch (change.kind) {
    case "edit":
      if (change.userId !== message.userId) return message;
      return { ...message, text: change.text, edited: true };
    case "delete":
      return deleted(message);
    case "moderation":
      // A moderator's delete deletes any message; other acts change no message.
      return change.action === "delete" ? deleted(message) : message;
    case "reaction":
      return withReaction(message, change);
    default:
      return message;
  }
}

/** Whether `userId` has reacted with `emoji` to `message` (its current state). */
export function hasReacted(message: ChatMessage, userId: string, emoji: string): boolean {
  return message.reactions?.some((r) =>
    r.emoji === emoji && r.users.some((u) => u.id === userId)
  ) ??
    false;
}

function deleted(message: ChatMessage): ChatMessage {
  const { reactions: _reactions, edited: _edited, attachments: _files, ...rest } = message;
  return { ...rest, text: "", deleted: true };
}

function withReaction(message: ChatMessage, change: ChatMessage): ChatMessage {
  const emoji = change.emoji;
  if (emoji === undefined) return message;
  const user = { id: change.userId, name: change.name };
  const reactions: Reaction[] = [];
  let found = false;
  for (const reaction of message.reactions ?? []) {
    if (reaction.emoji !== emoji) {
      reactions.push(reaction);
      continue;
    }
    found = true;
    const others = reaction.users.filter((u) => u.id !== user.id);
    const users = change.on ? [...others, user] : others;
    if (change.on && reaction.users.some((u) => u.id === user.id)) {
      reactions.push(reaction); // already on: unchanged, in its place
    } else if (users.length > 0) reactions.push({ emoji, users });
  }
  if (!found && change.on) reactions.push({ emoji, users: [user] });
  const { reactions: _old, ...rest } = message;
  return reactions.length > 0 ? { ...rest, reactions } : rest;
}
