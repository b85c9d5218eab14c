/**
 * The bus contract: fan-out between server instances. Each instance
 * publishes what its own clients did (a stored message, its room's presence,
 * typing) and receives what the other instances published, to deliver it to
 * its own peers.
 *
 * - `LocalBus` (`local_bus.ts`): one process, nothing to share.
 * - `BroadcastChannelBus` (`broadcast_channel_bus.ts`): isolates that share
 *   a `BroadcastChannel` (workers of one process, `deno serve --parallel`).
 * - `RedisBus` (`redis_bus.ts`): processes anywhere, through Redis pub/sub.
 *
 * Delivery is best effort: an event published while the transport is down is
 * dropped, never queued. {@linkcode Bus.state} says when that happens, for
 * `/healthz`.
 *
 * @module
 */

import type { ChatMessage, Member, ReportInfo } from "../protocol.ts";
import type { ServiceState } from "../state.ts";

export { CLOSED, OK } from "../state.ts";

/**
 * A command every instance carries out on its own connections in a room:
 * the hub's one control kind, taking the same path whether it starts here
 * or on another instance.
 */
export type Control =
  | {
    /** `evict`: connections leave the room (each gets `left` with the reason). */
    action: "evict";
    /** The user whose connections leave; absent: every connection (the room is gone). */
    user?: string;
    /** Said to the evicted connections, in `left`. */
    reason: string;
    /** The room's ids start again (it was deleted): instances forget its last id. */
    reset?: boolean;
  }
  | {
    /**
     * `pull`: a direct conversation got a message; its two people's
     * connections that are not in it join it by themselves.
     */
    action: "pull";
  }
  | {
    /** `report`: a member flagged a message; the room's moderators online are told. */
    action: "report";
    report: ReportInfo;
  }
  | {
    /** `signout`: an account session ended; its connections close (4001). Not about a room. */
    action: "signout";
    session: string;
  }
  | {
    /** `renamed`: an account took a new name; its connections take it. Not about a room. */
    action: "renamed";
    user: string;
    name: string;
  }
  | {
    /** `read`: an account read the room up to `id`; its connections are told (`read`). */
    action: "read";
    user: string;
    id: number;
  };

/** What an instance publishes; the bus adds its `origin`. */
export type BusPayload =
  | { kind: "message"; room: string; message: ChatMessage }
  | { kind: "presence"; room: string; members: Member[]; expiresAt: number }
  | { kind: "typing"; room: string; member: Member }
  | { kind: "control"; room: string; control: Control };

/** What instances tell each other. `origin` is the sending instance's id. */
export type BusEvent = BusPayload & { origin: string };

/** Whether a bus works, for `/healthz`. */
export type BusState = ServiceState;

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

/**
 * Handlers, the origin filter and error reporting that every bus shares
 * (every implementation in this folder).
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

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isMember(value: unknown): value is Member {
  return isRecord(value) && typeof value.id === "string" && typeof value.name === "string";
}

function isControl(value: unknown): value is Control {
  if (!isRecord(value)) return false;
  if (value.action === "pull") return true;
  if (value.action === "signout") return typeof value.session === "string";
  if (value.action === "renamed") {
    return typeof value.user === "string" && typeof value.name === "string";
  }
  if (value.action === "read") {
    return typeof value.user === "string" && Number.isSafeInteger(value.id) && Number(value.id) > 0;
  }
  if (value.action === "report") {
    const report = value.report;
    return isRecord(report) && typeof report.id === "string" && Number.isSafeInteger(report.ref) &&
      typeof report.reason === "string" && isMember(report.by) && Number.isFinite(report.at);
  }
  return value.action === "evict" && typeof value.reason === "string" &&
    (value.user === undefined || typeof value.user === "string") &&
    (value.reset === undefined || typeof value.reset === "boolean");
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
    case "control":
      return isControl(value.control) ? value as BusEvent : null;
    default:
      return null;
  }
}
