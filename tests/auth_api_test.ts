/**
 * The account routes (`/auth/`) against a real server on port 0, with a
 * software authenticator (tests/soft_authenticator.ts) in place of a
 * browser: registration, sign-in with a discoverable passkey, sign-out that
 * revokes the cookie, more passkeys, rename; and every refusal with its
 * status and code: bad bodies, unknown credentials, used and expired
 * challenges, replays, foreign origins, reserved names, MAX_ACCOUNTS, the
 * rate limits, the browser policy, JWT mode and a store that is down.
 */
import assert from "node:assert/strict";
import { createAuthenticator } from "../src/auth/jwt.ts";
import type { ChatOptions } from "../src/chat.ts";
import type { LogEvent } from "../src/log.ts";
import type { AccountStore } from "../src/store/accounts.ts";
import { KvAccounts } from "../src/store/kv_accounts.ts";
import { KvQuota } from "../src/store/kv_quota.ts";
import { type Answer, call, cookieOf, registerAccount } from "./account_helpers.ts";
import { stalledRequest, startServer, type TestServer } from "./helpers.ts";
import { type CredentialJSON, SoftAuthenticator } from "./soft_authenticator.ts";

/** A server with accounts on, its account store, and what it logged and called back. */
interface Harness extends AsyncDisposable {
  server: TestServer;
  accounts: AccountStore;
  logs: LogEvent[];
  signedOut: [string, string][];
  renamed: [string, string][];
  /** The wall clock the server's sessions and challenges follow. */
  clock: { now: number };
}

async function start(options: Partial<ChatOptions> = {}): Promise<Harness> {
  const kv = await Deno.openKv(":memory:");
  const clock = { now: Date.now() };
  const accounts = new KvAccounts(kv, { now: () => clock.now });
  const logs: LogEvent[] = [];
  const signedOut: [string, string][] = [];
  const renamed: [string, string][] = [];
  const server = await startServer({
    accounts,
    quota: new KvQuota(kv),
    now: () => clock.now,
    log: (event) => logs.push(event),
    onSignOut: (sessionId, accountId) => signedOut.push([sessionId, accountId]),
    onRename: (accountId, name) => renamed.push([accountId, name]),
    ...options,
  });
  return {
    server,
    accounts,
    logs,
    signedOut,
    renamed,
    clock,
    async [Symbol.asyncDispose]() {
      await server.close();
      kv.close();
    },
  };
}

function assertError(answer: Answer, status: number, code: string, message?: RegExp): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.match(answer.headers.get("content-type") ?? "", /^application\/json/);
  assert.equal(answer.body.error.code, code, JSON.stringify(answer.body));
  assert.match(answer.body.error.message, /^Cannot /);
  if (message) assert.match(answer.body.error.message, message);
}

/** Registers `name` with `authenticator`; answers the account and the session cookie. */
function register(h: Harness, authenticator: SoftAuthenticator, name: string, origin?: string) {
  return registerAccount(h.server, authenticator, name, origin);
}

/** Asks for sign-in options and answers them with `authenticator`. */
async function assertion(
  h: Harness,
  authenticator: SoftAuthenticator,
  extra: { origin?: string; id?: string; counter?: number } = {},
): Promise<CredentialJSON> {
  const options = await call(h.server, "/auth/signin/options", { json: {} });
  assert.equal(options.status, 200, JSON.stringify(options.body));
  assert.equal(options.body.allowCredentials?.length ?? 0, 0, "discoverable: no credential named");
  return await authenticator.get(options.body, extra.origin ?? h.server.origin, extra);
}

