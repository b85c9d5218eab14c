/**
 * Scale-out with real processes: two servers joined by a real Redis, Redis
 * going away and coming back, and `deno serve --parallel`.
 */
import assert from "node:assert/strict";
import { ONE_ADDRESS_LIFTED_ENV, TestClient, within } from "./helpers.ts";
import { type ServerProcess, startProcess } from "./process.ts";
import { freePort, skipRedis, startRedis } from "./redis.ts";

/** Every instance must share the secret, so a session moves between them. */
const SESSION_SECRET = "shared by every instance in this test";

async function health(origin: string): Promise<{ ok: boolean; status: string; reason?: string }> {
  return await (await fetch(`${origin}/healthz`)).json();
}

/**
 * Waits until `server` has opened its backends (it prints "History and fan-out: …" once it
 * has waited for its first Redis connections), then checks that /healthz says ok.
 */
async function connected(server: ServerProcess): Promise<void> {
  await server.waitFor(/^History and fan-out: Redis/);
  const report = await health(server.origin);
  assert.equal(report.status, "ok", `${server.origin} connected to Redis: ${report.reason}`);
}

Deno.test({
  name: "two processes share rooms through Redis; a client whose server dies resumes on the other",
  ignore: skipRedis,
  async fn() {
    await using redis = await startRedis();
    const env = { REDIS_URL: redis.url, SESSION_SECRET };
    await using a = await startProcess(env);
    await using b = await startProcess(env);
    await connected(a);
    await connected(b);

    const { client: ada, welcome: adaWelcome } = await TestClient.join(a.wsUrl, "team", "ada");
    const { client: bob, welcome } = await TestClient.join(b.wsUrl, "team", "bob");
    if (welcome.members.length < 2) {
      // b had not heard of ada yet: a answers b's first announcement at once.
      await bob.next("presence", (p) => p.member.name === "ada");
    }
    assert.equal((await ada.next("presence", (p) => p.member.name === "bob")).event, "join");

    ada.send({ type: "say", text: "hi from a", cid: "a1" });
    assert.equal((await bob.next("message")).text, "hi from a");
    bob.send({ type: "say", text: "hi from b", cid: "b1" });
    assert.equal((await ada.next("message", (m) => m.cid === "b1")).id, 2);

    const { client: carol, welcome: carols } = await TestClient.join(a.wsUrl, "team", "carol");
    assert.deepEqual(carols.history.map((m) => m.text), ["hi from a", "hi from b"]);
    await carol.close();

    // Server a dies; bob keeps talking; ada comes back through b and gets exactly what she missed.
    await a.stop("SIGKILL");
    await ada.waitClosed();
    for (let i = 2; i <= 4; i++) bob.send({ type: "say", text: `b${i}`, cid: `b${i}` });
    await bob.next("ack", (ack) => ack.cid === "b4");
    await using back = await TestClient.connect(b.wsUrl);
    back.send({
      type: "join",
      room: "team",
      name: "ada",
      since: 2,
      epoch: adaWelcome.epoch,
      token: adaWelcome.token,
    });
    const resumed = await back.next("welcome");
    assert.equal(resumed.id, adaWelcome.id, "the session moved with her");
    assert.equal(resumed.recovered, true);
    assert.deepEqual(resumed.history.map((m) => [m.id, m.text]), [[3, "b2"], [4, "b3"], [5, "b4"]]);
    await bob.close();
  },
});

