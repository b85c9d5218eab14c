/**
 * What a new user hit, one step each, in a real browser (Debian's Chromium,
 * two tabs against `main.ts` as a real process), and the layout attack N9:
 * a message of one character stacked with 300 combining marks, seeded into
 * the store as an old server would have kept it (the server now refuses more
 * than a few marks per character). The steps only use what the page had
 * before the many-rooms work (its ids and the hash), so they also show each
 * bug on that page.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { KvHistory } from "../src/store/kv_history.ts";
import type { MessageDraft } from "../src/store/history.ts";
import { startProcess } from "./process.ts";
import { TestClient } from "./helpers.ts";
import {
  checkAxe,
  focusedAttribute,
  instrument,
  joinAs,
  launch,
  messageItem,
  newTab,
  pageErrors,
  setHidden,
  settled,
  skip,
  type,
  waitForText,
  waitNothingPending,
  waitOnline,
} from "./browser_helpers.ts";

/** N9: `Z` and 300 × U+0489 COMBINING CYRILLIC MILLIONS SIGN. */
const ZALGO = "Z" + "\u0489".repeat(300);
const LONG_WORD = "Pneumonoultramicroscopicsilicovolcanoconiosis".repeat(3);

/** Writes messages into the store's KV file before the server opens it. */
async function seedStore(path: string): Promise<void> {
  const kv = await Deno.openKv(path);
  try {
    const history = new KvHistory(kv);
    const draft = (room: string, i: number, text: string): MessageDraft => ({
      room,
      userId: "seed-user",
      name: "old-client",
      text,
      cid: `${room}-${i}`,
    });
    await history.appendMany("zalgo", [draft("zalgo", 1, ZALGO), draft("zalgo", 2, "after it")]);
    await history.appendMany(
      "long",
      Array.from({ length: 120 }, (_, i) => draft("long", i + 1, `long ${i + 1}`)),
    );
  } finally {
    kv.close();
  }
}

/** Shows `room` by its address, as the page always did. */
async function goTo(page: Page, room: string): Promise<void> {
  await page.evaluate((room) => location.hash = `#${room}`, room);
  await page.locator("#room-name", { hasText: new RegExp(`^${room}$`) }).waitFor();
  await waitOnline(page);
}

/** The page's width fits the viewport, and Send is fully in view. */
async function contained(page: Page, what: string): Promise<void> {
  await settled(page);
  const layout = await page.evaluate(() => {
    // deno-lint-ignore no-explicit-any
    const { document, innerWidth, innerHeight } = globalThis as any;
    const send = document.getElementById("send").getBoundingClientRect();
    return {
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth,
      innerHeight,
      send: { left: send.left, right: send.right, top: send.top, bottom: send.bottom },
    };
  });
  const { scrollWidth, innerWidth, innerHeight, send } = layout;
  assert.ok(scrollWidth <= innerWidth, `${what}: the page is ${scrollWidth} px wide`);
  assert.ok(
    send.left >= 0 && send.right <= innerWidth && send.top >= 0 && send.bottom <= innerHeight,
    `${what}: Send is off screen: ${JSON.stringify(layout)}`,
  );
}

// In the page: the connection banner's countdown, and changes of the live status line.

/** The seconds the connection banner counts down, or 0. */
function countdown(): number {
  // deno-lint-ignore no-explicit-any
  const text = (globalThis as any).document.getElementById("connection").textContent ?? "";
  return Number(/in (\d+) s/.exec(text)?.[1] ?? 0);
}

/** Whether the banner counts down from `n` s or more. */
function countdownAtLeast(n: number): boolean {
  // deno-lint-ignore no-explicit-any
  const text = (globalThis as any).document.getElementById("connection").textContent ?? "";
  return Number(/in (\d+) s/.exec(text)?.[1] ?? 0) >= n;
}

