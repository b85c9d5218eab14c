/**
 * Direct messages and blocks in a real browser: two tabs of one window (one
 * Chromium context, two pages) against `main.ts` run as a real process. Tab
 * 1 ("ada") opens a conversation with tab 2 ("bob") from the member list,
 * with the keyboard; tab 2 gets it by itself, with an unread count, the
 * title and a notification; a reply; a reload keeps it; bob blocks ada from
 * the member list: her messages in the lobby collapse to a line, the
 * conversation goes, her next message there is refused; a reload keeps the
 * block; the collapsed line's menu unblocks her. Axe-core finds no violation
 * in each new state. Screenshots (light, dark, phone) go to a temp dir.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { startProcess } from "./process.ts";
import {
  cspViolations,
  expectNoAxeViolations,
  focusedAttribute,
  instrument,
  joinAs,
  launch,
  lines,
  myName,
  newTab,
  notifications,
  pageErrors,
  roomLink,
  sidebar,
  skip,
  type,
  waitForText,
  waitOnline,
} from "./browser_helpers.ts";

/** The sidebar's link to the conversation with `name` (its name starts with `@name`). */
function directLink(page: Page, name: string, rest = "") {
  return sidebar(page).getByRole("link", { name: new RegExp(`^@${name}${rest}`) });
}

