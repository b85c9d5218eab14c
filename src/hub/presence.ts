/**
 * Members that other server instances announced. Each instance publishes its
 * members per room with an expiry, and repeats it as a heartbeat; an entry
 * whose instance stops (crashed, partitioned) expires, so no zombie member
 * stays listed.
 *
 * @module
 */

import type { Member } from "../protocol.ts";

/** Members who appeared or disappeared in one room. */
export interface PresenceChange {
  room: string;
  joined: Member[];
  left: Member[];
}

/**
 * The other instances' members, by room and instance.
 *
 * @example Usage
 * ```ts
 * import { RemotePresence } from "./presence.ts";
 * const presence = new RemotePresence();
 * presence.update("instance-b", "lobby", [{ id: "u2", name: "bob" }], Date.now() + 30_000);
 * presence.members("lobby"); // [{ id: "u2", name: "bob" }]
 * ```
 */
export class RemotePresence {
  #rooms = new Map<string, Map<string, { members: Member[]; expiresAt: number }>>();

  /** Replaces what `origin` holds in `room`; returns who joined and left. */
  update(origin: string, room: string, members: Member[], expiresAt: number): PresenceChange {
    const before = this.members(room);
    let instances = this.#rooms.get(room);
    if (!instances) this.#rooms.set(room, instances = new Map());
    if (members.length === 0) instances.delete(origin);
    else instances.set(origin, { members, expiresAt });
    if (instances.size === 0) this.#rooms.delete(room);
    return diff(room, before, this.members(room));
  }

  /** Drops the entries that expired by `now`; returns what changed, room by room. */
  sweep(now: number): PresenceChange[] {
    const changes: PresenceChange[] = [];
    for (const [room, instances] of this.#rooms) {
      const before = this.members(room);
      for (const [origin, entry] of instances) if (entry.expiresAt <= now) instances.delete(origin);
      if (instances.size === 0) this.#rooms.delete(room);
      const change = diff(room, before, this.members(room));
      if (change.joined.length || change.left.length) changes.push(change);
    }
    return changes;
  }

  /** Each room other instances hold members in, with how many. */
  rooms(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const room of this.#rooms.keys()) counts.set(room, this.members(room).length);
    return counts;
  }

  /** Whether other instances hold members in `room` (cheaper than counting them). */
  has(room: string): boolean {
    return this.#rooms.has(room);
  }

  /** A member other instances hold in any room that `match`es, if any. */
  find(match: (member: Member) => boolean): Member | undefined {
    for (const instances of this.#rooms.values()) {
      for (const { members } of instances.values()) {
        const found = members.find(match);
        if (found) return found;
      }
    }
    return undefined;
  }

  /** Every member other instances hold in `room`, once each. */
  members(room: string): Member[] {
    const seen = new Map<string, Member>();
    for (const { members } of this.#rooms.get(room)?.values() ?? []) {
      for (const member of members) seen.set(`${member.id}\n${member.name}`, member);
    }
    return [...seen.values()];
  }
}

function diff(room: string, before: Member[], after: Member[]): PresenceChange {
  const key = (m: Member) => `${m.id}\n${m.name}`;
  const had = new Set(before.map(key));
  const has = new Set(after.map(key));
  return {
    room,
    joined: after.filter((m) => !had.has(key(m))),
    left: before.filter((m) => !has.has(key(m))),
  };
}
