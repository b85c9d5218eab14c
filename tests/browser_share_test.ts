/**
 * The page's "share and find" parts in a real browser: two tabs of one
 * window (one Chromium context, two pages) against `main.ts` run as a real
 * process. A pasted PNG shows inline in the other tab (its box kept from its
 * size); a PDF dropped on the messages downloads from its chip; an SVG is a
 * chip, never an image; `**bold**` is `<strong>`; an emoji from the picker
 * is sent; `/` opens the search and a result jumps to its message,
 * highlighted. axe-core finds no violations in each new state.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { Page } from "playwright-core";
import { ONE_ADDRESS_LIFTED_ENV } from "./helpers.ts";
import { startProcess } from "./process.ts";
import {
  cspViolations,
  expectNoAxeViolations,
  focusedAttribute,
  instrument,
  joinAs,
  launch,
  messageItem,
  newTab,
  pageErrors,
  skip,
  TIMEOUT_MS,
  type,
  waitForCount,
  waitForText,
  waitNothingPending,
  waitOnline,
} from "./browser_helpers.ts";

/** Pastes a 40×20 PNG, drawn in the page, into the composer. */
async function pastePng(page: Page, name: string): Promise<void> {
  await page.evaluate(async (name) => {
    // deno-lint-ignore no-explicit-any
    const g = globalThis as any;
    const canvas = g.document.createElement("canvas");
    canvas.width = 40;
    canvas.height = 20;
    const context = canvas.getContext("2d");
    context.fillStyle = "#0b6e4f";
    context.fillRect(0, 0, 40, 20);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    const data = new g.DataTransfer();
    data.items.add(new g.File([blob], name, { type: "image/png" }));
    const input = g.document.getElementById("text-input");
    input.focus();
    input.dispatchEvent(
      new g.ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }),
    );
  }, name);
}

/** Drops a file of `text` (named `name`, of `type`) on the messages. */
async function dropFile(page: Page, name: string, type: string, text: string): Promise<void> {
  await page.evaluate(([name, type, text]) => {
    // deno-lint-ignore no-explicit-any
    const g = globalThis as any;
    const data = new g.DataTransfer();
    data.items.add(new g.File([text], name, { type }));
    const zone = g.document.getElementById("scroller");
    for (const kind of ["dragenter", "dragover", "drop"]) {
      zone.dispatchEvent(
        new g.DragEvent(kind, { dataTransfer: data, bubbles: true, cancelable: true }),
      );
    }
  }, [name, type, text] as const);
}

/** Sends what the composer holds (files, maybe no text) once every file is uploaded. */
async function sendWhenReady(page: Page, count: number): Promise<void> {
  await page.locator('#pending-files li[data-state="done"]').nth(count - 1).waitFor();
  await page.press("#text-input", "Enter");
  await page.locator("#pending-files").waitFor({ state: "hidden" });
  await waitNothingPending(page);
}

const PDF = "%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";
const SVG = "<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'>" +
  "<rect width='10' height='10'/></svg>";

