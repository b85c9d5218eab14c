/**
 * The chat page in a real browser: Debian's Chromium, driven by
 * playwright-core, against `main.ts` run as a real process. Separate contexts
 * are separate browsers; pages of one context are tabs of one window, which
 * share localStorage, as in the README's "open it in two tabs".
 */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import type { Page } from "playwright-core";
import { startProcess } from "./process.ts";
import {
  joinAs,
  launch,
  lines,
  myName,
  newTab,
  openTab,
  pageErrors,
  skip,
  texts,
  TIMEOUT_MS,
  transcript,
  type,
  waitForCount,
  waitForText,
  waitNothingPending,
  waitOffline,
  waitOnline,
} from "./browser_helpers.ts";

Deno.test({
  name: "two browser tabs chat, render markup as text, and survive a server restart",
  ignore: skip,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "chat-browser-" });
    const kvPath = `${dir}/chat.kv`;
    let server = await startProcess({ KV_PATH: kvPath });
    const browser = await launch();
    try {
      const url = `${server.origin}/#browser-room`;
      const ada = await openTab(browser, url, "ada");
      const bob = await openTab(browser, url, "bob");

      await t.step("a message typed in one tab appears in the other", async () => {
        await type(ada, "hello from ada");
        await waitForText(bob, "hello from ada");
        await ada.waitForSelector('#messages li.message.own[data-state="sent"]');
        await bob.locator("#members", { hasText: "ada" }).waitFor();
      });

      await t.step("markup in a message renders as text", async () => {
        const xss = "<img src=x onerror=alert(1)>";
        await type(ada, xss);
        await waitForText(bob, xss);
        assert.equal(await bob.$$eval("#messages img", (images) => images.length), 0);
      });

      await t.step(
        "after a restart both tabs reconnect, and a message sent offline arrives once",
        async () => {
          await server.stop("SIGTERM");
          await waitOffline(ada);
          await waitOffline(bob);
          await type(ada, "sent while offline");
          await ada.waitForSelector('#messages li.message[data-state="pending"]');

          server = await startProcess({ KV_PATH: kvPath }, server.port);
          await waitOnline(ada);
          await waitOnline(bob);
          await waitForText(bob, "sent while offline");
          await waitNothingPending(ada);
          await type(bob, "back again");
          await waitForText(ada, "back again");
          for (const page of [ada, bob]) {
            assert.deepEqual(await texts(page), [
              "hello from ada",
              "<img src=x onerror=alert(1)>",
              "sent while offline",
              "back again",
            ]);
          }
        },
      );

      await t.step("a reload shows the room's history from the server", async () => {
        await bob.reload();
        await waitOnline(bob);
        await waitForText(bob, "back again");
        assert.deepEqual(await texts(bob), [
          "hello from ada",
          "<img src=x onerror=alert(1)>",
          "sent while offline",
          "back again",
        ]);
      });

      const screenshot = `${dir}/two-tabs.png`;
      await bob.screenshot({ path: screenshot, fullPage: true });
      console.log(`Screenshot: ${screenshot}`);
      assert.deepEqual(pageErrors.splice(0), []);
    } finally {
      await browser.close();
      await server.stop("SIGTERM");
    }
  },
});

