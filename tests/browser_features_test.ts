/**
 * The page's chat features in a real browser: two tabs of one window (one
 * Chromium context, two pages) against `main.ts` run as a real process.
 * Scrollback, the unread divider, links and text direction, mentions with a
 * notification, the room switcher, edit, delete, reactions and replies, and
 * axe-core with no violations in each new state. Screenshots (light, dark,
 * phone width) go to a temp dir; their paths are printed.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { ONE_ADDRESS_LIFTED_ENV } from "./helpers.ts";
import { startProcess } from "./process.ts";
import {
  cspViolations,
  expectNoAxeViolations,
  instrument,
  joinAs,
  launch,
  messageItem,
  newTab,
  notifications,
  pageErrors,
  setHidden,
  skip,
  type,
  waitForText,
  waitNothingPending,
  waitOnline,
} from "./browser_helpers.ts";

/** Posts `count` messages (`old 1` … `old N`) to `room` over a plain WebSocket. */
async function seed(wsUrl: string, room: string, count: number): Promise<void> {
  const socket = new WebSocket(wsUrl);
  const closed = new Promise((resolve) => socket.addEventListener("close", resolve));
  const done = Promise.withResolvers<void>();
  socket.addEventListener(
    "open",
    () => socket.send(JSON.stringify({ type: "join", room, name: "seed" })),
  );
  socket.addEventListener("message", (event) => {
    for (const message of [JSON.parse(event.data)].flat()) {
      if (message.type === "welcome") {
        for (let i = 1; i <= count; i++) {
          socket.send(JSON.stringify({ type: "say", text: `old ${i}`, cid: `s${i}` }));
        }
      } else if (message.type === "ack" && message.cid === `s${count}`) done.resolve();
      else if (message.type === "error") done.reject(new Error(message.message));
    }
  });
  try {
    await done.promise;
  } finally {
    socket.close();
    await closed;
  }
}

/** The ids of the messages shown, in order. */
async function ids(page: Page): Promise<number[]> {
  return await page.$$eval(
    "#messages li.message",
    (items) => items.map((li) => Number(li.getAttribute("data-id"))),
  );
}

/** The resolved `direction` of an element: what `dir="auto"` made of its text. */
// deno-lint-ignore no-explicit-any
const direction = (el: unknown) => (globalThis as any).getComputedStyle(el).direction;

/** The id of the focused element. */
async function focused(page: Page): Promise<string> {
  return await page.evaluate(() => {
    // deno-lint-ignore no-explicit-any
    const active = (globalThis as any).document.activeElement;
    return active?.id || active?.getAttribute("data-id") || active?.tagName || "";
  });
}

