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

// --- Accessibility, CSP, notifications and visibility ---------------------------

/** axe-core's source, from the npm package pinned in deno.json. */
const AXE_SOURCE = ((await import("axe-core")).default as unknown as { source: string }).source;
/** The same-origin path the axe script is served at (see {@linkcode checkAxe}). */
const AXE_PATH = "/__axe-core.js";

/** One axe violation, short enough to read in a failed assertion. */
export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  targets: string[];
}

/**
 * Runs axe-core on the page and returns its violations. The page's CSP
 * (`script-src 'self'`) refuses an inline script, so `addScriptTag({ content })`
 * cannot be used as it is: the same source is served under the page's origin
 * through a route, and added with `addScriptTag({ url })`, with the CSP on.
 */
export async function checkAxe(page: Page): Promise<AxeViolation[]> {
  // deno-lint-ignore no-explicit-any
  if (!await page.evaluate(() => "axe" in (globalThis as any))) {
    const url = new URL(AXE_PATH, page.url()).href;
    await page.route(
      url,
      (route) => route.fulfill({ body: AXE_SOURCE, contentType: "text/javascript; charset=utf-8" }),
    );
    await page.addScriptTag({ url });
  }
  return await page.evaluate(async () => {
    // deno-lint-ignore no-explicit-any
    const { axe, document } = globalThis as any;
    const result = await axe.run(document, { resultTypes: ["violations"] });
    // deno-lint-ignore no-explicit-any
    return result.violations.map((v: any) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      // deno-lint-ignore no-explicit-any
      targets: v.nodes.map((n: any) => n.target.join(" ")).slice(0, 5),
    }));
  });
}

/** Fails with axe's violations when it finds any on the page, in the state `state`. */
export async function expectNoAxeViolations(page: Page, state: string): Promise<void> {
  const violations = await checkAxe(page);
  if (violations.length > 0) {
    throw new Error(`axe, ${state}: ${JSON.stringify(violations, null, 2)}`);
  }
  console.log(`axe: 0 violations (${state})`);
}

/**
 * Before any page of `context` loads: records CSP violations (in
 * `__cspViolations`) and the notifications shown and permission requests
 * (`__notifications`), so a test can see when permission is asked and what
 * is shown. By default `Notification` is replaced by a recorder whose
 * permission starts as "default"; with `permission: "granted"` the context
 * is granted notifications for real and the browser's own `Notification` is
 * recorded as it shows them.
 */
export async function instrument(
  context: BrowserContext,
  { permission = "default" }: { permission?: "default" | "granted" } = {},
): Promise<void> {
  if (permission === "granted") await context.grantPermissions(["notifications"]);
  await context.addInitScript((real: boolean) => {
    // deno-lint-ignore no-explicit-any
    const g = globalThis as any;
    g.__cspViolations = [];
    // deno-lint-ignore no-explicit-any
    g.document.addEventListener("securitypolicyviolation", (event: any) => {
      g.__cspViolations.push(`${event.violatedDirective}: ${event.blockedURI}`);
    });
    const shown: { title: string; body: string }[] = [];
    let asked = 0;
    let permission = "default";
    const Real = g.Notification;
    const Recording = real
      ? class extends Real {
        static requestPermission() {
          asked++;
          return Real.requestPermission();
        }
        constructor(title: string, options: { body?: string } = {}) {
          super(title, options);
          shown.push({ title, body: options.body ?? "" });
        }
      }
      : class {
        static get permission() {
          return permission;
        }
        static requestPermission() {
          asked++;
          permission = "granted";
          return Promise.resolve(permission);
        }
        constructor(title: string, options: { body?: string } = {}) {
          shown.push({ title, body: options.body ?? "" });
        }
        addEventListener() {}
        close() {}
      };
    Object.defineProperty(g, "Notification", {
      value: Recording,
      configurable: true,
      writable: true,
    });
    g.__notifications = { shown, asked: () => asked };
  }, permission === "granted");
}

/** CSP violations the page reported so far. */
export async function cspViolations(page: Page): Promise<string[]> {
  // deno-lint-ignore no-explicit-any
  return await page.evaluate(() => (globalThis as any).__cspViolations ?? []);
}

/** Notifications shown so far, and how many times permission was asked. */
export async function notifications(
  page: Page,
): Promise<{ shown: { title: string; body: string }[]; asked: number }> {
  return await page.evaluate(() => {
    // deno-lint-ignore no-explicit-any
    const n = (globalThis as any).__notifications;
    return { shown: [...n.shown], asked: n.asked() };
  });
}

/**
 * Makes the page see itself as hidden (another tab in front) or visible
 * again, as `visibilitychange` tells it. Headless Chromium shows every tab,
 * so the test sets `document.hidden` itself.
 */
export async function setHidden(page: Page, hidden: boolean): Promise<void> {
  await page.evaluate((hidden) => {
    // deno-lint-ignore no-explicit-any
    const document = (globalThis as any).document;
    Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
    Object.defineProperty(document, "visibilityState", {
      configurable: true,
      get: () => (hidden ? "hidden" : "visible"),
    });
    document.dispatchEvent(new Event("visibilitychange"));
  }, hidden);
}

/** The item of message `text` (the first one showing it). */
export function messageItem(page: Page, text: string) {
  return page.locator("#messages li.message", {
    has: page.locator(".text", { hasText: text }),
  }).first();
}

/** The room sidebar: the navigation landmark named "Rooms". */
export function sidebar(page: Page) {
  return page.getByRole("navigation", { name: "Rooms" });
}

/** The sidebar's link to `#room` (its accessible name starts with `#room`). */
export function roomLink(page: Page, room: string) {
  return sidebar(page).getByRole("link", { name: new RegExp(`^#${room}\\b`) });
}

/** Resolves once the browser has rendered twice: observers of layout have run. */
export async function settled(page: Page): Promise<void> {
  await page.evaluate(() =>
    new Promise<void>((resolve) =>
      // deno-lint-ignore no-explicit-any
      (globalThis as any).requestAnimationFrame(() =>
        // deno-lint-ignore no-explicit-any
        (globalThis as any).requestAnimationFrame(() => resolve())
      )
    )
  );
}

/** An attribute of the focused element (`id` by default), or null. */
export async function focusedAttribute(page: Page, name = "id"): Promise<string | null> {
  return await page.evaluate(
    // deno-lint-ignore no-explicit-any
    (name) => (globalThis as any).document.activeElement?.getAttribute(name) ?? null,
    name,
  );
}
