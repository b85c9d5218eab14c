/**
 * The page's client (`static/chat_client.js`) and moderation, no browser:
 * acts sent through the outbox (once per `cid`, across a drop and a reload;
 * a refusal is a `failed` event), roles and the topic from the welcome and
 * the events, a moderator's delete folded in, a mute told and lifted, slow
 * mode pacing the messages (and `slow_mode` keeping them pending), reports
 * for moderators, a kick's and a ban's reason, and a join refused by a ban.
 * Against a scripted socket, and against the real server.
 */
import assert from "node:assert/strict";
import { ChatClient, memoryStorage } from "../static/chat_client.js";
import { modNotice } from "../static/moderation_text.js";
import { startServer } from "./helpers.ts";
import {
  ADA as ada,
  BOB as bob,
  type Detail,
  next,
  scriptedClient,
  ScriptedSocket,
  welcomeAda,
} from "./client_helpers.ts";

const msg = (id: number, who = bob, text = `m${id}`) => ({
  type: "message",
  id,
  room: "lobby",
  userId: who.id,
  name: who.name,
  text,
  ts: 1_000,
  cid: `c${id}`,
});

/** A moderation event of the lobby, by bob unless said. */
const act = (id: number, fields: Record<string, unknown>) => ({
  ...msg(id, bob, ""),
  kind: "moderation",
  by: bob,
  ...fields,
});

/** A welcome to the lobby for ada, bob its owner. */
const welcome = (extra: Record<string, unknown> = {}) =>
  welcomeAda("lobby", [], { members: [ada, { ...bob, role: "owner" }], ...extra });

/** A client of the scripted server in the lobby. */
const scripted = (storage = memoryStorage()) => scriptedClient(["lobby"], { storage });

function collect(client: EventTarget, type: string): Detail[] {
  const seen: Detail[] = [];
  client.addEventListener(type, (e) => seen.push((e as CustomEvent).detail));
  return seen;
}

Deno.test("moderation acts go through the outbox: once per cid across a drop and a reload; a refusal fails", async () => {
  const storage = memoryStorage();
  const client = scripted(storage);
  const failed = collect(client, "failed");
  let cid = "";
  try {
    client.start();
    let socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive(welcome({ role: "moderator" }));
    const entry = client.moderate("mute", { userId: "u2", durationMs: 600_000, reason: " spam " });
    cid = entry.cid;
    assert.deepEqual(socket.sent.at(-1), {
      type: "mod",
      room: "lobby",
      action: "mute",
      cid,
      userId: "u2",
      durationMs: 600_000,
      reason: "spam",
    });
    assert.throws(() => client.moderate("explode"), RangeError);
    // The connection drops before the ack: the same act goes again, with the same cid.
    const dropped = next(client, "status", (s) => s.state === "reconnecting");
    socket.close(1006);
    await dropped;
    client.reconnect();
    socket = ScriptedSocket.all[1];
    socket.open();
    socket.receive(welcome({ role: "moderator" }));
    assert.deepEqual(socket.sent.filter((f) => f.type === "mod").map((f) => f.cid), [cid]);
  } finally {
    await client.close();
  }
  // A reload with the act still unacknowledged: it goes once more, same cid, then its ack ends it.
  const again = scripted(storage);
  const sent = collect(again, "sent");
  try {
    again.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive(welcome({ role: "moderator" }));
    assert.deepEqual(socket.sent.filter((f) => f.type === "mod").map((f) => f.cid), [cid]);
    socket.receive({ type: "ack", room: "lobby", cid, id: 7 });
    assert.deepEqual(sent, [{ room: "lobby", cid, id: 7 }]);
    assert.deepEqual(again.outbox, []);
    assert.deepEqual(failed, []);
  } finally {
    await again.close();
  }
});

Deno.test("a refused act is a failed event with the server's reason, and leaves the outbox", async () => {
  const client = scripted();
  const failed = collect(client, "failed");
  try {
    client.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive(welcome());
    const kick = client.moderate("kick", { userId: "u2", reason: "calm down" });
    socket.receive({
      type: "error",
      code: "forbidden",
      message: "Cannot kick: only the room's owner and moderators may",
      cid: kick.cid,
      room: "lobby",
    });
    assert.deepEqual(
      failed.map((f) => [f.code, f.message, f.entry.kind, f.entry.action]),
      [["forbidden", "Cannot kick: only the room's owner and moderators may", "mod", "kick"]],
    );
    assert.deepEqual(client.outbox, []);
  } finally {
    await client.close();
  }
});

