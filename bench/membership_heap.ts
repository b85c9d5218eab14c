/**
 * What one membership holds in the hub: a hub built as `main.ts` builds it
 * (a KV file for history, the roster and moderation, the cluster link with
 * a local bus), with peers that drop what they are sent, `clients`
 * connections in 1 room each and then in `rooms` rooms each; the
 * JavaScript heap in use after a forced full collection, per added
 * membership. Run by the benchmark's membership phase (with
 * `--v8-flags=--expose-gc`); prints one JSON line.
 *
 * ```sh
 * deno run -A --v8-flags=--expose-gc bench/membership_heap.ts --clients 500 --rooms 10
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createIdentify } from "../src/auth/identity.ts";
import { LocalBus } from "../src/bus/local_bus.ts";
import { Cluster } from "../src/hub/cluster.ts";
import { Hub } from "../src/hub/hub.ts";
import type { Peer } from "../src/hub/peer.ts";
import { KvHistory } from "../src/store/kv_history.ts";
import { KvModeration } from "../src/store/kv_moderation.ts";
import { KvRoster } from "../src/store/kv_roster.ts";

/** The result line. */
export interface MembershipHeap {
  clients: number;
  roomsPerClient: number;
  /** Heap in use with 1 room each, and with `roomsPerClient`, after a full collection. */
  oneBytes: number;
  manyBytes: number;
  /** (manyBytes − oneBytes) / ((roomsPerClient − 1) × clients). */
  bytesPerMembership: number;
}

/** A peer that counts what it is sent and keeps nothing: a socket's frames leave the heap. */
class NullPeer implements Peer {
  static #count = 0;
  readonly id = `p${++NullPeer.#count}`;
  readonly address = "127.0.0.1";
  open = true;
  #welcomes = new Map<string, () => void>();
  send(frame: string): void {
    if (!frame.startsWith('{"type":"welcome"') && !frame.startsWith('{"type":"error"')) return;
    const message = JSON.parse(frame);
    if (message.type === "error") throw new Error(`a join was refused: ${frame}`);
    this.#welcomes.get(message.room)?.();
  }
  close(): void {
    this.open = false;
  }
  welcomed(room: string): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#welcomes.set(room, () => {
      this.#welcomes.delete(room);
      resolve();
    });
    return promise;
  }
}

function heapUsed(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("Cannot measure the heap: run with --v8-flags=--expose-gc");
  for (let i = 0; i < 4; i++) gc();
  return Deno.memoryUsage().heapUsed;
}

/** Measures; see the module documentation. */
export async function measure(clients: number, rooms: number): Promise<MembershipHeap> {
  const dir = await Deno.makeTempDir({ prefix: "chat-membership-" });
  const kv = await Deno.openKv(`${dir}/chat.kv`);
  const history = new KvHistory(kv);
  const cluster = new Cluster({
    bus: new LocalBus(),
    history,
    roster: new KvRoster(kv),
    log: () => {},
  });
  const hub = new Hub({
    history,
    cluster,
    moderation: new KvModeration(kv),
    identify: createIdentify({ sessionSecret: crypto.randomUUID(), authenticate: null }),
  });
  try {
    // Each of a client's rooms is another one: round k puts clients in rooms of 20 of their own.
    const roomOf = (client: number, k: number) => `room${k}-${Math.floor(client / 20)}`;
    const peers = Array.from({ length: clients }, () => new NullPeer());
    const join = async (peer: NullPeer, room: string, name?: string) => {
      const welcomed = peer.welcomed(room);
      hub.receive(peer, { type: "join", room, ...(name ? { name } : {}) });
      await welcomed;
    };
    for (const [i, peer] of peers.entries()) {
      hub.connect(peer);
      await join(peer, roomOf(i, 0), `user${i}`);
    }
    await hub.settled();
    const oneBytes = heapUsed();
    for (let k = 1; k < rooms; k++) {
      await Promise.all(peers.map((peer, i) => join(peer, roomOf(i, k))));
    }
    await hub.settled();
    const manyBytes = heapUsed();
    return {
      clients,
      roomsPerClient: rooms,
      oneBytes,
      manyBytes,
      bytesPerMembership: Math.round((manyBytes - oneBytes) / ((rooms - 1) * clients)),
    };
  } finally {
    await hub.close();
    await history.idle();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      clients: { type: "string", default: "500" },
      rooms: { type: "string", default: "10" },
    },
  });
  console.log(JSON.stringify(await measure(Number(values.clients), Number(values.rooms))));
  Deno.exit(0);
}
