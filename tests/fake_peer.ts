/**
 * A {@linkcode Peer} without a socket, for unit tests of the hub: it decodes
 * and keeps every frame the hub sends, records close calls, and lets a test
 * await the next message of a type. Nothing here sleeps or polls: a wait is
 * a `Promise.withResolvers` settled by `send` or `close`.
 *
 * @module
 */

import type { Peer } from "../src/hub/peer.ts";
import type { ServerMessage } from "../src/protocol.ts";

/** A server message of one type. */
export type MessageOf<T extends ServerMessage["type"]> = Extract<ServerMessage, { type: T }>;

/** A close the hub asked for. */
export interface CloseCall {
  code: number;
  reason: string;
}

interface Waiter {
  match: (message: ServerMessage) => boolean;
  resolve: (message: ServerMessage) => void;
  reject: (error: Error) => void;
}

let count = 0;

/**
 * A peer that remembers what the hub sent it.
 *
 * `received` holds every message in arrival order, for assertions on order;
 * {@linkcode FakePeer.next} takes messages from a separate inbox, so waiting
 * for one never hides it from `received`.
 */
export class FakePeer implements Peer {
  /** A short id, for the hub's logs. */
  readonly id: string;
  /** Every message the hub sent, decoded, in order. */
  readonly received: ServerMessage[] = [];
  /** Every `close` call, in order (the hub should make at most one). */
  readonly closes: CloseCall[] = [];
  /** Frames the hub sent after the peer was closed (a real transport drops them). */
  dropped = 0;
  #open = true;
  #inbox: ServerMessage[] = [];
  #waiters = new Set<Waiter>();
  #closed = Promise.withResolvers<CloseCall>();

  /** The remote address's key, when the test gives one (budgets per address). */
  readonly address?: string;

  /** A new, open peer; `id` defaults to `peer1`, `peer2`, … */
  constructor(id = `peer${++count}`, address?: string) {
    this.id = id;
    if (address !== undefined) this.address = address;
  }

  /** `false` once `close` was called, as for a closing WebSocket. */
  get open(): boolean {
    return this.#open;
  }

  /** Resolves with the first close call. */
  get closed(): Promise<CloseCall> {
    return this.#closed.promise;
  }

  /** Decodes and keeps one frame (an object, or an array of them). */
  send(frame: string): void {
    if (!this.#open) {
      this.dropped++;
      return;
    }
    const data = JSON.parse(frame) as ServerMessage | ServerMessage[];
    for (const message of Array.isArray(data) ? data : [data]) {
      this.received.push(message);
      this.#deliver(message);
    }
  }

  /** Records the close; pending waits reject, since nothing more will come. */
  close(code: number, reason: string): void {
    this.closes.push({ code, reason });
    if (!this.#open) return;
    this.#open = false;
    this.#closed.resolve({ code, reason });
    for (const waiter of this.#waiters) {
      waiter.reject(new Error(`${this.id} was closed (${code} ${reason}) while waiting`));
    }
    this.#waiters.clear();
  }

  /**
   * Takes the first message of `type` (matching `where`) not taken yet,
   * waiting for it if it has not come.
   */
  next<T extends ServerMessage["type"]>(
    type: T,
    where: (message: MessageOf<T>) => boolean = () => true,
  ): Promise<MessageOf<T>> {
    return this.take((m) => m.type === type && where(m as MessageOf<T>)) as Promise<MessageOf<T>>;
  }

  /** Takes the first message matching `match` not taken yet, waiting for it if needed. */
  take(match: (message: ServerMessage) => boolean): Promise<ServerMessage> {
    const index = this.#inbox.findIndex(match);
    if (index >= 0) return Promise.resolve(this.#inbox.splice(index, 1)[0]);
    if (!this.#open) return Promise.reject(new Error(`${this.id} is closed: nothing will come`));
    const { promise, resolve, reject } = Promise.withResolvers<ServerMessage>();
    this.#waiters.add({ match, resolve, reject });
    return promise;
  }

  /** The messages of `type` received so far (taken or not), in order. */
  all<T extends ServerMessage["type"]>(type: T): MessageOf<T>[] {
    return this.received.filter((m) => m.type === type) as MessageOf<T>[];
  }

  #deliver(message: ServerMessage): void {
    for (const waiter of this.#waiters) {
      if (waiter.match(message)) {
        this.#waiters.delete(waiter);
        waiter.resolve(message);
        return;
      }
    }
    this.#inbox.push(message);
  }
}
