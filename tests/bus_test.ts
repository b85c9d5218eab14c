import assert from "node:assert/strict";
import type { Bus, BusEvent, BusPayload, BusState } from "../src/bus/bus.ts";
import { BroadcastChannelBus } from "../src/bus/broadcast_channel_bus.ts";
import { LocalBus } from "../src/bus/local_bus.ts";
import { RedisBus } from "../src/bus/redis_bus.ts";
import { connectRedis } from "../src/redis/connection.ts";
import type { ChatMessage, Member } from "../src/protocol.ts";
import { Changes } from "./helpers.ts";
import { freePort, skipRedis, startRedis } from "./redis.ts";

const WAIT_MS = 5000;

/** Keeps every event a bus delivers until a test takes it. */
class Inbox {
  readonly events: BusEvent[] = [];
  #waiters = new Set<() => void>();

  constructor(bus: Bus) {
    bus.subscribe((event) => {
      this.events.push(event);
      for (const wake of this.#waiters) wake();
    });
  }

  /** Resolves with the first event matching `match`, or rejects after WAIT_MS. */
  async next(match: (event: BusEvent) => boolean, what: string): Promise<BusEvent> {
    let wake = () => {};
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await new Promise<BusEvent>((resolve, reject) => {
        wake = () => {
          const found = this.events.find(match);
          if (found) resolve(found);
        };
        timer = setTimeout(
          () => reject(new Error(`Timed out after ${WAIT_MS} ms waiting for ${what}`)),
          WAIT_MS,
        );
        this.#waiters.add(wake);
        wake();
      });
    } finally {
      clearTimeout(timer);
      this.#waiters.delete(wake);
    }
  }
}

const member = { id: "u1", name: "ada" };
const message: ChatMessage = {
  type: "message",
  id: 1,
  room: "lobby",
  userId: "u1",
  name: "ada",
  text: "hi",
  ts: 1,
  cid: "c1",
};
const payloads: BusPayload[] = [
  { kind: "message", room: "lobby", message },
  { kind: "presence", room: "lobby", members: [member], expiresAt: 123 },
  { kind: "typing", room: "a:b", member },
];

/**
 * `a` and `b` exchange every kind of payload, and neither receives its own:
 * each side's last event is a marker the other answers, so by the time the
 * answer arrives, an echo of the earlier events would have arrived too.
 */
async function assertExchange(a: Bus, b: Bus, inboxA: Inbox, inboxB: Inbox): Promise<void> {
  const marker = `m${crypto.randomUUID()}`;
  for (const payload of payloads) a.publish(payload);
  a.publish({ kind: "typing", room: marker, member });
  await inboxB.next((e) => e.room === marker, "b to receive a's marker");
  b.publish({ kind: "typing", room: marker, member });
  await inboxA.next((e) => e.room === marker, "a to receive b's marker");
  const fromA = inboxB.events.filter((e) => e.room !== marker && e.origin === a.id);
  assert.deepEqual(fromA, payloads.map((p) => ({ ...p, origin: a.id })));
  assert.ok(inboxA.events.every((e) => e.origin === b.id), "a received its own event");
  assert.ok(inboxB.events.every((e) => e.origin === a.id), "b received its own event");
}

Deno.test("LocalBus publishes nothing and is always ok", async () => {
  const bus = new LocalBus();
  const inbox = new Inbox(bus);
  assert.match(bus.id, /^[0-9a-f-]{36}$/);
  for (const payload of payloads) bus.publish(payload);
  assert.deepEqual(bus.state, { ok: true });
  await bus.close();
  assert.deepEqual(bus.state, { ok: false, reason: "closed" });
  assert.deepEqual(inbox.events, []);
});

Deno.test("BroadcastChannelBus: two instances exchange events, never their own", async () => {
  const name = `test-${crypto.randomUUID()}`;
  await using a = new BroadcastChannelBus({ name });
  await using b = new BroadcastChannelBus({ name });
  assert.notEqual(a.id, b.id);
  assert.deepEqual(a.state, { ok: true });
  await assertExchange(a, b, new Inbox(a), new Inbox(b));
  await a.close();
  assert.deepEqual(a.state, { ok: false, reason: "closed" });
  a.publish(payloads[0]); // after close: dropped, no throw
  assert.equal(a.dropped, 1);
});

Deno.test("BroadcastChannelBus reaches a bus in a worker", async () => {
  const name = `test-${crypto.randomUUID()}`;
  const worker = new Worker(new URL("./bus_worker.ts", import.meta.url), { type: "module" });
  const bus = new BroadcastChannelBus({ name });
  try {
    const ready = new Promise<{ id: string }>((resolve) =>
      worker.onmessage = (e) => resolve(e.data)
    );
    worker.postMessage({ name });
    const { id } = await ready;
    const inbox = new Inbox(bus);
    bus.publish({ kind: "typing", room: "lobby", member });
    const echo = await inbox.next((e) => e.kind === "typing", "the worker's answer");
    assert.deepEqual(echo, {
      kind: "typing",
      room: "lobby",
      member: { id, name: "echo" },
      origin: id,
    });
  } finally {
    worker.terminate();
    await bus.close();
  }
});