Deno.test({
  name: "share and find: paste, drop, download, no inline SVG, formatting, emoji, search, with axe",
  ignore: skip,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "chat-share-" });
    await using server = await startProcess({
      KV_PATH: `${dir}/chat.kv`,
      RATE_BURST: "300",
      ...ONE_ADDRESS_LIFTED_ENV,
    });
    const browser = await launch();
    const shots: string[] = [];
    /** Saves a screenshot of `page` as `name`.png in the temp dir. */
    const shot = async (page: Page, name: string) => {
      const path = `${dir}/${name}.png`;
      await page.screenshot({ path });
      shots.push(path);
    };
    try {
      const context = await browser.newContext({
        viewport: { width: 900, height: 640 },
        acceptDownloads: true,
      });
      await instrument(context);
      const url = `${server.origin}/#share`;
      const ada = await newTab(context, url);
      await joinAs(ada, "ada");
      await waitOnline(ada);
      const bob = await newTab(context, url);
      await waitOnline(bob);
      await bob.click("#change-name");
      await joinAs(bob, "bob");
      await waitOnline(bob);

      await t.step(
        "a pasted image shows in the other tab, its box kept before it loads",
        async () => {
          await pastePng(ada, "dot.png");
          const chip = ada.locator("#pending-files li", { hasText: "dot.png" });
          await chip.waitFor();
          await expectNoAxeViolations(ada, "a file uploading or ready in the composer");
          await sendWhenReady(ada, 1);
          const img = bob.locator('#messages li.message .attachments img[alt="dot.png"]');
          await img.waitFor();
          assert.deepEqual(
            await img.evaluate((el) => [el.getAttribute("width"), el.getAttribute("height")]),
            ["40", "20"],
          );
          // Its bytes come with the session header, as a blob: URL.
          await bob.waitForFunction(
            // deno-lint-ignore no-explicit-any
            (el: any) => el.complete && el.naturalWidth === 40 && el.src.startsWith("blob:"),
            await img.elementHandle(),
          );
          const link = bob.locator("#messages .attachment-image").first();
          assert.match((await link.getAttribute("href")) ?? "", /^blob:/);
          await expectNoAxeViolations(bob, "an image in a message");
          await shot(bob, "image");
        },
      );

      await t.step("a dropped PDF is a chip whose link downloads it", async () => {
        await dropFile(bob, "notes.pdf", "application/pdf", PDF);
        await bob.locator("#pending-files li", { hasText: "notes.pdf" }).waitFor();
        await bob.fill("#text-input", "the notes");
        await sendWhenReady(bob, 1);
        const chip = ada.locator("#messages .attachment-file", { hasText: "notes.pdf" });
        await chip.waitFor();
        const downloaded = ada.waitForEvent("download");
        await chip.click();
        const download = await downloaded;
        assert.equal(download.suggestedFilename(), "notes.pdf");
        const path = await download.path();
        assert.equal(await Deno.readTextFile(path), PDF);
        await expectNoAxeViolations(ada, "a file chip in a message");
      });

      await t.step("an SVG is a file to download, never an image", async () => {
        await ada.setInputFiles("#file-input", {
          name: "pic.svg",
          mimeType: "image/svg+xml",
          buffer: Buffer.from(SVG),
        });
        await ada.fill("#text-input", "a drawing");
        await sendWhenReady(ada, 1);
        const item = messageItem(bob, "a drawing");
        await item.locator(".attachment-file", { hasText: "pic.svg" }).waitFor();
        assert.equal(await item.locator("img, svg, object, embed, iframe").count(), 0);
      });

      await t.step("a file whose name lies is refused in words, and can be removed", async () => {
        await ada.setInputFiles("#file-input", {
          name: "fake.png",
          mimeType: "image/png",
          buffer: Buffer.from("just text, no image"),
        });
        const chip = ada.locator('#pending-files li[data-state="failed"]', { hasText: "fake.png" });
        await chip.waitFor();
        assert.match(
          (await chip.locator(".upload-state").textContent()) ?? "",
          /type is not allowed, or does not match its name/,
        );
        await expectNoAxeViolations(ada, "a refused upload");
        await shot(ada, "refused-upload");
        await chip.getByRole("button", { name: "Remove fake.png" }).click();
        await ada.locator("#pending-files").waitFor({ state: "hidden" });
        assert.equal(await focusedAttribute(ada), "text-input");
      });

      await t.step(
        "**bold** is <strong>; an emoji from the picker and a :shortcode: are sent",
        async () => {
          await type(ada, "this is **bold** and `code`");
          await waitForText(bob, "this is bold and code");
          const item = messageItem(bob, "this is bold");
          assert.equal(await item.locator(".text strong").textContent(), "bold");
          assert.equal(await item.locator(".text code").textContent(), "code");
          await bob.fill("#text-input", "party ");
          await bob.click("#emoji-button");
          const search = bob.getByRole("combobox", { name: "Search emoji" });
          await search.waitFor();
          await expectNoAxeViolations(bob, "the emoji picker open");
          await shot(bob, "picker");
          await search.fill("tada");
          await bob.locator('.emoji-option[aria-selected="true"][data-emoji="🎉"]').waitFor();
          await search.press("ArrowRight");
          await search.press("ArrowLeft");
          await search.press("Enter");
          assert.equal(await bob.inputValue("#text-input"), "party 🎉");
          assert.equal(await focusedAttribute(bob), "text-input");
          // :rock… offers 🚀 (and more); Tab takes the first.
          await bob.press("#text-input", "End");
          await bob.locator("#text-input").pressSequentially(" :rocket");
          const suggestion = bob.getByRole("option", { name: /🚀/ }).first();
          await suggestion.waitFor();
          await expectNoAxeViolations(bob, "shortcode suggestions");
          await shot(bob, "suggestions");
          await bob.press("#text-input", "Tab");
          assert.equal(await bob.inputValue("#text-input"), "party 🎉 🚀");
          await bob.press("#text-input", "Enter");
          await waitForText(ada, "party 🎉 🚀");
        },
      );

      await t.step("a reaction with any emoji, from the message menu's picker", async () => {
        const item = messageItem(ada, "party 🎉");
        await item.focus();
        await ada.keyboard.press("Enter");
        await ada.getByRole("menuitem", { name: "More reactions…" }).click();
        const search = ada.getByRole("combobox", { name: "Search emoji" });
        await search.fill("avocado");
        await search.press("Enter");
        await messageItem(bob, "party 🎉").locator('.reaction[data-emoji="🥑"]').waitFor();
        await expectNoAxeViolations(ada, "a reaction from the picker");
      });

      await t.step("/ opens the search; a result jumps to its message, highlighted", async () => {
        // Enough messages that the one to find is not in a new tab's first history.
        for (let i = 1; i <= 60; i++) await type(ada, `filler ${i}`);
        await waitNothingPending(ada);
        // A new tab, its frames watched from its first.
        const bobPage = await context.newPage();
        bobPage.setDefaultTimeout(TIMEOUT_MS);
        bobPage.on("pageerror", (error) => pageErrors.push(`${bobPage.url()}: ${error.message}`));
        const frames: Record<string, unknown>[] = [];
        bobPage.on("websocket", (ws) =>
          ws.on("framesent", (frame) => {
            frames.push(JSON.parse(String(frame.payload)));
          }));
        await bobPage.goto(url);
        await waitOnline(bobPage);
        await waitForText(bobPage, "filler 60");
        assert.equal(await messageItem(bobPage, "this is bold").count(), 0, "not held yet");
        await bobPage.locator("#scroller").focus();
        await bobPage.keyboard.press("/");
        const box = bobPage.getByRole("searchbox", { name: "Words to find in your rooms" });
        await box.waitFor();
        // 60 fillers: 20 a page, and "More results" brings the next 20.
        await box.fill("filler");
        await waitForCount(bobPage, ".search-result", 20);
        await bobPage.getByRole("button", { name: "More results" }).click();
        await waitForCount(bobPage, ".search-result", 40);
        await box.fill("bold");
        const result = bobPage.locator(".search-result", { hasText: "this is bold" });
        await result.waitFor();
        assert.match((await result.textContent()) ?? "", /#share/);
        await expectNoAxeViolations(bobPage, "search results");
        await shot(bobPage, "search");
        await box.press("ArrowDown");
        await bobPage.keyboard.press("Enter");
        const found = messageItem(bobPage, "this is bold");
        await bobPage.locator("#messages li.message.found").waitFor();
        assert.equal(await found.evaluate((li) => li.classList.contains("found")), true);
        assert.equal(
          await found.evaluate((li) => li.ownerDocument.activeElement === li),
          true,
        );
        const id = Number(await found.getAttribute("data-id"));
        assert.ok(
          frames.some((f) => f.type === "history" && f.around === id),
          `history {around: ${id}} was asked for: ${JSON.stringify(frames.map((f) => f.type))}`,
        );
        await expectNoAxeViolations(bobPage, "a found message highlighted");
        await shot(bobPage, "found");
        await bobPage.close();
      });

      assert.deepEqual(await cspViolations(ada), []);
      assert.deepEqual(await cspViolations(bob), []);
      assert.deepEqual(pageErrors, []);
    } finally {
      await browser.close();
      for (const path of shots) console.log(`Screenshot: ${path}`);
    }
  },
});
