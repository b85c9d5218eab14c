/**
 * The server API's moderation routes, over HTTP against a real server: each
 * route acts like a moderator's `mod` on the room's members, and answers
 * every refusal with a JSON error.
 */
import assert from "node:assert/strict";
import { startServer, TestClient, type TestServer } from "./helpers.ts";

const TOKEN = "a-moderation-token-of-some-length";
const AUTH = { authorization: `Bearer ${TOKEN}` };

async function call(
  server: TestServer,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${server.origin}/api/v1/rooms/${path}`, {
    method,
    headers: {
      ...AUTH,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    body: text ? JSON.parse(text) : null,
    headers: response.headers,
  };
}

Deno.test("API moderation: ban, unban, mute, unmute, delete, topic, slow, owner, the audit log and reports", async () => {
  await using server = await startServer({
    apiToken: TOKEN,
    isAccount: (userId) => Promise.resolve(userId === "acct-1"),
  });
  const { client: ada, welcome: a } = await TestClient.join(server.wsUrl, "team", "ada");
  await using _ada = ada;
  const { client: troll, welcome: t } = await TestClient.join(server.wsUrl, "team", "troll");
  await using _troll = troll;
  troll.send({ type: "say", text: "spam", cid: "t1" });
  await ada.next("message", (m) => m.cid === "t1");

  const banned = await call(server, "POST", "team/bans", {
    userId: t.id,
    durationMs: 3_600_000,
    reason: "spam",
  });
  assert.equal(banned.status, 201);
  assert.deepEqual([banned.body.kind, banned.body.action, banned.body.target.id], [
    "moderation",
    "ban",
    t.id,
  ]);
  assert.deepEqual(banned.body.by, { id: "operator", name: "operator" });
  assert.deepEqual(await troll.next("left"), { type: "left", room: "team", reason: "banned" });
  troll.send({ type: "join", room: "team" });
  const refused = await troll.next("error");
  assert.deepEqual([refused.code, refused.reason], ["banned", "spam"]);
  assert.equal((await call(server, "DELETE", `team/bans/${t.id}`)).status, 200);

  assert.equal((await call(server, "POST", "team/mutes", { userId: a.id })).status, 201);
  assert.equal((await ada.next("muted")).room, "team");
  assert.equal((await call(server, "DELETE", `team/mutes/${a.id}`)).status, 200);
  const deleted = await call(server, "DELETE", "team/messages/1");
  assert.deepEqual([deleted.status, deleted.body.action, deleted.body.ref], [200, "delete", 1]);
  assert.equal((await call(server, "PUT", "team/topic", { topic: "Deploys only" })).status, 200);
  assert.equal((await call(server, "PUT", "team/slow", { durationMs: 5000 })).status, 200);
  const owner = await call(server, "PUT", "team/owner", { userId: "acct-1" });
  assert.deepEqual([owner.status, owner.body.target.id], [200, "acct-1"]);
  const guestOwner = await call(server, "PUT", "team/owner", { userId: a.id });
  assert.equal(guestOwner.status, 400, "only an account can own a room");

  const log = await call(server, "GET", "team/moderation?limit=3");
  assert.equal(log.status, 200);
  assert.deepEqual(log.body.entries.map((e: { action: string }) => e.action), [
    "owner",
    "slow",
    "topic",
  ]);
  assert.equal(log.body.hasMore, true);
  const older = await call(server, "GET", `team/moderation?before=${log.body.entries[2].id}`);
  assert.deepEqual(older.body.entries.map((e: { action: string }) => e.action), [
    "delete",
    "unmute",
    "mute",
    "unban",
    "ban",
  ]);

  ada.send({ type: "say", text: "look at this", cid: "a1" });
  const posted = await ada.next("ack");
  ada.send({ type: "report", ref: posted.id, reason: "off topic" });
  assert.deepEqual(await ada.next("reported"), { type: "reported", room: "team", ref: posted.id });
  const reports = await call(server, "GET", "team/reports");
  assert.deepEqual(reports.body.reports.map((r: { ref: number }) => r.ref), [posted.id]);
});

Deno.test("API moderation: errors are JSON with stable codes", async () => {
  await using server = await startServer({ apiToken: TOKEN });
  const check = (
    result: { status: number; body: { error: { code: string } } },
    status: number,
    code: string,
  ) => assert.deepEqual([result.status, result.body.error.code], [status, code]);
  check(await call(server, "POST", "team/bans", { userId: "a b" }), 400, "invalid_message");
  check(await call(server, "POST", "team/bans", { durationMs: 5 }), 400, "invalid_message");
  check(
    await call(server, "POST", "team/mutes", { userId: "u1", durationMs: 0 }),
    400,
    "invalid_message",
  );
  check(await call(server, "PUT", "team/slow", { durationMs: -1 }), 400, "invalid_message");
  check(await call(server, "PUT", "team/topic", {}), 400, "invalid_message");
  check(await call(server, "DELETE", "team/messages/abc"), 400, "invalid_message");
  check(await call(server, "DELETE", "team/messages/99"), 404, "not_found");
  check(await call(server, "GET", "team/bans"), 405, "method_not_allowed");
  check(await call(server, "PUT", "team/owner", { userId: "nobody" }), 400, "invalid_message");
  const text = await fetch(`${server.origin}/api/v1/rooms/team/topic`, {
    method: "PUT",
    headers: { ...AUTH, "content-type": "text/plain" },
    body: "topic",
  });
  check({ status: text.status, body: await text.json() }, 415, "unsupported_media_type");
  const noToken = await fetch(`${server.origin}/api/v1/rooms/team/bans`, { method: "POST" });
  assert.equal(noToken.status, 401);
  await noToken.body?.cancel();

  await using off = await startServer({ apiToken: TOKEN, moderation: null });
  check(await call(off, "GET", "team/moderation"), 404, "not_found");
});