Deno.test("BroadcastChannelBus: handler errors and malformed events are reported", async () => {
  const name = `test-${crypto.randomUUID()}`;
  const errors: unknown[] = [];
  await using bus = new BroadcastChannelBus({ name, onError: (error) => errors.push(error) });
  using raw = Object.assign(new BroadcastChannel(name), {
    [Symbol.dispose]: () => raw.close(),
  });
  bus.subscribe(() => {
    throw new Error("handler failed");
  });
  const inbox = new Inbox(bus);
  raw.postMessage({ kind: "message", origin: "x", room: "lobby" }); // no message
  raw.postMessage("not an event");
  raw.postMessage({ kind: "typing", origin: "x", room: "lobby", member });
  await inbox.next((e) => e.kind === "typing", "the valid event");
  assert.equal(inbox.events.length, 1);
  assert.deepEqual(errors.map((e) => (e as Error).message), [
    "Cannot read bus event: ignoring a malformed event",
    "Cannot read bus event: ignoring a malformed event",
    "handler failed",
  ]);
});

Deno.test({
  name: "RedisBus: two instances exchange events, never their own",
  ignore: skipRedis,
}, async () => {
  await using redis = await startRedis();
  await using a = await RedisBus.connect(redis.url);
  await using b = await RedisBus.connect(redis.url);
  assert.deepEqual(a.state, { ok: true });
  assert.deepEqual(b.state, { ok: true });
  assert.equal(a.channel, "chat:bus");
  await assertExchange(a, b, new Inbox(a), new Inbox(b));
  assert.equal(a.dropped, 0);
  const unserializable = { id: "u1", name: "ada", extra: 1n } as Member;
  a.publish({ kind: "typing", room: "lobby", member: unserializable }); // dropped, no throw
  assert.equal(a.dropped, 1);
  await a.close();
  assert.deepEqual(a.state, { ok: false, reason: "closed" });
  a.publish(payloads[0]);
  assert.equal(a.dropped, 2);
});

Deno.test({
  name: "RedisBus drops publishes beyond maxPending instead of queueing them",
  ignore: skipRedis,
}, async () => {
  await using redis = await startRedis();
  await using a = await RedisBus.connect(redis.url, { maxPending: 10 });
  await using b = await RedisBus.connect(redis.url);
  const inbox = new Inbox(b);
  for (let i = 0; i < 100; i++) a.publish({ kind: "typing", room: `r${i}`, member });
  assert.equal(a.dropped, 90);
  await inbox.next((e) => e.room === "r9", "the last event sent");
  assert.deepEqual(inbox.events.map((e) => e.room), Array.from({ length: 10 }, (_, i) => `r${i}`));
});

Deno.test({
  name: "RedisBus: buses with different prefixes do not hear each other",
  ignore: skipRedis,
}, async () => {
  await using redis = await startRedis();
  await using a = await RedisBus.connect(redis.url, { prefix: "one:" });
  await using b = await RedisBus.connect(redis.url, { prefix: "two:" });
  await using c = await RedisBus.connect(redis.url, { prefix: "two:" });
  const inboxB = new Inbox(b);
  const inboxC = new Inbox(c);
  a.publish({ kind: "typing", room: "from-a", member });
  c.publish({ kind: "typing", room: "from-c", member });
  await inboxB.next((e) => e.room === "from-c", "c's event");
  // c's event went out after a's, on the same server: a's would be here by now.
  assert.deepEqual(inboxB.events.map((e) => e.room), ["from-c"]);
  assert.deepEqual(inboxC.events, []);
});

Deno.test({
  name: "RedisBus degrades while Redis is down, drops publishes, and recovers",
  ignore: skipRedis,
}, async () => {
  await using redis = await startRedis();
  const states: BusState[] = [];
  const changes = new Changes();
  const options = { retryInitialMs: 50, retryMaxMs: 300, onStateChange: changes.notify };
  await using a = await RedisBus.connect(redis.url, {
    ...options,
    onStateChange: (s) => {
      states.push(s);
      changes.notify();
    },
    onDrop: changes.notify,
  });
  await using b = await RedisBus.connect(redis.url, options);
  const inboxA = new Inbox(a);
  const inboxB = new Inbox(b);
  await redis.stop();
  await changes.until(() => !a.state.ok && !b.state.ok, "both buses to degrade");
  assert.match(a.state.reason ?? "", /^redis: /);
  assert.ok(states.some((s) => !s.ok), "onStateChange reported the outage");
  // Must not throw. A publish already handed to a dying socket is counted
  // when it fails, a moment later.
  for (const payload of payloads) a.publish(payload);
  await changes.until(() => a.dropped === payloads.length, "every publish to count as dropped");

  await redis.restart();
  await changes.until(() => a.state.ok && b.state.ok, "both buses to recover");
  assert.deepEqual(states.at(-1), { ok: true });
  // The subscribers were resubscribed: events flow both ways again.
  await assertExchange(a, b, inboxA, inboxB);
});

