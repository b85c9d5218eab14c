/**
 * The page's account panel in a real browser, driven as a person would
 * (clicks and keys, no `fetch` from the test for what the panel does):
 * Debian's Chromium with its virtual authenticator over CDP (CTAP2,
 * internal transport, resident keys, user verification), the page on
 * `http://localhost:PORT` (passkeys need a host name).
 *
 * One browser profile keeps a guest's name with a passkey; a second, given
 * a copy of the credential (a synced passkey), signs in to the same
 * account and finds its rooms; a guest in a third is refused the name and
 * told why; two tabs of the first are one member; signing out in one of
 * them ends both; a sign-in in one tab, which ends the browser's session,
 * takes the other tab to the new one; passkeys are added and removed, and
 * the account renamed, from the panel. axe-core checks each new state.
 */
import assert from "node:assert/strict";
import type { BrowserContext, CDPSession, Page } from "playwright-core";
import { KvAccounts } from "../src/store/kv_accounts.ts";
import { KvQuota } from "../src/store/kv_quota.ts";
import {
  expectNoAxeViolations,
  focusedAttribute,
  joinAs,
  launch,
  myName,
  newTab,
  pageErrors,
  roomLink,
  skip,
  waitForCount,
  waitOnline,
} from "./browser_helpers.ts";
import { startServer } from "./helpers.ts";

/** A page with a virtual authenticator of its own. */
interface Profile {
  context: BrowserContext;
  page: Page;
  cdp: CDPSession;
  authenticatorId: string;
}

async function profile(context: BrowserContext, url: string): Promise<Profile> {
  return await authenticatorFor(context, await newTab(context, url));
}

