/**
 * The page's fallback in a real browser: Debian's Chromium (launched as in
 * browser_test.ts), where every WebSocket of two tabs is refused, chats over
 * Server-Sent Events and POST; a SIGKILL and restart of the server loses
 * nothing; a third tab on WebSockets sees the same conversation.
 */
import assert from "node:assert/strict";
import type { BrowserContext, Page } from "playwright-core";
import { startProcess } from "./process.ts";
import {
  joinAs,
  launch,
  lines,
  myName,
  newTab,
  pageErrors,
  skip,
  TIMEOUT_MS,
  transcript,
  type,
  waitForText,
  waitNothingPending,
  waitOffline,
} from "./browser_helpers.ts";

/**
 * Opens `url` in a new tab of `context` whose WebSockets all fail: each one is
 * accepted by the route and closed at once, as by a proxy that does not pass
 * them through.
 */
async function blockedTab(context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on("dialog", (dialog) => {
    throw new Error(`Unexpected dialog: ${dialog.message()}`);
  });
  page.on("pageerror", (error) => pageErrors.push(`${page.url()}: ${error.message}`));
  await page.routeWebSocket(/.*/, (ws) => ws.close({ code: 1006, reason: "blocked" }));
  await page.goto(url);
  return page;
}

/** The transport the page's status line names. */
async function transport(page: Page): Promise<string> {
  return await page.getAttribute("#status", "data-transport") ?? "";
}

async function waitOnlineVia(page: Page, via: "sse" | "websocket"): Promise<void> {
  await page.waitForSelector(`#status[data-state="online"][data-transport="${via}"]`);
}

Deno.test({
  name: "with WebSockets blocked, two tabs chat over the SSE fallback and survive a SIGKILL",
  ignore: skip,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "chat-fallback-" });
    const kvPath = `${dir}/chat.kv`;
    let server = await startProcess({ KV_PATH: kvPath });
    const browser = await launch();
    try {
      // One context: tabs of one window.
      const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
      const url = `${server.origin}/#fallback`;
      let tab1: Page, tab2: Page;

      await t.step("both tabs fall back to SSE by themselves, and say so", async () => {
        tab1 = await blockedTab(context, url);
        await joinAs(tab1, "ada");
        await waitOnlineVia(tab1, "sse");
        assert.match(await tab1.textContent("#status") ?? "", /SSE/);
        tab2 = await blockedTab(context, url);
        await waitOnlineVia(tab2, "sse");
        assert.equal(await myName(tab2), "ada2");
      });

      await t.step("they chat both ways", async () => {
        await type(tab1, "hello over SSE");
        await waitForText(tab2, "hello over SSE");
        await type(tab2, "hello back");
        await waitForText(tab1, "hello back");
        await waitNothingPending(tab1);
        await waitNothingPending(tab2);
        for (const tab of [tab1, tab2]) {
          assert.deepEqual(await lines(tab), ["ada: hello over SSE", "ada2: hello back"]);
        }
      });

      await t.step("after a SIGKILL and a restart, pending messages arrive once", async () => {
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
          await waitOnlineVia(tab, "sse");
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
        assert.deepEqual(one.map((m) => m.id), [1, 2, 3, 4, 5]);
        assert.deepEqual(two.map((m) => m.id), [1, 2, 3, 4, 5]);
        assert.deepEqual(
          [one[2], one[3]].map((m) => `${m.name}: ${m.text}`).sort(),
          ["ada2: pending in tab 2", "ada: pending in tab 1"],
        );
        assert.deepEqual(await lines(tab1), await lines(tab2));
        assert.equal((await lines(tab1)).at(-1), "ada2: after the restart");
        assert.ok(one.every((m) => m.state === "sent" && m.own === (m.name === "ada")));
        assert.ok(two.every((m) => m.state === "sent" && m.own === (m.name === "ada2")));
      });

      await t.step("a third tab on WebSockets sees the same conversation", async () => {
        const tab3 = await newTab(context, url);
        await waitOnlineVia(tab3, "websocket");
        assert.match(await tab3.textContent("#status") ?? "", /WebSocket/);
        await waitForText(tab3, "after the restart");
        assert.deepEqual(await lines(tab3), await lines(tab1));
        await type(tab3, "hello from a WebSocket");
        await waitForText(tab1, "hello from a WebSocket");
        await waitForText(tab2, "hello from a WebSocket");
        await waitNothingPending(tab3);
        assert.equal(await transport(tab1), "sse");
        assert.equal(await transport(tab2), "sse");
        assert.deepEqual(await lines(tab1), await lines(tab3));
        assert.deepEqual(await lines(tab2), await lines(tab3));
      });

      const screenshot = `${dir}/fallback.png`;
      await tab1!.screenshot({ path: screenshot, fullPage: true });
      console.log(`Screenshot: ${screenshot}`);
      assert.deepEqual(pageErrors.splice(0), []);
    } finally {
      await browser.close();
      await server.stop("SIGTERM");
    }
  },
});