Deno.test({
  name: "RedisBus notices a Redis that hangs (SIGSTOP) and recovers once it runs again",
  ignore: skipRedis,
}, async () => {
  await using redis = await startRedis();
  const options = {
    retryInitialMs: 50,
    retryMaxMs: 300,
    healthCheckMs: 200,
    connectTimeoutMs: 300,
  };
  const changes = new Changes();
  await using a = await RedisBus.connect(redis.url, { ...options, onStateChange: changes.notify });
  await using b = await RedisBus.connect(redis.url, { ...options, onStateChange: changes.notify });
  const inboxA = new Inbox(a);
  const inboxB = new Inbox(b);
  redis.pause();
  await changes.until(() => !a.state.ok && !b.state.ok, "both buses to notice the hang");
  assert.match(a.state.reason ?? "", /^redis: /);
  a.publish(payloads[0]); // must not throw
  redis.resume();
  await changes.until(() => a.state.ok && b.state.ok, "both buses to recover");
  await assertExchange(a, b, inboxA, inboxB);
});

Deno.test({
  name: "RedisBus.connect does not throw when Redis is down, and connects once it is up",
  ignore: skipRedis,
}, async () => {
  const port = freePort();
  const url = `redis://127.0.0.1:${port}`;
  const changes = new Changes();
  const options = { retryInitialMs: 50, retryMaxMs: 300, onStateChange: changes.notify };
  await using a = await RedisBus.connect(url, options);
  await using b = await RedisBus.connect(url, options);
  assert.equal(a.state.ok, false);
  assert.match(a.state.reason ?? "", /^redis: .*ECONNREFUSED/);
  a.publish(payloads[0]);
  assert.equal(a.dropped, 1);
  await using _redis = await startRedis(port);
  await changes.until(() => a.state.ok && b.state.ok, "both buses to connect");
  await assertExchange(a, b, new Inbox(a), new Inbox(b));
  // Closed before Redis stops (disposal runs in reverse order).
  await a.close();
  await b.close();
});

Deno.test({
  name: "RedisBus closes promptly while it is still retrying",
  ignore: skipRedis,
}, async () => {
  const bus = await RedisBus.connect(`redis://127.0.0.1:${freePort()}`, { retryInitialMs: 2000 });
  assert.equal(bus.state.ok, false);
  const started = Date.now();
  await bus.close();
  await bus.close(); // idempotent
  assert.ok(Date.now() - started < 500, `close took ${Date.now() - started} ms`);
  assert.deepEqual(bus.state, { ok: false, reason: "closed" });
});

Deno.test({
  name: "RedisBus ignores malformed messages and reports handler errors",
  ignore: skipRedis,
}, async () => {
  await using redis = await startRedis();
  await using raw = await connectRedis(redis.url);
  const errors: unknown[] = [];
  await using bus = await RedisBus.connect(redis.url, { onError: (error) => errors.push(error) });
  const inbox = new Inbox(bus);
  const unsubscribe = bus.subscribe(() => {
    throw new Error("handler failed");
  });
  await raw.client.publish("chat:bus", "{not json");
  await raw.client.publish("chat:bus", JSON.stringify({ kind: "typing", origin: "x" }));
  await raw.client.publish(
    "chat:bus",
    JSON.stringify({ kind: "typing", origin: "x", room: "r1", member }),
  );
  await inbox.next((e) => e.room === "r1", "the valid event");
  unsubscribe();
  await raw.client.publish(
    "chat:bus",
    JSON.stringify({ kind: "typing", origin: "x", room: "r2", member }),
  );
  await inbox.next((e) => e.room === "r2", "the second valid event");
  assert.equal(inbox.events.length, 2);
  assert.deepEqual(errors.map((e) => (e as Error).message), [
    "Cannot read bus event: ignoring a malformed event",
    "Cannot read bus event: ignoring a malformed event",
    "handler failed",
  ]);
});

Deno.test({
  name: "connectRedis does not throw when Redis is down, and recovers",
  ignore: skipRedis,
}, async () => {
  const port = freePort();
  const states: BusState[] = [];
  const changes = new Changes();
  await using connection = await connectRedis(`redis://127.0.0.1:${port}`, {
    retryInitialMs: 50,
    retryMaxMs: 300,
    onStateChange: (state) => {
      states.push(state);
      changes.notify();
    },
  });
  assert.equal(connection.state.ok, false);
  await assert.rejects(connection.client.ping()); // offline: fails fast, not queued
  await using _redis = await startRedis(port);
  await changes.until(() => connection.state.ok, "the connection to come up");
  assert.equal(await connection.client.ping(), "PONG");
  assert.deepEqual(states.at(-1), { ok: true });
  // Closed before Redis stops (disposal runs in reverse order): on Deno 2.5 a socket that
  // Redis closes first sometimes leaves a timer behind for the sanitizer.
  await connection.close();
});
