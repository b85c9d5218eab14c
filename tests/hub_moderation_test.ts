/**
 * Unit tests of moderation in the hub: roles (owner, moderators,
 * operators), each act and its `forbidden` cases, mutes and bans that hold
 * across reconnects, slow mode, the topic, reports, the audit log, and
 * idempotent retries. Fake peers, in-memory KV stores, no sockets.
 */
import assert from "node:assert/strict";
import type { JoinIdentity } from "../src/auth/identity.ts";
import type { JoinMessage, ServerMessage } from "../src/protocol.ts";
import { KvModeration } from "../src/store/kv_moderation.ts";
import type { FakePeer } from "./fake_peer.ts";
import { openHub, type TestHub } from "./hub_fixture.ts";

/**
 * Identities by name, as JWTs or accounts give them: `acct-…` names are
 * accounts (user id `u-<name>`), `admin` has the operator role, the rest are
 * guests with a tab session.
 */
const identify = (join: JoinMessage): Promise<JoinIdentity> => {
  const name = join.name!;
  const base = { userId: `u-${name}`, name };
  if (name === "admin") return Promise.resolve({ ...base, role: "admin" });
  if (name.startsWith("acct-")) return Promise.resolve({ ...base, account: true });
  return Promise.resolve({ ...base, session: base.userId });
};

/** A hub with moderation on, and a helper to send `mod` and take its answer. */
async function moderated(): Promise<
  TestHub & {
    act(peer: FakePeer, request: Record<string, unknown>): Promise<ServerMessage>;
    db: Deno.Kv;
  }
> {
  const db = await Deno.openKv(":memory:");
  const t = await openHub({
    identify,
    moderation: new KvModeration(db),
    isAccount: (userId) => Promise.resolve(userId.startsWith("u-acct-")),
  });
  let n = 0;
  const dispose = t[Symbol.asyncDispose].bind(t);
  return Object.assign(t, {
    db,
    async act(peer: FakePeer, request: Record<string, unknown>) {
      const cid = `mod${++n}`;
      t.send(peer, { type: "mod", cid, ...request } as never);
      return await peer.take((m) =>
        (m.type === "ack" || m.type === "error") && "cid" in m && m.cid === cid
      );
    },
    async [Symbol.asyncDispose]() {
      await dispose();
      db.close();
    },
  });
}

Deno.test("the account that creates a room owns it; a guest's room has no owner", async () => {
  await using t = await moderated();
  const owner = t.peer();
  await t.join(owner, "team", "acct-ada");
  t.send(owner, { type: "say", text: "first!", cid: "c1" });
  await owner.next("ack");
  const again = t.peer();
  const welcome = await t.join(again, "team", "acct-bob");
  assert.deepEqual(
    welcome.members.map((m) => [m.name, m.role]),
    [["acct-ada", "owner"], ["acct-bob", undefined]],
  );
  const guest = t.peer();
  await t.join(guest, "guests", "gus");
  t.send(guest, { type: "say", text: "mine?", cid: "g1" });
  await guest.next("ack");
  assert.equal((await t.act(guest, { room: "guests", action: "topic", topic: "x" })).type, "error");
});

Deno.test("members who are not moderators get forbidden; moderators cannot act on the owner", async () => {
  await using t = await moderated();
  const owner = t.peer();
  await t.join(owner, "team", "acct-ada");
  t.send(owner, { type: "say", text: "mine", cid: "c1" });
  await owner.next("ack");
  const mod = t.peer();
  const modWelcome = await t.join(mod, "team", "acct-mo");
  const guest = t.peer();
  const guestWelcome = await t.join(guest, "team", "gus");

  const forbidden = await t.act(guest, { action: "kick", userId: modWelcome.id });
  assert.deepEqual(
    [forbidden.type, forbidden.type === "error" && forbidden.code],
    ["error", "forbidden"],
  );
  // Only the owner promotes, and only accounts.
  const notOwner = await t.act(mod, { action: "promote", userId: modWelcome.id });
  assert.equal(notOwner.type === "error" && notOwner.code, "forbidden");
  const notAccount = await t.act(owner, { action: "promote", userId: guestWelcome.id });
  assert.equal(notAccount.type === "error" && notAccount.code, "invalid_message");
  assert.equal((await t.act(owner, { action: "promote", userId: modWelcome.id })).type, "ack");
  const promoted = await guest.next("message", (m) => m.kind === "moderation");
  assert.deepEqual(
    [promoted.action, promoted.target?.id, promoted.by?.name],
    ["promote", modWelcome.id, "acct-ada"],
  );
  const onOwner = await t.act(mod, { action: "mute", userId: "u-acct-ada" });
  assert.equal(onOwner.type === "error" && onOwner.code, "forbidden");
});

