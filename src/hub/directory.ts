/**
 * The room directory, as `rooms` and `GET /api/v1/rooms` list it: the rooms
 * with members (here or on other instances), then the rooms the store holds
 * history for, each group most recently active first. The store's list of
 * rooms is read at most every {@linkcode DIRECTORY_TTL_MS} (it can hold
 * `MAX_ROOMS` entries), and sooner after this instance created or deleted a
 * room.
 *
 * @module
 */

import type { Logger } from "../log.ts";
import type { Member, RoomInfo } from "../protocol.ts";
import type { HistoryStore, StoredRoom } from "../store/history.ts";

/** Most rooms the directory lists. */
export const DIRECTORY_LIMIT = 200;
/** How long the store's room list is reused, in ms. */
export const DIRECTORY_TTL_MS = 5000;

/** A room as this instance sees it now. */
export interface LiveRoom {
  name: string;
  /** Its members here. */
  members: Member[];
  lastId: number;
  lastTs: number;
}

/** What the directory reads besides the store. */
export interface DirectorySources {
  /** The rooms this instance holds. */
  live(): Iterable<LiveRoom>;
  /** Rooms with members on other instances, with how many. */
  remoteRooms(): Map<string, number>;
  /** The members other instances hold in a room. */
  remoteMembers(room: string): Member[];
}

/**
 * Whether a room is ever listed: never one named `_…` (private by name),
 * nor a direct conversation (`dm:…`).
 */
export function listed(name: string): boolean {
  return !name.startsWith("_") && !name.startsWith("dm:");
}

/**
 * The directory of one instance.
 *
 * @example Usage
 * ```ts ignore
 * import { RoomDirectory } from "./directory.ts";
 * const directory = new RoomDirectory(history, sources, console.log);
 * const rooms = await directory.list(); // [{ name, members, lastId, lastTs }, …]
 * ```
 */
export class RoomDirectory {
  #history: HistoryStore;
  #sources: DirectorySources;
  #log: Logger;
  #now: () => number;
  #cached: { rooms: StoredRoom[]; at: number } | null = null;
  #loading: Promise<StoredRoom[]> | null = null;

  /** A directory over `history`'s rooms and `sources`' live ones. */
  constructor(
    history: HistoryStore,
    sources: DirectorySources,
    log: Logger,
    now: () => number = Date.now,
  ) {
    this.#history = history;
    this.#sources = sources;
    this.#log = log;
    this.#now = now;
  }

  /** Reads the store's list again at the next {@linkcode RoomDirectory.list}. */
  invalidate(): void {
    this.#cached = null;
  }

  /**
   * The listed rooms, at most {@linkcode DIRECTORY_LIMIT}, only those in
   * `allowed` when given (a token's `rooms` claim).
   */
  async list(allowed?: string[]): Promise<RoomInfo[]> {
    const rooms = new Map<string, RoomInfo>();
    for (const stored of await this.#stored()) rooms.set(stored.name, { ...stored, members: 0 });
    for (const [name, members] of this.#sources.remoteRooms()) {
      const info = rooms.get(name) ?? { name, members: 0, lastId: 0, lastTs: 0 };
      rooms.set(name, { ...info, members });
    }
    for (const room of this.#sources.live()) {
      if (room.members.length === 0) continue;
      const info = rooms.get(room.name) ?? { name: room.name, members: 0, lastId: 0, lastTs: 0 };
      const remote = this.#sources.remoteMembers(room.name);
      const ids = new Set([...room.members, ...remote].map((m) => m.id));
      rooms.set(room.name, {
        name: room.name,
        members: ids.size,
        lastId: Math.max(info.lastId, room.lastId),
        lastTs: Math.max(info.lastTs, room.lastTs),
      });
    }
    return [...rooms.values()]
      .filter(({ name }) => listed(name) && (!allowed || allowed.includes(name)))
      .sort((a, b) =>
        Number(b.members > 0) - Number(a.members > 0) || b.lastTs - a.lastTs ||
        b.members - a.members || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
      )
      .slice(0, DIRECTORY_LIMIT);
  }

  /** The store's rooms, read again at most every {@linkcode DIRECTORY_TTL_MS}. */
  async #stored(): Promise<StoredRoom[]> {
    const cached = this.#cached;
    if (cached && this.#now() - cached.at < DIRECTORY_TTL_MS) return cached.rooms;
    this.#loading ??= this.#history.rooms().then((rooms) => {
      this.#cached = { rooms, at: this.#now() };
      return rooms;
    }, (error) => {
      this.#log({ event: "error", error: `directory: ${error}` });
      return cached?.rooms ?? [];
    }).finally(() => this.#loading = null);
    return await this.#loading;
  }
}