Deno.test("register a name, read /auth/me, sign out: the cookie stops working", async () => {
  await using h = await start();
  const { account, cookie, answer } = await register(h, new SoftAuthenticator(), "Ada");
  assert.match(account.id, /^[0-9a-f]{16}$/);
  assert.equal(account.name, "Ada");
  assert.equal(answer.body.passkey.label, "Passkey");
  assert.deepEqual(answer.body.passkey.transports, ["internal"]);
  assert.equal(answer.body.passkey.publicKey, undefined, "no key material in answers");
  const set = answer.headers.get("set-cookie")!;
  assert.match(set, /^chat_session=[0-9a-f]{16}\.[A-Za-z0-9_-]{43}; /);
  for (const part of ["Path=/", "HttpOnly", "SameSite=Lax", `Max-Age=${30 * 86400}`]) {
    assert.ok(set.split("; ").includes(part), `${part} in ${set}`);
  }
  assert.ok(!set.includes("Secure"), "plain HTTP: no Secure");
  assert.equal(await h.accounts.nameOwner("ada"), account.id);

  const me = await call(h.server, "/auth/me", { headers: { cookie } });
  assert.equal(me.status, 200);
  assert.deepEqual(me.body.account, account);
  assert.equal(me.body.passkeys.length, 1);
  assert.deepEqual([me.body.rooms, me.body.blocks], [[], []]);
  await h.accounts.joinRoom(account.id, "lobby", 5);
  await h.accounts.markRead(account.id, "lobby", 42);
  const later = await call(h.server, "/auth/me", { headers: { cookie } });
  assert.deepEqual(later.body.rooms, [{ room: "lobby", joinedAt: 5, readId: 42 }]);
  assert.deepEqual((await call(h.server, "/auth/passkeys", { headers: { cookie } })).body, {
    passkeys: me.body.passkeys,
  });

  const out = await call(h.server, "/auth/signout", { method: "POST", headers: { cookie } });
  assert.equal(out.status, 204);
  assert.match(out.headers.get("set-cookie") ?? "", /^chat_session=; Path=\/; Max-Age=0; HttpOnly/);
  assert.equal(h.signedOut.length, 1);
  assert.equal(h.signedOut[0][1], account.id);
  assertError(await call(h.server, "/auth/me", { headers: { cookie } }), 401, "auth_required");
  const again = await call(h.server, "/auth/signout", { method: "POST", headers: { cookie } });
  assert.equal(again.status, 204, "signing out twice is fine");
  assert.equal(h.signedOut.length, 1);
  assertError(await call(h.server, "/auth/me"), 401, "auth_required", /sign in first/);
});

Deno.test("sign in with a discoverable passkey, from another browser too", async () => {
  await using h = await start();
  const laptop = new SoftAuthenticator();
  const { account, cookie: first } = await register(h, laptop, "ada");
  const signedIn = await call(h.server, "/auth/signin/verify", {
    json: { response: await assertion(h, laptop) },
  });
  assert.equal(signedIn.status, 200, JSON.stringify(signedIn.body));
  assert.deepEqual(signedIn.body.account, account);
  const cookie = cookieOf(signedIn);
  assert.notEqual(cookie, first, "a new session");
  assert.equal((await call(h.server, "/auth/me", { headers: { cookie } })).status, 200);
  assert.equal((await call(h.server, "/auth/me", { headers: { cookie: first } })).status, 200);

  // Signing in again in the browser that holds `cookie` ends that session.
  const replaced = await call(h.server, "/auth/signin/verify", {
    json: { response: await assertion(h, laptop) },
    headers: { cookie },
  });
  assert.equal(replaced.status, 200);
  assertError(await call(h.server, "/auth/me", { headers: { cookie } }), 401, "auth_required");
  assert.deepEqual(h.signedOut.map(([, id]) => id), [account.id]);
  const sessions = await h.accounts.sessions(account.id);
  assert.deepEqual(sessions.map((s) => s.revoked).sort(), [false, false, true]);
  assert.equal((await h.accounts.passkey(laptop.ids[0]))?.counter, 2);
  assert.ok(h.logs.some((e) => e.event === "auth" && e.action === "sign in"));
});

Deno.test("a replayed assertion is refused: the challenge is used, or the counter went back", async () => {
  await using h = await start();
  const authenticator = new SoftAuthenticator();
  await register(h, authenticator, "ada");
  const response = await assertion(h, authenticator);
  assert.equal((await call(h.server, "/auth/signin/verify", { json: { response } })).status, 200);
  assertError(
    await call(h.server, "/auth/signin/verify", { json: { response } }),
    400,
    "challenge_invalid",
    /unknown, used or expired/,
  );
  const stale = await assertion(h, authenticator, { counter: 1 });
  assertError(
    await call(h.server, "/auth/signin/verify", { json: { response: stale } }),
    401,
    "replayed",
  );
  // Synced passkeys keep no counter (always 0): each sign-in still needs a fresh challenge.
  const synced = new SoftAuthenticator({ counts: false });
  await register(h, synced, "bob");
  for (let i = 0; i < 2; i++) {
    const ok = await call(h.server, "/auth/signin/verify", {
      json: { response: await assertion(h, synced) },
    });
    assert.equal(ok.status, 200, `sign-in ${i}`);
  }
});