Deno.test("kick removes the user from the room everywhere; they may come back", async () => {
  await using t = await moderated();
  const admin = t.peer();
  await t.join(admin, "lobby", "admin");
  const spam = t.peer();
  const s = await t.join(spam, "lobby", "spammer");
  await t.join(spam, "other");
  const kicked = await t.act(admin, { action: "kick", userId: s.id, reason: "calm down" });
  assert.equal(kicked.type, "ack");
  assert.deepEqual(await spam.next("left"), { type: "left", room: "lobby", reason: "kicked" });
  const event = await admin.next("message", (m) => m.kind === "moderation");
  assert.deepEqual([event.action, event.target?.name, event.reason], [
    "kick",
    "spammer",
    "calm down",
  ]);
  assert.ok(spam.open, "the connection stays, in its other rooms");
  assert.equal((await t.join(spam, "lobby")).room, "lobby", "a kick is no ban");
});

Deno.test("ban: out at once, and every later join refused until it ends; unban lets them in", async () => {
  let now = 1_000_000;
  const db = await Deno.openKv(":memory:");
  await using t = await openHub({ identify, moderation: new KvModeration(db), now: () => now });
  try {
    const admin = t.peer();
    await t.join(admin, "lobby", "admin");
    const troll = t.peer();
    const tw = await t.join(troll, "lobby", "troll");
    t.send(admin, {
      type: "mod",
      action: "ban",
      userId: tw.id,
      durationMs: 60_000,
      reason: "trolling",
      cid: "b1",
    });
    await admin.next("ack");
    assert.deepEqual(await troll.next("left"), { type: "left", room: "lobby", reason: "banned" });
    t.send(troll, { type: "join", room: "lobby" });
    const refused = await troll.next("error");
    assert.deepEqual(
      [refused.code, refused.until, refused.reason],
      ["banned", 1_060_000, "trolling"],
    );
    // A new connection (a reconnect) is refused too: the ban is in the store, for the user.
    const back = t.peer();
    t.send(back, { type: "join", room: "lobby", name: "troll" });
    assert.equal((await back.next("error")).code, "banned");
    now += 60_000;
    assert.equal((await t.join(back, "lobby")).room, "lobby", "the ban ended");
    t.send(admin, { type: "mod", action: "ban", userId: tw.id, cid: "b2" });
    await admin.next("ack", (a) => a.cid === "b2");
    t.send(admin, { type: "mod", action: "unban", userId: tw.id, cid: "b3" });
    await admin.next("ack", (a) => a.cid === "b3");
    const third = t.peer();
    assert.equal((await t.join(third, "lobby", "troll")).room, "lobby");
  } finally {
    db.close();
  }
});

Deno.test("mute: the user is told why and until when, and may not say, edit or react until it ends", async () => {
  await using t = await moderated();
  const admin = t.peer();
  await t.join(admin, "lobby", "admin");
  const loud = t.peer();
  const lw = await t.join(loud, "lobby", "loud");
  t.send(loud, { type: "say", text: "before", cid: "l1" });
  await loud.next("ack");
  await t.act(admin, { action: "mute", userId: lw.id, durationMs: 600_000, reason: "shouting" });
  const muted = await loud.next("muted");
  assert.equal(muted.reason, "shouting");
  assert.ok(muted.until! > Date.now());
  for (
    const frame of [
      { type: "say", text: "hey", cid: "l2" },
      { type: "edit", ref: 1, text: "x", cid: "l3" },
      { type: "react", ref: 1, emoji: "👍", cid: "l4" },
    ] as const
  ) {
    t.send(loud, frame);
    const refused = await loud.next("error", (e) => e.cid === frame.cid);
    assert.deepEqual([refused.code, refused.reason], ["muted", "shouting"], frame.type);
  }
  await t.act(admin, { action: "unmute", userId: lw.id });
  t.send(loud, { type: "say", text: "sorry", cid: "l5" });
  assert.equal((await loud.next("ack", (a) => a.cid === "l5")).cid, "l5");
});

Deno.test("slow mode: one say per interval per member; moderators are exempt; 0 turns it off", async () => {
  let now = 50_000;
  const db = await Deno.openKv(":memory:");
  await using t = await openHub({ identify, moderation: new KvModeration(db), now: () => now });
  try {
    const admin = t.peer();
    await t.join(admin, "lobby", "admin");
    const ada = t.peer();
    await t.join(ada, "lobby", "ada");
    t.send(admin, { type: "mod", action: "slow", durationMs: 10_000, cid: "s1" });
    await admin.next("ack");
    t.send(ada, { type: "say", text: "one", cid: "a1" });
    await ada.next("ack");
    now += 4_000;
    t.send(ada, { type: "say", text: "two", cid: "a2" });
    const slow = await ada.next("error");
    assert.deepEqual([slow.code, slow.retryAfterMs, slow.cid], ["slow_mode", 6_000, "a2"]);
    t.send(admin, { type: "say", text: "mods talk freely", cid: "x1" });
    t.send(admin, { type: "say", text: "mods talk freely", cid: "x2" });
    await admin.next("ack", (a) => a.cid === "x2");
    now += 6_000;
    t.send(ada, { type: "say", text: "two", cid: "a2" });
    assert.equal((await ada.next("ack")).cid, "a2");
    t.send(admin, { type: "mod", action: "slow", durationMs: 0, cid: "s2" });
    await admin.next("ack", (a) => a.cid === "s2");
    t.send(ada, { type: "say", text: "three", cid: "a3" });
    assert.equal((await ada.next("ack")).cid, "a3");
  } finally {
    db.close();
  }
});