Deno.test("roles, topic, a moderator's delete, and reports follow the welcome and the events", async () => {
  const client = scripted();
  const policy = collect(client, "policy");
  const moderation = collect(client, "moderation");
  const reports = collect(client, "reports");
  try {
    client.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive(welcome({ topic: "Be kind", history: [msg(1), act(2, { action: "slow" })] }));
    assert.deepEqual(
      client.membersOf("lobby").map((m) => [m.name, m.role]),
      [["ada", undefined], ["bob", "owner"]],
    );
    let state = client.roomState()!;
    assert.deepEqual([state.role, state.topic, state.slowMs], ["", "Be kind", 0]);
    assert.equal(client.message(2), undefined, "an event is no message");
    assert.deepEqual(moderation.map((m) => [m.event.action, m.history]), [["slow", true]]);
    assert.equal(state.unread, 0);

    socket.receive(act(3, { action: "topic", text: "Ship it" }));
    socket.receive(act(4, { action: "promote", target: ada }));
    state = client.roomState()!;
    assert.deepEqual([state.role, state.topic], ["moderator", "Ship it"]);
    assert.deepEqual(client.membersOf("lobby")[0].role, "moderator");
    assert.ok(policy.some((p) => p.touched.includes("role")));
    assert.deepEqual(
      socket.sent.at(-1),
      { type: "reports", room: "lobby" },
      "a new moderator asks",
    );
    socket.receive({
      type: "reports",
      room: "lobby",
      reports: [{ id: "r1", ref: 1, reason: "spam", by: { id: "u3", name: "carol" }, at: 5 }],
    });
    socket.receive({
      type: "report",
      room: "lobby",
      report: { id: "r2", ref: 1, reason: "rude", by: { id: "u4", name: "dan" }, at: 6 },
    });
    assert.deepEqual(reports.at(-1).reports.map((r: Detail) => r.id), ["r1", "r2"]);
    assert.equal(reports.at(-1).added.id, "r2");

    // A moderator's delete deletes the message for everyone, and closes its reports.
    socket.receive(act(5, { action: "delete", ref: 1, reason: "spam" }));
    assert.equal(client.message(1)?.deleted, true);
    assert.equal(moderation.at(-1).target.deleted, true);
    assert.deepEqual(reports.at(-1).reports, []);
    assert.deepEqual(
      moderation.map((m) => modNotice(m.event, { moderator: true })),
      [
        "bob turned off slow mode",
        "bob set the topic to “Ship it”",
        "bob made ada a moderator",
        "bob deleted a message: spam",
      ],
    );
    socket.receive(act(6, { action: "demote", target: ada }));
    assert.deepEqual([client.roomState()?.role, client.roomState()?.reports], ["", []]);
  } finally {
    await client.close();
  }
});

Deno.test("a mute: told with why and until when, kept across a reload, refusals fail, lifted by unmute and by its end", async () => {
  const storage = memoryStorage();
  const client = scripted(storage);
  const policy = collect(client, "policy");
  const failed = collect(client, "failed");
  try {
    client.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive(welcome());
    const until = Date.now() + 600_000;
    socket.receive({ type: "muted", room: "lobby", until, reason: "spam" });
    assert.deepEqual(client.roomState()?.mute, { until, reason: "spam" });
    assert.deepEqual(policy.at(-1), { room: "lobby", touched: ["mute"] });
    assert.deepEqual(JSON.parse(storage.getItem("chat.mute.lobby")!), { until, reason: "spam" });
    const said = client.say("let me talk");
    socket.receive({
      type: "error",
      code: "muted",
      message: "Cannot send message: you are muted in this room",
      cid: said.cid,
      room: "lobby",
      until,
      reason: "spam",
    });
    assert.deepEqual(failed.map((f) => [f.code, f.entry.state]), [["muted", "failed"]]);
    socket.receive(act(1, { action: "unmute", target: ada }));
    assert.equal(client.roomState()?.mute, null);
    assert.equal(storage.getItem("chat.mute.lobby"), null);

    // A short mute ends by itself: the page is told when.
    const ended = next(client, "policy", (p) => p.touched.includes("mute"));
    socket.receive({ type: "muted", room: "lobby", until: Date.now() + 50, reason: "wait" });
    assert.ok(client.roomState()?.mute);
    await ended; // the notice itself
    await next(client, "policy", () => client.roomState()?.mute === null);
  } finally {
    await client.close();
  }
});

Deno.test("slow mode: a member's messages wait their turn, slow_mode keeps them pending, off sends them", async () => {
  const client = scripted();
  const slow = collect(client, "slow");
  const failed = collect(client, "failed");
  try {
    client.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive(welcome());
    socket.receive(act(1, { action: "slow", durationMs: 30_000 }));
    assert.equal(client.roomState()?.slowMs, 30_000);
    const one = client.say("one");
    const two = client.say("two");
    const says = () => socket.sent.filter((f) => f.type === "say").map((f) => f.text);
    assert.deepEqual(says(), ["one"], "the second waits for the interval");
    assert.ok(client.slowUntil() > Date.now() + 25_000);
    assert.ok(slow.at(-1).until > Date.now());
    // The server says the first came too soon (another tab said something): it waits too.
    socket.receive({
      type: "error",
      code: "slow_mode",
      message: "Cannot send message: slow mode, wait a moment",
      cid: one.cid,
      room: "lobby",
      retryAfterMs: 40_000,
    });
    assert.deepEqual(failed, [], "pending, not failed");
    assert.deepEqual(client.outbox.map((e) => [e.text, e.state]), [
      ["one", "pending"],
      ["two", "pending"],
    ]);
    assert.ok(client.slowUntil() > Date.now() + 35_000);
    // Slow mode off: both go now, in order.
    socket.receive(act(2, { action: "slow", durationMs: 0 }));
    assert.deepEqual(says(), ["one", "one", "two"]);
    assert.equal(client.slowUntil(), 0);
    assert.deepEqual(slow.at(-1), { room: "lobby", until: 0 });
    socket.receive({ ...msg(3, ada, "one"), cid: one.cid }, {
      ...msg(4, ada, "two"),
      cid: two.cid,
    });
    assert.deepEqual(client.outbox, []);
    // Moderators are not slowed.
    socket.receive(act(5, { action: "slow", durationMs: 30_000 }));
    socket.receive(act(6, { action: "promote", target: ada }));
    client.say("three");
    client.say("four");
    assert.deepEqual(says().slice(-2), ["three", "four"]);
  } finally {
    await client.close();
  }
});

