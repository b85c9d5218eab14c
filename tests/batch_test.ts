/**
 * Unit tests of the batched sender with fake sockets and a fake clock: the
 * slow-consumer rule is a function of `bufferedAmount` and the clock only,
 * so these tests never wait for real time.
 */
import assert from "node:assert/strict";
import { BatchedSender, type BatchedSenderOptions } from "../src/transport/batch.ts";

const MAX = 1000;
const GRACE = 1000;
const WINDOW = 2;

/** The parts of a WebSocket the sender uses. */
class FakeSocket {
  readyState: number = WebSocket.OPEN;
  bufferedAmount = 0;
  readonly sent: string[] = [];
  send(data: string): void {
    this.sent.push(data);
  }
  get ws(): WebSocket {
    return this as unknown as WebSocket;
  }
}

/** A sender on a fake clock, and the sockets it judged slow. */
function setup(options: Partial<BatchedSenderOptions> = {}) {
  let time = 1_000_000;
  const slow: FakeSocket[] = [];
  const sender = new BatchedSender({
    maxBufferedBytes: MAX,
    slowGraceMs: GRACE,
    windowMs: WINDOW,
    now: () => time,
    onSlow(socket) {
      const fake = socket as unknown as FakeSocket;
      slow.push(fake);
      fake.readyState = WebSocket.CLOSING; // What the transport's close does.
    },
    ...options,
  });
  return {
    sender,
    slow,
    /** Moves the fake clock on by `ms`. */
    advance(ms: number) {
      time += ms;
    },
    /** Queues `frame` for `sockets`, and flushes at once. */
    sendNow(sockets: FakeSocket[], frame: string) {
      sender.send(sockets.map((s) => s.ws), frame);
      sender.flush();
    },
  };
}

Deno.test("a socket over the limit for less than the grace keeps getting frames", () => {
  const { slow, advance, sendNow } = setup();
  const socket = new FakeSocket();
  socket.bufferedAmount = MAX + 1;
  sendNow([socket], "a"); // Over the limit from now on.
  advance(GRACE / 2);
  sendNow([socket], "b");
  advance(GRACE / 2 - 1);
  sendNow([socket], "c");
  assert.deepEqual(socket.sent, ["a", "b", "c"]);
  assert.deepEqual(slow, []);
});

Deno.test("a socket over the limit for the grace is handed to onSlow once, and gets nothing more", () => {
  const { slow, advance, sendNow } = setup();
  const socket = new FakeSocket();
  const other = new FakeSocket();
  socket.bufferedAmount = MAX + 1;
  sendNow([socket, other], "a");
  advance(GRACE);
  sendNow([socket, other], "b");
  assert.deepEqual(slow, [socket]);
  assert.deepEqual(socket.sent, ["a"], "the frame that found it slow is not sent");
  assert.deepEqual(other.sent, ["a", "b"], "the others are unaffected");

  // Closing now: dropped without another verdict.
  advance(GRACE);
  sendNow([socket, other], "c");
  assert.deepEqual(slow, [socket]);
  assert.deepEqual(socket.sent, ["a"]);
  assert.deepEqual(other.sent, ["a", "b", "c"]);
});

Deno.test("a socket over four times the limit is handed to onSlow at once", () => {
  const { slow, sendNow } = setup();
  const socket = new FakeSocket();
  socket.bufferedAmount = 4 * MAX + 1;
  sendNow([socket], "a");
  assert.deepEqual(slow, [socket]);
  assert.deepEqual(socket.sent, []);

  const edge = new FakeSocket();
  edge.bufferedAmount = 4 * MAX; // At four times: still within the grace.
  sendNow([edge], "a");
  assert.deepEqual(slow, [socket]);
  assert.deepEqual(edge.sent, ["a"]);
});

Deno.test("a socket at the limit, not over it, is never slow", () => {
  const { slow, advance, sendNow } = setup();
  const socket = new FakeSocket();
  socket.bufferedAmount = MAX;
  for (let i = 0; i < 5; i++) {
    sendNow([socket], `f${i}`);
    advance(GRACE);
  }
  assert.equal(socket.sent.length, 5);
  assert.deepEqual(slow, []);
});

