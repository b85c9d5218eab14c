/**
 * Units of the account sign-in, no server: the session cookie
 * (src/auth/cookie_session.ts) read back from requests, revoked, expired
 * and malformed; and the relying party a request gets
 * (src/auth/relying_party.ts).
 */
import assert from "node:assert/strict";
import { CookieSessions, SESSION_COOKIE } from "../src/auth/cookie_session.ts";
import { relyingParty } from "../src/auth/relying_party.ts";
import { KvAccounts } from "../src/store/kv_accounts.ts";

const DAY = 86_400_000;

async function setup() {
  const kv = await Deno.openKv(":memory:");
  const clock = { now: Date.now() };
  const accounts = new KvAccounts(kv, { now: () => clock.now });
  const account = { id: "00000000000000a1", name: "ada", createdAt: clock.now };
  const passkey = {
    id: "cred",
    accountId: account.id,
    publicKey: new Uint8Array([1]),
    counter: 0,
    transports: [],
    label: "Passkey",
    createdAt: clock.now,
    lastUsedAt: null,
  };
  assert.ok((await accounts.createAccount({ account, passkey }, 10)).ok);
  const sessions = new CookieSessions({ accounts, ttlMs: DAY, now: () => clock.now });
  return { kv, clock, accounts, account, sessions };
}

const withCookie = (cookie: string) =>
  new Request("http://localhost:8000/ws", { headers: { cookie } });

Deno.test("a session cookie signs in its account, until it is revoked or expires", async () => {
  const { kv, clock, account, sessions } = await setup();
  try {
    const { session, setCookie } = await sessions.start(account.id, true);
    assert.match(setCookie, /; Max-Age=86400; HttpOnly; SameSite=Lax; Secure$/);
    const value = setCookie.split(";")[0];
    assert.match(session.id, /^[0-9a-f]{32}$/);
    assert.ok(!value.includes(session.id), "the cookie holds the secret, the store its hash");
    const signedIn = await sessions.sessionFromRequest(withCookie(`theme=dark; ${value}`));
    assert.deepEqual(signedIn, { sessionId: session.id, account });
    assert.equal(await sessions.revoke(session.id), true);
    assert.equal(await sessions.sessionFromRequest(withCookie(value)), null, "revoked");

    const next = (await sessions.start(account.id, false)).setCookie.split(";")[0];
    assert.ok(await sessions.sessionFromRequest(withCookie(next)));
    clock.now += DAY;
    assert.equal(await sessions.sessionFromRequest(withCookie(next)), null, "expired");
  } finally {
    kv.close();
  }
});

Deno.test("malformed, forged and misplaced cookies sign nobody in", async () => {
  const { kv, account, sessions } = await setup();
  try {
    const value = (await sessions.start(account.id, false)).setCookie.split(";")[0];
    const secret = value.split(".")[1];
    const cookies = [
      "",
      `${SESSION_COOKIE}=`,
      `${SESSION_COOKIE}=${secret}`,
      `${SESSION_COOKIE}=00000000000000b2.${secret}`, // another account's id
      `${SESSION_COOKIE}=${value.split("=")[1].slice(0, -1)}${value.endsWith("A") ? "B" : "A"}`,
      `${SESSION_COOKIE}=${value.split("=")[1]}x`,
      `other_${value}`,
      `${SESSION_COOKIE}=${"0".repeat(16)}.${"A".repeat(43)}`,
    ];
    for (const cookie of cookies) {
      assert.equal(await sessions.sessionFromRequest(withCookie(cookie)), null, cookie);
    }
    assert.equal(
      await sessions.sessionFromRequest(new Request("http://localhost:8000/")),
      null,
      "no cookie",
    );
    assert.ok(await sessions.sessionFromRequest(withCookie(`${SESSION_COOKIE}=bad; ${value}`)));
  } finally {
    kv.close();
  }
});

Deno.test("relying party: localhost locally, PUBLIC_ORIGIN's host name, or none", () => {
  const request = (url: string, headers: Record<string, string> = {}) =>
    new Request(url, { method: "POST", headers });
  assert.deepEqual(relyingParty(request("http://localhost:8000/auth/x"), []), {
    rpId: "localhost",
    origins: ["http://localhost:8000"],
  });
  assert.deepEqual(relyingParty(request("http://chat.localhost:8000/auth/x"), []), {
    rpId: "chat.localhost",
    origins: ["http://chat.localhost:8000"],
  });
  assert.deepEqual(relyingParty(request("http://127.0.0.1:9000/auth/x"), []), {
    rpId: "localhost",
    origins: ["http://127.0.0.1:9000"],
  });
  assert.equal(relyingParty(request("http://chat.example.com/auth/x"), []), null);

  const deploy = ["https://chat.acme.deno.net", "https://chat-b1.acme.deno.net"];
  const public_ = { rpId: "chat.acme.deno.net", origins: deploy };
  assert.deepEqual(
    relyingParty(request("http://10.0.0.5:8000/x", { origin: deploy[1] }), deploy),
    public_,
  );
  assert.deepEqual(
    relyingParty(request("http://127.0.0.1:8000/x", { origin: deploy[0] }), deploy),
    public_,
    "behind a proxy that sets Host to the server's address",
  );
  assert.deepEqual(relyingParty(request("https://chat.acme.deno.net/x"), deploy), public_);
  assert.deepEqual(
    relyingParty(request("http://localhost:8000/x", { origin: "http://localhost:8000" }), deploy),
    { rpId: "localhost", origins: ["http://localhost:8000"] },
    "a developer's localhost next to the public origins",
  );
});
