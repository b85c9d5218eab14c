/**
 * Passkey accounts in a real browser: Debian's Chromium with its virtual
 * authenticator over CDP (CTAP2, internal transport, resident keys, user
 * verification), no authenticator hardware and no test page: the chat page
 * at `/` is loaded on `http://localhost:PORT` (browsers allow passkeys on
 * `localhost`, never on an IP address) and the ceremonies run in it through
 * `page.evaluate`, with the page's own `fetch` and
 * `navigator.credentials`, under the page's CSP.
 *
 * Two browser contexts are two browser profiles: the first registers a
 * name; its credential, copied into the second's authenticator
 * (`WebAuthn.getCredentials`, `WebAuthn.addCredential`), as a synced
 * passkey arrives on another device, signs in there to the same account.
 */
import assert from "node:assert/strict";
import type { BrowserContext, CDPSession, Page } from "playwright-core";
import { KvAccounts } from "../src/store/kv_accounts.ts";
import { KvQuota } from "../src/store/kv_quota.ts";
import { launch, newTab, pageErrors, skip } from "./browser_helpers.ts";
import { startServer } from "./helpers.ts";

/** A page with a virtual authenticator of its own. */
interface Profile {
  context: BrowserContext;
  page: Page;
  cdp: CDPSession;
  authenticatorId: string;
}

async function profile(context: BrowserContext, url: string): Promise<Profile> {
  const page = await newTab(context, url);
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable", { enableUI: false });
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { context, page, cdp, authenticatorId };
}

/** An answer the page's `fetch` got: status and JSON body. */
// deno-lint-ignore no-explicit-any
type Answer = { status: number; body: any };

/** Registers `name` in the page: options, `navigator.credentials.create()`, verify. */
function register(page: Page, name: string): Promise<Answer> {
  return page.evaluate(async (name) => {
    // deno-lint-ignore no-explicit-any
    const g = globalThis as any;
    const post = async (path: string, body: unknown) => {
      const response = await g.fetch(path, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: await response.json() };
    };
    const options = await post("/auth/register/options", { name });
    if (options.status !== 200) return options;
    const publicKey = g.PublicKeyCredential.parseCreationOptionsFromJSON(options.body);
    const credential = await g.navigator.credentials.create({ publicKey });
    return await post("/auth/register/verify", { response: credential.toJSON(), label: "Virtual" });
  }, name);
}

/**
 * Signs in in the page: options, `navigator.credentials.get()`, verify; then
 * posts the very same assertion again. Answers both.
 */
function signInTwice(page: Page): Promise<{ first: Answer; replayed: Answer }> {
  return page.evaluate(async () => {
    // deno-lint-ignore no-explicit-any
    const g = globalThis as any;
    const post = async (path: string, body: unknown) => {
      const response = await g.fetch(path, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: await response.json() };
    };
    const options = await post("/auth/signin/options", {});
    const publicKey = g.PublicKeyCredential.parseRequestOptionsFromJSON(options.body);
    const credential = await g.navigator.credentials.get({ publicKey });
    const response = credential.toJSON();
    const first = await post("/auth/signin/verify", { response });
    const replayed = await post("/auth/signin/verify", { response });
    return { first, replayed };
  });
}

/** `GET /auth/me` from the page, with whatever cookie the browser holds. */
function me(page: Page): Promise<Answer> {
  return page.evaluate(async () => {
    // deno-lint-ignore no-explicit-any
    const response = await (globalThis as any).fetch("/auth/me");
    return { status: response.status, body: await response.json() };
  });
}

