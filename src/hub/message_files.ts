/**
 * The files a `say` carries, as the hub checks them before the message is
 * stored: each must be an upload of the sender's, for this room, not posted
 * in another message. A retried `say` (same sender and `cid`, stored
 * already) finds its files posted in its own message, and goes on to the
 * store, which answers it as the duplicate it is.
 *
 * @module
 */

import type { Attachments } from "../attachments.ts";
import type { Attachment, ChatMessage, ErrorCode } from "../protocol.ts";
import type { HistoryStore } from "../store/history.ts";

/** The checked files, as the message shows them, or why the `say` is refused. */
export type FilesVerdict =
  | { ok: true; files: Attachment[] }
  | { ok: false; code: ErrorCode; message: string };

/**
 * Checks the files `ids` that `userId` posts in `room` with `cid`. Rejects
 * when the file store or the history cannot be read.
 *
 * @example Usage
 * ```ts ignore
 * const verdict = await checkFiles(attachments, history, ["k3…"], "u1", "lobby", "c1");
 * if (verdict.ok) draft.attachments = verdict.files;
 * ```
 */
export async function checkFiles(
  attachments: Attachments,
  history: HistoryStore,
  ids: string[],
  userId: string,
  room: string,
  cid: string,
): Promise<FilesVerdict> {
  const { problems, files } = await attachments.inspect(ids, userId, room);
  for (const { id, code, messageId } of problems) {
    if (code === "taken" && messageId !== undefined) {
      if (await history.stored(room, userId, cid) === messageId) continue; // a retry
    }
    return refusal(code, id);
  }
  return { ok: true, files };
}

/** The ids of the files `message` carries. */
export function fileIds(message: Pick<ChatMessage, "attachments"> | null | undefined): string[] {
  return message?.attachments?.map((file) => file.id) ?? [];
}

function refusal(code: string, id: string): FilesVerdict {
  const doing = "Cannot send message";
  switch (code) {
    case "not_found":
      return { ok: false, code: "not_found", message: `${doing}: no file '${id}'` };
    case "forbidden":
      return {
        ok: false,
        code: "forbidden",
        message: `${doing}: file '${id}' was uploaded by someone else`,
      };
    case "other_room":
      return {
        ok: false,
        code: "invalid_message",
        message: `${doing}: file '${id}' was uploaded for another room`,
      };
    case "taken":
      return {
        ok: false,
        code: "invalid_message",
        message: `${doing}: file '${id}' is posted in another message`,
      };
    default:
      return { ok: false, code: "invalid_message", message: `${doing}: '${id}' is not a file id` };
  }
}
