/**
 * Several chat instances in one process, joined by an in-memory bus that can
 * lose events on purpose, over one shared KV file.
 */
import assert from "node:assert/strict";
import { MemoryNetwork, startInstances } from "./memory_bus.ts";
import { ONE_ADDRESS_LIFTED, seededRandom, TestClient, within } from "./helpers.ts";

Deno.test("a bus that loses 40% of events: every client still gets every message once, in order", async () => {
  const network = new MemoryNetwork(0.4, seededRandom(Number(Deno.env.get("LOSSY_SEED") ?? 3)));
  const LIFTED = { rateBurst: 1e6, ratePerSecond: 1e6, ...ONE_ADDRESS_LIFTED, watchIntervalMs: 50 };
  await using servers = await startInstances(3, network, LIFTED);
  const clients: { name: string; client: TestClient; ids: number[] }[] = [];
  for (let i = 0; i < 6; i++) {
    const server = servers[i % servers.length];
    const { client } = await TestClient.join(server.wsUrl, "lossy", `c${i}`);
    clients.push({ name: `c${i} on instance ${i % servers.length}`, client, ids: [] });
  }
  const PER_SENDER = 40;
  await Promise.all(
    clients.slice(0, 3).map(async ({ client }, s) => {
      for (let i = 0; i < PER_SENDER; i++) {
        client.send({ type: "say", text: `s${s}-${i}`, cid: `s${s}-${i}` });
        await client.next("ack", (a) => a.cid === `s${s}-${i}`);
      }
    }),
  );
  const total = 3 * PER_SENDER;
  for (const entry of clients) {
    await within(
      (async () => {
        while (entry.ids.at(-1) !== total) entry.ids.push((await entry.client.next("message")).id);
      })(),
      `${entry.name} to receive message ${total}`,
    );
  }
  for (const { name, ids } of clients) {
    assert.deepEqual(ids, Array.from({ length: total }, (_, i) => i + 1), name);
  }
  assert.ok(network.dropped > 0, "the bus really dropped events");
  console.log(`lossy bus: ${network.dropped} events dropped, ${total} messages, all delivered`);
  for (const { client } of clients) await client.close();
});

Deno.test("members on another instance are listed, and joins and leaves cross instances", async () => {
  await using servers = await startInstances(2, new MemoryNetwork());
  const [a, b] = servers;
  const { client: ada } = await TestClient.join(a.wsUrl, "lobby", "ada");
  await using _ada = ada;
  const { client: bob, welcome } = await TestClient.join(b.wsUrl, "lobby", "bob");
  assert.deepEqual(welcome.members.map((m) => m.name).sort(), ["ada", "bob"]);
  const joined = await ada.next("presence", (p) => p.member.name === "bob");
  assert.equal(joined.event, "join");

  await using carol = await TestClient.connect(b.wsUrl);
  carol.send({ type: "join", room: "lobby", name: "ADA" });
  assert.equal((await carol.next("error")).code, "name_taken", "names are unique across instances");

  bob.send({ type: "typing" });
  assert.equal((await ada.next("typing")).member.name, "bob");
  await bob.close();
  const left = await ada.next("presence", (p) => p.event === "leave");
  assert.equal(left.member.name, "bob");
});

Deno.test("the members of an instance that goes silent expire after the presence TTL", async () => {
  const network = new MemoryNetwork();
  await using servers = await startInstances(2, network, {
    watchIntervalMs: 50,
    heartbeatMs: 100,
    presenceTtlMs: 400,
  });
  const [a, b] = servers;
  const { client: ada } = await TestClient.join(a.wsUrl, "lobby", "ada");
  await using _ada = ada;
  const { client: bob } = await TestClient.join(b.wsUrl, "lobby", "bob");
  await using _bob = bob;
  await ada.next("presence", (p) => p.member.name === "bob");
  // Instance b falls off the network (as if it crashed): no leave is ever sent.
  network.buses.delete([...network.buses][1]);
  const left = await within(
    ada.next("presence", (p) => p.event === "leave" && p.member.name === "bob"),
    "bob to expire",
    3000,
  );
  assert.equal(left.member.name, "bob");
});