/** Whether the banner's countdown is down to `n` s or less. */
function countdownAtMost(n: number): boolean {
  // deno-lint-ignore no-explicit-any
  const text = (globalThis as any).document.getElementById("connection").textContent ?? "";
  return Number(/in (\d+) s/.exec(text)?.[1] ?? Infinity) <= n;
}

/** How often the live status line changed since the step began counting. */
function statusChanges(): number {
  // deno-lint-ignore no-explicit-any
  return (globalThis as any).__statusChanges;
}

/** The rectangles of the scroller and of what `selector` finds last in it. */
async function rects(page: Page, selector: string) {
  return await page.evaluate((selector) => {
    // deno-lint-ignore no-explicit-any
    const { document } = globalThis as any;
    const box = (el: { getBoundingClientRect(): { top: number; bottom: number } }) => {
      const r = el.getBoundingClientRect();
      return { top: r.top, bottom: r.bottom };
    };
    const items = document.querySelectorAll(selector);
    const scroller = document.getElementById("scroller");
    return {
      scroller: box(scroller),
      item: items.length ? box(items[items.length - 1]) : null,
      fromEnd: scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight,
    };
  }, selector);
}

Deno.test({
  name: "ten bugs a new user hit, and the N9 layout attack, fixed",
  ignore: skip,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "chat-bugs-" });
    const kvPath = `${dir}/chat.kv`;
    await seedStore(kvPath);
    const server = await startProcess({ KV_PATH: kvPath, RATE_BURST: "500" });
    const browser = await launch();
    await using carol = (await TestClient.join(server.wsUrl, "bugs", "carol")).client;
    for (const room of ["busy", "names"]) {
      carol.send({ type: "join", room });
      await carol.next("welcome", (w) => w.room === room);
    }
    let said = 0;
    /** carol says `text` in `room` and waits for its ack. */
    const carolSays = async (room: string, text: string) => {
      const cid = `carol-${++said}`;
      carol.send({ type: "say", room, text, cid });
      await carol.next("ack", (a) => a.cid === cid);
    };
    try {
      const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
      await instrument(context);
      const ada = await newTab(context, `${server.origin}/#bugs`);
      await joinAs(ada, "ada");
      await waitOnline(ada);
      /** Frames ada's page sends, by type. */
      const sent: Record<string, number> = {};
      ada.on("websocket", (ws) =>
        ws.on("framesent", (frame) => {
          const type = JSON.parse(String(frame.payload)).type;
          sent[type] = (sent[type] ?? 0) + 1;
        }));

      await t.step("N9: a stacked-marks message cannot widen the page or hide Send", async () => {
        await goTo(ada, "zalgo");
        await waitForText(ada, "after it");
        await contained(ada, "desktop");
        await ada.setViewportSize({ width: 390, height: 844 });
        await contained(ada, "390 px");
        await ada.setViewportSize({ width: 900, height: 640 });
      });

      await t.step("1. on a phone, a reply quoting a long word keeps Send on screen", async () => {
        await goTo(ada, "bugs");
        await carolSays("bugs", LONG_WORD);
        await waitForText(ada, LONG_WORD.slice(0, 20));
        await ada.setViewportSize({ width: 390, height: 844 });
        await messageItem(ada, LONG_WORD.slice(0, 20)).locator(".menu-button").click();
        await ada.locator('#message-menu [data-action="reply"]').click();
        await type(ada, "me too");
        await messageItem(ada, "me too").locator(".quote").waitFor();
        await waitNothingPending(ada);
        await contained(ada, "a reply quoting a long word at 390 px");
        await ada.setViewportSize({ width: 900, height: 640 });
      });

      await t.step(
        "2. a room of more than 50 messages opens with the newest one whole",
        async () => {
          await goTo(ada, "long");
          await ada.waitForSelector('#messages li.message[data-id="120"]');
          await ada.waitForSelector("#load-older", { state: "visible" });
          await settled(ada);
          const { scroller, item, fromEnd } = await rects(ada, "#messages li.message");
          assert.ok(
            item && item.bottom <= scroller.bottom + 1,
            `cut: ${item?.bottom} > ${scroller.bottom}`,
          );
          assert.ok(fromEnd <= 1, `${fromEnd} px above the bottom`);
        },
      );

      await t.step("3. after a burst of your own messages the view is at the bottom", async () => {
        for (let i = 1; i <= 12; i++) await type(ada, `burst ${i}`);
        await waitNothingPending(ada);
        await settled(ada);
        const { fromEnd } = await rects(ada, "#messages li.message");
        assert.ok(fromEnd <= 1, `${fromEnd} px above the bottom`);
      });

      await t.step("4. Tab leaves the message list for the composer, loading nothing", async () => {
        const before = { top: 0, history: sent.history ?? 0 };
        await ada.focus("#scroller");
        before.top = await ada.locator("#scroller").evaluate((el) => el.scrollTop);
        await ada.keyboard.press("Tab");
        await settled(ada);
        assert.equal(await focusedAttribute(ada), "text-input");
        assert.equal(await ada.locator("#scroller").evaluate((el) => el.scrollTop), before.top);
        assert.equal(sent.history ?? 0, before.history, "no older page asked for");
        // From a message too.
        await ada.focus("#scroller");
        await ada.keyboard.press("ArrowUp");
        assert.ok(Number(await focusedAttribute(ada, "data-id")) > 0);
        await ada.keyboard.press("Tab");
        assert.equal(await focusedAttribute(ada), "text-input");
        assert.equal(sent.history ?? 0, before.history);
      });

      await t.step(
        "7. back in a hidden tab: the mention is in view, the pill covers nothing",
        async () => {
          await goTo(ada, "busy");
          await setHidden(ada, true);
          for (let i = 1; i <= 30; i++) await carolSays("busy", `before ${i}`);
          await carolSays("busy", "@ada look here");
          for (let i = 1; i <= 30; i++) await carolSays("busy", `after ${i}`);
          await waitForText(ada, "after 30");
          await setHidden(ada, false);
          await settled(ada);
          const mention = await messageItem(ada, "@ada look here").evaluate((li) => {
            const r = li.getBoundingClientRect();
            return { top: r.top, bottom: r.bottom };
          });
          const { scroller } = await rects(ada, "#messages li.message");
          assert.ok(
            mention.top >= scroller.top && mention.bottom <= scroller.bottom,
            `the mention is out of view: ${JSON.stringify({ mention, scroller })}`,
          );
          const pill = ada.locator("#jump-new");
          await pill.waitFor();
          const box = await pill.boundingBox();
          assert.ok(box && box.y >= scroller.bottom, "the pill is under the list, not over it");
        },
      );

      await t.step("8. the last message's menu opens wholly in view", async () => {
        await ada.click("#jump-new");
        await ada.waitForSelector("#jump-new", { state: "hidden" });
        await messageItem(ada, "after 30").locator(".menu-button").click();
        await ada.locator("#messages #message-menu").waitFor();
        await settled(ada);
        const { scroller, item } = await rects(ada, "#messages #message-menu");
        assert.ok(
          item && item.top >= scroller.top && item.bottom <= scroller.bottom + 1,
          `the menu is cut: ${JSON.stringify({ item, scroller })}`,
        );
        await ada.keyboard.press("Escape");
      });

      // bob: another browser, in #names.
      const bobContext = await browser.newContext({ viewport: { width: 900, height: 640 } });
      const bob = await newTab(bobContext, `${server.origin}/#names`);
      await joinAs(bob, "bob");
      await waitOnline(bob);
      await goTo(ada, "names");

      await t.step("9. editing tells nobody you are typing; a reply to you is marked", async () => {
        await type(bob, "bob's words");
        await waitForText(ada, "bob's words");
        let typing = 0;
        bob.on("websocket", (ws) =>
          ws.on("framesent", (frame) => {
            if (JSON.parse(String(frame.payload)).type === "typing") typing++;
          }));
        await bob.reload();
        await waitOnline(bob);
        await waitForText(bob, "bob's words");
        await bob.focus("#text-input");
        await bob.keyboard.press("ArrowUp");
        await bob.locator("#composer-mode", { hasText: "Editing" }).waitFor();
        await bob.keyboard.press("End");
        await bob.keyboard.type(", edited");
        await bob.keyboard.press("Enter");
        await messageItem(ada, "bob's words, edited").locator(".edited:visible").waitFor();
        assert.equal(typing, 0, "no typing notice for an edit");
        assert.equal(await ada.textContent("#typing"), "");

        await type(ada, "a question");
        await waitForText(bob, "a question");
        await messageItem(bob, "a question").locator(".menu-button").click();
        await bob.locator('#message-menu [data-action="reply"]').click();
        await type(bob, "an answer");
        const answer = messageItem(ada, "an answer");
        await answer.locator(".quote").waitFor();
        assert.ok(await answer.evaluate((li) => li.classList.contains("mentions-me")));
      });

      await t.step(
        "5. a taken nickname leaves you in the room, with the error in the dialog",
        async () => {
          const sockets = { opened: 0 };
          ada.on("websocket", () => sockets.opened++);
          await ada.click("#change-name");
          await joinAs(ada, "carol");
          await ada.locator("#join-error", { hasText: "taken" }).waitFor();
          assert.equal(await ada.getAttribute("#status", "data-state"), "online");
          assert.equal(sockets.opened, 0, "no reconnect");
          await ada.keyboard.press("Escape");
          await ada.waitForSelector("#join-dialog:not([open])", { state: "attached" });
          // carol's message comes after anything ada's try did to the room.
          await carolSays("names", "barrier 5");
          await waitForText(bob, "barrier 5");
          assert.deepEqual(await bob.locator("#messages li.notice").allTextContents(), []);
        },
      );

      await t.step("6. a rename shows as one line: ada is now ada2", async () => {
        await ada.click("#change-name");
        await joinAs(ada, "ada2");
        await ada.locator("#my-name", { hasText: /^ada2$/ }).waitFor();
        await bob.locator("#messages li.notice", { hasText: "ada is now ada2" }).waitFor();
        await carolSays("names", "barrier 6");
        await waitForText(bob, "barrier 6");
        assert.deepEqual(await bob.locator("#messages li.notice").allTextContents(), [
          "ada is now ada2",
        ]);
        await bob.locator("#members li", { hasText: "ada2" }).waitFor();
      });

      await t.step(
        "10. offline: nobody listed, one 'connection lost', a quiet countdown",
        async () => {
          await ada.evaluate(() => {
            // deno-lint-ignore no-explicit-any
            const g = globalThis as any;
            g.__statusChanges = 0;
            new g.MutationObserver(() => g.__statusChanges++).observe(
              g.document.getElementById("status"),
              { subtree: true, childList: true, characterData: true },
            );
          });
          await server.stop("SIGKILL");
          const banner = ada.locator("#connection");
          await banner.waitFor();
          assert.equal(await ada.locator("#members li").count(), 0, "nobody is known to be here");
          // A wait of 4 s or more, then two ticks of it with no change of the live status line.
          await ada.waitForFunction(countdownAtLeast, 4);
          const from = await ada.evaluate(countdown);
          const changes = await ada.evaluate(statusChanges);
          await ada.waitForFunction(countdownAtMost, from - 2);
          assert.equal(
            await ada.evaluate(statusChanges),
            changes,
            "the live status line did not change while the countdown ran",
          );
          const text = await ada.textContent("#connection-text") ?? "";
          assert.doesNotMatch(text, /\(connection lost\)/);
          assert.match(text, /^Connection lost/);
          const violations = await checkAxe(ada);
          assert.deepEqual(violations, [], JSON.stringify(violations, null, 2));
        },
      );

      assert.deepEqual(pageErrors.splice(0), []);
    } finally {
      await browser.close();
      await server.stop("SIGKILL");
    }
  },
});