/** A virtual authenticator for `page` (each page has its own). */
async function authenticatorFor(context: BrowserContext, page: Page): Promise<Profile> {
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

/** The user id the page shows as its own (`body[data-my-id]`). */
async function myId(page: Page): Promise<string> {
  return await page.locator("body").getAttribute("data-my-id") ?? "";
}

/** Waits until the page's own id is `id` (after a reconnect as the account). */
async function waitMyId(page: Page, id: string): Promise<void> {
  await page.locator(`body[data-my-id="${id}"]`).waitFor({ state: "attached" });
}

/** `GET /auth/me` as the page's cookie says (reading only: the test checks the server). */
// deno-lint-ignore no-explicit-any
async function me(page: Page): Promise<{ status: number; body: any }> {
  return await page.evaluate(async () => {
    const response = await globalThis.fetch("/auth/me");
    return { status: response.status, body: await response.json() };
  });
}

/** The account panel's live region. */
function panelStatus(page: Page) {
  return page.locator("#account-status");
}

Deno.test({
  name: "the account panel keeps a name with a passkey, signs in elsewhere, and signs out",
  ignore: skip,
  async fn(t) {
    const kv = await Deno.openKv(":memory:");
    await using server = await startServer({
      accounts: new KvAccounts(kv),
      quota: new KvQuota(kv),
    });
    const url = `http://localhost:${server.port}/`;
    const browser = await launch();
    try {
      const first = await profile(await browser.newContext(), url);
      const ada = first.page;
      let accountId = "";

      await t.step("a guest keeps the name through the panel", async () => {
        await joinAs(ada, "Ada");
        await waitOnline(ada);
        // A second room, to find again on another device.
        await ada.goto(`${url}#team`);
        await roomLink(ada, "team").waitFor();
        await waitOnline(ada);
        const guestId = await myId(ada);
        await expectNoAxeViolations(ada, "a guest with the Sign in button");

        await ada.getByRole("button", { name: "Sign in", exact: true }).click();
        const dialog = ada.getByRole("dialog", { name: "Account" });
        await dialog.waitFor();
        await expectNoAxeViolations(ada, "the panel, as a guest");
        // Keyboard: the focus is on "Keep the name “Ada”"; Enter presses it.
        await ada.keyboard.press("Enter");
        await panelStatus(ada).getByText("Signed in as Ada").waitFor();
        const answer = await me(ada);
        assert.equal(answer.status, 200);
        accountId = answer.body.account.id;
        assert.match(accountId, /^[0-9a-f]{16}$/);
        assert.notEqual(accountId, guestId);
        await dialog.getByRole("heading", { name: "Signed in as Ada" }).waitFor();
        await dialog.locator("#passkey-list li").first().waitFor();
        assert.equal(await dialog.locator("#passkey-list li").count(), 1);
        // The connection became the account's: its id, in both rooms.
        await waitMyId(ada, accountId);
        await waitOnline(ada);
        assert.equal(await myName(ada), "Ada");
        await expectNoAxeViolations(ada, "the panel, signed in");
        await ada.keyboard.press("Escape");
        await dialog.waitFor({ state: "hidden" });
        await ada.getByRole("button", { name: "Account", exact: true }).waitFor();
        const rooms = (await me(ada)).body.rooms.map((r: { room: string }) => r.room).sort();
        assert.deepEqual(rooms, ["lobby", "team"], "the account's rooms are in the store");
      });

      const second = await profile(await browser.newContext(), url);
      const other = second.page;

      await t.step("another profile with the passkey signs in from the name prompt", async () => {
        const { credentials } = await first.cdp.send("WebAuthn.getCredentials", {
          authenticatorId: first.authenticatorId,
        });
        assert.equal(credentials.length, 1);
        await second.cdp.send("WebAuthn.addCredential", {
          authenticatorId: second.authenticatorId,
          credential: credentials[0],
        });
        await other.waitForSelector("#join-dialog[open]");
        await other.getByText("Have an account? Sign in with its passkey.").waitFor();
        await expectNoAxeViolations(other, "the name prompt with sign-in");
        await other.getByRole("button", { name: "Sign in with a passkey" }).click();
        await other.waitForSelector("#join-dialog:not([open])", { state: "attached" });
        await waitMyId(other, accountId);
        await waitOnline(other);
        assert.equal(await myName(other), "Ada");
        await roomLink(other, "team").waitFor();
        await roomLink(other, "lobby").waitFor();
        await expectNoAxeViolations(other, "signed in on another device");
      });

      await t.step(
        "passkeys: add one, remove one after a confirmation, never the last",
        async () => {
          await other.getByRole("button", { name: "Account", exact: true }).click();
          const dialog = other.getByRole("dialog", { name: "Account" });
          const items = dialog.locator("#passkey-list li");
          await items.first().waitFor();
          // This authenticator holds the account's passkey already: the browser refuses a second.
          await dialog.getByRole("button", { name: "Add a passkey" }).click();
          await panelStatus(other).getByText("already holds a passkey of the account").waitFor();
          await second.cdp.send("WebAuthn.clearCredentials", {
            authenticatorId: second.authenticatorId,
          });
          await dialog.getByRole("button", { name: "Add a passkey" }).click();
          await panelStatus(other).getByText("Passkey added").waitFor();
          await waitForCount(other, "#passkey-list li", 2);

          const confirm = other.getByRole("dialog", { name: "Remove this passkey?" });
          // The one used to sign in here goes (the new one stays), after a confirmation.
          const original = items.filter({ hasText: "last used" });
          assert.equal(await original.count(), 1);
          // Escape cancels: nothing is removed, the focus is back on its Remove.
          await original.getByRole("button", { name: /^Remove passkey/ }).click();
          await confirm.waitFor();
          await expectNoAxeViolations(other, "the confirmation before removing a passkey");
          await other.keyboard.press("Escape");
          await confirm.waitFor({ state: "hidden" });
          assert.match(
            await focusedAttribute(other, "aria-label") ?? "",
            /^Remove passkey.*last used/,
          );
          assert.equal(await items.count(), 2);
          // Enter on it asks again; confirmed, it goes.
          await other.keyboard.press("Enter");
          await confirm.getByRole("button", { name: "Remove" }).click();
          await panelStatus(other).getByText("Passkey removed").waitFor();
          await waitForCount(other, "#passkey-list li", 1);
          // The last one: the server refuses, and the panel says what it said.
          await items.first().getByRole("button", { name: /^Remove passkey/ }).click();
          await confirm.getByText("the account's only passkey").waitFor();
          await confirm.getByRole("button", { name: "Remove" }).click();
          await panelStatus(other).getByText("Cannot remove passkey: it is the account's last one")
            .waitFor();
          assert.equal(await items.count(), 1);
          await expectNoAxeViolations(other, "the last passkey refused");
          await dialog.getByRole("button", { name: "Close" }).click();
          await dialog.waitFor({ state: "hidden" });
        },
      );

      await t.step("a guest is refused the name, and told it is an account's", async () => {
        const guest = await newTab(await browser.newContext(), url);
        await joinAs(guest, "ada");
        const hint = guest.locator("#join-account-text");
        await hint.getByText("belongs to an account").waitFor();
        assert.match(await hint.textContent() ?? "", /“ada” belongs to an account/);
        await guest.locator("#join-error", { hasText: "sign in to use it" }).waitFor();
        await guest.getByRole("button", { name: "Sign in with a passkey" }).waitFor();
        await expectNoAxeViolations(guest, "a guest refused an account's name");
        // Another name works.
        await guest.fill("#name-input", "Grace");
        await guest.press("#name-input", "Enter");
        await waitOnline(guest);
        await guest.context().close();
      });

      const tab2 = await newTab(first.context, url);

      await t.step("two tabs of the account are one member", async () => {
        // Signed in: no name is asked, the tab is the account.
        await waitOnline(tab2);
        await waitMyId(tab2, accountId);
        assert.equal(await tab2.locator("#join-dialog[open]").count(), 0);
        await ada.goto(`${url}#lobby`);
        await waitOnline(ada);
        for (const page of [ada, tab2, other]) {
          await page.locator("#members li", { hasText: "Ada" }).first().waitFor();
          await waitForCount(page, "#members li", 1);
        }
        await expectNoAxeViolations(tab2, "a second tab of the account");
      });

      await t.step("signing out in one tab ends both; the other profile stays", async () => {
        await tab2.getByRole("button", { name: "Account", exact: true }).click();
        const dialog = tab2.getByRole("dialog", { name: "Account" });
        await dialog.getByRole("button", { name: "Sign out" }).click();
        for (const page of [tab2, ada]) {
          await page.locator("#status", { hasText: "Signed out" }).waitFor();
          await page.waitForSelector("#join-dialog[open]");
          await page.locator("#join-account-text", { hasText: "Signed out." }).waitFor();
          await page.getByRole("button", { name: "Sign in", exact: true }).waitFor({
            state: "attached",
          });
        }
        assert.equal((await me(ada)).status, 401);
        await expectNoAxeViolations(ada, "signed out");
        // No reconnect loop: the tab stays offline until a name is chosen.
        assert.equal(await ada.locator('#status[data-state="offline"]').count(), 1);
        assert.equal((await me(other)).status, 200, "another browser's session stays");
        await waitOnline(other);
        // Back as a guest under another name.
        await ada.fill("#name-input", "Ada-guest");
        await ada.press("#name-input", "Enter");
        await waitOnline(ada);
        assert.equal(await myName(ada), "Ada-guest");
        assert.notEqual(await myId(ada), accountId);
      });

      await t.step("a sign-in in one tab ends another tab's session: it follows", async () => {
        // A virtual authenticator belongs to one page: tab2 gets one, with the account's
        // remaining passkey (as a synced one arrives).
        const tab2Profile = await authenticatorFor(first.context, tab2);
        const copy = async (from: Profile, to: Profile) => {
          const { credentials } = await from.cdp.send("WebAuthn.getCredentials", {
            authenticatorId: from.authenticatorId,
          });
          assert.equal(credentials.length, 1);
          // One resident key per account and site: the one there goes.
          await to.cdp.send("WebAuthn.clearCredentials", { authenticatorId: to.authenticatorId });
          await to.cdp.send("WebAuthn.addCredential", {
            authenticatorId: to.authenticatorId,
            credential: credentials[0],
          });
        };
        await copy(second, tab2Profile);
        // tab2, asked for a name since the sign-out, signs in; ada is still a guest.
        await tab2.getByRole("button", { name: "Sign in with a passkey" }).click();
        await waitMyId(tab2, accountId);
        await waitOnline(tab2);
        assert.equal(await myName(ada), "Ada-guest");
        // ada signs in too (with the passkey as tab2 left it, its counter moved on): the
        // browser's session is replaced, so tab2's connection is closed (4001); tab2 finds
        // the new session and stays the account, with no name asked.
        await copy(tab2Profile, first);
        // Every state tab2's status line goes through from now on.
        await tab2.evaluate(() => {
          // deno-lint-ignore no-explicit-any
          const g = globalThis as any;
          const line = g.document.getElementById("status");
          g.__states = [];
          new g.MutationObserver(() => g.__states.push(line.dataset.state)).observe(line, {
            attributes: true,
            attributeFilter: ["data-state"],
          });
        });
        await ada.getByRole("button", { name: "Sign in", exact: true }).click();
        await ada.getByRole("dialog", { name: "Account" }).getByRole("button", {
          name: "Sign in with a passkey",
        }).click();
        await panelStatus(ada).getByText("Signed in as Ada").waitFor();
        await waitMyId(ada, accountId);
        await waitOnline(ada);
        // Closed, then back online as the account (if tab2 asked the server before the
        // browser held the new cookie, ada's tab tells it once it does).
        await tab2.waitForFunction(() => {
          // deno-lint-ignore no-explicit-any
          const states: string[] = (globalThis as any).__states;
          const closed = states.findIndex((state) => state !== "online");
          return closed >= 0 && states.indexOf("online", closed) > closed;
        });
        await waitOnline(tab2);
        assert.equal(await myId(tab2), accountId);
        assert.equal(await tab2.locator("#join-dialog[open]").count(), 0);
        await ada.keyboard.press("Escape");
      });

      await t.step("the account is renamed from the panel, everywhere", async () => {
        // "Change name" of an account opens the panel at its name.
        await other.getByRole("button", { name: "Change name" }).click();
        const dialog = other.getByRole("dialog", { name: "Account" });
        await dialog.waitFor();
        assert.equal(await focusedAttribute(other), "account-rename-input");
        await other.keyboard.type("Ada L");
        await other.keyboard.press("Enter");
        await panelStatus(other).getByText("Your name is now Ada L.").waitFor();
        await other.locator("#my-name", { hasText: "Ada L" }).waitFor();
        await dialog.getByRole("heading", { name: "Signed in as Ada L" }).waitFor();
        await other.locator("#members li", { hasText: "Ada L" }).waitFor();
        await expectNoAxeViolations(other, "renamed");
        await other.keyboard.press("Escape");
        await dialog.waitFor({ state: "hidden" });
      });

      await t.step("at phone width the header and the panel fit", async () => {
        await other.setViewportSize({ width: 390, height: 800 });
        const widths = () =>
          other.evaluate(() => {
            // deno-lint-ignore no-explicit-any
            const { document, innerWidth } = globalThis as any;
            return [document.documentElement.scrollWidth, innerWidth];
          });
        const [page, screen] = await widths();
        assert.ok(page <= screen, `the page is ${page} px wide on a ${screen} px screen`);
        await other.getByRole("button", { name: "Account", exact: true }).click();
        const dialog = other.getByRole("dialog", { name: "Account" });
        await dialog.waitFor();
        const box = await dialog.boundingBox();
        assert.ok(box && box.x >= 0 && box.x + box.width <= 390, JSON.stringify(box));
        await expectNoAxeViolations(other, "the panel at phone width");
        await other.keyboard.press("Escape");
      });

      assert.deepEqual(pageErrors, []);
    } finally {
      await browser.close();
      kv.close();
    }
  },
});
