/**
 * The page in many rooms at once, in a real browser: two tabs of one window
 * (one Chromium context, two pages, sharing localStorage) against `main.ts`
 * run as a real process. The room sidebar (a `nav` named "Rooms"), unread
 * and mention counts, notifications for a room not in view, instant switches
 * that keep each room's scroll position, a reload and a SIGKILL with every
 * message once per room, the directory, leaving from the keyboard, and the
 * phone drawer; axe-core finds no violation in each new state. Screenshots
 * of the sidebar (light, dark, phone drawer) go to a temp dir; their paths
 * are printed.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { startProcess } from "./process.ts";
import { TestClient } from "./helpers.ts";
import {
  cspViolations,
  expectNoAxeViolations,
  focusedAttribute,
  instrument,
  joinAs,
  launch,
  newTab,
  notifications,
  pageErrors,
  roomLink,
  sidebar,
  skip,
  transcript,
  type,
  waitForText,
  waitNothingPending,
  waitOffline,
  waitOnline,
} from "./browser_helpers.ts";

/** Posts `count` messages (`a 1` … `a N`) to `room` as `name`, then leaves. */
async function seed(wsUrl: string, room: string, name: string, count: number): Promise<void> {
  const { client } = await TestClient.join(wsUrl, room, name);
  try {
    for (let i = 1; i <= count; i++) {
      client.send({ type: "say", text: `${room} ${i}`, cid: `${room}-${i}` });
    }
    await client.next("ack", (a) => a.cid === `${room}-${count}`);
  } finally {
    await client.close();
  }
}

/** Shows `room` from the sidebar, and waits until it is the room in view. */
async function view(page: Page, room: string): Promise<void> {
  await roomLink(page, room).click();
  await roomLink(page, room).and(page.locator('[aria-current="page"]')).waitFor();
  await page.locator(`#scroller[data-room="${room}"]`).waitFor();
}

/** Every message of the room in view as `id name: text`, checking ids are 1, 2, 3 … */
async function wholeRoom(page: Page): Promise<string[]> {
  const shown = await transcript(page);
  assert.deepEqual(shown.map((m) => m.id), shown.map((_, i) => i + 1), "each id once, in order");
  assert.ok(shown.every((m) => m.state === "sent"));
  return shown.map((m) => `${m.id} ${m.name}: ${m.text}`);
}

