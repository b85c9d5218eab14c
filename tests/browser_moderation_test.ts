/**
 * Moderation in a real browser: two tabs of one window against `main.ts` run
 * as a real process with JWT auth, tab 1 ("ada") with a token whose `role`
 * is `admin` (an operator), tab 2 ("bob") with a plain one, and a third
 * member ("carol") over a bare WebSocket. Roles in the member list; the
 * topic in the header; a report reaching the moderator's panel, dismissed,
 * and another one's message deleted; slow mode's countdown on Send, a
 * message waiting its turn; a kick and the way back; a mute (why, until
 * when, the composer disabled); a ban (out of the room, why and until when,
 * and a rejoin refused saying so). Axe-core finds no violation in each new
 * state. Screenshots (light, dark, phone) go to a temp dir.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { SignJWT } from "jose";
import { startProcess } from "./process.ts";
import { TestClient } from "./helpers.ts";
import {
  cspViolations,
  expectNoAxeViolations,
  focusedAttribute,
  instrument,
  launch,
  messageItem,
  newTab,
  pageErrors,
  roomLink,
  sidebar,
  skip,
  type,
  waitForText,
  waitOnline,
} from "./browser_helpers.ts";

const SECRET = "browser moderation test secret";

async function token(claims: Record<string, unknown>): Promise<string> {
  return await new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setExpirationTime("1h")
    .sign(new TextEncoder().encode(SECRET));
}

/** Signs in through the nickname dialog, which asks for a token on a server with JWT auth. */
async function signIn(page: Page, name: string, jwt: string): Promise<void> {
  await page.waitForSelector("#join-dialog[open] #name-input");
  await page.fill("#name-input", name);
  await page.press("#name-input", "Enter");
  await page.waitForSelector("#auth-input", { state: "visible" });
  await page.fill("#name-input", name);
  await page.fill("#auth-input", jwt);
  await page.press("#auth-input", "Enter");
  await waitOnline(page);
}

/** Opens a member's actions menu in the member list and picks `item`. */
async function memberAction(page: Page, member: string, item: string): Promise<void> {
  await page.getByRole("button", { name: `Actions for ${member}` }).click();
  await page.getByRole("menuitem", { name: item }).click();
}

/** The moderation dialog's answer: a duration (its label), a reason, then the act's button. */
async function confirmAct(
  page: Page,
  act: string,
  { duration, reason }: { duration?: string; reason?: string } = {},
): Promise<void> {
  const dialog = page.locator("#mod-dialog[open]");
  await dialog.waitFor();
  assert.equal(await focusedAttribute(page), "mod-cancel", "Cancel has the focus first");
  if (duration) await dialog.getByRole("radio", { name: duration, exact: true }).check();
  if (reason) await dialog.getByLabel(/^Reason|^Why/).fill(reason);
  await dialog.getByRole("button", { name: act, exact: true }).click();
  await page.locator("#mod-dialog").waitFor({ state: "hidden" });
}

