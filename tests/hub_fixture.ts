/**
 * A hub over a fresh in-memory KV with fake peers, for the hub's unit tests:
 * no sockets, no server, no timers.
 *
 * @module
 */
import { createIdentify } from "../src/auth/identity.ts";
import { Hub, type HubOptions } from "../src/hub/hub.ts";
import type { ChatMessage, ClientMessage, WelcomeMessage } from "../src/protocol.ts";
import type { HistoryStore, MessageDraft } from "../src/store/history.ts";
import { KvHistory } from "../src/store/kv_history.ts";
import { FakePeer } from "./fake_peer.ts";

/** A hub over a fresh in-memory KV; disposing it settles the hub and closes the KV. */
export interface TestHub extends AsyncDisposable {
  hub: Hub;
  /** The KV history the hub stores in (unwrapped). */
  kv: KvHistory;
  /** Every `appendMany` call the hub made: the number of drafts in each. */
  commits: number[];
  /** Connects a new fake peer. */
  peer(id?: string, address?: string): FakePeer;
  /** Sends `message` from `peer`. */
  send(peer: FakePeer, message: ClientMessage): void;
  /** Joins `room` as `name` and resolves with the welcome; an error rejects. */
  /**
   * Joins `room` (as `name`: the first join of a connection needs one) and
   * resolves with that room's welcome; an error about the room rejects.
   */
  join(
    peer: FakePeer,
    room: string,
    name?: string,
    extra?: { since?: number; token?: string; epoch?: string },
  ): Promise<WelcomeMessage>;
}

export async function openHub(
  options: Partial<HubOptions> & { limit?: number; wrap?: (kv: HistoryStore) => HistoryStore } = {},
): Promise<TestHub> {
  const db = await Deno.openKv(":memory:");
  const kv = new KvHistory(db, { limit: options.limit });
  const commits: number[] = [];
  const counted: HistoryStore = {
    get limit() {
      return kv.limit;
    },
    append: (room, draft) => kv.append(room, draft),
    appendMany(room: string, drafts: MessageDraft[]) {
      commits.push(drafts.length);
      return kv.appendMany(room, drafts);
    },
    recent: (room, count) => kv.recent(room, count),
    after: (room, since, limit) => kv.after(room, since, limit),
    before: (room, before, limit) => kv.before(room, before, limit),
    latest: (room) => kv.latest(room),
    get: (room, id) => kv.get(room, id),
    stored: (room, userId, cid) => kv.stored(room, userId, cid),
    rooms: () => kv.rooms(),
    deleteRoom: (room) => kv.deleteRoom(room),
  };
  const hub = new Hub({
    identify: createIdentify({ sessionSecret: "x", authenticate: null }),
    ...options,
    history: options.wrap ? options.wrap(counted) : counted,
  });
  const send = (peer: FakePeer, message: ClientMessage) => hub.receive(peer, message);
  return {
    hub,
    kv,
    commits,
    peer(id, address) {
      const peer = new FakePeer(id, address);
      hub.connect(peer);
      return peer;
    },
    send,
    async join(peer, room, name, extra = {}) {
      send(peer, { type: "join", room, ...(name === undefined ? {} : { name }), ...extra });
      const answer = await peer.take((m) =>
        (m.type === "welcome" && m.room === room) ||
        (m.type === "error" && (m.room === room || m.room === undefined))
      );
      if (answer.type === "error") {
        throw new Error(`${name ?? peer.id} cannot join ${room}: ${answer.code}`);
      }
      return answer as WelcomeMessage;
    },
    async [Symbol.asyncDispose]() {
      await hub.settled();
      await hub.close();
      db.close();
    },
  };
}

/** Stores `count` messages in `room` directly, as an earlier run of the server would have. */
export async function seed(kv: KvHistory, room: string, count: number): Promise<ChatMessage[]> {
  const drafts = Array.from({ length: count }, (_, i) => ({
    room,
    userId: "u0",
    name: "earlier",
    text: `old ${i + 1}`,
    cid: `old${i + 1}`,
  }));
  return (await kv.appendMany(room, drafts)).map((r) => r.message);
}

export const ids = (messages: { id: number }[]) => messages.map((m) => m.id);
export const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);