Deno.test("topic: set in the sequence and carried in later welcomes; delete removes any message", async () => {
  await using t = await moderated();
  const admin = t.peer();
  await t.join(admin, "lobby", "admin");
  const ada = t.peer();
  await t.join(ada, "lobby", "ada");
  t.send(ada, { type: "say", text: "bad words", cid: "a1" });
  await ada.next("ack");
  await t.act(admin, { action: "topic", topic: "Be kind" });
  await t.act(admin, { action: "delete", ref: 1, reason: "rude" });
  const events = ada.all("message").filter((m) => m.kind === "moderation");
  assert.deepEqual(events.map((m) => [m.action, m.text, m.ref]), [
    ["topic", "Be kind", undefined],
    ["delete", "", 1],
  ]);
  const later = await t.join(t.peer(), "lobby", "bob");
  assert.equal(later.topic, "Be kind");
  assert.deepEqual(
    later.history.map((m) => [m.id, m.deleted ?? false, m.text]),
    [[1, true, ""]],
    "the message reads as deleted",
  );
  const gone = await t.act(admin, { action: "delete", ref: 99 });
  assert.equal(gone.type === "error" && gone.code, "not_found");
});

Deno.test("every act is idempotent per cid, and forms the room's audit log", async () => {
  await using t = await moderated();
  const admin = t.peer();
  await t.join(admin, "lobby", "admin");
  const ada = t.peer();
  const aw = await t.join(ada, "lobby", "ada");
  t.send(admin, { type: "mod", action: "mute", userId: aw.id, cid: "same" });
  t.send(admin, { type: "mod", action: "mute", userId: aw.id, cid: "same" });
  const [first, retry] = [await admin.next("ack"), await admin.next("ack")];
  assert.equal(retry.id, first.id, "one event for one cid");
  await t.hub.settled();
  assert.equal(ada.all("message").filter((m) => m.kind === "moderation").length, 1);
  const log = await new KvModeration(t.db).audit("lobby", undefined, 10);
  assert.deepEqual(log.entries.map((e) => [e.action, e.target?.id]), [["mute", aw.id]]);
});

Deno.test("reports reach the room's moderators at once, are listed for them, and close when acted on", async () => {
  await using t = await moderated();
  const admin = t.peer();
  await t.join(admin, "lobby", "admin");
  const ada = t.peer();
  await t.join(ada, "lobby", "ada");
  const bob = t.peer();
  await t.join(bob, "lobby", "bob");
  t.send(ada, { type: "say", text: "spam spam", cid: "a1" });
  await ada.next("ack");
  t.send(bob, { type: "report", ref: 1, reason: "spam" });
  const told = await admin.next("report");
  assert.deepEqual([told.room, told.report.ref, told.report.reason, told.report.by.name], [
    "lobby",
    1,
    "spam",
    "bob",
  ]);
  assert.deepEqual(ada.all("report"), [], "members are not told");
  t.send(ada, { type: "reports" });
  assert.equal((await ada.next("error")).code, "forbidden");
  t.send(admin, { type: "reports" });
  assert.deepEqual((await admin.next("reports")).reports.map((r) => r.ref), [1]);
  await t.act(admin, { action: "delete", ref: 1 });
  t.send(admin, { type: "reports" });
  assert.deepEqual((await admin.next("reports")).reports, [], "acting on it closed it");
});

Deno.test("a mute and a ban hold after the hub restarts: they live in the store", async () => {
  const db = await Deno.openKv(":memory:");
  try {
    const store = new KvModeration(db);
    {
      await using t = await openHub({ identify, moderation: store });
      const admin = t.peer();
      await t.join(admin, "lobby", "admin");
      t.send(admin, { type: "mod", action: "ban", userId: "u-troll", cid: "b1" });
      await admin.next("ack");
    }
    await using fresh = await openHub({ identify, moderation: store });
    const troll = fresh.peer();
    fresh.send(troll, { type: "join", room: "lobby", name: "troll" });
    assert.equal((await troll.next("error")).code, "banned");
  } finally {
    db.close();
  }
});
