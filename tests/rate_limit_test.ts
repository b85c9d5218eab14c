/** Unit tests of the token bucket, on a fake clock. */
import assert from "node:assert/strict";
import { TokenBucket } from "../src/rate_limit.ts";

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
