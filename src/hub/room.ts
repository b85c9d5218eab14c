/**
 * A room: its members on this instance (a Set of peers, as the design card
 * says, each with who it is), and a queue that runs the room's events one
 * after another, so every member sees them in the same order.
 *
 * Presence is per user: one user with two connections in the room (two tabs
 * of one account, two devices of one JWT subject) is one member, counted per
 * connection underneath.
 *
 * @module
 */

import type { ChatMessage, Member } from "../protocol.ts";
import type { MessageDraft } from "../store/history.ts";
import { emptyPolicy, type RoomPolicy } from "../store/moderation.ts";
import type { Peer } from "./peer.ts";

/** A `say` waiting in its room to be stored. */
export interface WaitingSay {
  draft: MessageDraft;
  /** The sender: a peer to ack (or refuse), or a callback for a server-side post. */
  sender: Peer | ((result: ChatMessage | Error) => void);
}

/** One user in a room here: who, and through how many connections. */
interface Presence {
  member: Member;
  connections: number;
}

/**
 * One room on this instance.
 *
 * @example Usage
 * ```ts
 * import { Room } from "./room.ts";
 * const room = new Room("lobby");
 * const order: number[] = [];
 * room.enqueue(async () => { await Promise.resolve(); order.push(1); }, console.error);
 * room.enqueue(() => { order.push(2); return Promise.resolve(); }, console.error);
 * await room.settled(); // order is [1, 2]
 * ```
 */
export class Room {
  /** The room's name. */
  readonly name: string;
  /** Highest message id sent to this room's peers; -1 until the room caught up with the store. */
  lastId = -1;
  /** When the newest message this instance saw was stored, in ms since the epoch (0: unknown). */
  lastTs = 0;
  /** When this instance last told the others who is here, in ms since the epoch. */
  announced = 0;
  /** `say`s waiting to be stored together, in arrival order. */
  says: WaitingSay[] = [];
  /** What moderation decided (read from the store when the room is first joined here). */
  policy: RoomPolicy = emptyPolicy();
  /** When each member last posted, for slow mode (this instance's view). */
  readonly lastSay: Map<string, number> = new Map();
  /** Each connection in the room, with the user it belongs to. */
  #connections = new Map<Peer, Member>();
  /** Each user in the room, by user id. */
  #users = new Map<string, Presence>();
  #tail: Promise<void> = Promise.resolve();
  #pending = 0;

  /** An empty room. */
  constructor(name: string) {
    this.name = name;
  }

  /** The room's connections. */
  get peers(): Iterable<Peer> {
    return this.#connections.keys();
  }

  /** How many connections the room has here. */
  get connections(): number {
    return this.#connections.size;
  }

  /** The users in the room here, once each, in the order they came. */
  get members(): Member[] {
    return [...this.#users.values()].map((p) => p.member);
  }

  /** `true` when the room has no members and no queued work: it can be forgotten. */
  get idle(): boolean {
    return this.#connections.size === 0 && this.#pending === 0;
  }

  /** Whether `peer` is in the room. */
  has(peer: Peer): boolean {
    return this.#connections.has(peer);
  }

  /** Who `peer` is in the room, if it is in it. */
  memberOf(peer: Peer): Member | undefined {
    return this.#connections.get(peer);
  }

  /** The member with user id `userId`, if that user is here. */
  user(userId: string): Member | undefined {
    return this.#users.get(userId)?.member;
  }

  /** The connections of user `userId` in the room. */
  peersOf(userId: string): Peer[] {
    return [...this.#connections].filter(([, m]) => m.id === userId).map(([peer]) => peer);
  }

  /**
   * Adds a connection as `member`. Returns `true` when that user was not in
   * the room yet (a presence `join` for the others), `false` for a further
   * connection of a user already here.
   */
  add(peer: Peer, member: Member): boolean {
    const present = this.#users.get(member.id);
    this.#connections.set(peer, present?.member ?? member);
    if (present) {
      present.connections++;
      return false;
    }
    this.#users.set(member.id, { member, connections: 1 });
    return true;
  }

  /**
   * Removes a connection. Returns its member when that was the user's last
   * connection here (a presence `leave`), else `undefined`.
   */
  remove(peer: Peer): Member | undefined {
    const member = this.#connections.get(peer);
    if (!member) return undefined;
    this.#connections.delete(peer);
    const present = this.#users.get(member.id)!;
    if (--present.connections > 0) return undefined;
    this.#users.delete(member.id);
    return present.member;
  }

  /** Gives user `userId` a new name here; returns the member as it was, or `undefined`. */
  rename(userId: string, name: string): Member | undefined {
    const present = this.#users.get(userId);
    if (!present) return undefined;
    const before = present.member;
    present.member = { ...before, name };
    for (const [peer, member] of this.#connections) {
      if (member.id === userId) this.#connections.set(peer, present.member);
    }
    return before;
  }

  /**
   * Runs `task` after every earlier task of the room. A task that throws is
   * passed to `onError`; the queue goes on. `onDone` runs after each task.
   */
  enqueue(task: () => Promise<void>, onError: (error: unknown) => void, onDone?: () => void): void {
    this.#pending++;
    this.#tail = this.#tail.then(task).catch(onError).finally(() => {
      this.#pending--;
      onDone?.();
    });
  }

  /** Tasks queued and not done yet. */
  get queued(): number {
    return this.#pending;
  }

  /** Resolves once every task queued so far has run. */
  settled(): Promise<void> {
    return this.#tail;
  }
}
