/**
 * The bus contract (src/bus/bus.ts), one suite run against every
 * implementation: the local bus, BroadcastChannel and Redis pub/sub.
 */
import assert from "node:assert/strict";
import { BroadcastChannelBus } from "../src/bus/broadcast_channel_bus.ts";
import type { Bus, BusEvent, BusPayload } from "../src/bus/bus.ts";
import { LocalBus } from "../src/bus/local_bus.ts";
import { RedisBus } from "../src/bus/redis_bus.ts";
import { within } from "./helpers.ts";
import { skipRedis, startRedis } from "./redis.ts";

interface Implementation {
  name: string;
  ignore: boolean;
  /** Whether two buses of this kind reach each other (the local bus reaches nobody). */
  shares: boolean;
  /** Two buses on one channel; `close` releases everything. */
  open(): Promise<{ a: Bus; b: Bus; close(): Promise<void> }>;
}

const IMPLEMENTATIONS: Implementation[] = [
  {
    name: "LocalBus",
    ignore: false,
    shares: false,
    open() {
      const [a, b] = [new LocalBus(), new LocalBus()];
      return Promise.resolve({
        a,
        b,
        close: async () => void await Promise.all([a.close(), b.close()]),
      });
    },
  },
  {
    name: "BroadcastChannelBus",
    ignore: false,
    shares: true,
    open() {
      const name = `contract-${crypto.randomUUID()}`;
      const [a, b] = [new BroadcastChannelBus({ name }), new BroadcastChannelBus({ name })];
      return Promise.resolve({
        a,
        b,
        close: async () => void await Promise.all([a.close(), b.close()]),
      });
    },
  },
  {
    name: "RedisBus",
    ignore: skipRedis,
    shares: true,
    async open() {
      const redis = await startRedis();
      const [a, b] = await Promise.all([RedisBus.connect(redis.url), RedisBus.connect(redis.url)]);
      return {
        a,
        b,
        async close() {
          await Promise.all([a.close(), b.close()]);
          await redis[Symbol.asyncDispose]();
        },
      };
    },
  },
];

const member = { id: "u1", name: "ada" };
const PAYLOADS: BusPayload[] = [
  {
    kind: "message",
    room: "lobby",
    message: {
      type: "message",
      id: 1,
      room: "lobby",
      userId: "u1",
      name: "ada",
      text: "hi",
      ts: 1,
      cid: "c1",
    },
  },
  { kind: "presence", room: "lobby", members: [member], expiresAt: 123 },
  { kind: "typing", room: "lobby", member },
];

/** Resolves with the next `count` events `bus` delivers. */
function collect(bus: Bus, count: number): Promise<BusEvent[]> {
  const { promise, resolve } = Promise.withResolvers<BusEvent[]>();
  const events: BusEvent[] = [];
  const stop = bus.subscribe((event) => {
    events.push(event);
    if (events.length === count) {
      stop();
      resolve(events);
    }
  });
  return promise;
}

for (const implementation of IMPLEMENTATIONS) {
  const contract = (name: string, fn: (a: Bus, b: Bus) => Promise<void>) =>
    Deno.test(
      { name: `${implementation.name}: ${name}`, ignore: implementation.ignore },
      async () => {
        const { a, b, close } = await implementation.open();
        try {
          await fn(a, b);
        } finally {
          await close();
        }
      },
    );

  contract(
    "is ok until closed; close is idempotent; publish never throws, even after",
    async (a) => {
      assert.deepEqual(a.state, { ok: true });
      assert.notEqual(a.id, "");
      await a.close();
      await a.close();
      assert.equal(a.state.ok, false);
      a.publish(PAYLOADS[2]);
    },
  );

  contract("never delivers a bus its own events", async (a, b) => {
    const origins: string[] = [];
    const stop = a.subscribe((event) => origins.push(event.origin));
    a.publish(PAYLOADS[2]);
    if (implementation.shares) {
      // a's own event went out first on the same channel: once b's arrives, a's would have too.
      const { promise, resolve } = Promise.withResolvers<void>();
      const wait = a.subscribe((event) => event.origin === b.id && resolve());
      b.publish(PAYLOADS[2]);
      await within(promise, "a to hear b");
      wait();
    }
    stop();
    assert.deepEqual(origins, implementation.shares ? [b.id] : []);
  });

  if (!implementation.shares) continue;

  contract("delivers every kind of event to the other bus, with its origin", async (a, b) => {
    const heard = collect(b, PAYLOADS.length);
    for (const payload of PAYLOADS) a.publish(payload);
    const events = await within(heard, "every event");
    assert.deepEqual(events, PAYLOADS.map((payload) => ({ ...payload, origin: a.id })));
  });

  contract("an unsubscribed handler hears nothing more", async (a, b) => {
    let calls = 0;
    const stop = b.subscribe(() => calls++);
    stop();
    const heard = collect(b, 1);
    a.publish(PAYLOADS[2]);
    await within(heard, "the event");
    assert.equal(calls, 0);
  });
}
