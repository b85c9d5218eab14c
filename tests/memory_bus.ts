/**
 * Several chat instances in one process, joined by an in-memory bus that can
 * lose events on purpose, over one shared KV file: for the scale and
 * multi-room tests.
 *
 * @module
 */
import type { Bus, BusEvent, BusHandler, BusPayload, BusState } from "../src/bus/bus.ts";
import { seededRandom, startServer, type TestServer } from "./helpers.ts";

/** Buses that reach each other in memory, losing `dropRate` of the events. */
export class MemoryNetwork {
  readonly buses = new Set<MemoryBus>();
  dropped = 0;
  constructor(readonly dropRate = 0, readonly rand = seededRandom(1)) {}

  bus(): MemoryBus {
    const bus = new MemoryBus(this);
    this.buses.add(bus);
    return bus;
  }

  send(from: MemoryBus, event: BusEvent): void {
    if (!this.buses.has(from)) return; // Cut off from the network.
    for (const bus of this.buses) {
      if (bus === from) continue;
      if (this.rand() < this.dropRate) {
        this.dropped++;
        continue;
      }
      queueMicrotask(() => bus.deliver(event));
    }
  }
}

export class MemoryBus implements Bus {
  readonly id = crypto.randomUUID();
  readonly state: BusState = { ok: true };
  #handlers = new Set<BusHandler>();
  constructor(readonly network: MemoryNetwork) {}

  publish(payload: BusPayload): void {
    this.network.send(this, { ...payload, origin: this.id });
  }

  subscribe(handler: BusHandler): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  deliver(event: BusEvent): void {
    for (const handler of this.#handlers) handler(event);
  }

  close(): Promise<void> {
    this.network.buses.delete(this);
    this.#handlers.clear();
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Starts `count` instances sharing one KV file and `network`. */
export async function startInstances(
  count: number,
  network: MemoryNetwork,
  options: Parameters<typeof startServer>[0] = {},
): Promise<TestServer[] & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "chat-scale-" });
  const servers: TestServer[] = [];
  for (let i = 0; i < count; i++) {
    servers.push(
      await startServer({ kvPath: `${dir}/chat.kv`, bus: network.bus(), ...options }),
    );
  }
  return Object.assign(servers, {
    async [Symbol.asyncDispose]() {
      for (const server of servers) await server.close();
      for (const bus of network.buses) await bus.close();
      await Deno.remove(dir, { recursive: true });
    },
  });
}
