/**
 * A room: its members on this instance (a Set of peers, as the design card
 * says), and a queue that runs the room's events one after another, so
 * every member sees them in the same order.
 *
 * @module
 */

import type { ChatMessage, Member } from "../protocol.ts";
import type { MessageDraft } from "../store/history.ts";
import type { Peer } from "./peer.ts";

/** A `say` waiting in its room to be stored. */
export interface WaitingSay {
  draft: MessageDraft;
  /** The sender: a peer to ack (or refuse), or a callback for a server-side post. */
  sender: Peer | ((result: ChatMessage | Error) => void);
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
  /** The peers in this room on this instance, with who they are. */
  readonly members: Map<Peer, Member> = new Map();
  /** Highest message id sent to this room's peers; -1 until the room caught up with the store. */
  lastId = -1;
  /** When this instance last told the others who is here, in ms since the epoch. */
  announced = 0;
  /** `say`s waiting to be stored together, in arrival order. */
  says: WaitingSay[] = [];
  #tail: Promise<void> = Promise.resolve();
  #pending = 0;

  /** An empty room. */
  constructor(name: string) {
    this.name = name;
  }

  /** The room's peers. */
  get peers(): Iterable<Peer> {
    return this.members.keys();
  }

  /** `true` when the room has no members and no queued work: it can be forgotten. */
  get idle(): boolean {
    return this.members.size === 0 && this.#pending === 0;
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

  /** Resolves once every task queued so far has run. */
  settled(): Promise<void> {
    return this.#tail;
  }
}