Deno.test({
  name: "a passkey registered in one browser profile signs in to the same account in another",
  ignore: skip,
  async fn(t) {
    const kv = await Deno.openKv(":memory:");
    const accounts = new KvAccounts(kv);
    const signedOut: string[] = [];
    await using server = await startServer({
      accounts,
      quota: new KvQuota(kv),
      onSignOut: (_sessionId, accountId) => signedOut.push(accountId),
    });
    const url = `http://localhost:${server.port}/`;
    const browser = await launch();
    try {
      const first = await profile(await browser.newContext(), url);
      let accountId = "";

      await t.step(
        "the first profile registers a name with its platform authenticator",
        async () => {
          const answer = await register(first.page, "Ada");
          assert.equal(answer.status, 201, JSON.stringify(answer.body));
          assert.match(answer.body.account.id, /^[0-9a-f]{16}$/);
          assert.equal(answer.body.account.name, "Ada");
          assert.equal(answer.body.passkey.label, "Virtual");
          accountId = answer.body.account.id;
          const { status, body } = await me(first.page);
          assert.equal(status, 200);
          assert.equal(body.account.id, accountId);
          assert.equal(body.passkeys.length, 1);
          // deno-lint-ignore no-explicit-any
          const visible = await first.page.evaluate(() => (globalThis as any).document.cookie);
          assert.ok(!String(visible).includes("chat_session"), "HttpOnly: no script reads it");
          const refused = await register(first.page, "ADA");
          assert.equal(refused.status, 409);
          assert.equal(refused.body.error.code, "name_reserved");
        },
      );

      const second = await profile(await browser.newContext(), url);

      await t.step("the second profile gets the credential, as a synced passkey", async () => {
        const { credentials } = await first.cdp.send("WebAuthn.getCredentials", {
          authenticatorId: first.authenticatorId,
        });
        assert.equal(credentials.length, 1);
        assert.equal(credentials[0].isResidentCredential, true, "discoverable");
        assert.equal(credentials[0].rpId, "localhost");
        await second.cdp.send("WebAuthn.addCredential", {
          authenticatorId: second.authenticatorId,
          credential: credentials[0],
        });
        assert.equal((await me(second.page)).status, 401, "not signed in yet");
      });

      await t.step(
        "it signs in with no name asked, to the same account; a replay is refused",
        async () => {
          const { first: signedIn, replayed } = await signInTwice(second.page);
          assert.equal(signedIn.status, 200, JSON.stringify(signedIn.body));
          assert.deepEqual(signedIn.body.account.id, accountId);
          assert.equal(signedIn.body.account.name, "Ada");
          assert.equal(replayed.status, 400);
          assert.equal(replayed.body.error.code, "challenge_invalid");
          const { status, body } = await me(second.page);
          assert.equal(status, 200);
          assert.equal(body.account.id, accountId);
        },
      );

      await t.step("the first profile's copy, whose counter fell behind, is refused", async () => {
        // Chromium's virtual authenticator counts signatures (synced passkeys send 0 instead):
        // the second profile's sign-in moved the stored counter past the first profile's.
        const stored = (await accounts.passkeys(accountId))[0].counter;
        const { credentials } = await first.cdp.send("WebAuthn.getCredentials", {
          authenticatorId: first.authenticatorId,
        });
        assert.ok(credentials[0].signCount < stored, `${credentials[0].signCount} < ${stored}`);
        const { first: behind } = await signInTwice(first.page);
        assert.equal(behind.status, 401);
        assert.equal(behind.body.error.code, "replayed");
      });

      await t.step("signing out revokes the session: its cookie no longer works", async () => {
        const { cookies } = await second.cdp.send("Network.getCookies", { urls: [url] });
        const held = cookies.find((c: { name: string }) => c.name === "chat_session");
        assert.ok(held, "the browser holds the cookie");
        assert.equal(held.httpOnly, true);
        assert.equal(held.sameSite, "Lax");
        assert.equal(held.path, "/");
        const status = await second.page.evaluate(async () => {
          const signOut = await globalThis.fetch("/auth/signout", { method: "POST" });
          return signOut.status;
        });
        assert.equal(status, 204);
        assert.deepEqual(signedOut, [accountId]);
        assert.equal((await me(second.page)).status, 401);
        // The revoked value, sent again by hand, does not work either.
        const again = await fetch(`${server.origin}/auth/me`, {
          headers: { cookie: `chat_session=${held.value}` },
        });
        assert.equal(again.status, 401);
        await again.body?.cancel();
        assert.equal((await me(first.page)).status, 200, "the first profile's session stays");
      });

      assert.deepEqual(pageErrors, []);
    } finally {
      await browser.close();
      kv.close();
    }
  },
});