Deno.test("an answer made on a foreign origin is refused, and spends its challenge", async () => {
  await using h = await start();
  const authenticator = new SoftAuthenticator();
  const options = await call(h.server, "/auth/register/options", { json: { name: "ada" } });
  const foreign = await authenticator.create(options.body, "http://evil.example");
  assertError(
    await call(h.server, "/auth/register/verify", { json: { response: foreign } }),
    401,
    "verification_failed",
    /another origin \(http:\/\/evil\.example\)/,
  );
  const honest = await authenticator.create(options.body, h.server.origin);
  assertError(
    await call(h.server, "/auth/register/verify", { json: { response: honest } }),
    400,
    "challenge_invalid",
  );
  assert.equal(await h.accounts.nameOwner("ada"), null);
  await register(h, authenticator, "ada");
  const signIn = await assertion(h, authenticator, { origin: "https://phish.example" });
  assertError(
    await call(h.server, "/auth/signin/verify", { json: { response: signIn } }),
    401,
    "verification_failed",
  );
});

Deno.test("unknown credentials, tampered signatures, expired and misused challenges", async () => {
  await using h = await start();
  const registered = new SoftAuthenticator();
  const { account } = await register(h, registered, "ada");
  // A credential made for options that were never verified is not known here.
  const stranger = new SoftAuthenticator();
  const never = await call(h.server, "/auth/register/options", { json: { name: "bob" } });
  await stranger.create(never.body, h.server.origin);
  assertError(
    await call(h.server, "/auth/signin/verify", {
      json: { response: await assertion(h, stranger) },
    }),
    401,
    "unknown_credential",
  );
  // Another account's user handle on a known credential.
  const lying = await assertion(h, registered);
  lying.response.userHandle = btoa("0123456789abcdef").replace(/=+$/, "");
  assertError(
    await call(h.server, "/auth/signin/verify", { json: { response: lying } }),
    401,
    "unknown_credential",
  );
  const tampered = await assertion(h, registered);
  tampered.response.signature = tampered.response.signature.slice(0, -4) + "AAAA";
  assertError(
    await call(h.server, "/auth/signin/verify", { json: { response: tampered } }),
    401,
    "verification_failed",
  );
  // Expired: the server's clock moves past the challenge's 120 s.
  const late = await assertion(h, registered);
  h.clock.now += 120_000;
  assertError(
    await call(h.server, "/auth/signin/verify", { json: { response: late } }),
    400,
    "challenge_invalid",
  );
  // A registration's challenge cannot sign in, and the other way round.
  const options = await call(h.server, "/auth/register/options", { json: { name: "cat" } });
  const asSignIn = await registered.get(
    { ...options.body, rpId: options.body.rp.id },
    h.server.origin,
  );
  assertError(
    await call(h.server, "/auth/signin/verify", { json: { response: asSignIn } }),
    400,
    "challenge_invalid",
  );
  assert.equal((await h.accounts.account(account.id))?.name, "ada");
});

Deno.test("a name reserved by an account is refused: name_reserved, also when raced", async () => {
  await using h = await start();
  const { account } = await register(h, new SoftAuthenticator(), "ada");
  for (const name of ["ada", "ADA", "аda", " ａｄａ "]) {
    assertError(
      await call(h.server, "/auth/register/options", { json: { name } }),
      409,
      "name_reserved",
      /reserved/,
    );
  }
  const one = new SoftAuthenticator(), two = new SoftAuthenticator();
  const first = await call(h.server, "/auth/register/options", { json: { name: "bob" } });
  const second = await call(h.server, "/auth/register/options", { json: { name: "BOB" } });
  const a = await one.create(first.body, h.server.origin);
  const b = await two.create(second.body, h.server.origin);
  assert.equal(
    (await call(h.server, "/auth/register/verify", { json: { response: a } })).status,
    201,
  );
  assertError(
    await call(h.server, "/auth/register/verify", { json: { response: b } }),
    409,
    "name_reserved",
  );
  assert.equal(await h.accounts.count(), 2);
  assert.notEqual(await h.accounts.nameOwner("bob"), account.id);
});

