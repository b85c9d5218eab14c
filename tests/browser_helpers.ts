/**
 * Browser test helpers: Debian's Chromium through playwright-core (never a
 * downloaded browser), and short ways to drive and read the chat page.
 *
 * @module
 */

import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";

export const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
/** How long a page wait may take before the test fails. */
export const TIMEOUT_MS = 15_000;

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
/** True when the browser tests are skipped (no Chromium, and not in CI). */
export const skip = missing !== null && Deno.env.get("CI") !== "true";
if (skip) console.log(`Skipping browser tests: ${missing}`);

export async function launch(): Promise<Browser> {
  if (missing) throw new Error(missing);
  return await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** Script errors of every page opened with {@linkcode newTab}, for a test to check. */
export const pageErrors: string[] = [];

/**
 * Opens `url` in a new page of `context`: a new tab of that window, sharing
 * its localStorage. Fails on any `alert`/`confirm`, and records script errors.
 */
export async function newTab(context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on("dialog", (dialog) => {
    throw new Error(`Unexpected dialog: ${dialog.message()}`);
  });
  page.on("pageerror", (error) => pageErrors.push(`${page.url()}: ${error.message}`));
  await page.goto(url);
  return page;
}

/** Opens the page in a fresh context (its own storage, another browser) and joins as `name`. */
export async function openTab(browser: Browser, url: string, name: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
  const page = await newTab(context, url);
  await joinAs(page, name);
  await waitOnline(page);
  return page;
}

/** Types `name` in the nickname dialog and presses Enter. */
export async function joinAs(page: Page, name: string): Promise<void> {
  await page.waitForSelector("#join-dialog[open] #name-input");
  await page.fill("#name-input", name);
  await page.press("#name-input", "Enter");
}

export async function waitOnline(page: Page): Promise<void> {
  await page.waitForSelector('#status[data-state="online"]');
}

export async function waitOffline(page: Page): Promise<void> {
  await page.waitForSelector('#status:not([data-state="online"])');
}

/** Types `text` in the composer and sends it with Enter. */
export async function type(page: Page, text: string): Promise<void> {
  await page.fill("#text-input", text);
  await page.press("#text-input", "Enter");
}

/** The texts of the messages shown, in order. */
export async function texts(page: Page): Promise<string[]> {
  return await page.$$eval(
    "#messages li.message .text",
    (items) => items.map((item) => item.textContent ?? ""),
  );
}

/** One shown message. */
export interface Shown {
  id: number;
  state: string;
  own: boolean;
  name: string;
  text: string;
}

/** Every message shown, in order, with its id, state, sender and ownership. */
export async function transcript(page: Page): Promise<Shown[]> {
  return await page.$$eval("#messages li.message", (items) =>
    items.map((li) => ({
      id: Number(li.getAttribute("data-id")),
      state: li.getAttribute("data-state") ?? "",
      own: li.classList.contains("own"),
      name: li.querySelector(".sender")?.textContent ?? "",
      text: li.querySelector(".text")?.textContent ?? "",
    })));
}

/** `name: text` of every message shown, in order. */
export async function lines(page: Page): Promise<string[]> {
  return (await transcript(page)).map((m) => `${m.name}: ${m.text}`);
}

export async function waitForText(page: Page, text: string): Promise<void> {
  await page.locator("#messages li.message .text", { hasText: text }).first().waitFor();
}

/** Waits until no own message of the page is pending. */
export async function waitNothingPending(page: Page): Promise<void> {
  await waitForCount(page, '#messages li.message[data-state="pending"]', 0);
}

/**
 * Waits until `selector` matches exactly `count` elements. (A function, not a
 * string: the page's CSP forbids eval, which string predicates need.)
 */
export async function waitForCount(page: Page, selector: string, count: number): Promise<void> {
  await page.waitForFunction(
    // deno-lint-ignore no-explicit-any
    ([selector, count]) => (globalThis as any).document.querySelectorAll(selector).length === count,
    [selector, count] as const,
  );
}

/** The nickname the page shows as this tab's. */
export async function myName(page: Page): Promise<string> {
  return (await page.textContent("#my-name")) ?? "";
}