Deno.test({
  name:
    "two tabs of one window: scrollback, unread, links, mentions, rooms, edit, react, reply, delete, with axe",
  ignore: skip,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "chat-features-" });
    await using server = await startProcess({
      KV_PATH: `${dir}/chat.kv`,
      RATE_BURST: "300",
      ...ONE_ADDRESS_LIFTED_ENV,
    });
    await seed(server.wsUrl, "history", 120);
    const browser = await launch();
    const shots: string[] = [];
    /** Saves a screenshot of `page` as `name`.png in the temp dir. */
    const shot = async (page: Page, name: string) => {
      const path = `${dir}/${name}.png`;
      await page.screenshot({ path });
      shots.push(path);
    };
    try {
      // One context: two tabs of one window.
      const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
      await instrument(context);
      const url = `${server.origin}/#history`;
      const ada = await newTab(context, url);
      await joinAs(ada, "ada");
      await waitOnline(ada);
      const bob = await newTab(context, url);
      await waitOnline(bob);
      await bob.click("#change-name");
      await joinAs(bob, "bob");
      await waitOnline(bob);

      await t.step("after joining, the focus is in the composer", async () => {
        assert.equal(await focused(ada), "text-input");
        assert.equal(await focused(bob), "text-input");
      });

      await t.step("scrolling to the top loads older history until there is no more", async () => {
        await ada.waitForSelector('#messages li.message[data-id="120"]');
        assert.deepEqual(await ids(ada), range(71, 120), "the newest 50 after joining");
        await ada.waitForSelector("#load-older", { state: "visible" });
        const scroller = ada.locator("#scroller");
        const top = () =>
          ada.locator('li.message[data-id="71"]').evaluate((li) => li.getBoundingClientRect().top);
        await scroller.evaluate((el) => el.scrollTop = 0);
        const before = await top();
        await ada.waitForSelector('#messages li.message[data-id="21"]');
        assert.ok(Math.abs(await top() - before) < 2, "what was on screen stays where it was");
        await scroller.evaluate((el) => el.scrollTop = 0);
        await ada.waitForSelector('#messages li.message[data-id="1"]');
        await ada.locator("#history-state", { hasText: "beginning of the room" }).waitFor();
        assert.equal(await ada.isHidden("#load-older"), true);
        assert.deepEqual(await ids(ada), range(1, 120));
      });

      await t.step("scrolled up: an unread divider and a new-messages button", async () => {
        await ada.locator("#scroller").evaluate((el) => el.scrollTop = 0);
        await type(bob, "are you still reading?");
        await ada.locator("#jump-new", { hasText: "1 new message" }).waitFor();
        const after = await ada.$eval(
          "#messages li.unread-divider",
          (li) => li.nextElementSibling?.querySelector(".text")?.textContent,
        );
        assert.equal(after, "are you still reading?");
        await expectNoAxeViolations(ada, "scrolled up with the new-messages button");
        await shot(ada, "scrolled-up-new-messages");
        await ada.click("#jump-new");
        await ada.waitForSelector("#jump-new", { state: "hidden" });
      });

      await t.step("links are links, and text takes its own direction", async () => {
        await type(bob, "docs: https://deno.com/manual, not javascript:alert(1)");
        const link = ada.locator('#messages a[href="https://deno.com/manual"]');
        await link.waitFor();
        assert.equal(await link.getAttribute("rel"), "noopener noreferrer");
        assert.equal(await link.getAttribute("target"), "_blank");
        assert.equal(await link.textContent(), "https://deno.com/manual");
        const item = messageItem(ada, "docs:");
        assert.equal(await item.locator("a").count(), 1);
        await type(bob, "مرحبا بالعالم");
        await waitForText(ada, "مرحبا بالعالم");
        const arabic = messageItem(ada, "مرحبا").locator(".text");
        assert.equal(await arabic.getAttribute("dir"), "auto");
        assert.equal(await arabic.evaluate(direction), "rtl");
        const english = messageItem(ada, "docs:").locator(".text");
        assert.equal(await english.evaluate(direction), "ltr");
      });

      await t.step("a mention is highlighted, and notifies a hidden tab", async () => {
        assert.equal((await notifications(ada)).asked, 0, "no permission asked on load");
        await ada.click("#notify");
        await ada.waitForSelector('#notify[aria-pressed="true"]');
        assert.equal((await notifications(ada)).asked, 1, "asked on the click");
        await setHidden(ada, true);
        await type(bob, "@ada look at this");
        const mark = messageItem(ada, "look at this").locator("mark.mention.me");
        await mark.waitFor();
        assert.equal(await mark.textContent(), "@ada");
        assert.ok(
          await messageItem(ada, "look at this").evaluate((li) =>
            li.classList.contains("mentions-me")
          ),
        );
        await ada.waitForFunction(() =>
          // deno-lint-ignore no-explicit-any
          (globalThis as any).__notifications.shown.length === 1
        );
        assert.deepEqual((await notifications(ada)).shown, [
          { title: "bob mentioned you in #history", body: "@ada look at this" },
        ]);
        assert.match(await ada.getAttribute("#favicon", "href") ?? "", /^data:image\/svg\+xml,/);
        assert.match(await ada.title(), /^\(1, 1 mention\) #history/);
        await shot(ada, "mention");
        // In bob's tab the mention of someone else is marked, not as his.
        await messageItem(bob, "look at this").locator("span.mention", { hasText: "@ada" })
          .waitFor();
        assert.equal((await notifications(bob)).shown.length, 0);
        await setHidden(ada, false);
        assert.equal(await ada.getAttribute("#favicon", "href"), "/favicon.svg");
        assert.match(await ada.title(), /^#history/);
      });

      await t.step(
        "the room switcher lists rooms, says what is wrong, and joins by name",
        async () => {
          await ada.focus("#text-input");
          await ada.keyboard.press("Control+K");
          await ada.waitForSelector("#room-dialog[open]");
          const history = ada.locator("#room-list a", { hasText: "history" });
          await history.waitFor();
          assert.match(await history.textContent() ?? "", /2 members/);
          assert.equal(await history.getAttribute("aria-current"), "page");
          await expectNoAxeViolations(ada, "room switcher open");
          await shot(ada, "room-switcher");

          await ada.fill("#room-input", "a\u200Bb");
          await ada.press("#room-input", "Enter");
          await ada.locator("#room-error", { hasText: "invisible" }).waitFor();
          assert.equal(await ada.locator("#join-dialog[open]").count(), 0);
          await ada.fill("#room-input", "features");
          await ada.press("#room-input", "Enter");
          await ada.waitForSelector("#room-dialog:not([open])", { state: "attached" });
          await waitOnline(ada);
          assert.equal(await ada.textContent("#room-name"), "features");
          assert.ok(ada.url().endsWith("#features"));

          await bob.click("#room-button");
          const features = bob.locator("#room-list a", { hasText: "features" });
          await features.waitFor();
          assert.match(await features.textContent() ?? "", /1 member/);
          await features.click();
          await bob.waitForSelector("#room-dialog:not([open])", { state: "attached" });
          await bob.locator("#room-name", { hasText: "features" }).waitFor();
          await waitOnline(bob);
          assert.ok(bob.url().endsWith("#features"));
          await ada.locator("#members li", { hasText: "bob" }).waitFor();

          // An invalid room in the address: the switcher says so, not the nickname dialog.
          await bob.evaluate(() => location.hash = "#a%E2%80%8Bb");
          await bob.waitForSelector("#room-dialog[open]");
          await bob.locator("#room-error", { hasText: "invisible" }).waitFor();
          assert.equal(await bob.locator("#join-dialog[open]").count(), 0);
          assert.ok(bob.url().endsWith("#features"), "the address stays on the room shown");
          await bob.keyboard.press("Escape");
          await bob.waitForSelector("#room-dialog:not([open])", { state: "attached" });
          assert.equal(await bob.getAttribute("#status", "data-state"), "online");
        },
      );

      await t.step("a reload of one tab adds no left and joined lines in the other", async () => {
        const notices = () => ada.locator("#messages li.notice").count();
        const before = await notices();
        await bob.reload();
        await waitOnline(bob);
        // Its presence comes before its message: once this shows, the lines are in.
        await type(bob, "back after a reload");
        await waitForText(ada, "back after a reload");
        assert.equal(await notices(), before);
        assert.equal(await ada.locator("#messages li.notice", { hasText: "bob left" }).count(), 0);
      });

      await t.step("edit with ↑ in the empty composer; the edit shows as edited", async () => {
        await type(ada, "helo wrold");
        await waitForText(bob, "helo wrold");
        await waitNothingPending(ada);
        await ada.focus("#text-input");
        await ada.keyboard.press("ArrowUp");
        await ada.locator("#composer-mode", { hasText: "Editing" }).waitFor();
        assert.equal(await ada.inputValue("#text-input"), "helo wrold");
        await type(ada, "hello world");
        for (const page of [ada, bob]) {
          await messageItem(page, "hello world").locator(".edited:visible").waitFor();
        }
        assert.equal(await ada.isHidden("#composer-mode"), true);
        assert.equal(await ada.inputValue("#text-input"), "");
      });

      await t.step("react from the menu: counts and who reacted, toggled by a click", async () => {
        await messageItem(bob, "hello world").locator(".menu-button").click();
        const menu = bob.locator("#messages #message-menu");
        await menu.waitFor();
        assert.equal(await menu.locator('[data-action="edit"]').isHidden(), true, "not bob's");
        assert.equal(await menu.locator('[data-action="delete"]').isHidden(), true);
        assert.equal(await focused(bob), "BUTTON", "the menu has the focus");
        await expectNoAxeViolations(bob, "message menu open");
        await shot(bob, "message-menu");
        await menu.locator('[data-emoji="👍"]').click();
        const chip = (page: Page) =>
          messageItem(page, "hello world").locator('.reaction[data-emoji="👍"]');
        await chip(ada).waitFor();
        assert.equal(await chip(ada).getAttribute("aria-pressed"), "false");
        assert.match(await chip(ada).getAttribute("title") ?? "", /^bob reacted/);
        await bob.locator('#messages .reaction[data-emoji="👍"][aria-pressed="true"]').waitFor();
        await chip(ada).click();
        await chip(bob).locator(".count", { hasText: "2" }).waitFor();
        assert.match(await chip(bob).getAttribute("title") ?? "", /^bob, ada reacted/);
        await chip(bob).click();
        await chip(ada).locator(".count", { hasText: "1" }).waitFor();
        assert.equal(await chip(ada).getAttribute("aria-pressed"), "true");
      });

      await t.step("reply from the menu: a quoted snippet that jumps to the original", async () => {
        await messageItem(bob, "hello world").locator(".menu-button").click();
        await bob.locator('#message-menu [data-action="reply"]').click();
        await bob.locator("#composer-mode", { hasText: "Replying to ada: hello world" }).waitFor();
        assert.equal(await focused(bob), "text-input");
        await expectNoAxeViolations(bob, "reply composing");
        await shot(bob, "reply-composing");
        await type(bob, "agreed");
        const quote = messageItem(ada, "agreed").locator(".quote");
        await quote.waitFor();
        assert.match(await quote.textContent() ?? "", /ada\s+hello world/);
        await quote.click();
        const original = await messageItem(ada, "hello world").getAttribute("data-id");
        assert.equal(await focused(ada), original);
        await shot(ada, "conversation-light");
      });

      await t.step(
        "keyboard: arrows move between messages, R replies, Escape cancels",
        async () => {
          await bob.focus("#scroller");
          await bob.keyboard.press("ArrowUp");
          assert.equal(
            await focused(bob),
            await messageItem(bob, "agreed").getAttribute("data-id"),
          );
          await bob.keyboard.press("ArrowUp");
          await bob.keyboard.press("r");
          await bob.locator("#composer-mode", { hasText: "Replying to ada" }).waitFor();
          await bob.keyboard.press("Escape");
          await bob.waitForSelector("#composer-mode", { state: "hidden" });
        },
      );

      await t.step("delete asks in the page, and leaves a placeholder", async () => {
        await messageItem(ada, "hello world").locator(".menu-button").click();
        await ada.locator('#message-menu [data-action="delete"]').click();
        await ada.waitForSelector("#delete-dialog[open]");
        assert.equal(await ada.textContent("#delete-quote"), "hello world");
        assert.equal(await focused(ada), "delete-cancel");
        await expectNoAxeViolations(ada, "delete dialog open");
        await shot(ada, "delete-dialog");
        await ada.keyboard.press("Escape");
        await ada.waitForSelector("#delete-dialog:not([open])", { state: "attached" });
        await waitForText(bob, "hello world");

        await messageItem(ada, "hello world").locator(".menu-button").click();
        await ada.locator('#message-menu [data-action="delete"]').click();
        await ada.click("#delete-confirm");
        for (const page of [ada, bob]) {
          await page.locator("#messages li.message.deleted .text", {
            hasText: "This message was deleted.",
          }).waitFor();
          assert.equal(
            await page.locator("#messages li.message .text", { hasText: /^hello world$/ }).count(),
            0,
          );
          await messageItem(page, "agreed").locator(".quote", { hasText: "a deleted message" })
            .waitFor();
        }
      });

      await t.step("phone width: the member strip is a count you can tap; dark mode", async () => {
        await shot(ada, "desktop-light");
        await ada.setViewportSize({ width: 390, height: 844 });
        const toggle = ada.locator("#members-toggle");
        await toggle.waitFor();
        assert.equal((await toggle.textContent())?.trim(), "2 members");
        assert.equal(await ada.isHidden("#members"), true);
        const height = await ada.locator("#members-panel").evaluate((el) =>
          el.getBoundingClientRect().height
        );
        assert.ok(height < 60, `the collapsed strip is one row (${height}px)`);
        await shot(ada, "phone-light");
        await toggle.click();
        assert.equal(await toggle.getAttribute("aria-expanded"), "true");
        await ada.locator("#members li", { hasText: "bob" }).waitFor();
        await expectNoAxeViolations(ada, "phone width, members open");
        await shot(ada, "phone-members-open");
        await toggle.click();
        await ada.emulateMedia({ colorScheme: "dark" });
        await shot(ada, "phone-dark");
        await expectNoAxeViolations(ada, "phone width, dark");
        await ada.setViewportSize({ width: 900, height: 640 });
        await shot(ada, "desktop-dark");
        await expectNoAxeViolations(ada, "desktop, dark");
      });

      for (const page of [ada, bob]) assert.deepEqual(await cspViolations(page), []);
      assert.deepEqual(pageErrors.splice(0), []);
    } finally {
      for (const path of shots) console.log(`Screenshot: ${path}`);
      await browser.close();
    }
  },
});

