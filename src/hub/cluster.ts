/**
 * The hub's link to the other instances: what goes out on the bus, what
 * comes in, the members other instances announced, and the store watcher
 * that catches what the bus lost. Whether an event needs to leave this
 * instance at all is decided here, in {@linkcode Cluster.forward}, and
 * nowhere else.
 *
 * @module
 */

import type { Bus, BusEvent, BusPayload, Control } from "../bus/bus.ts";
import { DEFAULTS } from "../config.ts";
import type { Logger } from "../log.ts";
import type { ChatMessage, Member } from "../protocol.ts";
import type { HistoryStore } from "../store/history.ts";
import type { AnnouncedRoom, Roster } from "../store/roster.ts";
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
  /** The uniqueness key of a member's name, for name claims. */
  keyOf(member: Member): string;
  /** Shows other instances' joins and leaves to the room's members here. */
  showPresence(room: Room, change: PresenceChange): void;
  /** Shows another instance's typing notice to the room's members here. */
  showTyping(room: Room, member: Member): void;
  /** Carries out a command on this instance's connections in the room named `room`. */
  control(room: string, control: Control): void;
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
   * Name claims and presence in the shared store, so instances that share
   * no bus still agree; `null` when the bus alone carries presence.
   * @default {null}
   */
  roster?: Roster | null;
  /**
   * Use the store's change notifications ({@linkcode HistoryStore.watch})
   * besides the poll: on Deno Deploy's KV they cross instances at once.
   * @default {false}
   */
  watchStore?: boolean;
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
  #roster: Roster | null;
  #watchStore: boolean;
  #stopWatch: (() => void) | undefined;
  #watched = "";
  /** Rooms whose members changed since the roster last heard of them. */
  #dirty = new Set<Room>();
  #flushing: Promise<void> = Promise.resolve();
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
    this.#roster = options.roster ?? null;
    this.#watchStore = options.watchStore ?? false;
  }

  /** This instance's id, on the bus and in the roster. */
  get instance(): string {
    return this.#bus.id;
  }

  /** The shared roster, if any, for name claims. */
  get roster(): Roster | null {
    return this.#roster;
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
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#unsubscribe?.();
    this.#stopWatch?.();
    await this.#flushing;
  }

  /** The rooms other instances hold members in, with how many. */
  remoteRooms(): Map<string, number> {
    return this.#remote.rooms();
  }

  /** A member other instances hold in any room that `match`es (a user to talk to), if any. */
  findMember(match: (member: Member) => boolean): Member | undefined {
    return this.#remote.find(match);
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
    if (this.#remote.has(payload.room)) this.#bus.publish(payload);
  }

  /**
   * Sends a command to every other instance (whether or not it has members
   * in the room as far as this one knows): they carry it out as this one did.
   */
  command(room: string, control: Control): void {
    this.#bus.publish({ kind: "control", room, control });
  }

  /** Tells the other instances who is in `room` here, for the presence TTL. */
  announce(room: Room): void {
    room.announced = Date.now();
    this.#bus.publish({
      kind: "presence",
      room: room.name,
      members: room.members,
      expiresAt: room.announced + this.#presenceTtlMs,
    });
    if (this.#watchStore) this.#rewatch();
    if (!this.#roster) return;
    // Every change of this task goes to the store in one write.
    if (this.#dirty.size === 0) queueMicrotask(() => this.#flush());
    this.#dirty.add(room);
  }

  #flush(): void {
    const rooms = new Map<string, AnnouncedRoom>();
    for (const room of this.#dirty) {
      const members = room.members;
      rooms.set(room.name, { members, keys: members.map((m) => this.#host!.keyOf(m)) });
    }
    this.#dirty.clear();
    const write = () => this.#roster!.announce(this.instance, rooms, this.#presenceTtlMs);
    this.#flushing = this.#flushing.then(write).catch((error) =>
      this.#log({ event: "error", error: `roster: ${error}` })
    );
  }

  #receive(event: BusEvent): void {
    const host = this.#host!;
    if (event.kind === "presence") {
      if (!this.#instances.has(event.origin)) {
        // A new instance: tell it at once who is here, rather than at the next heartbeat.
        this.#instances.add(event.origin);
        for (const room of host.rooms()) if (room.connections > 0) this.announce(room);
      }
      const change = this.#remote.update(event.origin, event.room, event.members, event.expiresAt);
      const room = host.room(event.room);
      if (room) host.showPresence(room, change);
      return;
    }
    if (event.kind === "control") return host.control(event.room, event.control);
    const room = host.room(event.room);
    if (!room || room.connections === 0) return;
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
    if (this.#roster) await this.#readRoster();
    const active = [...host.rooms()].filter((room) => room.connections > 0 && room.lastId >= 0);
    if (this.#watchStore) this.#rewatch();
    for (const room of active) {
      if (now - room.announced >= this.#heartbeatMs) this.announce(room);
      const latest = await this.#history.latest(room.name);
      if (latest > room.lastId) host.catchUp(room);
      // The store lost ids this instance sent: the room was deleted (or the store wiped).
      else if (latest < room.lastId) {
        host.control(room.name, { action: "evict", reason: "room deleted", reset: true });
      }
    }
  }

  /** Takes the other instances' presence entries from the shared store. */
  async #readRoster(): Promise<void> {
    const host = this.#host!;
    for (const entry of await this.#roster!.entries()) {
      if (entry.instance === this.instance) continue;
      const change = this.#remote.update(
        entry.instance,
        entry.room,
        entry.members,
        entry.expiresAt,
      );
      if (change.joined.length === 0 && change.left.length === 0) continue;
      if (!this.#instances.has(entry.instance)) this.#instances.add(entry.instance);
      const room = host.room(entry.room);
      if (room) host.showPresence(room, change);
    }
  }

  /** Watches the store for new messages in exactly the active rooms. */
  #rewatch(): void {
    const rooms = [...this.#host!.rooms()].filter((room) => room.connections > 0)
      .map((room) => room.name).sort();
    const key = rooms.join("\n");
    if (key === this.#watched || !this.#history.watch) return;
    this.#watched = key;
    this.#stopWatch?.();
    this.#stopWatch = rooms.length === 0
      ? undefined
      : this.#history.watch(rooms, (name, latest) => {
        const room = this.#host!.room(name);
        if (room && room.lastId >= 0 && latest > room.lastId) this.#host!.catchUp(room);
      });
  }
}
