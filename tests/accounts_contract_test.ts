/**
 * The account store contract (src/store/accounts.ts), one suite run against
 * every implementation: Deno KV (two handles on one file, as two processes
 * have) and Redis (two connections). Every step the contract calls atomic
 * across instances is raced here between two store objects. Time is a fake
 * wall clock that starts at the real one (Redis expires keys by real time).
 */
import assert from "node:assert/strict";
import { openBackends } from "../src/backends.ts";
import { loadConfig } from "../src/config.ts";
import { connectRedis, type RedisConnection } from "../src/redis/connection.ts";
import {
  type Account,
  type AccountStore,
  MAX_ACCOUNT_ROOMS,
  MAX_BLOCKS,
  MAX_PASSKEYS,
  type Passkey,
} from "../src/store/accounts.ts";
import { KvAccounts } from "../src/store/kv_accounts.ts";
import { RedisAccounts } from "../src/store/redis_accounts.ts";
import { skipRedis, startRedis } from "./redis.ts";

/** An open store: `store()` is one more instance on it; `close` frees all. */
interface Opened {
  store(): AccountStore;
  close(): Promise<void>;
}

interface Implementation {
  name: string;
  ignore: boolean;
  open(now: () => number): Promise<Opened>;
}

const IMPLEMENTATIONS: Implementation[] = [
  {
    name: "KvAccounts",
    ignore: false,
    async open(now) {
      const dir = await Deno.makeTempDir({ prefix: "chat-accounts-" });
      const handles = [await Deno.openKv(`${dir}/chat.kv`), await Deno.openKv(`${dir}/chat.kv`)];
      let next = 0;
      return {
        store: () => new KvAccounts(handles[next++ % 2], { now }),
        async close() {
          for (const kv of handles) kv.close();
          await Deno.remove(dir, { recursive: true });
        },
      };
    },
  },
  {
    name: "RedisAccounts",
    ignore: skipRedis,
    async open(now) {
      const redis = await startRedis();
      const connections: RedisConnection[] = [];
      connections.push(await connectRedis(redis.url));
      connections.push(await connectRedis(redis.url));
      let next = 0;
      return {
        store: () => new RedisAccounts(connections[next++ % 2].client, { now }),
        async close() {
          for (const connection of connections) await connection.close();
          await redis[Symbol.asyncDispose]();
        },
      };
    },
  },
];

const DAY = 86_400_000;
let serial = 0;

/** A new account named `name`, with a fresh id. */
function account(name: string, createdAt = 1000): Account {
  return { id: (++serial).toString(16).padStart(16, "0"), name, createdAt };
}

/** A passkey of `accountId` with a fresh credential id. */
function passkey(accountId: string, extra: Partial<Passkey> = {}): Passkey {
  return {
    id: `cred-${++serial}`,
    accountId,
    publicKey: new Uint8Array([1, 2, 3, 250, 255]),
    counter: 0,
    transports: ["internal"],
    label: "Laptop",
    createdAt: 1000,
    lastUsedAt: null,
    ...extra,
  };
}

/** Creates an account named `name` with one passkey; fails the test when refused. */
async function created(store: AccountStore, name: string): Promise<{ a: Account; p: Passkey }> {
  const a = account(name);
  const p = passkey(a.id);
  const result = await store.createAccount({ account: a, passkey: p }, 1000);
  assert.ok(result.ok, `created ${name}: ${JSON.stringify(result)}`);
  return { a, p };
}

