/**
 * What the page needs from the server, found while building the page side
 * of direct messages and moderation: a welcome that says how far the room
 * goes, its slow mode and the joiner's own mute; a later joiner's role; and
 * `dm` by user id.
 */
import assert from "node:assert/strict";
import type { JoinIdentity } from "../src/auth/identity.ts";
import type { JoinMessage } from "../src/protocol.ts";
import { KvModeration } from "../src/store/kv_moderation.ts";
import { openHub } from "./hub_fixture.ts";

/** `admin` is an operator; anyone else a guest with a tab session. */
const identify = (join: JoinMessage): Promise<JoinIdentity> => {
  const name = join.name!;
  // Two people may take one name in two rooms: the one in "design" is another user.
  const base = { userId: join.room === "design" ? `u-${name}-2` : `u-${name}`, name };
  if (name === "admin") return Promise.resolve({ ...base, role: "admin" });
  return Promise.resolve({ ...base, session: base.userId });
};

async function moderated() {
  const db = await Deno.openKv(":memory:");
  const t = await openHub({ identify, moderation: new KvModeration(db) });
  const dispose = t[Symbol.asyncDispose].bind(t);
  return Object.assign(t, {
    async [Symbol.asyncDispose]() {
      await dispose();
      db.close();
    },
  });
}

Deno.test("a fresh welcome says how far the room goes: a change after its newest message is no gap", async () => {
  // The welcome's history holds plain messages only, and nothing says the room's newest
  // event id: after an act (or an edit, a reaction) that follows the newest message, the
  // next live event looks like a gap to a client, which reconnects to fill it.
  await using t = await moderated();
  const admin = t.peer();
  await t.join(admin, "lobby", "admin");
  t.send(admin, { type: "say", text: "hello", cid: "c1" });
  await admin.next("ack");
  t.send(admin, { type: "mod", action: "topic", topic: "Be kind", cid: "m1" });
  await admin.next("ack", (a) => a.cid === "m1");
  const ada = t.peer();
  const welcome = await t.join(ada, "lobby", "ada");
  const newest = Math.max(
    0,
    ...welcome.history.map((m) => m.id),
    Number((welcome as unknown as { lastId?: number }).lastId ?? 0),
  );
  assert.equal(newest, 2, "the welcome says the room is at event 2 (the topic)");
});

Deno.test("a welcome carries the room's slow mode and the joiner's own mute", async () => {
  // Without them a member who joins (or a new tab) learns of slow mode and of a mute only
  // from a refused message.
  await using t = await moderated();
  const admin = t.peer();
  await t.join(admin, "lobby", "admin");
  const bob = t.peer();
  const b = await t.join(bob, "lobby", "bob");
  t.send(admin, { type: "mod", action: "slow", durationMs: 30_000, cid: "s1" });
  t.send(admin, {
    type: "mod",
    action: "mute",
    userId: b.id,
    durationMs: 600_000,
    reason: "spam",
    cid: "m1",
  });
  await admin.next("ack", (a) => a.cid === "m1");
  const again = t.peer();
  const welcome = await t.join(again, "lobby", "bob") as unknown as Record<string, unknown>;
  assert.equal(welcome.slowMs, 30_000, "the welcome says the room's slow mode");
  assert.equal((welcome.muted as { reason?: string } | undefined)?.reason, "spam");
});

Deno.test("a member who joins later comes with their role", async () => {
  // Roles are only in the welcome's member list: an operator (or a moderator) who joins
  // after you is shown as a member, and the page offers to kick them.
  await using t = await moderated();
  const bob = t.peer();
  await t.join(bob, "lobby", "bob");
  const admin = t.peer();
  await t.join(admin, "lobby", "admin");
  const joined = await bob.next("presence", (p) => p.event === "join");
  assert.equal(joined.member.role, "operator");
});

Deno.test("dm can name the person by user id: two people of one name in two rooms", async () => {
  // `dm` takes a name only, and names are unique per room, not per server: the page knows
  // the member's id, but the server opens the conversation with whoever of that name it
  // finds first.
  await using t = await moderated();
  const other = t.peer();
  const otherBob = await t.join(other, "design", "bob");
  const bob = t.peer();
  const lobbyBob = await t.join(bob, "lobby", "bob");
  assert.notEqual(otherBob.id, lobbyBob.id);
  const ada = t.peer();
  await t.join(ada, "lobby", "ada");
  t.send(ada, { type: "dm", name: "bob", userId: lobbyBob.id } as never);
  const opened = await ada.next("welcome", (w) => w.room.startsWith("dm:"));
  assert.equal(opened.peer?.userId, lobbyBob.id, "the bob of the lobby, whom ada picked");
});
