/**
 * What the hub keeps per user besides their connections: the users they
 * block, and how far they have read each room. Here, in memory, for the
 * users this instance has seen (a guest's lasts as long as this instance
 * and its tab session; the page keeps its own copy too); an account keeps
 * them in the store, behind the same interface.
 *
 * @module
 */

/** Users whose state is kept at most; the least recently used are forgotten first. */
const MAX_USERS = 10_000;
/** Read positions kept per user at most. */
const MAX_READS_PER_USER = 200;
/** Blocked users kept per user at most. */
export const MAX_BLOCKS = 1000;

/** One user's state. */
interface State {
  blocks: Set<string>;
  reads: Map<string, number>;
}

/**
 * Blocks and read positions of the users this instance has seen.
 *
 * @example Usage
 * ```ts
 * import { UserState } from "./user_state.ts";
 * const users = new UserState();
 * users.block("u1", "u2");
 * users.blocks("u1", "u2"); // true
 * users.read("u1", "lobby", 7);
 * users.readId("u1", "lobby"); // 7
 * ```
 */
export class UserState {
  #users = new Map<string, State>();

  /** Whether `userId` blocks `other`. */
  blocks(userId: string, other: string): boolean {
    return this.#users.get(userId)?.blocks.has(other) ?? false;
  }

  /** The users `userId` blocks. */
  blocked(userId: string): string[] {
    return [...this.#users.get(userId)?.blocks ?? []];
  }

  /** `userId` blocks `other`; `false` when it already blocks {@linkcode MAX_BLOCKS} users. */
  block(userId: string, other: string): boolean {
    const { blocks } = this.#state(userId);
    if (blocks.size >= MAX_BLOCKS && !blocks.has(other)) return false;
    blocks.add(other);
    return true;
  }

  /** `userId` no longer blocks `other`. */
  unblock(userId: string, other: string): void {
    this.#users.get(userId)?.blocks.delete(other);
  }

  /**
   * `userId` has read `room` up to `id`. Returns `true` when that moved the
   * position forward (a position never goes back).
   */
  read(userId: string, room: string, id: number): boolean {
    const { reads } = this.#state(userId);
    if ((reads.get(room) ?? 0) >= id) return false;
    reads.delete(room);
    reads.set(room, id);
    if (reads.size > MAX_READS_PER_USER) reads.delete(reads.keys().next().value!);
    return true;
  }

  /** How far `userId` has read `room` (0: not at all, or not known here). */
  readId(userId: string, room: string): number {
    return this.#users.get(userId)?.reads.get(room) ?? 0;
  }

  #state(userId: string): State {
    let state = this.#users.get(userId);
    if (state) this.#users.delete(userId);
    else state = { blocks: new Set(), reads: new Map() };
    this.#users.set(userId, state);
    if (this.#users.size > MAX_USERS) this.#users.delete(this.#users.keys().next().value!);
    return state;
  }
}
