/**
 * The hub's link to the other instances: what goes out on the bus, what
 * comes in, the members other instances announced, and the store watcher
 * that catches what the bus lost. Whether an event needs to leave this
 * instance at all is decided here, in {@linkcode Cluster.forward}, and
 * nowhere else.
 *
 * @module
 */

import type { Bus, BusEvent, BusPayload } from "../bus/bus.ts";
import { DEFAULTS } from "../config.ts";
import type { Logger } from "../log.ts";
import type { ChatMessage, Member } from "../protocol.ts";
import type { HistoryStore } from "../store/history.ts";
import { type PresenceChange, RemotePresence } from "./presence.ts";
import type { Room } from "./room.ts";

/** What the cluster needs from the hub. */
export interface ClusterHost {
  /** The rooms this instance holds now. */
  rooms(): Iterable<Room>;
  /** The room called `name`, if this instance holds it. */
  room(name: string): Room | undefined;
  /** Sends stored messages up to `message` (or up to the store's newest) to the room, in order. */
  catchUp(room: Room, message?: ChatMessage): void;
  /** Shows other instances' joins and leaves to the room's members here. */
  showPresence(room: Room, change: PresenceChange): void;
  /** Shows another instance's typing notice to the room's members here. */
  showTyping(room: Room, member: Member): void;
}

/** Options for {@linkcode Cluster}. */
export interface ClusterOptions {
  /** The bus to the other instances. */
  bus: Bus;
  /** The shared store, checked by the watcher. */
  history: HistoryStore;
  /** Where errors go. */
  log: Logger;
  /**
   * How often rooms are checked against the store, in milliseconds.
   * @default {DEFAULTS.watchIntervalMs}
   */
  watchIntervalMs?: number;
  /**
   * How often this instance repeats its members on the bus, in milliseconds.
   * @default {DEFAULTS.heartbeatMs}
   */
  heartbeatMs?: number;
  /**
   * How long other instances keep listing those members without a
   * heartbeat, in milliseconds: the most a crashed instance's members linger.
   * @default {DEFAULTS.presenceTtlMs}
   */
  presenceTtlMs?: number;
}

/**
 * Fan-out to and from the other instances.
 *
 * @example Usage
 * ```ts ignore
 * import { Cluster } from "./cluster.ts";
 * import { LocalBus } from "../bus/local_bus.ts";
 * const cluster = new Cluster({ bus: new LocalBus(), history, log: console.log });
 * cluster.start(hub);
 * await cluster.close();
 * ```
 */
export class Cluster {
  #bus: Bus;
  #history: HistoryStore;
  #log: Logger;
  #watchIntervalMs: number;
  #heartbeatMs: number;
  #presenceTtlMs: number;
  #remote = new RemotePresence();
  /** Instances heard from on the bus. */
  #instances = new Set<string>();
  #host: ClusterHost | undefined;
  #unsubscribe: (() => void) | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #watching = false;

  /** Creates a cluster link; it does nothing until {@linkcode Cluster.start}. */
  constructor(options: ClusterOptions) {
    this.#bus = options.bus;
    this.#history = options.history;
    this.#log = options.log;
    this.#watchIntervalMs = options.watchIntervalMs ?? DEFAULTS.watchIntervalMs;
    this.#heartbeatMs = options.heartbeatMs ?? DEFAULTS.heartbeatMs;
    this.#presenceTtlMs = options.presenceTtlMs ?? DEFAULTS.presenceTtlMs;
  }

  /** Whether the bus works, for `/healthz`. */
  get state(): Bus["state"] {
    return this.#bus.state;
  }

  /** Listens to the bus and starts the store watcher. */
  start(host: ClusterHost): void {
    this.#host = host;
    this.#unsubscribe = this.#bus.subscribe((event) => this.#receive(event));
    this.#timer = setInterval(() => {
      if (this.#watching) return;
      this.#watching = true;
      this.#watch().catch((error) => this.#log({ event: "error", error: `watch: ${error}` }))
        .finally(() => this.#watching = false);
    }, this.#watchIntervalMs);
  }

  /** Stops listening and watching. The bus itself is closed by its owner. */
  close(): void {
    clearInterval(this.#timer);
    this.#unsubscribe?.();
  }

  /** The members other instances hold in `room`. */
  remoteMembers(room: string): Member[] {
    return this.#remote.members(room);
  }

  /**
   * Sends a stored message or a typing notice to the other instances, but
   * only when some instance has members in the room: a race with a new one
   * is covered by its store watcher.
   */
  forward(payload: Extract<BusPayload, { kind: "message" | "typing" }>): void {
    if (this.#remote.members(payload.room).length > 0) this.#bus.publish(payload);
  }

  /** Tells the other instances who is in `room` here, for the presence TTL. */
  announce(room: Room): void {
    room.announced = Date.now();
    this.#bus.publish({
      kind: "presence",
      room: room.name,
      members: [...room.members.values()],
      expiresAt: room.announced + this.#presenceTtlMs,
    });
  }

  #receive(event: BusEvent): void {
    const host = this.#host!;
    if (event.kind === "presence") {
      if (!this.#instances.has(event.origin)) {
        // A new instance: tell it at once who is here, rather than at the next heartbeat.
        this.#instances.add(event.origin);
        for (const room of host.rooms()) if (room.members.size > 0) this.announce(room);
      }
      const change = this.#remote.update(event.origin, event.room, event.members, event.expiresAt);
      const room = host.room(event.room);
      if (room) host.showPresence(room, change);
      return;
    }
    const room = host.room(event.room);
    if (!room || room.members.size === 0) return;
    if (event.kind === "typing") host.showTyping(room, event.member);
    else host.catchUp(room, event.message);
  }

  /**
   * Once per interval: expire the members of instances that went quiet,
   * repeat presence heartbeats, and catch rooms up with the store, so a
   * fan-out the bus lost is found even when no later message follows.
   */
  async #watch(): Promise<void> {
    const host = this.#host!;
    const now = Date.now();
    for (const change of this.#remote.sweep(now)) {
      const room = host.room(change.room);
      if (room) host.showPresence(room, change);
    }
    for (const room of host.rooms()) {
      if (room.members.size === 0 || room.lastId < 0) continue;
      if (now - room.announced >= this.#heartbeatMs) this.announce(room);
      if (await this.#history.latest(room.name) > room.lastId) host.catchUp(room);
    }
  }
}