Deno.test({
  name:
    "Redis going away degrades /healthz, and after it returns every client holds the same messages",
  ignore: skipRedis,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat-redis-" });
    await using redis = await startRedis(undefined, { dataDir: dir });
    const env = { REDIS_URL: redis.url, SESSION_SECRET };
    await using a = await startProcess(env);
    await using b = await startProcess(env);
    const { client: ada } = await TestClient.join(a.wsUrl, "room", "ada");
    const { client: bob } = await TestClient.join(b.wsUrl, "room", "bob");
    const expected = [1, 2, 3, 4, 5, 6, 7];
    const seen = { ada: [] as number[], bob: [] as number[] };
    const caughtUp = { ada: Promise.withResolvers<void>(), bob: Promise.withResolvers<void>() };
    const collect = (who: "ada" | "bob", client: TestClient) =>
      client.socket.addEventListener("message", (event) => {
        const data = JSON.parse(event.data);
        for (const m of Array.isArray(data) ? data : [data]) {
          if (m.type === "message") seen[who].push(m.id);
        }
        if (seen[who].length >= expected.length) caughtUp[who].resolve();
      });
    collect("ada", ada);
    collect("bob", bob);

    for (let i = 1; i <= 3; i++) ada.send({ type: "say", text: `before ${i}`, cid: `p${i}` });
    await ada.next("ack", (ack) => ack.cid === "p3");

    const beforeStop = a.output.length;
    await redis.stop();
    await a.waitFor(/^store state=down reason="?redis: /, beforeStop);
    const down = await health(a.origin);
    assert.equal(down.ok, false);
    assert.match(down.reason!, /redis/i);
    ada.send({ type: "say", text: "during the outage", cid: "d1" });
    const refused = await ada.next("error", (e) => e.cid === "d1");
    assert.equal(refused.code, "unavailable");
    assert.equal(ada.socket.readyState, WebSocket.OPEN, "the server keeps its clients");

    const [fromA, fromB] = [a.output.length, b.output.length];
    await redis.restart();
    // Each server logs its store and bus connections coming back.
    await Promise.all([
      a.waitFor(/^store state=ok/, fromA),
      a.waitFor(/^bus state=ok/, fromA),
      b.waitFor(/^store state=ok/, fromB),
      b.waitFor(/^bus state=ok/, fromB),
    ]);
    for (const server of [a, b]) assert.equal((await health(server.origin)).status, "ok");
    ada.send({ type: "say", text: "during the outage", cid: "d1" }); // The page's retry.
    await ada.next("ack", (ack) => ack.cid === "d1");
    for (let i = 1; i <= 3; i++) bob.send({ type: "say", text: `after ${i}`, cid: `q${i}` });
    await bob.next("ack", (ack) => ack.cid === "q3");

    for (const who of ["ada", "bob"] as const) {
      await within(caughtUp[who].promise, `${who} to catch up`, 10_000);
      assert.deepEqual(seen[who], expected, who);
    }
    await ada.close();
    await bob.close();
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name:
    "without SESSION_SECRET, instances share the secret Redis keeps: a session moves between them",
  ignore: skipRedis,
  async fn() {
    await using redis = await startRedis();
    await using a = await startProcess({ REDIS_URL: redis.url });
    await using b = await startProcess({ REDIS_URL: redis.url });
    const first = await TestClient.join(a.wsUrl, "shared", "ada");
    await first.client.close();
    await using moved = await TestClient.connect(b.wsUrl);
    moved.send({ type: "join", room: "shared", name: "ada", token: first.welcome.token });
    const welcome = await moved.next("welcome");
    assert.equal(welcome.id, first.welcome.id, "the same user on the other instance");
  },
});

Deno.test({
  name: "without SESSION_SECRET and with Redis unreachable, the start fails and /healthz says why",
  ignore: skipRedis,
  async fn() {
    await using server = await startProcess({ REDIS_URL: `redis://127.0.0.1:${freePort()}` });
    await server.waitFor(/Cannot start: .*Redis is unreachable.*retrying on the next request/);
    const report = await health(server.origin);
    assert.equal(report.status, "degraded");
    assert.match(report.reason ?? "", /^starting: .*set SESSION_SECRET/);
  },
});

Deno.test("deno serve --parallel on 2 isolates: 8 clients see every message once, in order", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-parallel-" });
  await using server = await startProcess(
    { KV_PATH: `${dir}/chat.kv`, DENO_JOBS: "2", RATE_BURST: "100", ...ONE_ADDRESS_LIFTED_ENV },
    freePort(),
    ["--parallel"],
  );
  // Both isolates listen on the same port; the kernel spreads connections over them.
  const clients = [];
  for (let i = 0; i < 8; i++) {
    clients.push((await TestClient.join(server.wsUrl, "p", `c${i}`)).client);
  }
  const PER_CLIENT = 5;
  await Promise.all(clients.map(async (client, c) => {
    for (let i = 0; i < PER_CLIENT; i++) {
      client.send({ type: "say", text: `c${c}-${i}`, cid: `c${c}-${i}` });
      await client.next("ack", (ack) => ack.cid === `c${c}-${i}`);
    }
  }));
  const total = clients.length * PER_CLIENT;
  for (const [c, client] of clients.entries()) {
    const ids: number[] = [];
    while (ids.length < total) ids.push((await client.next("message")).id);
    assert.deepEqual(ids, Array.from({ length: total }, (_, i) => i + 1), `client c${c}`);
    assert.deepEqual(client.drain("message"), [], `client c${c} got no duplicates`);
  }
  for (const client of clients) await client.close();
  await server.stop("SIGTERM");
  await Deno.remove(dir, { recursive: true });
});