Deno.test("MAX_ACCOUNTS: one registration more gets account_limit", async () => {
  await using h = await start({ maxAccounts: 1 });
  await register(h, new SoftAuthenticator(), "ada");
  assertError(
    await call(h.server, "/auth/register/options", { json: { name: "bob" } }),
    403,
    "account_limit",
    /most accounts/,
  );
  await using none = await start({ maxAccounts: 0 });
  assertError(
    await call(none.server, "/auth/register/options", { json: { name: "ada" } }),
    403,
    "account_limit",
  );
});

Deno.test("bad requests: JSON, fields, media type, size, method, route, a stalled body", async () => {
  await using h = await start();
  const path = "/auth/register/options";
  const post = (body: string, headers = { "content-type": "application/json" }) =>
    call(h.server, path, { body, headers });
  assertError(await post("{"), 400, "invalid_json");
  assertError(await post("[1]"), 400, "invalid_message", /JSON object/);
  assertError(await post("{}"), 400, "invalid_message", /^Cannot register: name/);
  assertError(await post('{"name":"a\\u200bb"}'), 400, "invalid_message", /U\+200B/);
  assertError(await post("{}", { "content-type": "text/plain" }), 415, "unsupported_media_type");
  assertError(await post(JSON.stringify({ name: "x".repeat(20_000) })), 413, "too_large");
  for (const verify of ["/auth/register/verify", "/auth/signin/verify"]) {
    assertError(await call(h.server, verify, { json: {} }), 400, "invalid_message", /'response'/);
    assertError(
      await call(h.server, verify, {
        json: { response: { id: "a", rawId: "a", type: "public-key", response: {} } },
      }),
      400,
      "invalid_message",
    );
  }
  const options = await call(h.server, path, { json: { name: "ada" } });
  const response = await new SoftAuthenticator().create(options.body, h.server.origin);
  assertError(
    await call(h.server, "/auth/register/verify", { json: { response, label: "\u0000" } }),
    400,
    "invalid_message",
    /'label'/,
  );
  const wrongMethod = await call(h.server, path);
  assertError(wrongMethod, 405, "method_not_allowed");
  assert.equal(wrongMethod.headers.get("allow"), "POST");
  assertError(
    await call(h.server, "/auth/me", { method: "POST", json: {} }),
    405,
    "method_not_allowed",
  );
  assertError(await call(h.server, "/auth/nothing"), 404, "not_found");
});

Deno.test("a body that does not arrive within bodyTimeoutMs gets 408 with connection: close", async () => {
  await using h = await start({ bodyTimeoutMs: 50 });
  const stalled = await stalledRequest(
    h.server.port,
    "POST /auth/signin/options HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json",
  );
  assert.match(stalled, /^HTTP\/1\.1 408 /);
  assert.match(stalled, /\r\nconnection: close\r\n/i);
  assert.equal((await call(h.server, "/auth/signin/options", { json: {} })).status, 200);
});

Deno.test("rate limits: ceremonies per address (429, Retry-After), registrations per hour", async () => {
  await using h = await start({ authRateBurst: 3, authRatePerSecond: 0.001 });
  for (let i = 0; i < 3; i++) {
    assert.equal((await call(h.server, "/auth/signin/options", { json: {} })).status, 200);
  }
  const limited = await call(h.server, "/auth/signin/verify", { json: {} });
  assertError(limited, 429, "rate_limited", /too many requests from this address/);
  assert.ok(Number(limited.headers.get("retry-after")) >= 1);
  const out = await call(h.server, "/auth/signout", { method: "POST" });
  assert.equal(out.status, 204, "signing out is never limited");
  assert.ok(h.logs.some((e) => e.event === "auth_refused" && e.code === "rate_limited"));

  await using q = await start({ registrationsPerAddressPerHour: 1 });
  await register(q, new SoftAuthenticator(), "ada");
  const options = await call(q.server, "/auth/register/options", { json: { name: "bob" } });
  const response = await new SoftAuthenticator().create(options.body, q.server.origin);
  const refused = await call(q.server, "/auth/register/verify", { json: { response } });
  assertError(refused, 429, "rate_limited", /registered 1 accounts this hour/);
  assert.ok(Number(refused.headers.get("retry-after")) > 0);
  assert.equal(await q.accounts.nameOwner("bob"), null);
  assert.equal(await q.accounts.count(), 1);
});

