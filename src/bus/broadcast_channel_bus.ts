/**
 * {@linkcode BroadcastChannelBus}: fan-out between isolates of one process
 * (`deno serve --parallel`) over a `BroadcastChannel`.
 *
 * @module
 */

import {
  type Bus,
  type BusHandler,
  type BusOptions,
  type BusPayload,
  type BusState,
  CLOSED,
  OK,
  Subscribers,
} from "./bus.ts";

/** Options for {@linkcode BroadcastChannelBus}. */
export interface BroadcastChannelBusOptions extends BusOptions {
  /**
   * The channel name: instances on the same name talk to each other.
   * @default {"deno-chat"}
   */
  name?: string;
}

/**
 * A bus over a `BroadcastChannel`: reaches every other `BroadcastChannel` of
 * the same name in this process (other workers, or other instances in the
 * same isolate) and, on Deno Deploy, the other isolates of the app. It does
 * not reach other processes: use `RedisBus` from `redis_bus.ts`.
 *
 * @example Usage
 * ```ts
 * import { BroadcastChannelBus } from "./broadcast_channel_bus.ts";
 * const a = new BroadcastChannelBus({ name: "doc-example" });
 * const b = new BroadcastChannelBus({ name: "doc-example" });
 * b.subscribe((event) => console.log(event.kind, event.origin === a.id));
 * a.publish({ kind: "typing", room: "lobby", member: { id: "u1", name: "ada" } });
 * await a.close();
 * await b.close();
 * ```
 */
export class BroadcastChannelBus implements Bus {
  #subscribers: Subscribers;
  #channel: BroadcastChannel;
  #closed = false;
  #dropped = 0;

  /** Opens the channel; call {@linkcode BroadcastChannelBus.close} to release it. */
  constructor(options: BroadcastChannelBusOptions = {}) {
    this.#subscribers = new Subscribers(options);
    this.#channel = new BroadcastChannel(options.name ?? "deno-chat");
    this.#channel.onmessage = (event) => this.#subscribers.deliver(event.data);
    this.#channel.onmessageerror = () =>
      this.#subscribers.report(new TypeError("Cannot read bus event: it could not be cloned"));
  }

  /** This instance's random id. */
  get id(): string {
    return this.#subscribers.id;
  }

  /** `{ ok: true }` until closed. */
  get state(): BusState {
    return this.#closed ? CLOSED : OK;
  }

  /** Events that could not be posted (after close, or not cloneable). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Posts the event to the other instances; never throws. */
  publish(payload: BusPayload): void {
    if (this.#closed) {
      this.#dropped++;
      return;
    }
    try {
      this.#channel.postMessage({ ...payload, origin: this.id });
    } catch {
      this.#dropped++;
    }
  }

  /** Calls `handler` with every event from other instances. */
  subscribe(handler: BusHandler): () => void {
    return this.#subscribers.add(handler);
  }

  /** Closes the channel. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#subscribers.clear();
      this.#channel.close();
    }
    return Promise.resolve();
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