Deno.test({
  name:
    "two tabs, direct messages: opened from the member list, arriving by themselves, a reply, a reload, a block",
  ignore: skip,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "chat-direct-" });
    const server = await startProcess({ KV_PATH: `${dir}/chat.kv` });
    const browser = await launch();
    const shots: string[] = [];
    const shot = async (page: Page, name: string) => {
      const path = `${dir}/${name}.png`;
      await page.screenshot({ path });
      shots.push(path);
    };
    try {
      const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
      await instrument(context, { permission: "granted" });
      const tab1 = await newTab(context, `${server.origin}/#lobby`);
      await joinAs(tab1, "ada");
      await waitOnline(tab1);
      // The second tab takes "ada2" by itself; it renames to bob.
      const tab2 = await newTab(context, `${server.origin}/#lobby`);
      await waitOnline(tab2);
      await tab2.click("#change-name");
      await tab2.fill("#name-input", "bob");
      await tab2.press("#name-input", "Enter");
      await tab2.waitForFunction(() =>
        // deno-lint-ignore no-explicit-any
        (globalThis as any).document.getElementById("my-name").textContent === "bob"
      );
      assert.equal(await myName(tab2), "bob");

      await t.step(
        "ada opens a conversation with bob from the member list, by keyboard",
        async () => {
          const actions = tab1.getByRole("button", { name: "Actions for bob" });
          await actions.focus();
          await tab1.keyboard.press("Enter");
          const item = tab1.getByRole("menuitem", { name: "Message bob" });
          await item.waitFor();
          assert.equal(
            await focusedAttribute(tab1, "data-action"),
            "message",
            "first item focused",
          );
          await expectNoAxeViolations(tab1, "a member's actions menu");
          await tab1.keyboard.press("Enter");
          await directLink(tab1, "bob").and(tab1.locator('[aria-current="page"]')).waitFor();
          await tab1.locator('#room-name[data-direct="true"]', { hasText: "bob" }).waitFor();
          assert.match(tab1.url(), /#dm%3A/);
          assert.equal(await focusedAttribute(tab1), "text-input", "ready to write");
          assert.equal(
            await tab1.getByRole("heading", { name: "Direct messages" }).count(),
            1,
          );
          await expectNoAxeViolations(tab1, "a conversation opened");
        },
      );

      await t.step("bob's tab gets it by itself: unread, the title, a notification", async () => {
        await type(tab1, "hi bob, a word in private?");
        await directLink(tab2, "ada", " ?, 1 unread$").waitFor();
        assert.match(await tab2.title(), /^\(1, 1 mention\) #lobby – Deno Chat$/);
        await tab2.waitForFunction(() =>
          // deno-lint-ignore no-explicit-any
          (globalThis as any).__notifications.shown.length === 1
        );
        assert.deepEqual((await notifications(tab2)).shown, [
          { title: "ada sent you a message", body: "hi bob, a word in private?" },
        ]);
        assert.equal(
          await tab2.locator("#messages .text", { hasText: "a word in private" }).count(),
          0,
          "not in the lobby",
        );
        await shot(tab2, "direct-arrived-light");
        await expectNoAxeViolations(tab2, "a conversation arrived");
      });

      await t.step("bob opens it and replies; ada reads the reply", async () => {
        await directLink(tab2, "ada").click();
        await waitForText(tab2, "a word in private?");
        await directLink(tab2, "ada", "$").waitFor();
        assert.match(await tab2.title(), /^@ada – Deno Chat$/);
        await type(tab2, "sure, what's up?");
        await waitForText(tab1, "sure, what's up?");
        assert.deepEqual(await lines(tab1), [
          "ada: hi bob, a word in private?",
          "bob: sure, what's up?",
        ]);
        await shot(tab1, "direct-conversation-light");
      });

      await t.step("a reload keeps the conversation, each message once", async () => {
        await tab2.reload();
        await waitOnline(tab2);
        await directLink(tab2, "ada").and(tab2.locator('[aria-current="page"]')).waitFor();
        await waitForText(tab2, "sure, what's up?");
        assert.deepEqual(await lines(tab2), [
          "ada: hi bob, a word in private?",
          "bob: sure, what's up?",
        ]);
        await roomLink(tab2, "lobby").waitFor();
      });

      await t.step(
        "bob blocks ada: her messages collapse, the conversation goes, her next is refused",
        async () => {
          await roomLink(tab2, "lobby").click();
          await tab2.locator('#scroller[data-room="lobby"]').waitFor();
          await tab2.getByRole("button", { name: "Actions for ada" }).click();
          await tab2.getByRole("menuitem", { name: "Block ada" }).click();
          await tab2.locator("#info-text", { hasText: "You blocked ada" }).waitFor();
          await tab2.locator("#members li", { hasText: "(blocked)" }).waitFor();
          await directLink(tab2, "ada").waitFor({ state: "detached" });
          assert.equal(await tab2.getByRole("heading", { name: "Direct messages" }).count(), 0);

          await roomLink(tab1, "lobby").click();
          // The view follows the link's hash change: wait, or the text goes to the room before.
          await tab1.locator('#scroller[data-room="lobby"]').waitFor();
          await type(tab1, "anyone around?");
          await waitForText(tab1, "anyone around?");
          const line = tab2.locator("#messages li.message[data-blocked='true'] .blocked-note");
          await line.filter({ hasText: "1 message from a blocked user" }).waitFor();
          assert.equal(
            await tab2.locator("#messages .text", { hasText: "anyone around" }).count(),
            0,
          );
          assert.match(await tab2.title(), /^#lobby – Deno Chat$/, "nothing unread");

          await directLink(tab1, "bob").click();
          await tab1.locator('#scroller[data-room^="dm:"]').waitFor();
          await type(tab1, "hello?");
          const failed = tab1.locator('#messages li.message[data-state="failed"]', {
            hasText: "hello?",
          });
          await failed.waitFor();
          assert.match(await failed.locator(".failure-text").textContent() ?? "", /blocked/);
          await shot(tab2, "blocked-light");
          await expectNoAxeViolations(tab2, "a blocked user's message collapsed");
          await expectNoAxeViolations(tab1, "a direct message refused");
        },
      );

      await t.step("a reload keeps the block; the collapsed line's menu unblocks her", async () => {
        await tab2.reload();
        await waitOnline(tab2);
        await tab2.locator(".blocked-note", { hasText: "1 message from a blocked user" }).waitFor();
        const blocked = tab2.locator("#messages li.message[data-blocked='true']").first();
        await blocked.focus();
        await tab2.keyboard.press("Enter");
        const unblock = tab2.getByRole("menuitem", { name: "Unblock ada" });
        await unblock.waitFor();
        assert.equal(await tab2.getByRole("menuitem", { name: "Reply" }).isVisible(), false);
        await expectNoAxeViolations(tab2, "a blocked message's menu");
        await tab2.keyboard.press("Enter");
        await waitForText(tab2, "anyone around?");
        await tab2.locator("#members li", { hasText: "(blocked)" }).waitFor({ state: "detached" });
      });

      await t.step("dark mode and phone width", async () => {
        await directLink(tab1, "bob").click();
        await tab1.emulateMedia({ colorScheme: "dark" });
        await shot(tab1, "direct-dark");
        await expectNoAxeViolations(tab1, "a conversation, dark");
        await tab1.setViewportSize({ width: 390, height: 844 });
        await shot(tab1, "direct-phone");
        await tab1.locator("#rooms-toggle").click();
        await tab1.locator("#rooms-nav:not([data-sliding])").waitFor();
        await shot(tab1, "direct-phone-drawer-dark");
        await expectNoAxeViolations(tab1, "phone drawer with a conversation, dark");
        await tab1.keyboard.press("Escape");
        await tab1.emulateMedia({ colorScheme: "light" });
        await tab1.setViewportSize({ width: 900, height: 640 });
      });

      for (const page of [tab1, tab2]) assert.deepEqual(await cspViolations(page), []);
      assert.deepEqual(pageErrors.splice(0), []);
    } finally {
      for (const path of shots) console.log(`Screenshot: ${path}`);
      await browser.close();
      await server.stop("SIGTERM");
    }
  },
});
