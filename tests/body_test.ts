/**
 * Reading request bodies (`src/http/body.ts`): the cap and the deadline.
 * A body still arriving at the deadline is cancelled, so its sender is told
 * to stop and nothing waits for it.
 */
import assert from "node:assert/strict";
import { readCapped } from "../src/http/body.ts";
import { within } from "./helpers.ts";

/** A POST whose body sends `first` and then nothing, never ending; `cancelled` resolves on cancel. */
function endlessPost(first: string) {
  const cancelled = Promise.withResolvers<void>();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(first));
    },
    cancel() {
      cancelled.resolve();
    },
  });
  const req = new Request("http://127.0.0.1/sse/x", { method: "POST", body });
  return { req, cancelled: cancelled.promise };
}

Deno.test("a body that arrives in time is read", async () => {
  const req = new Request("http://127.0.0.1/", { method: "POST", body: '{"type":"typing"}' });
  assert.deepEqual(await readCapped(req, 1024, { timeoutMs: 60_000 }), {
    ok: true,
    text: '{"type":"typing"}',
  });
});

Deno.test("a body that has not fully arrived by the deadline is a timeout, and is cancelled", async () => {
  const { req, cancelled } = endlessPost('{"type":');
  assert.deepEqual(await readCapped(req, 1024, { timeoutMs: 20 }), {
    ok: false,
    problem: "timeout",
  });
  await within(cancelled, "the body stream to be cancelled");
});

Deno.test("a body over the limit is cancelled before the deadline", async () => {
  const { req, cancelled } = endlessPost("x".repeat(2000));
  assert.deepEqual(await readCapped(req, 1024, { timeoutMs: 60_000 }), {
    ok: false,
    problem: "too_large",
  });
  await within(cancelled, "the body stream to be cancelled");
});
