/**
 * A worker for tests/bus_test.ts: a BroadcastChannelBus in another isolate
 * that answers every `typing` event with a `typing` event of its own, for the
 * same room and member name "echo".
 *
 * @module
 */

import { BroadcastChannelBus } from "../src/bus/broadcast_channel_bus.ts";

// The worker's global scope, typed here rather than with `/// <reference lib="deno.worker" />`:
// Deno 2.5 applies such a directive to every file it checks with this one.
const worker = self as unknown as {
  onmessage: (event: MessageEvent<{ name: string }>) => void;
  postMessage(message: unknown): void;
};

worker.onmessage = (event) => {
  const bus = new BroadcastChannelBus({ name: event.data.name });
  bus.subscribe((received) => {
    if (received.kind !== "typing") return;
    bus.publish({ kind: "typing", room: received.room, member: { id: bus.id, name: "echo" } });
  });
  worker.postMessage({ ready: true, id: bus.id });
};
