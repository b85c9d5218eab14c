/**
 * A worker for tests/bus_test.ts: a BroadcastChannelBus in another isolate
 * that answers every `typing` event with a `typing` event of its own, for the
 * same room and member name "echo".
 *
 * @module
 */

/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />

import { BroadcastChannelBus } from "../src/bus/broadcast_channel_bus.ts";

self.onmessage = (event: MessageEvent<{ name: string }>) => {
  const bus = new BroadcastChannelBus({ name: event.data.name });
  bus.subscribe((received) => {
    if (received.kind !== "typing") return;
    bus.publish({ kind: "typing", room: received.room, member: { id: bus.id, name: "echo" } });
  });
  self.postMessage({ ready: true, id: bus.id });
};