Deno.test("the browser policy comes first: a foreign Origin or another site gets 403", async () => {
  await using h = await start();
  const { cookie } = await register(h, new SoftAuthenticator(), "ada");
  const foreign = await call(h.server, "/auth/register/options", {
    json: { name: "bob" },
    headers: { origin: "https://evil.example" },
  });
  assertError(foreign, 403, "forbidden", /origin not allowed/);
  const crossSite = await call(h.server, "/auth/me", {
    headers: { cookie, "sec-fetch-site": "cross-site", "sec-fetch-dest": "document" },
  });
  assertError(crossSite, 403, "forbidden", /other sites/);
  const rebound = await call(h.server, "/auth/signout", {
    method: "POST",
    headers: { cookie, host: "evil.example", origin: "http://evil.example" },
  });
  assertError(rebound, 403, "forbidden");
  assert.equal((await call(h.server, "/auth/me", { headers: { cookie } })).status, 200);
  const own = await call(h.server, "/auth/me", {
    headers: { cookie, origin: h.server.origin, "sec-fetch-site": "same-origin" },
  });
  assert.equal(own.status, 200, "the page's own requests pass");
});

Deno.test("accounts are off with JWT auth on, or without an account store: 404", async () => {
  const authenticate = await createAuthenticator({ jwtSecret: "a-secret-for-tests" });
  await using h = await start({ authenticate });
  for (const path of ["/auth/me", "/auth/register/options", "/auth/anything"]) {
    assertError(await call(h.server, path, { json: {} }), 404, "not_found", /JWT auth is on/);
  }
  await using server = await startServer();
  assertError(await call(server, "/auth/me"), 404, "not_found", /no account store/);
});

Deno.test("passkeys: add a second, list them, remove one, never the last", async () => {
  await using h = await start();
  const laptop = new SoftAuthenticator(), phone = new SoftAuthenticator();
  const { account, cookie } = await register(h, laptop, "ada");
  assertError(await call(h.server, "/auth/passkeys/options", { json: {} }), 401, "auth_required");
  const options = await call(h.server, "/auth/passkeys/options", { json: {}, headers: { cookie } });
  assert.equal(options.status, 200);
  assert.deepEqual(options.body.excludeCredentials.map((c: { id: string }) => c.id), laptop.ids);
  assert.equal(options.body.user.name, "ada");
  const response = await phone.create(options.body, h.server.origin);
  const added = await call(h.server, "/auth/passkeys/verify", {
    json: { response, label: "  Phone " },
    headers: { cookie },
  });
  assert.equal(added.status, 201, JSON.stringify(added.body));
  assert.equal(added.body.passkey.label, "Phone");
  const listed = await call(h.server, "/auth/passkeys", { headers: { cookie } });
  assert.deepEqual(listed.body.passkeys.map((p: { id: string }) => p.id), [
    ...laptop.ids,
    ...phone.ids,
  ]);

  // The phone signs in to the same account.
  const signedIn = await call(h.server, "/auth/signin/verify", {
    json: { response: await assertion(h, phone) },
  });
  assert.deepEqual(signedIn.body.account, account);

  // A challenge for one account's new passkey cannot add it to another's.
  const { cookie: bobs } = await register(h, new SoftAuthenticator(), "bob");
  const adaOptions = await call(h.server, "/auth/passkeys/options", {
    json: {},
    headers: { cookie },
  });
  const stolen = await new SoftAuthenticator().create(adaOptions.body, h.server.origin);
  assertError(
    await call(h.server, "/auth/passkeys/verify", {
      json: { response: stolen },
      headers: { cookie: bobs },
    }),
    400,
    "challenge_invalid",
  );

  const remove = (id: string) =>
    call(h.server, `/auth/passkeys/${id}`, { method: "DELETE", headers: { cookie } });
  assert.equal((await remove(laptop.ids[0])).status, 204);
  assertError(await remove(phone.ids[0]), 409, "last_passkey");
  assertError(await remove(laptop.ids[0]), 404, "not_found");
  assertError(
    await call(h.server, `/auth/passkeys/${phone.ids[0]}`, { method: "DELETE" }),
    401,
    "auth_required",
  );
  assertError(
    await call(h.server, "/auth/signin/verify", { json: { response: await assertion(h, laptop) } }),
    401,
    "unknown_credential",
  );
});

