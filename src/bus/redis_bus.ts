/**
 * {@linkcode RedisBus}: fan-out between processes or machines over Redis
 * pub/sub.
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
  Subscribers,
} from "./bus.ts";
import {
  RedisConnection,
  type RedisConnectionInit,
  type RedisConnectionOptions,
} from "../redis/connection.ts";

/** Options for {@linkcode RedisBus.connect}. */
export interface RedisBusOptions extends BusOptions, RedisConnectionOptions {
  /**
   * Prefix of the pub/sub channel, which is `prefix + "bus"`.
   * @default {"chat:"}
   */
  prefix?: string;
  /**
   * Most publishes awaiting Redis's reply; more are dropped.
   * @default {10000}
   */
  maxPending?: number;
  /**
   * Called whenever a publish is dropped, with the new
   * {@linkcode RedisBus.dropped}: at once, or later when one already handed
   * to the socket fails.
   */
  onDrop?: (dropped: number) => void;
}

/**
 * A bus over Redis pub/sub: one channel, one publisher connection and one
 * subscriber connection (a `duplicate()` of the publisher). Either
 * connection being down makes the state degraded; events published
 * meanwhile are dropped and counted in {@linkcode RedisBus.dropped}.
 *
 * @example Usage
 * ```ts ignore
 * import { RedisBus } from "./redis_bus.ts";
 * const bus = await RedisBus.connect("redis://127.0.0.1:6379");
 * bus.subscribe((event) => console.log(event));
 * bus.publish({ kind: "typing", room: "lobby", member: { id: "u1", name: "ada" } });
 * await bus.close();
 * ```
 */
export class RedisBus implements Bus {
  /** The pub/sub channel. */
  readonly channel: string;
  #subscribers: Subscribers;
  #publisher: RedisConnection;
  #subscriber: RedisConnection;
  #maxPending: number;
  #pending = 0;
  #dropped = 0;
  #onDrop: ((dropped: number) => void) | undefined;
  #closing: Promise<void> | undefined;

  private constructor(url: string, options: RedisBusOptions) {
    this.channel = `${options.prefix ?? "chat:"}bus`;
    this.#subscribers = new Subscribers(options);
    this.#maxPending = options.maxPending ?? 10_000;
    this.#onDrop = options.onDrop;
    const notify = options.onStateChange;
    const init: RedisConnectionInit = {
      retryInitialMs: options.retryInitialMs,
      retryMaxMs: options.retryMaxMs,
      connectTimeoutMs: options.connectTimeoutMs,
      healthCheckMs: options.healthCheckMs,
      onStateChange: notify && (() => notify(this.state)),
    };
    const listener = (text: string) => {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        value = undefined;
      }
      this.#subscribers.deliver(value);
    };
    this.#publisher = RedisConnection.open(url, init);
    this.#subscriber = this.#publisher.duplicate({
      ...init,
      // After a reconnection this is a no-op: node-redis has resubscribed
      // by itself before the connection is ready.
      onConnect: async (client) => {
        await client.subscribe(this.channel, listener);
      },
    });
  }

  /**
   * Creates a bus on Redis at `url`. Never rejects because Redis is down:
   * it resolves after the first connection attempts, and keeps retrying.
   */
  static async connect(url: string, options: RedisBusOptions = {}): Promise<RedisBus> {
    const bus = new RedisBus(url, options);
    await Promise.all([bus.#publisher.settled(), bus.#subscriber.settled()]);
    return bus;
  }

  /** This instance's random id. */
  get id(): string {
    return this.#subscribers.id;
  }

  /** Ok when both connections are; else the first one's reason. */
  get state(): BusState {
    if (this.#closing) return CLOSED;
    const publisher = this.#publisher.state;
    return publisher.ok ? this.#subscriber.state : publisher;
  }

  /** Events not published: Redis was down, or too many were pending. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Publishes the event; never throws, drops it when Redis is down. */
  publish(payload: BusPayload): void {
    const { client } = this.#publisher;
    if (this.#closing || !client.isReady || this.#pending >= this.#maxPending) {
      this.#drop();
      return;
    }
    let text: string;
    try {
      text = JSON.stringify({ ...payload, origin: this.id });
    } catch {
      this.#drop(); // not JSON-safe (a cycle, a BigInt)
      return;
    }
    this.#pending++;
    client.publish(this.channel, text)
      .catch(() => this.#drop())
      .finally(() => this.#pending--);
  }

  /** Calls `handler` with every event from other instances. */
  subscribe(handler: BusHandler): () => void {
    return this.#subscribers.add(handler);
  }

  /** Waits for pending publishes, then closes both connections. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#subscribers.clear();
      await Promise.all([this.#publisher.close(), this.#subscriber.close()]);
    })();
    return this.#closing;
  }

  #drop(): void {
    this.#dropped++;
    try {
      this.#onDrop?.(this.#dropped);
    } catch { /* a listener's problem must not break publishing */ }
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
