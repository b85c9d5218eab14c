/**
 * Moderation over real processes: a ban and a mute hold across a SIGKILL
 * and restart, and act on a second instance over Redis at once; the audit
 * log replays on resume like any event.
 */
import assert from "node:assert/strict";
import { TestClient } from "./helpers.ts";
import { startProcess } from "./process.ts";
import { skipRedis, startRedis } from "./redis.ts";

const API_TOKEN = "a-moderation-token-of-some-length";

function moderate(origin: string, path: string, body: unknown, method = "POST") {
  return fetch(`${origin}/api/v1/rooms/${path}`, {
    method,
    headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  }).then(async (response) => ({ status: response.status, body: await response.json() }));
}

Deno.test("a ban and a mute hold across a SIGKILL and restart; the acts replay on resume", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-mod-" });
  const env = { KV_PATH: `${dir}/chat.kv`, API_TOKEN };
  let server = await startProcess(env);
  try {
    const { client: ada, welcome: a } = await TestClient.join(server.wsUrl, "lobby", "ada");
    const { client: troll, welcome: t } = await TestClient.join(server.wsUrl, "lobby", "troll");
    const { client: loud, welcome: l } = await TestClient.join(server.wsUrl, "lobby", "loud");
    ada.send({ type: "say", text: "hello", cid: "a1" });
    await ada.next("ack");
    assert.equal((await moderate(server.origin, "lobby/bans", { userId: t.id })).status, 201);
    assert.equal((await moderate(server.origin, "lobby/mutes", { userId: l.id })).status, 201);
    await loud.next("muted");
    await ada.next("message", (m) => m.action === "mute");
    await ada.close();
    await server.stop("SIGKILL");
    for (const client of [troll, loud]) await client.waitClosed();

    server = await startProcess(env, server.port);
    await using back = await TestClient.connect(server.wsUrl);
    back.send({ type: "join", room: "lobby", name: "troll", token: t.token });
    assert.equal((await back.next("error")).code, "banned", "the ban survived the kill");
    await using loudAgain = await TestClient.connect(server.wsUrl);
    loudAgain.send({ type: "join", room: "lobby", name: "loud", token: l.token });
    await loudAgain.next("welcome");
    loudAgain.send({ type: "say", text: "hey", cid: "l1" });
    assert.equal((await loudAgain.next("error")).code, "muted", "the mute survived the kill");
    // Ada resumes from her first message: the acts come again, in order, like any event.
    await using adaBack = await TestClient.connect(server.wsUrl);
    adaBack.send({
      type: "join",
      room: "lobby",
      name: "ada",
      token: a.token,
      since: 1,
      epoch: a.epoch,
    });
    const resumed = await adaBack.next("welcome");
    assert.equal(resumed.recovered, true);
    assert.deepEqual(
      resumed.history.filter((m) => m.kind === "moderation").map((m) => [m.action, m.target?.id]),
      [["ban", t.id], ["mute", l.id]],
    );
  } finally {
    await server.stop("SIGTERM");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "a ban on one instance removes the user on another over Redis, and holds there",
  ignore: skipRedis,
  async fn() {
    await using redis = await startRedis();
    const env = { REDIS_URL: redis.url, SESSION_SECRET: "shared by both instances", API_TOKEN };
    await using a = await startProcess(env);
    await using b = await startProcess(env);
    await a.waitFor(/^History and fan-out: Redis/);
    await b.waitFor(/^History and fan-out: Redis/);
    const { client: troll, welcome: t } = await TestClient.join(b.wsUrl, "team", "troll");
    await using _troll = troll;
    const banned = await moderate(a.origin, "team/bans", { userId: t.id, reason: "spam" });
    assert.equal(banned.status, 201);
    assert.deepEqual(await troll.next("left"), { type: "left", room: "team", reason: "banned" });
    troll.send({ type: "join", room: "team" });
    const refused = await troll.next("error");
    assert.deepEqual([refused.code, refused.reason], ["banned", "spam"]);
  },
});