Deno.test({
  name: "moderation in two tabs: roles, topic, reports, slow mode, kick, mute, ban",
  ignore: skip,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "chat-moderation-" });
    const server = await startProcess({
      KV_PATH: `${dir}/chat.kv`,
      AUTH_JWT_SECRET: SECRET,
      RATE_BURST: "200",
    });
    const browser = await launch();
    const shots: string[] = [];
    const shot = async (page: Page, name: string) => {
      const path = `${dir}/${name}.png`;
      await page.screenshot({ path });
      shots.push(path);
    };
    const carol = await TestClient.connect(server.wsUrl);
    try {
      carol.send({
        type: "join",
        room: "lobby",
        name: "carol",
        auth: await token({ sub: "carol", name: "carol" }),
      });
      await carol.next("welcome");
      const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
      await instrument(context);
      const tab1 = await newTab(context, `${server.origin}/#lobby`);
      await signIn(tab1, "ada", await token({ sub: "op-ada", name: "ada", role: "admin" }));
      const tab2 = await newTab(context, `${server.origin}/#lobby`);
      await signIn(tab2, "bob", await token({ sub: "bob", name: "bob" }));

      await t.step(
        "roles: the operator is marked; only moderators get the Moderation button",
        async () => {
          await tab2.locator("#members li", { hasText: "ada" }).locator(".role", {
            hasText: "operator",
          }).waitFor();
          await tab1.locator("#members li", { hasText: "bob" }).waitFor();
          assert.equal(await tab1.locator("#moderation-open").isVisible(), true);
          assert.equal(await tab2.locator("#moderation-open").isVisible(), false);
          await expectNoAxeViolations(tab2, "roles in the member list");
        },
      );

      await t.step("the topic, set in the panel, sits in the header", async () => {
        await tab1.locator("#moderation-open").click();
        await tab1.locator("#moderation-dialog[open]").waitFor();
        await expectNoAxeViolations(tab1, "the moderation panel");
        await tab1.getByLabel("Topic", { exact: true }).fill("Be kind. No spam.");
        await tab1.getByRole("button", { name: "Set", exact: true }).click();
        await tab2.locator("#topic-text", { hasText: "Be kind. No spam." }).waitFor();
        await tab2.locator("li.mod-notice", { hasText: "ada set the topic to “Be kind. No spam.”" })
          .waitFor();
        await tab1.keyboard.press("Escape");
        await tab1.locator("#moderation-dialog").waitFor({ state: "hidden" });
        await tab1.locator("#topic-text", { hasText: "Be kind. No spam." }).waitFor();
      });

      await t.step(
        "reports reach the moderator: one dismissed, one's message deleted",
        async () => {
          carol.send({ type: "say", text: "buy cheap pills", cid: "s1" });
          carol.send({ type: "say", text: "more cheap pills", cid: "s2" });
          await waitForText(tab2, "more cheap pills");
          for (const [text, why] of [["buy cheap", "spam"], ["more cheap", "spam again"]]) {
            await messageItem(tab2, text).locator(".menu-button").click();
            await tab2.getByRole("menuitem", { name: "Report…" }).click();
            await confirmAct(tab2, "Report", { reason: why });
            await tab2.locator("#info-text", { hasText: "the moderators of #lobby" }).waitFor();
          }
          const badge = tab1.locator("#reports-badge", { hasText: "2" });
          await badge.waitFor();
          assert.equal(
            await tab1.locator("#moderation-open").getAttribute("aria-haspopup"),
            "dialog",
          );
          await tab1.getByRole("button", { name: /^Moderation ?, 2 open reports$/ }).click();
          const reports = tab1.locator("#reports-list li.report");
          await reports.first().waitFor();
          assert.equal(
            await reports.nth(0).locator(".report-what").textContent(),
            "carol: “buy cheap pills”",
          );
          assert.match(
            await reports.nth(0).locator(".report-why").textContent() ?? "",
            /^Reported by bob at \d\d:\d\d: spam$/,
          );
          await shot(tab1, "reports-light");
          await expectNoAxeViolations(tab1, "two open reports");
          await reports.nth(0).getByRole("button", { name: "Dismiss" }).click();
          await tab1.locator("#reports-list li.report").filter({ hasText: "buy cheap" }).waitFor({
            state: "detached",
          });
          await reports.nth(0).getByRole("button", { name: "Delete message…" }).click();
          await confirmAct(tab1, "Delete", { reason: "spam" });
          await tab1.locator("#reports-state", { hasText: "No open reports" }).waitFor();
          await tab1.locator("#reports-badge").waitFor({ state: "hidden" });
          await tab1.keyboard.press("Escape");
          await messageItem(tab2, "This message was deleted.").waitFor();
          await tab2.locator("li.mod-notice", { hasText: "ada deleted a message: spam" }).waitFor();
          assert.equal(await tab2.locator("#messages .text", { hasText: "buy cheap" }).count(), 1);
        },
      );

      await t.step("slow mode: a countdown on Send, the next message waits its turn", async () => {
        await tab1.locator("#moderation-open").click();
        await tab1.getByLabel("Slow mode", { exact: true }).selectOption({ label: "10 seconds" });
        await tab1.getByRole("button", { name: "Apply" }).click();
        await tab1.keyboard.press("Escape");
        await tab2.locator("#composer-notice-text", {
          hasText: "Slow mode: one message every 10 seconds.",
        }).waitFor();
        await type(tab2, "first");
        await tab2.locator("#send-wait:not([hidden])", { hasText: / \d+ s$/ }).waitFor();
        await type(tab2, "second");
        await messageItem(tab2, "second").and(tab2.locator('[data-state="pending"]')).waitFor();
        await shot(tab2, "slow-mode-light");
        await expectNoAxeViolations(tab2, "slow mode, a message waiting");
        // Off: the waiting message goes at once.
        await tab1.locator("#moderation-open").click();
        await tab1.getByLabel("Slow mode", { exact: true }).selectOption({ label: "Off" });
        await tab1.getByRole("button", { name: "Apply" }).click();
        await tab1.keyboard.press("Escape");
        await messageItem(tab2, "second").and(tab2.locator('[data-state="sent"]')).waitFor();
        await tab2.locator("#send-wait").waitFor({ state: "hidden" });
        await waitForText(tab1, "second");
      });

      await t.step("a kick: bob is out, told why, and comes back", async () => {
        await memberAction(tab1, "bob", "Kick bob…");
        await confirmAct(tab1, "Kick", { reason: "cool down" });
        await tab2.locator("#error-text", {
          hasText: "ada removed you from #lobby: cool down. You may join it again.",
        }).waitFor();
        await tab2.locator("#composer-notice-text", { hasText: "You are in no room" }).waitFor();
        assert.equal(await sidebar(tab2).getByRole("link").count(), 0);
        await tab1.locator("li.mod-notice", { hasText: "ada removed bob from the room: cool down" })
          .waitFor();
        await expectNoAxeViolations(tab2, "kicked, in no room");
        await tab2.getByRole("button", { name: "Join #lobby again" }).click();
        await roomLink(tab2, "lobby").and(tab2.locator('[aria-current="page"]')).waitFor();
        await tab2.locator("#text-input:not([disabled])").waitFor();
        await tab1.locator("#members li", { hasText: "bob" }).waitFor();
      });

      await t.step("a mute: why and until when, the composer disabled", async () => {
        await memberAction(tab1, "bob", "Mute bob…");
        await confirmAct(tab1, "Mute", { duration: "1 hour", reason: "spam" });
        const notice = tab2.locator("#composer-notice-text", {
          hasText: /^You are muted in #lobby until \d\d:\d\d: spam\.$/,
        });
        await notice.waitFor();
        await tab2.locator("#text-input[disabled]").waitFor();
        assert.equal(await tab2.locator("#send").isDisabled(), true);
        await tab2.locator("#composer-countdown", { hasText: /^(59|60):\d\d left$/ }).waitFor();
        await tab2.locator("li.mod-notice", { hasText: "ada muted bob for 1 hour: spam" })
          .waitFor();
        await shot(tab2, "muted-light");
        await expectNoAxeViolations(tab2, "muted");
        await tab2.emulateMedia({ colorScheme: "dark" });
        await shot(tab2, "muted-dark");
        await expectNoAxeViolations(tab2, "muted, dark");
        await tab2.emulateMedia({ colorScheme: "light" });
      });

      await t.step(
        "a ban from a message's menu: out, why and until when, the rejoin refused",
        async () => {
          await messageItem(tab1, "first").locator(".menu-button").click();
          await tab1.getByRole("menuitem", { name: "Ban bob…" }).click();
          await confirmAct(tab1, "Ban", { duration: "1 day", reason: "still spamming" });
          await tab2.locator("#error-text", {
            hasText: /^ada banned you from #lobby until \w{3}, .+, \d\d:\d\d: still spamming\.$/,
          }).waitFor();
          assert.equal(await sidebar(tab2).getByRole("link").count(), 0);
          await tab1.locator("li.mod-notice", {
            hasText: "ada banned bob for 1 day: still spamming",
          })
            .waitFor();
          // Back by the directory: the join is refused, and the directory says why.
          await tab2.keyboard.press("Control+K");
          await tab2.fill("#room-input", "lobby");
          await tab2.press("#room-input", "Enter");
          const refused = tab2.locator("#room-error", {
            hasText: /^You are banned from #lobby until .+: still spamming\.$/,
          });
          await refused.waitFor();
          await shot(tab2, "banned-light");
          await expectNoAxeViolations(tab2, "the ban, refused again");
          await tab2.keyboard.press("Escape");
        },
      );

      await t.step("dark mode and phone width for the moderator", async () => {
        await tab1.emulateMedia({ colorScheme: "dark" });
        await tab1.locator("#moderation-open").click();
        await shot(tab1, "moderation-dark");
        await expectNoAxeViolations(tab1, "the moderation panel, dark");
        await tab1.keyboard.press("Escape");
        await tab1.setViewportSize({ width: 390, height: 844 });
        await messageItem(tab1, "second").locator(".menu-button").click();
        await tab1.getByRole("menuitem", { name: "Mute bob…" }).waitFor();
        await shot(tab1, "moderation-menu-phone-dark");
        await expectNoAxeViolations(tab1, "a message's menu for a moderator, phone, dark");
        await tab1.keyboard.press("Escape");
        await tab1.emulateMedia({ colorScheme: "light" });
        await shot(tab1, "moderation-phone-light");
        await tab1.setViewportSize({ width: 900, height: 640 });
      });

      for (const page of [tab1, tab2]) assert.deepEqual(await cspViolations(page), []);
      assert.deepEqual(pageErrors.splice(0), []);
    } finally {
      for (const path of shots) console.log(`Screenshot: ${path}`);
      await carol.close();
      await browser.close();
      await server.stop("SIGTERM");
    }
  },
});
