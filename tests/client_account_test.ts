/**
 * The page's account API module (`static/account.js`) against a real
 * server: its `fetch` is Deno's with a cookie jar of one cookie (as a
 * browser keeps `chat_session`), its `navigator.credentials` is the tests'
 * software authenticator, and the JSON helpers of `PublicKeyCredential`
 * pass the options through (the authenticator takes them as JSON). Every
 * refusal comes back as data: the server's code and message, or the
 * page's own `cancelled`, `network` and `unsupported`.
 */
import assert from "node:assert/strict";
import { AccountApi } from "../static/account.js";
import { ChatClient } from "../static/chat_client.js";
import { KvAccounts } from "../src/store/kv_accounts.ts";
import { KvQuota } from "../src/store/kv_quota.ts";
import { next } from "./client_helpers.ts";
import { startServer, type TestServer } from "./helpers.ts";
import { type CredentialJSON, SoftAuthenticator } from "./soft_authenticator.ts";

/** A browser, as far as account.js sees one: fetch with a cookie, and an authenticator. */
function browserFor(server: TestServer, authenticator: SoftAuthenticator) {
  let cookie = "";
  const fetch = async (input: string | URL | Request, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (cookie) headers.set("cookie", cookie);
    const response = await globalThis.fetch(`${server.origin}${input}`, { ...init, headers });
    const set = response.headers.get("set-cookie");
    if (set) {
      const [pair] = set.split(";");
      cookie = /=$/.test(pair) ? "" : pair;
    }
    return response;
  };
  const wrap = (json: CredentialJSON) => ({ toJSON: () => json });
  const credentials = {
    // deno-lint-ignore no-explicit-any
    create: async ({ publicKey }: any) =>
      wrap(await authenticator.create(publicKey, server.origin)),
    // deno-lint-ignore no-explicit-any
    get: async ({ publicKey }: any) => wrap(await authenticator.get(publicKey, server.origin)),
  };
  const PublicKeyCredential = {
    parseCreationOptionsFromJSON: (json: unknown) => json,
    parseRequestOptionsFromJSON: (json: unknown) => json,
  };
  return {
    api: new AccountApi({
      fetch: fetch as typeof globalThis.fetch,
      // deno-lint-ignore no-explicit-any
      credentials: credentials as any,
      PublicKeyCredential,
    }),
    get cookie() {
      return cookie;
    },
  };
}

async function start() {
  const kv = await Deno.openKv(":memory:");
  const server = await startServer({ accounts: new KvAccounts(kv), quota: new KvQuota(kv) });
  return {
    server,
    async [Symbol.asyncDispose]() {
      await server.close();
      kv.close();
    },
  };
}

