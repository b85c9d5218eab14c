/**
 * Hostile input: a seeded fuzzer throws malformed frames at the server while a
 * normal conversation goes on, and a connection flood meets the caps.
 */
import assert from "node:assert/strict";
import { seededRandom, startServer, TestClient, within } from "./helpers.ts";
import { RawClient } from "./raw_socket.ts";

type Case = string | Uint8Array;

/** One malformed frame, chosen and shaped by `rand`. */
function malformed(rand: () => number): Case {
  const pick = <T>(items: T[]): T => items[Math.floor(rand() * items.length)];
  const depth = 1 + Math.floor(rand() * 30_000);
  const cases: (() => Case)[] = [
    () => crypto.getRandomValues(new Uint8Array(1 + Math.floor(rand() * 2048))),
    () => "[".repeat(depth) + "]".repeat(depth),
    () => `{"a":`.repeat(depth / 8) + "1" + "}".repeat(depth / 8),
    () =>
      `{"type":"join","room":"r","name":"n","since":${
        pick(["1e308", "-1", "1.5", "9".repeat(400)])
      }}`,
    () => JSON.stringify({ type: "say", cid: "c", text: "x".repeat(Math.floor(rand() * 60_000)) }),
    () =>
      JSON.stringify({
        type: pick(["join", "say"]),
        room: "r".repeat(5000),
        name: "n".repeat(5000),
      }),
    () => `{"type":"say","cid":"c","text":"\\ud800${"\\udfff".repeat(3)}"}`,
    () => `{"type":"join","room":"\\ud83d","name":"\\u0000"}`,
    () => JSON.stringify({ type: pick(["shout", "__proto__", "constructor", "", "JOIN"]) }),
    () =>
      JSON.stringify({
        type: "say",
        text: pick([1, null, [], {}, true]),
        cid: pick([1, "", null, "a b"]),
      }),
    () =>
      JSON.stringify({ type: "join", room: pick([{}, [], 5, null]), name: pick([{}, 5, null]) }),
    () =>
      pick([
        "null",
        "[]",
        '"join"',
        "1e999",
        "{",
        "}",
        "",
        " ",
        "\u0000",
        '{"__proto__":{"type":"join"}}',
      ]),
    () => (rand() < 0.1 ? "y".repeat(65_537 + Math.floor(rand() * 4096)) : "{}"),
    () => String.fromCharCode(...Array.from({ length: 64 }, () => Math.floor(rand() * 0xffff))),
  ];
  return pick(cases)();
}

const INVALID_UTF8 = [0xc3, 0x28, 0xff, 0xfe, 0xed, 0xa0, 0x80];

Deno.test("a seeded fuzzer cannot crash the server or make a normal client miss a message", async () => {
  const seed = Number(Deno.env.get("FUZZ_SEED") ?? 7);
  const rand = seededRandom(seed);
  await using server = await startServer({ rateBurst: 1_000_000, ratePerSecond: 1_000_000 });
  const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  const { client: bob } = await TestClient.join(server.wsUrl, "lobby", "bob");
  await using _bob = bob;
  const rssBefore = Deno.memoryUsage().rss;

  const CASES = 3000;
  const DEADLINE = performance.now() + 30_000;
  let tried = 0, reconnects = 0, said = 0;
  let fuzzer = await TestClient.connect(server.wsUrl);
  fuzzer.send({ type: "join", room: "lobby", name: "fuzzer" });
  while (tried < CASES && performance.now() < DEADLINE) {
    if (fuzzer.socket.readyState !== WebSocket.OPEN) {
      await fuzzer.close();
      fuzzer = await TestClient.connect(server.wsUrl);
      reconnects++;
    }
    if (tried % 100 === 0) {
      // Invalid UTF-8 in a text frame needs a raw client: no WebSocket API can send it.
      const raw = await RawClient.connect(server.port);
      const bytes = new Uint8Array(INVALID_UTF8);
      await raw.send(String.fromCharCode(...bytes)).catch(() => {});
      raw.close();
    }
    fuzzer.send(malformed(rand));
    tried++;
    if (tried % 50 === 0) {
      // The normal conversation goes on, and the fuzzer's replies are awaited now and then.
      ada.send({ type: "say", text: `normal ${said}`, cid: `n${said}` });
      said++;
      await ada.next("ack", (a) => a.cid === `n${said - 1}`);
      fuzzer.drain("error");
    }
  }
  await fuzzer.close();

  const ids: string[] = [];
  while (ids.length < said) ids.push((await bob.next("message", (m) => m.name === "ada")).text);
  assert.deepEqual(ids, Array.from({ length: said }, (_, i) => `normal ${i}`));
  const health = await (await fetch(`${server.origin}/healthz`)).json();
  assert.equal(health.ok, true);
  const grown = (Deno.memoryUsage().rss - rssBefore) / 1024 / 1024;
  assert.ok(grown < 200, `memory grew by ${grown.toFixed(0)} MB`);
  console.log(
    `fuzzer: ${tried} malformed frames (seed ${seed}), ${reconnects} reconnects, ` +
      `${said} normal messages all delivered, RSS +${grown.toFixed(0)} MB`,
  );
  assert.equal(tried, CASES, "all cases ran within the time bound");
});

/** Polls /healthz (it must answer throughout) until it reports `connections`. */
async function healthShows(origin: string, connections: number, what: string): Promise<void> {
  await within(
    (async () => {
      while ((await (await fetch(`${origin}/healthz`)).json()).connections !== connections) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })(),
    what,
  );
}

async function rawUpgrade(origin: string): Promise<number> {
  const response = await fetch(`${origin}/ws`, {
    headers: {
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
    },
  });
  await response.body?.cancel();
  return response.status;
}

Deno.test("a connection flood from one address meets the per-IP cap with 429; /healthz still answers", async () => {
  await using server = await startServer({ maxConnectionsPerIp: 20, log: () => {} });
  const attempts = await Promise.allSettled(
    Array.from({ length: 40 }, () => TestClient.connect(server.wsUrl)),
  );
  const open = attempts.flatMap((a) => a.status === "fulfilled" ? [a.value] : []);
  assert.equal(open.length, 20);
  assert.equal(await rawUpgrade(server.origin), 429);
  await healthShows(server.origin, 20, "the 20 sockets to be counted");
  for (const client of open) await client.close();
  await healthShows(server.origin, 0, "the connections to be released");
  await using again = await TestClient.connect(server.wsUrl);
  assert.equal(again.socket.readyState, WebSocket.OPEN, "slots are released on close");
});

Deno.test("past MAX_CONNECTIONS new sockets get 503", async () => {
  await using server = await startServer({ maxConnections: 10, maxConnectionsPerIp: 100 });
  const clients = await Promise.all(
    Array.from({ length: 10 }, () => TestClient.connect(server.wsUrl)),
  );
  assert.equal(await rawUpgrade(server.origin), 503);
  await assert.rejects(TestClient.connect(server.wsUrl));
  for (const client of clients) await client.close();
});