Deno.test("rename: a new name frees the old one; a reserved one is refused", async () => {
  await using h = await start();
  const { account, cookie } = await register(h, new SoftAuthenticator(), "ada");
  await register(h, new SoftAuthenticator(), "bob");
  const renamed = await call(h.server, "/auth/rename", {
    json: { name: "Ada Lovelace" },
    headers: { cookie },
  });
  assert.equal(renamed.status, 200);
  assert.deepEqual(renamed.body.account, { ...account, name: "Ada Lovelace" });
  assert.deepEqual(h.renamed, [[account.id, "Ada Lovelace"]]);
  assert.equal(await h.accounts.nameOwner("ada"), null);
  assertError(
    await call(h.server, "/auth/rename", { json: { name: "BOB" }, headers: { cookie } }),
    409,
    "name_reserved",
  );
  assertError(
    await call(h.server, "/auth/rename", { json: { name: "" }, headers: { cookie } }),
    400,
    "invalid_message",
    /^Cannot rename:/,
  );
  assertError(
    await call(h.server, "/auth/rename", { json: { name: "zed" } }),
    401,
    "auth_required",
  );
  assert.equal(
    (await call(h.server, "/auth/me", { headers: { cookie } })).body.account.name,
    "Ada Lovelace",
  );
});

Deno.test("on a public HTTPS origin: its host name is the RP ID, and the cookie is Secure", async () => {
  const origin = "https://chat.example.com";
  await using h = await start({ publicOrigins: [origin] });
  const headers = { origin };
  const options = await call(h.server, "/auth/register/options", {
    json: { name: "ada" },
    headers,
  });
  assert.equal(options.body.rp.id, "chat.example.com");
  const response = await new SoftAuthenticator().create(options.body, origin);
  const answer = await call(h.server, "/auth/register/verify", { json: { response }, headers });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  assert.ok(answer.headers.get("set-cookie")!.split("; ").includes("Secure"));
  const local = await call(h.server, "/auth/signin/options", { json: {} });
  assert.equal(local.body.rpId, "localhost", "a loopback request without Origin: local");
});

Deno.test("the store down: 503 unavailable with Retry-After, never a 500", async () => {
  await using h = await start();
  const { cookie } = await register(h, new SoftAuthenticator(), "ada");
  const down = new Proxy(h.accounts, {
    get: (target, key) => {
      const value = Reflect.get(target, key);
      return typeof value === "function" ? () => Promise.reject(new Error("store is down")) : value;
    },
  });
  await using broken = await start({ accounts: down });
  for (
    const [path, json] of [["/auth/register/options", { name: "bob" }], [
      "/auth/signin/options",
      {},
    ]]
  ) {
    const answer = await call(broken.server, path as string, { json });
    assertError(answer, 503, "unavailable", /account store is unavailable/);
    assert.equal(answer.headers.get("retry-after"), "1");
  }
  assertError(await call(broken.server, "/auth/me", { headers: { cookie } }), 503, "unavailable");
});

Deno.test("logs name actions and accounts, never a cookie, challenge, credential or key", async () => {
  await using h = await start();
  const authenticator = new SoftAuthenticator();
  const { cookie } = await register(h, authenticator, "ada");
  const options = await call(h.server, "/auth/signin/options", { json: {} });
  const response = await authenticator.get(options.body, h.server.origin);
  const signedIn = await call(h.server, "/auth/signin/verify", { json: { response } });
  await call(h.server, "/auth/signin/verify", { json: { response } }); // refused: used
  await call(h.server, "/auth/signout", {
    method: "POST",
    headers: { cookie: cookieOf(signedIn) },
  });
  const logged = JSON.stringify(h.logs);
  const secrets = [cookie.split(".")[1], cookieOf(signedIn).split(".")[1], options.body.challenge];
  for (const secret of [...secrets, ...authenticator.ids]) {
    assert.ok(!logged.includes(secret), `the log holds ${secret}`);
  }
  assert.deepEqual(
    h.logs.map((e) => `${e.event} ${e.action} ${e.code ?? ""}`.trim()),
    ["auth register", "auth sign in", "auth_refused sign in challenge_invalid", "auth sign out"],
  );
});