Deno.test("account.js registers, reads, renames, manages passkeys and signs out", async () => {
  await using h = await start();
  const authenticator = new SoftAuthenticator();
  const browser = browserFor(h.server, authenticator);
  const { api } = browser;
  assert.equal(api.supported, true);

  const guest = await api.me();
  assert.deepEqual(guest.ok ? null : [guest.status, guest.code], [401, "auth_required"]);

  const registered = await api.register("Ada", "Laptop");
  assert.ok(registered.ok, JSON.stringify(registered));
  assert.equal(registered.value.account.name, "Ada");
  assert.equal(registered.value.passkey.label, "Laptop");
  assert.match(browser.cookie, /^chat_session=/);

  const me = await api.me();
  assert.ok(me.ok);
  assert.equal(me.value.account.id, registered.value.account.id);
  assert.equal(me.value.passkeys.length, 1);
  assert.deepEqual(me.value.rooms, []);

  const last = await api.removePasskey(me.value.passkeys[0].id);
  assert.ok(!last.ok);
  assert.equal(last.status, 409);
  assert.equal(last.code, "last_passkey");
  assert.match(last.message, /^Cannot remove passkey: it is the account's last one/);

  const added = await api.addPasskey();
  assert.ok(added.ok, JSON.stringify(added));
  assert.equal(added.value.passkey.label, "Passkey", "the server's default label");
  const listed = await api.passkeys();
  assert.ok(listed.ok);
  assert.equal(listed.value.passkeys.length, 2);
  // The first one goes: the new one is the account's key now.
  const removed = await api.removePasskey(me.value.passkeys[0].id);
  assert.deepEqual(removed, { ok: true, value: null });
  const left = await api.passkeys();
  assert.deepEqual(left.ok && left.value.passkeys.map((p) => p.id), [added.value.passkey.id]);

  const renamed = await api.rename("Ada Lovelace");
  assert.ok(renamed.ok, JSON.stringify(renamed));
  assert.equal(renamed.value.account.name, "Ada Lovelace");

  assert.deepEqual(await api.signOut(), { ok: true, value: null });
  assert.equal(browser.cookie, "", "the cookie is cleared");
  const after = await api.me();
  assert.equal(after.ok ? 200 : after.status, 401);

  // The passkey signs in again, with no name asked.
  const signedIn = await api.signIn();
  assert.ok(signedIn.ok, JSON.stringify(signedIn));
  assert.equal(signedIn.value.account.name, "Ada Lovelace");
});

Deno.test("account.js answers refusals as data: the server's and the browser's", async () => {
  await using h = await start();
  const owner = browserFor(h.server, new SoftAuthenticator()).api;
  assert.ok((await owner.register("Grace")).ok);

  const other = browserFor(h.server, new SoftAuthenticator()).api;
  const reserved = await other.register("GRACE");
  assert.ok(!reserved.ok);
  assert.deepEqual([reserved.status, reserved.code], [409, "name_reserved"]);
  assert.match(reserved.message, /^Cannot register/);

  const outsider = await other.rename("Hopper");
  assert.deepEqual(outsider.ok ? null : [outsider.status, outsider.code], [401, "auth_required"]);

  // The person dismisses the browser's prompt.
  const dismissing = new AccountApi({
    fetch: ((input: string, init?: RequestInit) =>
      globalThis.fetch(`${h.server.origin}${input}`, init)) as typeof fetch,
    credentials: {
      create: () =>
        Promise.reject(
          new DOMException("The operation either timed out or was not allowed.", "NotAllowedError"),
        ),
      get: () =>
        Promise.reject(new DOMException("Aborted", "AbortError")),
    },
    PublicKeyCredential: {
      parseCreationOptionsFromJSON: (json: unknown) => json,
      parseRequestOptionsFromJSON: (json: unknown) => json,
    },
  });
  const cancelled = await dismissing.register("Hedy");
  assert.deepEqual(cancelled.ok ? null : [cancelled.status, cancelled.code], [0, "cancelled"]);
  const notChosen = await dismissing.signIn();
  assert.deepEqual(notChosen.ok ? null : notChosen.code, "cancelled");

  // No WebAuthn in this browser: said before any ceremony.
  const old = new AccountApi({
    fetch: ((input: string, init?: RequestInit) =>
      globalThis.fetch(`${h.server.origin}${input}`, init)) as typeof fetch,
    credentials: null,
    PublicKeyCredential: {},
  });
  assert.equal(old.supported, false);
  const unsupported = await old.register("Hedy");
  assert.deepEqual(unsupported.ok ? null : unsupported.code, "unsupported");

  // No server.
  const offline = new AccountApi({
    fetch: () => Promise.reject(new TypeError("Failed to fetch")),
    credentials: null,
  });
  const network = await offline.me();
  assert.deepEqual(network.ok ? null : [network.status, network.code], [0, "network"]);
});

Deno.test("account.js says accounts are off as the server does (not_found)", async () => {
  await using server = await startServer({});
  const api = new AccountApi({
    fetch: ((input: string, init?: RequestInit) =>
      globalThis.fetch(`${server.origin}${input}`, init)) as typeof fetch,
    credentials: null,
  });
  const me = await api.me();
  assert.deepEqual(me.ok ? null : [me.status, me.code], [404, "not_found"]);
});

Deno.test("ChatClient becomes the account with its cookie, and a guest again on sign-out", async () => {
  await using h = await start();
  const browser = browserFor(h.server, new SoftAuthenticator());
  // Deno's WebSocket takes headers: the socket carries the jar's cookie, as a browser's upgrade does.
  const jar = browser;
  class CookieSocket extends WebSocket {
    constructor(url: string | URL) {
      super(url, jar.cookie ? { headers: { cookie: jar.cookie } } : undefined);
    }
  }
  const open = (name?: string) =>
    new ChatClient({
      url: h.server.wsUrl,
      room: "lobby",
      ...(name ? { name } : {}),
      WebSocket: CookieSocket as typeof WebSocket,
    });
  const tab1 = open("Ada");
  const guestWelcome = next(tab1, "welcome");
  tab1.start();
  await guestWelcome;
  const guestId = tab1.userId;

  const registered = await browser.api.register("Ada");
  assert.ok(registered.ok, JSON.stringify(registered));
  const account = registered.value.account;
  const accountWelcome = next(tab1, "welcome");
  tab1.useAccount(account, { blocks: ["0123456789abcdef"] });
  assert.deepEqual(tab1.account, { id: account.id, name: "Ada" });
  assert.equal(tab1.isBlocked("0123456789abcdef"), true, "the account's blocks");
  const { welcome } = await accountWelcome;
  assert.equal(welcome.id ?? welcome.userId, account.id);
  assert.equal(tab1.userId, account.id);
  assert.notEqual(tab1.userId, guestId);
  assert.equal(tab1.guestName, "Ada", "the guest's name is kept");

  // A second tab of the account: no name, one member.
  const tab2 = open();
  tab2.useAccount(account);
  const second = next(tab2, "welcome");
  tab2.start();
  await second;
  assert.equal(tab2.name, "Ada");
  assert.deepEqual(tab2.membersOf("lobby").map((m) => m.id), [account.id]);

  // A guest asking for the name: a prompt, with the code.
  const guest = new ChatClient({ url: h.server.wsUrl, room: "lobby", name: "ada" });
  const prompt = next(guest, "prompt");
  guest.start();
  const refused = await prompt;
  assert.equal(refused.code, "name_reserved");
  assert.match(refused.message, /belongs to an account/);
  await guest.close();

  // Signing out closes both tabs' connections (4001): guests again, stopped, no reconnect.
  const out1 = next(tab1, "signed-out");
  const out2 = next(tab2, "signed-out");
  const offline2 = next(tab2, "status", (s) => s.state === "offline");
  assert.deepEqual(await browser.api.signOut(), { ok: true, value: null });
  assert.deepEqual(await out1, { name: "Ada" });
  assert.deepEqual(await out2, { name: "" });
  assert.equal((await offline2).reason, "signed-out");
  assert.equal(tab1.account, null);
  assert.equal(tab1.online, false);
  tab1.signedOut(); // told again by the page: nothing more happens

  // Back as a guest under another name.
  const back = next(tab1, "welcome");
  tab1.join("Ada-guest");
  await back;
  assert.equal(tab1.name, "Ada-guest");
  assert.notEqual(tab1.userId, account.id);
  await tab1.close();
  await tab2.close();
});
