/**
 * The chat page in a real browser: Debian's Chromium, driven by
 * playwright-core, against `main.ts` run as a real process.
 */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { type Browser, chromium, type Page } from "playwright-core";
import { startProcess } from "./process.ts";

const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
const TIMEOUT_MS = 15_000;

/** Why the browser tests cannot run here, or `null`. In CI a missing browser is a failure. */
function missingBrowser(): string | null {
  try {
    Deno.statSync(CHROMIUM);
    return null;
  } catch {
    return `Chromium not found at ${CHROMIUM} (install Debian's chromium or set CHROMIUM_PATH)`;
  }
}

const missing = missingBrowser();
const skip = missing !== null && Deno.env.get("CI") !== "true";
if (skip) console.log(`Skipping browser tests: ${missing}`);

async function launch(): Promise<Browser> {
  if (missing) throw new Error(missing);
  return await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** Opens the page in a fresh context (its own localStorage) and joins as `name`. */
async function openTab(browser: Browser, url: string, name: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on("dialog", (dialog) => {
    throw new Error(`Unexpected dialog: ${dialog.message()}`);
  });
  await page.goto(url);
  await page.fill("#name-input", name);
  await page.press("#name-input", "Enter");
  await waitOnline(page);
  return page;
}

async function waitOnline(page: Page): Promise<void> {
  await page.waitForSelector('#status[data-state="online"]');
}

async function type(page: Page, text: string): Promise<void> {
  await page.fill("#text-input", text);
  await page.press("#text-input", "Enter");
}

/** The texts of the messages shown, in order. */
async function texts(page: Page): Promise<string[]> {
  return await page.$$eval(
    "#messages li.message .text",
    (items) => items.map((item) => item.textContent ?? ""),
  );
}

async function waitForText(page: Page, text: string): Promise<void> {
  await page.locator("#messages li.message .text", { hasText: text }).first().waitFor();
}

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
          await ada.waitForSelector('#status:not([data-state="online"])');
          await bob.waitForSelector('#status:not([data-state="online"])');
          await type(ada, "sent while offline");
          await ada.waitForSelector('#messages li.message[data-state="pending"]');

          server = await startProcess({ KV_PATH: kvPath }, server.port);
          await waitOnline(ada);
          await waitOnline(bob);
          await waitForText(bob, "sent while offline");
          await ada.waitForFunction(
            `document.querySelectorAll('#messages li.message[data-state="pending"]').length === 0`,
          );
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
      const page = await (await browser.newContext()).newPage();
      page.setDefaultTimeout(TIMEOUT_MS);
      await page.goto(`${server.origin}/#team`);
      await page.fill("#name-input", "ignored");
      await page.press("#name-input", "Enter");
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
    } finally {
      await browser.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