for (const implementation of IMPLEMENTATIONS) {
  const contract = (name: string, fn: (s: Opened, clock: { now: number }) => Promise<void>) =>
    Deno.test(
      { name: `${implementation.name}: ${name}`, ignore: implementation.ignore },
      async () => {
        const clock = { now: Date.now() };
        const opened = await implementation.open(() => clock.now);
        try {
          await fn(opened, clock);
        } finally {
          await opened.close();
        }
      },
    );

  contract("creates an account with its passkey; the name is reserved by its key", async (s) => {
    const store = s.store();
    const { a, p } = await created(store, "Ada");
    assert.deepEqual(await store.account(a.id), a);
    assert.equal(await store.count(), 1);
    for (const lookalike of ["Ada", "ada", "ADA", "аda", "ａｄａ"]) {
      assert.equal(await store.nameOwner(lookalike), a.id, lookalike);
    }
    assert.equal(await store.nameOwner("bob"), null);
    assert.deepEqual(await store.passkey(p.id), p);
    assert.deepEqual(await store.passkeys(a.id), [p]);
    assert.equal(await store.account("ffffffffffffffff"), null);
  });

  contract("refuses a reserved name, a stored credential and one account too many", async (s) => {
    const store = s.store();
    const { p } = await created(store, "ada");
    const other = account("ΑDA"); // a Greek capital alpha
    const taken = await store.createAccount({ account: other, passkey: passkey(other.id) }, 10);
    assert.deepEqual(taken, { ok: false, code: "name_reserved" });
    const copy = await store.createAccount({ account: account("cat"), passkey: { ...p } }, 10);
    assert.deepEqual(copy, { ok: false, code: "credential_exists" });
    const full = await store.createAccount({ account: account("bob"), passkey: passkey("x") }, 1);
    assert.deepEqual(full, { ok: false, code: "account_limit" });
    assert.equal(await store.count(), 1);
    assert.equal(await store.nameOwner("bob"), null, "a refused creation reserves nothing");
  });

  contract("two instances creating one name at once: exactly one gets it", async (s) => {
    const one = s.store(), two = s.store();
    const attempts = ["eve", "EVE", "еve", "Eve"].map((name, i) => {
      const a = account(name);
      return (i % 2 ? one : two).createAccount({ account: a, passkey: passkey(a.id) }, 100);
    });
    const results = await Promise.all(attempts);
    assert.equal(results.filter((r) => r.ok).length, 1, JSON.stringify(results));
    assert.ok(results.every((r) => r.ok || r.code === "name_reserved"));
    assert.equal(await one.count(), 1);
  });

  contract("creations at once from two instances never pass the limit", async (s) => {
    const one = s.store(), two = s.store();
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => {
      const a = account(`user${i}`);
      return (i % 2 ? one : two).createAccount({ account: a, passkey: passkey(a.id) }, 4);
    }));
    assert.equal(results.filter((r) => r.ok).length, 4);
    assert.ok(results.every((r) => r.ok || r.code === "account_limit"));
    assert.equal(await two.count(), 4);
  });

  contract("rename reserves the new key and frees the old one", async (s) => {
    const store = s.store();
    const { a } = await created(store, "ada");
    const { a: bob } = await created(store, "bob");
    const renamed = await store.rename(a.id, "Ada Lovelace");
    assert.deepEqual(renamed, { ok: true, value: { ...a, name: "Ada Lovelace" } });
    assert.equal(await store.nameOwner("ada"), null, "the old name is free");
    assert.equal(await store.nameOwner("ada lovelace"), a.id);
    assert.deepEqual(await store.rename(a.id, "BOB"), { ok: false, code: "name_reserved" });
    assert.equal((await store.account(a.id))?.name, "Ada Lovelace", "a refusal changes nothing");
    const recased = await store.rename(bob.id, "BOB");
    assert.ok(recased.ok, "the same key: only the name changes");
    assert.equal(await store.nameOwner("bob"), bob.id);
    assert.deepEqual(await store.rename("0123456789abcdef", "zed"), {
      ok: false,
      code: "not_found",
    });
    const { a: cat } = await created(store, "ada"); // the freed name can be had again
    assert.equal(await store.nameOwner("ada"), cat.id);
  });

  contract("two accounts renaming to one name at once: exactly one gets it", async (s) => {
    const one = s.store(), two = s.store();
    const { a } = await created(one, "ada");
    const { a: b } = await created(one, "bob");
    const results = await Promise.all([one.rename(a.id, "zoe"), two.rename(b.id, "ZOE")]);
    assert.equal(results.filter((r) => r.ok).length, 1, JSON.stringify(results));
    const winner = results[0].ok ? a : b;
    assert.equal(await one.nameOwner("zoe"), winner.id);
    const loser = winner === a ? b : a;
    assert.equal(await one.nameOwner(loser.name), loser.id, "the loser keeps its name");
    assert.equal(await one.nameOwner(winner.name), null, "the winner's old name is free");
  });

  contract(
    "passkeys: add, list, refuse a stored id, the limit; never remove the last",
    async (s) => {
      const store = s.store();
      const { a, p } = await created(store, "ada");
      const second = passkey(a.id, { label: "Phone", transports: ["hybrid", "internal"] });
      assert.deepEqual(await store.addPasskey(second), { ok: true, value: second });
      assert.deepEqual(await store.passkeys(a.id), [p, second]);
      assert.deepEqual(await store.addPasskey({ ...second, label: "again" }), {
        ok: false,
        code: "credential_exists",
      });
      assert.deepEqual(await store.addPasskey(passkey("ffffffffffffffff")), {
        ok: false,
        code: "not_found",
      });
      for (let i = 2; i < MAX_PASSKEYS; i++) assert.ok((await store.addPasskey(passkey(a.id))).ok);
      assert.deepEqual(await store.addPasskey(passkey(a.id)), { ok: false, code: "passkey_limit" });
      const all = await store.passkeys(a.id);
      assert.equal(all.length, MAX_PASSKEYS);
      for (const key of all.slice(1)) {
        assert.deepEqual(await store.removePasskey(a.id, key.id), { ok: true, value: null });
      }
      assert.deepEqual(await store.removePasskey(a.id, p.id), { ok: false, code: "last_passkey" });
      assert.deepEqual(await store.removePasskey(a.id, second.id), {
        ok: false,
        code: "not_found",
      });
      const { a: bob } = await created(store, "bob");
      assert.deepEqual(await store.removePasskey(bob.id, p.id), { ok: false, code: "not_found" });
      assert.equal(await store.passkey(second.id), null, "a removed passkey is gone");
      assert.deepEqual(await store.passkeys(a.id), [p]);
    },
  );

  contract("two instances removing an account's last two passkeys: one stays", async (s) => {
    const one = s.store(), two = s.store();
    const { a, p } = await created(one, "ada");
    const second = passkey(a.id);
    await one.addPasskey(second);
    const results = await Promise.all([
      one.removePasskey(a.id, p.id),
      two.removePasskey(a.id, second.id),
    ]);
    assert.deepEqual(results.map((r) => r.ok ? "removed" : r.code).sort(), [
      "last_passkey",
      "removed",
    ]);
    assert.equal((await two.passkeys(a.id)).length, 1);
  });

  contract("recordUse: the counter only goes up, once, across instances", async (s) => {
    const one = s.store(), two = s.store();
    const { p } = await created(one, "ada");
    assert.equal(await one.recordUse(p.id, 0, 2000), true, "no counter kept: 0 after 0");
    assert.equal((await one.passkey(p.id))?.lastUsedAt, 2000);
    assert.equal(await one.recordUse(p.id, 5, 3000), true);
    assert.equal(await two.recordUse(p.id, 5, 4000), false, "the same counter again: a replay");
    assert.equal(await two.recordUse(p.id, 3, 4000), false, "a counter that went back");
    assert.equal(await two.recordUse(p.id, 0, 4000), false, "0 after a counter was kept");
    const stored = await two.passkey(p.id);
    assert.equal(stored?.counter, 5);
    assert.equal(stored?.lastUsedAt, 3000);
    const raced = await Promise.all([one.recordUse(p.id, 6, 5000), two.recordUse(p.id, 6, 5000)]);
    assert.deepEqual(raced.sort(), [false, true]);
    assert.equal(await one.recordUse("no-such-credential", 9, 5000), false);
  });

  contract("sessions: resolve with the account, revoke everywhere, expire, list", async (s, c) => {
    const one = s.store(), two = s.store();
    const { a } = await created(one, "ada");
    const session = (id: string, createdAt: number, ttl = 30 * DAY) => ({
      id,
      accountId: a.id,
      createdAt,
      expiresAt: c.now + ttl,
      revoked: false,
    });
    const first = session("s1", c.now - 2);
    const second = session("s2", c.now - 1);
    const short = session("s3", c.now, 1000);
    for (const value of [first, second, short]) await one.createSession(value);
    assert.deepEqual(await two.resolveSession("s1", a.id), { session: first, account: a });
    assert.equal(await two.resolveSession("s1", "0123456789abcdef"), null, "another account");
    assert.equal(await two.resolveSession("nope", a.id), null);
    assert.deepEqual((await two.sessions(a.id)).map((x) => x.id), ["s3", "s2", "s1"]);
    assert.equal(await two.revokeSession("s1"), true);
    assert.equal((await one.resolveSession("s1", a.id))?.session.revoked, true, "everywhere");
    assert.equal(await one.revokeSession("s1"), true, "again: still revoked");
    assert.equal(await one.revokeSession("nope"), false);
    c.now += 1000;
    assert.equal(await one.resolveSession("s3", a.id), null, "expired");
    assert.equal(await one.revokeSession("s3"), false, "expired");
    assert.deepEqual(
      (await one.sessions(a.id)).map((x) => [x.id, x.revoked]),
      [["s2", false], ["s1", true]],
    );
    const renamed = await one.rename(a.id, "Ada L");
    assert.ok(renamed.ok);
    assert.equal((await two.resolveSession("s2", a.id))?.account.name, "Ada L", "always fresh");
  });

  contract(
    "challenges: taken once, by one of two instances; expired ones are gone",
    async (s, c) => {
      const one = s.store(), two = s.store();
      const data = {
        purpose: "register" as const,
        accountId: "0123456789abcdef",
        name: "ada",
        rpId: "localhost",
        origins: ["http://localhost:8000"],
        expiresAt: c.now + 60_000,
      };
      await one.putChallenge("c1", data);
      const taken = await Promise.all([one.takeChallenge("c1"), two.takeChallenge("c1")]);
      assert.deepEqual(taken.filter((t) => t !== null), [data]);
      assert.equal(await one.takeChallenge("c1"), null, "used");
      assert.equal(await one.takeChallenge("never"), null);
      await two.putChallenge("c2", { ...data, purpose: "signin" });
      c.now += 60_000;
      assert.equal(await one.takeChallenge("c2"), null, "expired");
    },
  );

  contract("rooms: joined once, read positions only move on, at most the cap", async (s) => {
    const one = s.store(), two = s.store();
    const { a } = await created(one, "ada");
    assert.equal(await one.joinRoom(a.id, "lobby", 100), true);
    assert.equal(await two.joinRoom(a.id, "lobby", 500), true, "joined already: kept");
    assert.equal(await one.joinRoom(a.id, "constructor", 200), true);
    assert.equal(await one.joinRoom(a.id, "__proto__", 300), true);
    await one.markRead(a.id, "lobby", 7);
    await two.markRead(a.id, "lobby", 5);
    await Promise.all([one.markRead(a.id, "__proto__", 3), two.markRead(a.id, "__proto__", 9)]);
    await one.markRead(a.id, "not-joined", 4);
    assert.deepEqual(await two.rooms(a.id), [
      { room: "lobby", joinedAt: 100, readId: 7 },
      { room: "constructor", joinedAt: 200, readId: 0 },
      { room: "__proto__", joinedAt: 300, readId: 9 },
    ]);
    await two.leaveRoom(a.id, "lobby");
    await two.leaveRoom(a.id, "lobby");
    assert.deepEqual((await one.rooms(a.id)).map((r) => r.room), ["constructor", "__proto__"]);
    for (let i = 2; i < MAX_ACCOUNT_ROOMS; i++) {
      assert.equal(await one.joinRoom(a.id, `room${i}`, 1000 + i), true);
    }
    assert.equal(await two.joinRoom(a.id, "one-too-many", 5000), false);
    assert.equal(await two.joinRoom(a.id, "room2", 5000), true, "one it has is fine");
    assert.equal((await one.rooms(a.id)).length, MAX_ACCOUNT_ROOMS);
    assert.deepEqual(await one.rooms("0123456789abcdef"), []);
  });

  contract("rooms joined at once from two instances are all kept", async (s) => {
    const one = s.store(), two = s.store();
    const { a } = await created(one, "ada");
    await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 ? one : two).joinRoom(a.id, `r${i}`, i)),
    );
    assert.deepEqual((await one.rooms(a.id)).map((r) => r.room), [
      "r0",
      "r1",
      "r2",
      "r3",
      "r4",
      "r5",
      "r6",
      "r7",
    ]);
  });

  contract("blocks: a list in order, once each, at most the cap", async (s) => {
    const one = s.store(), two = s.store();
    const { a } = await created(one, "ada");
    assert.equal(await one.block(a.id, "u1"), true);
    assert.equal(await two.block(a.id, "u2"), true);
    assert.equal(await two.block(a.id, "u1"), true, "blocked already");
    assert.deepEqual(await one.blocks(a.id), ["u1", "u2"]);
    await one.unblock(a.id, "u1");
    await one.unblock(a.id, "u1");
    assert.deepEqual(await two.blocks(a.id), ["u2"]);
    await Promise.all([one.block(a.id, "u3"), two.block(a.id, "u4")]);
    assert.deepEqual((await one.blocks(a.id)).sort(), ["u2", "u3", "u4"]);
    for (let i = 3; i < MAX_BLOCKS; i++) assert.equal(await one.block(a.id, `x${i}`), true);
    assert.equal(await two.block(a.id, "too-many"), false);
    assert.equal((await one.blocks(a.id)).length, MAX_BLOCKS);
    assert.deepEqual(await one.blocks("0123456789abcdef"), []);
  });
}

Deno.test("openBackends opens an account store on its store (Deno KV)", async () => {
  const backends = await openBackends(loadConfig({ KV_PATH: ":memory:", SESSION_SECRET: "s" }));
  try {
    assert.ok(backends.accounts instanceof KvAccounts);
    await created(backends.accounts, "ada");
    assert.equal(await backends.accounts.count(), 1);
  } finally {
    await backends.close();
  }
});

Deno.test(
  { name: "openBackends opens an account store on its store (Redis)", ignore: skipRedis },
  async () => {
    await using redis = await startRedis();
    const backends = await openBackends(loadConfig({ REDIS_URL: redis.url, SESSION_SECRET: "s" }));
    try {
      assert.ok(backends.accounts instanceof RedisAccounts);
      await created(backends.accounts, "ada");
      assert.equal(await backends.accounts.count(), 1);
    } finally {
      await backends.close();
    }
  },
);