Deno.test("a kick or a ban says who, why and until when; a join refused by a ban drops the room with its end", async () => {
  const client = scripted();
  client.joinRoom("team");
  const left = collect(client, "left");
  const roomErrors = collect(client, "room-error");
  try {
    client.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive(welcome());
    socket.receive({ ...welcome(), room: "team" });
    socket.receive(act(1, { action: "kick", target: ada, reason: "calm down" }));
    socket.receive({ type: "left", room: "lobby", reason: "kicked" });
    assert.deepEqual(left, [{
      room: "lobby",
      reason: "kicked",
      sanction: { action: "kick", reason: "calm down", by: "bob" },
    }]);
    assert.deepEqual(client.joinedRooms, ["team"]);

    const until = Date.now() + 86_400_000;
    client.joinRoom("lobby");
    assert.deepEqual(socket.sent.at(-1), { type: "join", room: "lobby" });
    socket.receive({
      type: "error",
      code: "banned",
      message: "Cannot join room: you are banned from it",
      room: "lobby",
      until,
      reason: "spam",
    });
    assert.deepEqual(roomErrors, [{
      room: "lobby",
      code: "banned",
      message: "Cannot join room: you are banned from it",
      until,
      reason: "spam",
    }]);
    assert.deepEqual(client.joinedRooms, ["team"], "dropped, no name prompt");
    assert.equal(client.online, true);
  } finally {
    await client.close();
  }
});

Deno.test("on the real server: an operator mutes and bans a member, a report reaches the operator", async () => {
  const { createAuthenticator } = await import("../src/auth/jwt.ts");
  const { SignJWT } = await import("jose");
  const secret = "moderation client test secret";
  const token = (claims: Record<string, unknown>) =>
    new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setExpirationTime("1h")
      .sign(new TextEncoder().encode(secret));
  await using server = await startServer({
    authenticate: await createAuthenticator({ jwtSecret: secret }),
  });
  const open = async (claims: Record<string, unknown>) => {
    const client = new ChatClient({
      url: server.wsUrl,
      room: "lobby",
      name: String(claims.name),
      auth: await token(claims),
      storage: memoryStorage(),
    });
    const online = next(client, "status", (s) => s.state === "online");
    client.start();
    await online;
    return client;
  };
  const admin = await open({ sub: "op", name: "ada", role: "admin" });
  const member = await open({ sub: "bob", name: "bob" });
  try {
    assert.equal(admin.roomState()?.role, "operator");
    assert.deepEqual(member.membersOf("lobby").find((m) => m.id === "op")?.role, "operator");

    const said = next(admin, "message", (m) => m.message.text === "buy now");
    member.say("buy now");
    const ref = (await said).message.id;
    const reported = next(member, "reported");
    const told = next(admin, "reports", (r) => r.added);
    member.report(ref, "spam");
    assert.equal((await reported).ref, ref);
    assert.deepEqual((await told).reports.map((r: Detail) => [r.ref, r.reason]), [[ref, "spam"]]);

    const muted = next(member, "policy", (p) => p.touched.includes("mute"));
    const notice = next(member, "moderation", (m) => m.event.action === "mute");
    admin.moderate("mute", { userId: "bob", durationMs: 600_000, reason: "spam" });
    await muted;
    assert.equal(member.roomState()?.mute?.reason, "spam");
    assert.match(modNotice((await notice).event), /^ada muted bob for 10 minutes: spam$/);

    const dismissed = next(admin, "reports", (r) => r.reports.length === 0);
    admin.moderate("dismiss", { ref });
    await dismissed;

    const out = next(member, "left");
    admin.moderate("ban", { userId: "bob", durationMs: 86_400_000, reason: "still spamming" });
    const { reason, sanction } = await out;
    assert.deepEqual([reason, sanction.action, sanction.reason, sanction.by], [
      "banned",
      "ban",
      "still spamming",
      "ada",
    ]);
    assert.ok(sanction.until > Date.now());
    const refused = next(member, "room-error");
    member.view("lobby");
    const error = await refused;
    assert.deepEqual([error.code, error.reason], ["banned", "still spamming"]);
  } finally {
    await admin.close();
    await member.close();
  }
});
