/**
 * Fan-out between server instances. Each instance publishes what its own
 * clients did (a stored message, its room's presence, typing) and receives
 * what the other instances published, to deliver it to its own sockets.
 *
 * - {@linkcode LocalBus}: one process, nothing to share.
 * - {@linkcode BroadcastChannelBus}: isolates that share a `BroadcastChannel`
 *   (workers of one process, or the isolates of one Deno Deploy app).
 * - `RedisBus` (in `redis_bus.ts`): processes anywhere, through Redis pub/sub.
 *
 * Delivery is best effort: an event published while the transport is down is
 * dropped, never queued. {@linkcode Bus.state} says when that happens, for
 * `/healthz`.
 *
 * @module
 */

import type { ChatMessage, Member } from "./protocol.ts";

/** What an instance publishes; the bus adds its `origin`. */
export type BusPayload =
  | { kind: "message"; room: string; message: ChatMessage }
  | { kind: "presence"; room: string; members: Member[]; expiresAt: number }
  | { kind: "typing"; room: string; member: Member };

/** What instances tell each other. `origin` is the sending instance's id. */
export type BusEvent = BusPayload & { origin: string };

/** Whether a bus (or a connection) works, for `/healthz`. */
export interface BusState {
  /** `false` while events cannot be delivered. */
  ok: boolean;
  /** Why not, when `ok` is `false`: e.g. `"redis: connect ECONNREFUSED 127.0.0.1:6379"`. */
  reason?: string;
}

/** Receives events published by other instances. */
export type BusHandler = (event: BusEvent) => void;

/** Fan-out between server instances. Disposing it closes it. */
export interface Bus extends AsyncDisposable {
  /** This instance's random id: the `origin` of the events it publishes. */
  readonly id: string;
  /** `{ ok: true }`, or `{ ok: false, reason }` while events are being dropped. */
  readonly state: BusState;
  /** Sends an event to the other instances. Never throws; drops it when it cannot be sent. */
  publish(payload: BusPayload): void;
  /**
   * Calls `handler` with every event from other instances (never this one's
   * own). Returns a function that removes the handler.
   */
  subscribe(handler: BusHandler): () => void;
  /** Stops sending and receiving, and releases every resource. Idempotent. */
  close(): Promise<void>;
}

/** Options shared by every bus. */
export interface BusOptions {
  /**
   * Called when a handler throws or a malformed event arrives. Never called
   * for a dropped publish: see `RedisBus.dropped`.
   * @default {console.error}
   */
  onError?: (error: unknown) => void;
}

/** The state of a closed bus or connection. */
export const CLOSED: BusState = Object.freeze({ ok: false, reason: "closed" });
/** The state of a working bus or connection. */
export const OK: BusState = Object.freeze({ ok: true });

/**
 * Handlers, the origin filter and error reporting that every bus shares
 * (`RedisBus` in `redis_bus.ts` too).
 */
export class Subscribers {
  /** The id of the instance these handlers belong to. */
  readonly id = crypto.randomUUID();
  #handlers = new Set<BusHandler>();
  #onError: (error: unknown) => void;

  /** Creates an empty set of handlers. */
  constructor(options: BusOptions) {
    this.#onError = options.onError ?? ((error) => console.error(error));
  }

  /** Adds a handler; returns the function that removes it. */
  add(handler: BusHandler): () => void {
    const entry: BusHandler = (event) => handler(event);
    this.#handlers.add(entry);
    return () => this.#handlers.delete(entry);
  }

  /** Removes every handler. */
  clear(): void {
    this.#handlers.clear();
  }

  /** Validates `value` and hands it to every handler unless it is our own. */
  deliver(value: unknown): void {
    const event = toBusEvent(value);
    if (event === null) {
      this.#onError(new TypeError("Cannot read bus event: ignoring a malformed event"));
      return;
    }
    if (event.origin === this.id) return;
    for (const handler of this.#handlers) {
      try {
        handler(event);
      } catch (error) {
        this.#onError(error);
      }
    }
  }

  /** Passes an error to the bus's `onError`. */
  report(error: unknown): void {
    this.#onError(error);
  }
}

/**
 * The bus of a single instance: nothing is published, nothing arrives.
 *
 * @example Usage
 * ```ts
 * import { LocalBus } from "./bus.ts";
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
 * import { BroadcastChannelBus } from "./bus.ts";
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

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isMember(value: unknown): value is Member {
  return isRecord(value) && typeof value.id === "string" && typeof value.name === "string";
}

/** `value` as a {@linkcode BusEvent}, or `null` when it is not one. */
function toBusEvent(value: unknown): BusEvent | null {
  if (!isRecord(value) || typeof value.origin !== "string" || typeof value.room !== "string") {
    return null;
  }
  switch (value.kind) {
    case "message": {
      const message = value.message;
      const valid = isRecord(message) && message.type === "message" &&
        Number.isSafeInteger(message.id);
      return valid ? value as BusEvent : null;
    }
    case "presence": {
      const valid = Array.isArray(value.members) && value.members.every(isMember) &&
        Number.isFinite(value.expiresAt);
      return valid ? value as BusEvent : null;
    }
    case "typing":
      return isMember(value.member) ? value as BusEvent : null;
    default:
      return null;
  }
}
