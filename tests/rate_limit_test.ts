/** Unit tests of the token bucket and of buckets by key, on a fake clock. */
import assert from "node:assert/strict";
import { KeyedBuckets, TokenBucket } from "../src/rate_limit.ts";

function bucket(burst: number, perSecond: number) {
  let time = 5_000;
  const tokens = new TokenBucket({ burst, perSecond, now: () => time });
  return {
    tokens,
    advance(ms: number) {
      time += ms;
    },
    /** How many `take`s succeed in a row now (stops at the first refusal). */
    drain(): number {
      let taken = 0;
      while (tokens.take()) taken++;
      return taken;
    },
  };
}

Deno.test("a full bucket allows a burst, then refuses", () => {
  const { tokens, drain } = bucket(3, 1);
  assert.equal(drain(), 3);
  assert.equal(tokens.take(), false);
  assert.equal(tokens.take(), false, "a refusal takes nothing and gives nothing");
});

Deno.test("tokens come back at the refill rate", () => {
  const { tokens, advance, drain } = bucket(3, 2); // One token per 500 ms.
  drain();
  advance(499);
  assert.equal(tokens.take(), false, "not a whole token yet");
  advance(1);
  assert.equal(tokens.take(), true);
  assert.equal(tokens.take(), false);
  advance(1000);
  assert.equal(drain(), 2);
});

Deno.test("partial refills add up across refused takes", () => {
  const { tokens, advance, drain } = bucket(1, 4); // One token per 250 ms.
  drain();
  for (let i = 0; i < 4; i++) {
    advance(50);
    assert.equal(tokens.take(), false, `${50 * (i + 1)} ms`);
  }
  advance(50);
  assert.equal(tokens.take(), true, "250 ms in all");
});

Deno.test("the bucket never holds more than the burst", () => {
  const { advance, drain } = bucket(5, 5);
  advance(60_000);
  assert.equal(drain(), 5);
  advance(200);
  assert.equal(drain(), 1);
});

Deno.test("defaults: a burst of 20, then 5 per second", () => {
  let time = 0;
  const tokens = new TokenBucket({ now: () => time });
  let taken = 0;
  while (tokens.take()) taken++;
  assert.equal(taken, 20);
  time += 1000;
  taken = 0;
  while (tokens.take()) taken++;
  assert.equal(taken, 5);
});

Deno.test("canTake looks without taking; full says the bucket is as good as new", () => {
  const { tokens, advance } = bucket(2, 1);
  assert.equal(tokens.full, true);
  assert.equal(tokens.canTake(), true);
  assert.equal(tokens.canTake(), true, "looking takes nothing");
  tokens.take();
  assert.equal(tokens.full, false);
  tokens.take();
  assert.equal(tokens.canTake(), false);
  assert.equal(tokens.waitMs, 1000);
  advance(2000);
  assert.equal(tokens.full, true);
});

Deno.test("KeyedBuckets: one bucket per key, kept after use, so coming back does not refill it", () => {
  let time = 0;
  const buckets = new KeyedBuckets({ burst: 2, perSecond: 1, now: () => time });
  assert.equal(buckets.get("a").take(), true);
  assert.equal(buckets.get("a").take(), true);
  assert.equal(buckets.get("a").take(), false, "the same bucket");
  assert.equal(buckets.get("b").take(), true, "another key, another bucket");
  time += 1000;
  assert.equal(buckets.get("a").take(), true);
  assert.equal(buckets.get("a").take(), false);
});

Deno.test("KeyedBuckets: past the cap, full buckets go first, then the least recently used", () => {
  const buckets = new KeyedBuckets({ burst: 1, perSecond: 1, now: () => 0, maxBuckets: 10 });
  for (let i = 0; i < 9; i++) buckets.get(`busy${i}`).take(); // Empty: worth keeping.
  buckets.get("idle"); // Full, and used more recently than any busy one.
  buckets.get("busy9").take(); // The 11th: past the cap.
  // The full one went, then the least recently used, down to nine tenths of the cap.
  assert.equal(buckets.size, 9);
  assert.equal(buckets.get("busy1").take(), false, "kept, though used before the full one");
  assert.equal(buckets.get("busy9").take(), false, "the one just taken from is kept");
  assert.equal(buckets.get("busy0").take(), true, "the least recently used went: a new bucket");
  assert.equal(buckets.size, 10);
});