Deno.test("a socket that drains below the limit starts its grace again", () => {
  const { slow, advance, sendNow } = setup();
  const socket = new FakeSocket();
  socket.bufferedAmount = MAX + 1;
  sendNow([socket], "a"); // Over since t0.
  advance(GRACE - 100);
  socket.bufferedAmount = 10; // It read.
  sendNow([socket], "b");
  advance(100);
  // A big frame goes out and waits: over again, since t0 + GRACE. (The buffer
  // only grows by what is sent, so the sender reads it again only then.)
  const big = "x".repeat(MAX);
  sendNow([socket], big);
  socket.bufferedAmount = MAX + 1;
  sendNow([socket], "c");
  advance(GRACE - 1); // Over for GRACE - 1 this time, 2 * GRACE - 1 in all.
  sendNow([socket], "d");
  assert.deepEqual(slow, [], "the earlier episode does not count");
  advance(1);
  sendNow([socket], "e");
  assert.deepEqual(slow, [socket]);
  assert.deepEqual(socket.sent, ["a", "b", big, "c", "d"]);
});

Deno.test("a socket far under the limit is not asked for its buffered amount on every flush", () => {
  const { sendNow } = setup();
  const socket = new FakeSocket();
  let reads = 0;
  Object.defineProperty(socket.ws, "bufferedAmount", { get: () => (reads++, 0) });
  const frame = "small frame";
  for (let i = 0; i < 100; i++) sendNow([socket], frame);
  // Read once at first, then again only each time 3 bytes per character sent could reach the limit.
  const expected = 1 + Math.floor((100 * 3 * frame.length) / MAX);
  assert.ok(reads <= expected && reads < 100, `${reads} reads, at most ${expected}`);
});

Deno.test("forget drops what is queued and the socket's slow timer", () => {
  const { sender, slow, advance, sendNow } = setup();
  const socket = new FakeSocket();
  socket.bufferedAmount = MAX + 1;
  sendNow([socket], "a");
  advance(GRACE - 1);
  sender.send([socket.ws], "dropped");
  sender.forget(socket.ws);
  sender.flush();
  assert.deepEqual(socket.sent, ["a"]);
  advance(1);
  sendNow([socket], "b"); // A fresh episode: not slow yet.
  assert.deepEqual(socket.sent, ["a", "b"]);
  assert.deepEqual(slow, []);
});

Deno.test("frames queued in one tick go out as one JSON array frame per socket, in order", () => {
  const { sender } = setup();
  const a = new FakeSocket();
  const b = new FakeSocket();
  sender.send([a.ws, b.ws], '{"n":1}');
  sender.send([a.ws], '{"n":2}');
  sender.send([a.ws, b.ws], '{"n":3}');
  sender.flush();
  assert.deepEqual(a.sent, ['[{"n":1},{"n":2},{"n":3}]']);
  assert.deepEqual(JSON.parse(a.sent[0]), [{ n: 1 }, { n: 2 }, { n: 3 }]);
  assert.deepEqual(b.sent, ['[{"n":1},{"n":3}]']);
  assert.deepEqual(sender.stats, { frames: 2, events: 5, batched: 2 });
});

Deno.test("a lone frame goes out as itself, not as an array", () => {
  const { sender } = setup();
  const socket = new FakeSocket();
  sender.send([socket.ws], '{"n":1}');
  sender.flush();
  assert.deepEqual(socket.sent, ['{"n":1}']);
  assert.deepEqual(sender.stats, { frames: 1, events: 1, batched: 0 });
});

Deno.test("sockets that are not open get nothing", () => {
  const { sender } = setup();
  const closing = new FakeSocket();
  closing.readyState = WebSocket.CLOSING;
  const open = new FakeSocket();
  sender.send([closing.ws, open.ws], "a");
  open.readyState = WebSocket.CLOSED; // Closed between the send and the flush.
  sender.flush();
  assert.deepEqual(closing.sent, []);
  assert.deepEqual(open.sent, []);
});

Deno.test("an idle sender flushes in a microtask: the whole tick's frames in one frame", async () => {
  const { sender } = setup();
  const socket = new FakeSocket();
  sender.send([socket.ws], "1");
  sender.send([socket.ws], "2");
  assert.deepEqual(socket.sent, [], "nothing is written synchronously");
  await Promise.resolve(); // The flush was queued first, so it has run by now.
  assert.deepEqual(socket.sent, ["[1,2]"]);
});

Deno.test("after a flush, the next one waits for the window; once it has passed, a microtask again", async () => {
  const { sender, advance } = setup();
  const socket = new FakeSocket();
  sender.send([socket.ws], "1");
  await Promise.resolve();
  assert.deepEqual(socket.sent, ["1"]);

  // Within the window: a timer is set, not a microtask. Flushing by hand clears it.
  sender.send([socket.ws], "2");
  await Promise.resolve();
  assert.deepEqual(socket.sent, ["1"], "a busy sender waits for the window");
  sender.flush();
  assert.deepEqual(socket.sent, ["1", "2"]);

  advance(WINDOW);
  sender.send([socket.ws], "3");
  await Promise.resolve();
  assert.deepEqual(socket.sent, ["1", "2", "3"]);
});