Deno.test({
  name: "tabs of one window are separate sessions: join, reload, SIGKILL and a third tab",
  ignore: skip,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "chat-one-window-" });
    const kvPath = `${dir}/chat.kv`;
    let server = await startProcess({ KV_PATH: kvPath });
    const browser = await launch();
    try {
      // One context: one window's tabs, one localStorage.
      const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
      const url = `${server.origin}/#one-window`;
      const tab1 = await newTab(context, url);
      await joinAs(tab1, "ada");
      await waitOnline(tab1);
      let tab2: Page;

      await t.step("the second tab joins by itself, under a free variant of the name", async () => {
        tab2 = await newTab(context, url);
        await waitOnline(tab2);
        assert.equal(await tab2.locator("#join-dialog[open]").count(), 0);
        assert.equal(await tab2.isHidden("#join-error"), true);
        assert.equal(await myName(tab1), "ada");
        assert.equal(await myName(tab2), "ada2");
        await tab1.locator("#members li", { hasText: "ada2" }).waitFor();
      });

      await t.step("a typed name that is taken is refused in the dialog", async () => {
        await tab2.click("#change-name");
        await joinAs(tab2, "ADA");
        await tab2.locator("#join-error", { hasText: "name is taken" }).waitFor();
        assert.equal(await tab2.locator("#join-dialog[open]").count(), 1);
        await joinAs(tab2, "bob");
        // A rename: the tab stays online in its room, and the dialog closes on the answer.
        await tab2.locator("#my-name", { hasText: /^bob$/ }).waitFor();
        await tab2.waitForSelector("#join-dialog:not([open])", { state: "attached" });
        assert.equal(await tab2.getAttribute("#status", "data-state"), "online");
        assert.equal(await myName(tab2), "bob");
      });

      await t.step("the two tabs chat both ways", async () => {
        await type(tab1, "hi from tab 1");
        await waitForText(tab2, "hi from tab 1");
        await type(tab2, "hi from tab 2");
        await waitForText(tab1, "hi from tab 2");
        await waitNothingPending(tab1);
        for (const tab of [tab1, tab2]) {
          assert.deepEqual(await lines(tab), ["ada: hi from tab 1", "bob: hi from tab 2"]);
        }
        assert.deepEqual((await transcript(tab1)).map((m) => m.own), [true, false]);
        assert.deepEqual((await transcript(tab2)).map((m) => m.own), [false, true]);
      });

      await t.step("a reload keeps each tab's own name and history", async () => {
        for (const [tab, name] of [[tab1, "ada"], [tab2, "bob"]] as const) {
          const before = await transcript(tab);
          await tab.reload();
          await waitOnline(tab);
          await waitForText(tab, "hi from tab 2");
          assert.equal(await myName(tab), name);
          assert.deepEqual(await transcript(tab), before);
          await tab.locator("#members li.me", { hasText: name }).waitFor();
        }
        await waitForCount(tab1, "#members li", 2);
        await type(tab1, "after the reloads");
        await waitForText(tab2, "after the reloads");
      });

      await t.step(
        "after a SIGKILL, each tab's pending message arrives once, in order, under its author",
        async () => {
          await server.stop("SIGKILL");
          await waitOffline(tab1);
          await waitOffline(tab2);
          await type(tab1, "pending in tab 1");
          await type(tab2, "pending in tab 2");
          for (const tab of [tab1, tab2]) {
            await tab.waitForSelector('#messages li.message.own[data-state="pending"]');
          }

          server = await startProcess({ KV_PATH: kvPath }, server.port);
          for (const tab of [tab1, tab2]) {
            await waitOnline(tab);
            await waitNothingPending(tab);
          }
          await waitForText(tab1, "pending in tab 2");
          await waitForText(tab2, "pending in tab 1");
          // A message after both: anything delivered twice would come before it.
          await type(tab2, "after the restart");
          await waitForText(tab1, "after the restart");
          await waitNothingPending(tab2);

          const one = await transcript(tab1);
          const two = await transcript(tab2);
          assert.deepEqual(one.map((m) => m.id), [1, 2, 3, 4, 5, 6]);
          const expected = [
            "ada: hi from tab 1",
            "bob: hi from tab 2",
            "ada: after the reloads",
          ];
          const [five, six] = [one[3], one[4]].map((m) => `${m.name}: ${m.text}`);
          // The two pending messages may be stored in either order.
          assert.deepEqual(
            [five, six].sort(),
            ["ada: pending in tab 1", "bob: pending in tab 2"],
          );
          expected.push(five, six, "bob: after the restart");
          assert.deepEqual(await lines(tab1), expected);
          assert.deepEqual(await lines(tab2), expected);
          assert.deepEqual(two.map((m) => m.id), [1, 2, 3, 4, 5, 6]);
          assert.ok(one.every((m) => m.state === "sent" && m.own === (m.name === "ada")));
          assert.ok(two.every((m) => m.state === "sent" && m.own === (m.name === "bob")));
          assert.equal(await myName(tab1), "ada");
          assert.equal(await myName(tab2), "bob");
        },
      );

      await t.step("a third tab joins and sees the history", async () => {
        const tab3 = await newTab(context, url);
        await waitOnline(tab3);
        // The last name typed in this window was "bob": the new tab takes a variant of it.
        assert.equal(await myName(tab3), "bob2");
        await waitForText(tab3, "after the restart");
        assert.deepEqual(await lines(tab3), await lines(tab1));
        await type(tab3, "hello from tab 3");
        await waitForText(tab1, "hello from tab 3");
        await waitForText(tab2, "hello from tab 3");
        await tab1.locator("#members li", { hasText: "bob2" }).waitFor();
      });

      await t.step(
        "a duplicated tab becomes a new session and leaves the original alone",
        async () => {
          // Chromium's "Duplicate" copies the tab's sessionStorage: do the same.
          const copied = await tab1.evaluate(() => JSON.stringify(Object.entries(sessionStorage)));
          const copy = await context.newPage();
          copy.setDefaultTimeout(TIMEOUT_MS);
          await copy.addInitScript((entries: string) => {
            if (sessionStorage.getItem("chat.tabId")) return;
            for (const [key, value] of JSON.parse(entries)) sessionStorage.setItem(key, value);
          }, copied);
          await copy.goto(url);
          await waitOnline(copy);
          assert.equal(await myName(copy), "bob3");
          await copy.locator("#messages li.notice", { hasText: "new session" }).waitFor();
          // The original was not replaced: it is online and can still send.
          await type(tab1, "still the original");
          await waitForText(copy, "still the original");
          await waitNothingPending(tab1);
          assert.equal(await tab1.getAttribute("#status", "data-state"), "online");
          assert.equal(await myName(tab1), "ada");
        },
      );

      const screenshot = `${dir}/one-window.png`;
      await tab1.screenshot({ path: screenshot, fullPage: true });
      console.log(`Screenshot: ${screenshot}`);
      assert.deepEqual(pageErrors.splice(0), []);
    } finally {
      await browser.close();
      await server.stop("SIGTERM");
    }
  },
});

Deno.test({
  name: "with JWT auth on, the page asks for a token and joins with it",
  ignore: skip,
  async fn() {
    const secret = "browser test secret";
    const dir = await Deno.makeTempDir({ prefix: "chat-auth-" });
    await using server = await startProcess({ KV_PATH: `${dir}/chat.kv`, AUTH_JWT_SECRET: secret });
    const browser = await launch();
    try {
      const page = await newTab(await browser.newContext(), `${server.origin}/#team`);
      await joinAs(page, "ignored");
      await page.waitForSelector("#auth-input", { state: "visible" });
      assert.match(await page.textContent("#join-error") ?? "", /token is required/);
      const jwt = await new SignJWT({ sub: "carol", name: "Carol" })
        .setProtectedHeader({ alg: "HS256" })
        .setExpirationTime("1h")
        .sign(new TextEncoder().encode(secret));
      await page.fill("#auth-input", jwt);
      await page.press("#auth-input", "Enter");
      await waitOnline(page);
      await type(page, "signed in");
      await page.locator('#messages li.message.own[data-state="sent"] .sender', {
        hasText: "Carol",
      })
        .waitFor();
      assert.deepEqual(pageErrors.splice(0), []);
    } finally {
      await browser.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
