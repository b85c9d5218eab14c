/**
 * {@linkcode LocalBus}: the bus of a single instance.
 *
 * @module
 */

import {
  type Bus,
  type BusHandler,
  type BusPayload,
  type BusState,
  CLOSED,
  OK,
  Subscribers,
} from "./bus.ts";

/**
 * The bus of a single instance: nothing is published, nothing arrives.
 *
 * @example Usage
 * ```ts
 * import { LocalBus } from "./local_bus.ts";
 * const bus = new LocalBus();
 * bus.publish({ kind: "typing", room: "lobby", member: { id: "u1", name: "ada" } });
 * bus.state; // { ok: true }
 * await bus.close();
 * ```
 */
export class LocalBus implements Bus {
  #subscribers = new Subscribers({});
  #closed = false;

  /** This instance's random id. */
  get id(): string {
    return this.#subscribers.id;
  }

  /** Always `{ ok: true }` until closed. */
  get state(): BusState {
    return this.#closed ? CLOSED : OK;
  }

  /** Does nothing: there is no other instance. */
  publish(_payload: BusPayload): void {}

  /** Keeps `handler`, which is never called. */
  subscribe(handler: BusHandler): () => void {
    return this.#subscribers.add(handler);
  }

  /** Forgets the handlers. */
  close(): Promise<void> {
    this.#closed = true;
    this.#subscribers.clear();
    return Promise.resolve();
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
