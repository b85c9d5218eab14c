/**
 * Files and the messages they are posted in: what the hub calls when a
 * message carrying file ids is stored ({@linkcode Attachments.check} before,
 * {@linkcode Attachments.attach} after), edited without one of them
 * ({@linkcode Attachments.detach}), or deleted or pruned
 * ({@linkcode Attachments.deleteFiles}); and the sweep, run every minute on
 * every instance, that deletes files never posted within
 * `orphanAgeMs` (10 minutes) and uploads a crash cut off.
 *
 * @module
 */

import type { Logger } from "./log.ts";
import type { Attachment } from "./protocol.ts";
import {
  type AttachResult,
  FILE_ID_PATTERN,
  type FileStore,
  type StoredFile,
} from "./store/files.ts";

/** How long an uploaded file may wait to be posted before the sweep deletes it, in ms. */
export const ORPHAN_AGE_MS = 10 * 60_000;
/** How often each instance sweeps, in ms. */
export const SWEEP_INTERVAL_MS = 60_000;

/** Options for {@linkcode Attachments}. */
export interface AttachmentsOptions {
  /** Where the files are. */
  files: FileStore;
  /**
   * How long a file may stay loose (uploaded and not posted, detached, or an
   * upload under way) before the sweep deletes it, in ms. It must be longer
   * than the longest upload may take (`uploadTimeoutMs` of the largest).
   * @default {ORPHAN_AGE_MS}
   */
  orphanAgeMs?: number;
  /**
   * How often {@linkcode Attachments.start} sweeps, in ms.
   * @default {SWEEP_INTERVAL_MS}
   */
  sweepIntervalMs?: number;
  /**
   * The wall clock, in ms since the epoch.
   * @default {Date.now}
   */
  now?: () => number;
  /**
   * Where sweeps that deleted something, and failed ones, are logged.
   * @default {() => {}}
   */
  log?: Logger;
}

/** What {@linkcode Attachments.check} found wrong with one id. */
export interface AttachProblem {
  id: string;
  /** Why it cannot be posted. */
  code: Exclude<AttachResult, "attached"> | "invalid";
  /** With `taken`: the message it is posted in (a retried say's own, maybe). */
  messageId?: number;
}

/** What a message shows of a file. */
function shown(file: StoredFile): Attachment {
  const { id, name, size, type, width, height } = file;
  return {
    id,
    name,
    size,
    type,
    ...(width === undefined ? {} : { width }),
    ...(height === undefined ? {} : { height }),
  };
}

/**
 * Ties files to messages, and sweeps the ones never posted.
 *
 * @example Usage
 * ```ts ignore
 * import { Attachments } from "./attachments.ts";
 * const attachments = new Attachments({ files });
 * // A say with files [a, b] from user u1 in room lobby:
 * const problems = await attachments.check([a, b], "u1", "lobby"); // [] when all may be posted
 * // … the message is stored as id 42 …
 * await attachments.attach([a, b], "u1", "lobby", 42);
 * // The message is deleted (or pruned):
 * await attachments.deleteFiles([a, b]);
 * ```
 */
export class Attachments {
  #files: FileStore;
  #orphanAgeMs: number;
  #sweepIntervalMs: number;
  #now: () => number;
  #log: Logger;
  #timer: ReturnType<typeof setInterval> | undefined;
  #sweeping: Promise<number> | undefined;

  /** Creates the service; see {@linkcode AttachmentsOptions}. Call `start()` to sweep. */
  constructor(options: AttachmentsOptions) {
    this.#files = options.files;
    this.#orphanAgeMs = options.orphanAgeMs ?? ORPHAN_AGE_MS;
    this.#sweepIntervalMs = options.sweepIntervalMs ?? SWEEP_INTERVAL_MS;
    this.#now = options.now ?? Date.now;
    this.#log = options.log ?? (() => {});
  }

  /**
   * Why each of `ids` cannot be posted by `owner` in `room` (malformed, not
   * found, someone else's, another room's, or posted already); `[]` when all
   * can. Read before the message is stored; {@linkcode Attachments.attach}
   * decides for good afterwards.
   */
  async check(ids: string[], owner: string, room: string): Promise<AttachProblem[]> {
    return (await this.inspect(ids, owner, room)).problems;
  }

  /**
   * {@linkcode Attachments.check}, and what a message carrying `ids` shows
   * of each file that may be posted: its name, size, type and image size.
   */
  async inspect(
    ids: string[],
    owner: string,
    room: string,
  ): Promise<{ problems: AttachProblem[]; files: Attachment[] }> {
    const problems: AttachProblem[] = [];
    const files: Attachment[] = [];
    for (const id of ids) {
      if (!FILE_ID_PATTERN.test(id)) {
        problems.push({ id, code: "invalid" });
        continue;
      }
      const file = await this.#files.stat(id);
      const code = !file
        ? "not_found"
        : file.owner !== owner
        ? "forbidden"
        : file.room !== room
        ? "other_room"
        : file.messageId !== undefined
        ? "taken"
        : null;
      if (code === "taken") problems.push({ id, code, messageId: file!.messageId });
      else if (code) problems.push({ id, code });
      if (file && (!code || code === "taken")) files.push(shown(file));
    }
    return { problems, files };
  }

  /**
   * Attaches each of `ids` to message `messageId` of `room`, when `owner`
   * uploaded it for that room and it is not posted elsewhere; resolves with
   * each id's result (`attached`, or why not). Repeating it for the same
   * message changes nothing.
   */
  async attach(
    ids: string[],
    owner: string,
    room: string,
    messageId: number,
  ): Promise<Map<string, AttachResult>> {
    const results = new Map<string, AttachResult>();
    for (const id of ids) {
      results.set(
        id,
        FILE_ID_PATTERN.test(id)
          ? await this.#files.attach(id, owner, room, messageId)
          : "not_found",
      );
    }
    return results;
  }

  /**
   * Detaches `ids` from their message (an edit dropped them): loose again,
   * so the sweep deletes them after `orphanAgeMs` unless posted again.
   */
  async detach(ids: string[]): Promise<void> {
    const now = this.#now();
    for (const id of ids) if (FILE_ID_PATTERN.test(id)) await this.#files.detach(id, now);
  }

  /**
   * Deletes `ids` (their message was deleted or pruned, or the room was);
   * resolves with how many existed.
   */
  async deleteFiles(ids: string[]): Promise<number> {
    let deleted = 0;
    for (const id of ids) {
      if (FILE_ID_PATTERN.test(id) && await this.#files.delete(id)) deleted++;
    }
    return deleted;
  }

  /**
   * Deletes what has been loose for longer than `orphanAgeMs`; resolves
   * with how many. One sweep at a time: a call during one joins it.
   */
  sweep(): Promise<number> {
    this.#sweeping ??= this.#files.sweep(this.#now() - this.#orphanAgeMs).finally(() => {
      this.#sweeping = undefined;
    });
    return this.#sweeping;
  }

  /** Sweeps every `sweepIntervalMs` until {@linkcode Attachments.close}; does not keep the process alive. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      this.sweep().then(
        (swept) => swept && this.#log({ event: "files", swept }),
        (error) => this.#log({ event: "files", state: "sweep failed", reason: String(error) }),
      );
    }, this.#sweepIntervalMs);
    Deno.unrefTimer(this.#timer);
  }

  /** Stops sweeping and waits for a sweep under way. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#sweeping?.catch(() => {});
  }
}
