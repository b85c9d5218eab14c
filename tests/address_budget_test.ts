/**
 * Rate budgets per address, on a fake clock: every connection from one
 * address (IPv4, or IPv6 /64) takes its frames' tokens from one bucket as
 * well as from its own, and the bucket outlives the connections, so
 * reconnecting does not refill it.
 */
import assert from "node:assert/strict";
import { AddressBudgets } from "../src/transport/address_budget.ts";
import { Inbound } from "../src/transport/inbound.ts";

const TYPING = '{"type":"typing"}';
const SAY = (cid: string) => JSON.stringify({ type: "say", text: "hi", cid });

function setup(options: { burst: number; perSecond: number }) {
  let time = 0;
  const budgets = new AddressBudgets({
    ratePerAddressBurst: options.burst,
    ratePerAddressPerSecond: options.perSecond,
    clock: () => time,
  });
  const connect = (ip: string) =>
    new Inbound({ rateBurst: 1000, ratePerSecond: 1000, rateLimitStrikes: 3 }, budgets.of(ip));
  return { budgets, connect, advance: (ms: number) => time += ms };
}

Deno.test("connections from one address share its bucket; other addresses have their own", () => {
  const { connect } = setup({ burst: 4, perSecond: 1 });
  const first = connect("192.0.2.1"), second = connect("192.0.2.1");
  assert.equal(first.check(TYPING).kind, "message");
  assert.equal(second.check(TYPING).kind, "message");
  assert.equal(first.check(TYPING).kind, "message");
  assert.equal(second.check(TYPING).kind, "message");
  const refused = second.check(SAY("c5"));
  assert.equal(refused.kind, "error");
  if (refused.kind !== "error") return;
  assert.equal(refused.error.code, "rate_limited");
  assert.equal(refused.error.cid, "c5", "the refused frame's cid, to retry it");
  assert.equal(refused.error.retryAfterMs, 1000, "one token at 1 a second");
  assert.equal(connect("192.0.2.2").check(TYPING).kind, "message", "another address");
  const v6 = connect("2001:db8:1:2::a");
  for (let i = 0; i < 4; i++) v6.check(TYPING);
  assert.equal(connect("2001:db8:1:2::b").check(TYPING).kind, "error", "the same /64");
});

Deno.test("reconnecting does not refill the address's bucket; time does", () => {
  const { connect, advance } = setup({ burst: 3, perSecond: 2 });
  for (let i = 0; i < 3; i++) assert.equal(connect("192.0.2.1").check(TYPING).kind, "message");
  assert.equal(connect("192.0.2.1").check(TYPING).kind, "error", "a new connection, no token");
  advance(500);
  assert.equal(connect("192.0.2.1").check(TYPING).kind, "message", "one token after 500 ms");
});

Deno.test("a frame refused by the address takes no token from the connection; strikes close 1008", () => {
  const { budgets, advance } = setup({ burst: 2, perSecond: 1 });
  const inbound = new Inbound(
    { rateBurst: 3, ratePerSecond: 0.001, rateLimitStrikes: 1 },
    budgets.of("192.0.2.1"),
  );
  assert.equal(inbound.check(TYPING).kind, "message");
  assert.equal(inbound.check(TYPING).kind, "message");
  assert.equal(inbound.check(TYPING).kind, "error", "the address is empty, the connection not");
  advance(1000);
  assert.equal(inbound.check(TYPING).kind, "message", "the connection still had its third");
  assert.equal(inbound.check(TYPING).kind, "error");
  const closed = inbound.check(TYPING);
  assert.deepEqual(closed, { kind: "close", code: 1008, reason: "rate limit exceeded" });
});