Deno.test({
  name: "two tabs, many rooms: sidebar, unread, mentions, switching, reload, SIGKILL, drawer",
  ignore: skip,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "chat-rooms-" });
    const kvPath = `${dir}/chat.kv`;
    let server = await startProcess({ KV_PATH: kvPath, RATE_BURST: "200" });
    await seed(server.wsUrl, "a", "seed", 40);
    await seed(server.wsUrl, "archive", "old-timer", 3);
    const browser = await launch();
    const shots: string[] = [];
    const shot = async (page: Page, name: string) => {
      const path = `${dir}/${name}.png`;
      await page.screenshot({ path });
      shots.push(path);
    };
    try {
      // One context: two tabs of one window; notifications were allowed for the site before.
      const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
      await instrument(context, { permission: "granted" });
      const tab1 = await newTab(context, `${server.origin}/#a`);
      let sockets = 0;
      tab1.on("websocket", () => sockets++);
      await joinAs(tab1, "ada");
      await waitOnline(tab1);
      let tab2: Page;

      await t.step("opening #b joins it too; the sidebar lists both, #a in view", async () => {
        await tab1.evaluate(() => location.hash = "#b");
        await roomLink(tab1, "b").and(tab1.locator('[aria-current="page"]')).waitFor();
        await view(tab1, "a");
        assert.deepEqual(
          await sidebar(tab1).getByRole("link").evaluateAll((links) =>
            links.map((
              a,
            ) => [a.querySelector(".room-name")?.textContent, a.getAttribute("aria-current")])
          ),
          [["#a", "page"], ["#b", null]],
        );
        assert.equal(await tab1.textContent("#room-name"), "a");
        assert.ok(tab1.url().endsWith("#a"));
        assert.equal(sockets, 1, "one connection for both rooms");
      });

      await t.step("a message in #b, not in view, counts as unread there", async () => {
        tab2 = await newTab(context, `${server.origin}/#b`);
        await waitOnline(tab2);
        await type(tab2, "hello b");
        await roomLink(tab1, "b").and(tab1.getByRole("link", { name: /, 1 unread$/ })).waitFor();
        assert.equal(await tab1.locator("#messages .text", { hasText: "hello b" }).count(), 0);
        assert.match(await tab1.title(), /^\(1\) #a – Deno Chat$/);
        await expectNoAxeViolations(tab1, "sidebar with an unread room");
      });

      await t.step("a mention in #b notifies: the tab title, a notification", async () => {
        await type(tab2, "@ada are you there?");
        await roomLink(tab1, "b").and(tab1.getByRole("link", { name: /, 1 mention , 2 unread$/ }))
          .waitFor();
        await tab1.waitForFunction(() =>
          // deno-lint-ignore no-explicit-any
          (globalThis as any).__notifications.shown.length === 1
        );
        assert.deepEqual((await notifications(tab1)).shown, [
          { title: "ada2 mentioned you in #b", body: "@ada are you there?" },
        ]);
        assert.match(await tab1.title(), /^\(2, 1 mention\) #a – Deno Chat$/);
        await shot(tab1, "sidebar-light");
        await expectNoAxeViolations(tab1, "sidebar with a mention");
      });

      await t.step("switching is instant and each room comes back where it was", async () => {
        const scroller = tab1.locator("#scroller");
        await scroller.evaluate((el) => el.scrollTop = 300);
        await view(tab1, "b");
        // The unread part starts with the divider; the mention is read once in view.
        const divided = await tab1.$eval(
          "#messages li.unread-divider",
          (li) => li.nextElementSibling?.querySelector(".text")?.textContent,
        );
        assert.equal(divided, "hello b");
        await roomLink(tab1, "b").and(tab1.getByRole("link", { name: /^#b$/ })).waitFor();
        assert.match(await tab1.title(), /^#b – Deno Chat$/);
        await view(tab1, "a");
        assert.equal(await scroller.evaluate((el) => el.scrollTop), 300);
        assert.equal(sockets, 1, "no reconnect");
        await scroller.evaluate((el) => el.scrollTop = el.scrollHeight);
      });

      await t.step("the directory lists rooms with history too, and joins one", async () => {
        await tab1.keyboard.press("Control+K");
        await tab1.waitForSelector("#room-dialog[open]");
        const archive = tab1.locator('#room-list a[href="#archive"]');
        await archive.waitFor();
        assert.match(await archive.textContent() ?? "", /no one here/);
        assert.match(
          await tab1.locator('#room-list a[href="#a"]').textContent() ?? "",
          /1 member/,
        );
        assert.match(
          await tab1.locator('#room-list a[href="#b"]').textContent() ?? "",
          /2 members.*joined/,
        );
        await expectNoAxeViolations(tab1, "room directory");
        await archive.click();
        await roomLink(tab1, "archive").and(tab1.locator('[aria-current="page"]')).waitFor();
        await waitForText(tab1, "archive 3");
        assert.equal(await sidebar(tab1).getByRole("link").count(), 3);
      });

      await t.step("leaving from the sidebar, with the keyboard", async () => {
        const leave = sidebar(tab1).getByRole("button", { name: "Leave #archive" });
        await leave.focus();
        await tab1.keyboard.press("Enter");
        await roomLink(tab1, "archive").waitFor({ state: "detached" });
        // The room in view moves to one still joined.
        await tab1.locator('#scroller:is([data-room="a"], [data-room="b"])').waitFor();
        await view(tab1, "a");
        assert.equal(await sidebar(tab1).getByRole("link").count(), 2);
      });

      await t.step("a reload keeps both rooms, and each room's history once", async () => {
        const before = { a: await wholeRoom(tab1), b: [] as string[] };
        await view(tab1, "b");
        before.b = await wholeRoom(tab1);
        await view(tab1, "a");
        await tab1.reload();
        await waitOnline(tab1);
        await roomLink(tab1, "b").waitFor();
        await waitForText(tab1, "a 40");
        assert.deepEqual(await wholeRoom(tab1), before.a);
        await view(tab1, "b");
        await waitForText(tab1, "are you there?");
        assert.deepEqual(await wholeRoom(tab1), before.b);
        await view(tab1, "a");
      });

      await t.step("after a SIGKILL and a restart, every message is once in its room", async () => {
        await server.stop("SIGKILL");
        await waitOffline(tab1);
        await waitOffline(tab2);
        await type(tab1, "pending in a");
        await view(tab1, "b");
        await type(tab1, "pending in b");
        await type(tab2, "pending from tab 2");
        server = await startProcess({ KV_PATH: kvPath }, server.port);
        for (const tab of [tab1, tab2]) {
          await waitOnline(tab);
          await waitNothingPending(tab);
        }
        await waitForText(tab1, "pending from tab 2");
        // A message after everything: anything delivered twice would come before it.
        await type(tab2, "after the restart");
        await waitForText(tab1, "after the restart");
        const b = await wholeRoom(tab1);
        assert.deepEqual(b.slice(0, 2), ["1 ada2: hello b", "2 ada2: @ada are you there?"]);
        assert.deepEqual(
          b.slice(2, 4).map((line) => line.slice(2)).sort(),
          ["ada2: pending from tab 2", "ada: pending in b"],
        );
        assert.equal(b[4], "5 ada2: after the restart");
        assert.deepEqual(await wholeRoom(tab2), b);
        await view(tab1, "a");
        await waitForText(tab1, "pending in a");
        const a = await wholeRoom(tab1);
        assert.equal(a.length, 41);
        assert.equal(a.at(-1), "41 ada: pending in a");
      });

      await t.step("dark mode, and at phone width the sidebar is a drawer", async () => {
        await tab1.emulateMedia({ colorScheme: "dark" });
        await shot(tab1, "sidebar-dark");
        await expectNoAxeViolations(tab1, "sidebar, dark");
        await tab1.emulateMedia({ colorScheme: "light" });
        await tab1.setViewportSize({ width: 390, height: 844 });
        const toggle = tab1.locator("#rooms-toggle");
        await toggle.waitFor();
        // Closed, it is out of view and out of the focus order.
        await sidebar(tab1).waitFor({ state: "hidden" });
        await shot(tab1, "phone-drawer-closed");
        await toggle.click();
        assert.equal(await toggle.getAttribute("aria-expanded"), "true");
        await sidebar(tab1).waitFor();
        // Slid in (mid-slide, its links are partly off screen, which axe takes for skip links).
        await tab1.locator("#rooms-nav:not([data-sliding])").waitFor();
        assert.equal(
          await focusedAttribute(tab1, "aria-current"),
          "page",
          "the room in view has the focus",
        );
        await expectNoAxeViolations(tab1, "phone drawer open");
        await shot(tab1, "phone-drawer");
        await tab1.emulateMedia({ colorScheme: "dark" });
        await shot(tab1, "phone-drawer-dark");
        await expectNoAxeViolations(tab1, "phone drawer open, dark");
        await tab1.emulateMedia({ colorScheme: "light" });
        await tab1.keyboard.press("Escape");
        await sidebar(tab1).waitFor({ state: "hidden" });
        assert.equal(await focusedAttribute(tab1), "rooms-toggle");
        // A pick in the drawer shows the room and closes it.
        await toggle.click();
        await roomLink(tab1, "b").click();
        await sidebar(tab1).waitFor({ state: "hidden" });
        await tab1.locator('#scroller[data-room="b"]').waitFor();
        await tab1.setViewportSize({ width: 900, height: 640 });
      });

      for (const page of [tab1, tab2!]) assert.deepEqual(await cspViolations(page), []);
      assert.deepEqual(pageErrors.splice(0), []);
    } finally {
      for (const path of shots) console.log(`Screenshot: ${path}`);
      await browser.close();
      await server.stop("SIGTERM");
    }
  },
});