Deno.test({
  name:
    "a lost connection shows a banner with Reconnect now; a replaced session can take over again",
  ignore: skip,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "chat-banner-" });
    const kvPath = `${dir}/chat.kv`;
    let server = await startProcess({ KV_PATH: kvPath });
    const browser = await launch();
    try {
      const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
      const page = await newTab(context, `${server.origin}/#banner`);
      await joinAs(page, "ada");
      await waitOnline(page);
      assert.equal(await page.isHidden("#connection"), true);

      await t.step("the server goes away: a banner, and what is written waits", async () => {
        await server.stop("SIGTERM");
        await page.locator("#connection", { hasText: "Connection lost" }).waitFor();
        await page.locator("#reconnect-now", { hasText: "Reconnect now" }).waitFor();
        await type(page, "written while offline");
        await expectNoAxeViolations(page, "connection banner");
        const path = `${dir}/connection-banner.png`;
        await page.screenshot({ path });
        console.log(`Screenshot: ${path}`);
        server = await startProcess({ KV_PATH: kvPath }, server.port);
        // The page may be back by itself before the click; either way it comes back.
        if (await page.isVisible("#reconnect-now")) {
          await page.click("#reconnect-now").catch(() => {});
        }
        await waitOnline(page);
        await page.waitForSelector("#connection", { state: "hidden" });
        await waitNothingPending(page);
      });

      await t.step("the same session joins elsewhere: Use it here takes it back", async () => {
        const token = await page.evaluate(() => sessionStorage.getItem("chat.token"));
        assert.ok(token);
        const other = new WebSocket(server.wsUrl);
        const closed = new Promise<CloseEvent>((resolve) =>
          other.addEventListener("close", (e) => resolve(e as CloseEvent))
        );
        other.addEventListener(
          "open",
          () => other.send(JSON.stringify({ type: "join", room: "banner", name: "ada", token })),
        );
        try {
          await page.locator("#connection", { hasText: "connected again" }).waitFor();
          await page.locator("#reconnect-now", { hasText: "Use it here" }).waitFor();
          assert.equal(await page.getAttribute("#status", "data-state"), "offline");
          await page.click("#reconnect-now");
          await waitOnline(page);
          assert.equal((await closed).code, 4000, "the other connection is replaced in turn");
          await page.waitForSelector("#connection", { state: "hidden" });
        } finally {
          other.close();
          await closed;
        }
      });
      assert.deepEqual(pageErrors.splice(0), []);
    } finally {
      await browser.close();
      await server.stop("SIGTERM");
    }
  },
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
