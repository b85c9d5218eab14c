/**
 * Hostile input: a seeded fuzzer sends every case from inside the room while
 * a normal conversation goes on, and nobody else receives anything forged or
 * misattributed; connection floods meet the caps; oversized frames close
 * with 1009, and after a few refuse their address for a while, and what they
 * cost in memory is measured.
 */
import assert from "node:assert/strict";
import { isSingleEmoji } from "../src/emoji.ts";
import { addressKey, Admission, OVERSIZE_STRIKES } from "../src/http/admission.ts";
import { type ChatMessage, type Member, REACTIONS } from "../src/protocol.ts";
import { Stats } from "../src/stats.ts";
import {
  ONE_ADDRESS_LIFTED,
  seededRandom,
  startServer,
  TestClient,
  type TestServer,
  within,
} from "./helpers.ts";
import { startProcess } from "./process.ts";

type Case = string | Uint8Array;

/** One hostile frame, chosen and shaped by `rand`: malformed, or valid but trying to forge. */
function hostile(
  rand: () => number,
  ctx: { lastId: number; adaId: string; own: number[] },
): Case {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)];
  const int = (max: number) => Math.floor(rand() * max);
  const depth = 1 + int(30_000);
  const ref = () =>
    rand() < 0.4 && ctx.own.length
      ? pick(ctx.own)
      : pick([1 + int(Math.max(ctx.lastId, 1)), 0, -1, 1.5, 2 ** 53, "1", null]);
  const text = () =>
    rand() < 0.6 ? `fuzz ${int(1e9)}` : pick([
      "x".repeat(int(2100)),
      " ",
      "\u202eevil",
      "ok\u0000nul",
      String.fromCodePoint(0x1f600 + int(50)).repeat(1 + int(5)),
    ]);
  const cid = () =>
    rand() < 0.7 ? `f${int(1e9)}` : pick([`n${int(20)}`, "", "a b", "x".repeat(65)]);
  const cases: (() => Case)[] = [
    () => crypto.getRandomValues(new Uint8Array(1 + int(2048))),
    () => "[".repeat(depth) + "]".repeat(depth),
    () => `{"a":`.repeat(depth / 8) + "1" + "}".repeat(depth / 8),
    () =>
      `{"type":"join","room":"lobby","name":"ada","since":${
        pick(["1e308", "-1", "1.5", "9".repeat(400), "0"])
      }}`,
    () => JSON.stringify({ type: "say", cid: cid(), text: "x".repeat(int(60_000)) }),
    () =>
      JSON.stringify({
        type: pick(["join", "say"]),
        room: "r".repeat(5000),
        name: "n".repeat(5000),
      }),
    () => `{"type":"say","cid":"c","text":"\\ud800${"\\udfff".repeat(3)}"}`,
    () => `{"type":"join","room":"\\ud83d","name":"\\u0000"}`,
    () =>
      JSON.stringify({
        type: pick(["shout", "__proto__", "constructor", "", "JOIN", "message", "ack"]),
      }),
    () =>
      JSON.stringify({
        type: "say",
        text: pick([1, null, [], {}, true]),
        cid: pick([1, "", null, "a b"]),
      }),
    () =>
      JSON.stringify({ type: "join", room: pick([{}, [], 5, null]), name: pick([{}, 5, null]) }),
    () =>
      pick([
        "null",
        "[]",
        '"join"',
        "1e999",
        "{",
        "}",
        "",
        " ",
        "\u0000",
        '{"__proto__":{"type":"say"}}',
      ]),
    () => (rand() < 0.1 ? "y".repeat(65_537 + int(4096)) : "{}"),
    () => String.fromCharCode(...Array.from({ length: 64 }, () => int(0xffff))),
    // Valid frames that try to pass as someone else, or to change someone else's messages.
    () =>
      JSON.stringify({
        type: "say",
        text: text(),
        cid: cid(),
        userId: ctx.adaId,
        name: "ada",
        id: 1,
        ts: 0,
        kind: pick(["edit", "delete", "reaction"]),
        ref: ref(),
        ...(rand() < 0.3 ? { replyTo: ref() } : {}),
      }),
    () => JSON.stringify({ type: "say", text: text(), cid: cid(), replyTo: ref() }),
    () => JSON.stringify({ type: "edit", ref: ref(), text: text(), cid: cid(), userId: ctx.adaId }),
    () => JSON.stringify({ type: "delete", ref: ref(), cid: cid(), name: "ada" }),
    () =>
      JSON.stringify({
        type: "react",
        ref: ref(),
        emoji: pick([...REACTIONS, "x", ""]),
        cid: cid(),
      }),
    () => JSON.stringify({ type: "typing", member: { id: ctx.adaId, name: "ada" } }),
    () => JSON.stringify({ type: "history", before: ref(), limit: pick([1, 100, 101, 0, -1]) }),
    () => JSON.stringify({ type: "rooms" }),
    // Many rooms on one connection: other rooms, no name or another one, rooms it is not in.
    () =>
      JSON.stringify({
        type: "join",
        room: pick(["lobby", "other", `f${int(80)}`, "_hidden", ""]),
        ...(rand() < 0.5 ? {} : { name: pick(["ada", "bob", "fuzz", `f${int(9)}`, 7]) }),
      }),
    () => JSON.stringify({ type: "leave", room: pick(["other", `f${int(80)}`, "nowhere", "", 5]) }),
    () => JSON.stringify({ type: "rename", name: pick(["ada", "bob", "ADA", "", "a\u200bb", 7]) }),
    // Direct conversations, blocks, read positions, moderation and reports.
    () => JSON.stringify({ type: "dm", name: pick(["ada", "bob", "nobody", "", "fuzz0", 7]) }),
    () =>
      JSON.stringify({
        type: pick(["block", "unblock"]),
        userId: pick([ctx.adaId, "x", "", "a:b", 5]),
      }),
    () => JSON.stringify({ type: "read", room: pick(["lobby", "x", ""]), id: ref() }),
    () =>
      JSON.stringify({
        type: "join",
        room: pick([`dm:${ctx.adaId}:zzzz`, `dm:0:${ctx.adaId}`, "dm:a:b", "dm:", "dm:b:a"]),
      }),
    () =>
      JSON.stringify({
        type: "mod",
        room: "lobby",
        action: pick(["kick", "ban", "mute", "delete", "topic", "slow", "promote", "owner", "x"]),
        userId: pick([ctx.adaId, "nobody", 5]),
        ref: ref(),
        durationMs: pick([1, 0, -5, 1e12, "1"]),
        reason: text(),
        cid: cid(),
      }),
    () => JSON.stringify({ type: "report", room: "lobby", ref: ref(), reason: text() }),
    () => JSON.stringify({ type: "reports", room: pick(["lobby", "x"]) }),
    // Files, search, jumps, any emoji, dm by id.
    () =>
      JSON.stringify({
        type: "say",
        text: pick(["", text()]),
        cid: cid(),
        attachments: pick([
          [],
          ["AAAAAAAAAAAAAAAAAAAAAA"],
          ["../x"],
          "x",
          [1],
          Array(11).fill("a"),
        ]),
      }),
    () =>
      JSON.stringify({
        type: "search",
        q: pick(["a", "", " ", "x".repeat(201), 5, text()]),
        room: pick([undefined, "lobby", "nowhere", ""]),
        before: pick([undefined, { ts: 1, room: "lobby", id: 1 }, { ts: "x" }, 7]),
        cid: pick([undefined, cid(), "bad cid"]),
      }),
    () =>
      JSON.stringify({ type: "history", around: ref(), before: pick([undefined, 3]), limit: 9 }),
    () =>
      JSON.stringify({
        type: "react",
        ref: ref(),
        emoji: pick(["🦄", "🦄🦄", "a", "🇳🇴"]),
        cid: cid(),
      }),
    () => JSON.stringify({ type: "dm", userId: pick([ctx.adaId, "nobody", "", "a b", 5]) }),
    () =>
      JSON.stringify({
        type: pick(["say", "typing", "history", "react", "edit", "delete"]),
        room: pick(["lobby", "other", `f${int(80)}`, "nowhere", "", 5, null]),
        text: text(),
        cid: cid(),
        ref: ref(),
        emoji: pick(REACTIONS),
        before: ref(),
        ...(rand() < 0.2 ? { userId: ctx.adaId, name: "ada" } : {}),
      }),
    () => JSON.stringify({ type: "join", room: "lobby", name: "ada", token: "x".repeat(int(300)) }),
  ];
  return pick(cases)();
}

const ENCODER = new TextEncoder();

/** Whether the server closes the connection for this frame (over 64 KiB). */
function oversized(frame: Case): boolean {
  return (typeof frame === "string" ? ENCODER.encode(frame) : frame).byteLength > 64 * 1024;
}

/** The texts, edits and reactions a client sent, as the server may show them. */
class Sent {
  says = new Set<string>();
  edits = new Set<string>();
  record(frame: Case): void {
    if (typeof frame !== "string") return;
    try {
      const value = JSON.parse(frame);
      if (value?.type === "say" && typeof value.text === "string") this.says.add(value.text);
      if (value?.type === "edit" && typeof value.text === "string") this.edits.add(value.text);
    } catch { /* not JSON */ }
  }
}

/**
 * Checks what one member received: ids 1, 2, 3 … without gaps, every message attributed to a
 * real member with a text that member sent, and every edit, delete and reaction one the
 * protocol allows its sender.
 */
function checkReceived(
  who: string,
  messages: ChatMessage[],
  members: Map<string, Member>,
  sent: Map<string, Sent>,
): void {
  const byId = new Map<number, ChatMessage>();
  const deleted = new Set<number>();
  const reactions = new Map<string, boolean>();
  messages.forEach((m, i) => {
    const where = `${who} got message ${m.id}`;
    assert.equal(m.id, i + 1, `${who}: ids are contiguous`);
    const member = members.get(m.userId);
    assert.ok(member, `${where}: from an unknown user ${m.userId}`);
    assert.equal(m.name, member.name, `${where}: the name of its real sender`);
    const texts = sent.get(m.userId) ?? new Sent();
    if (m.kind === undefined) {
      assert.ok(texts.says.has(m.text), `${where}: a text ${m.name} never said`);
      if (m.replyTo !== undefined) assert.ok(m.replyTo < m.id, `${where}: replies to the past`);
    } else {
      const target = byId.get(m.ref!);
      assert.ok(target && target.kind === undefined, `${where}: changes a message that exists`);
      assert.ok(!deleted.has(target.id), `${where}: changes a deleted message`);
      if (m.kind === "edit" || m.kind === "delete") {
        assert.equal(target.userId, m.userId, `${where}: ${m.kind}s its sender's own message`);
      }
      if (m.kind === "edit") assert.ok(texts.edits.has(m.text), `${where}: an edit never sent`);
      if (m.kind === "delete") deleted.add(target.id);
      if (m.kind === "reaction") {
        assert.ok(isSingleEmoji(m.emoji!), `${where}: one emoji`);
        const key = `${m.userId} ${m.ref} ${m.emoji}`;
        assert.equal(m.on, !(reactions.get(key) ?? false), `${where}: a reaction toggles`);
        reactions.set(key, m.on!);
      }
    }
    byId.set(m.id, m);
  });
}

/** A joined client on a bare TCP connection, for bytes no WebSocket API sends (invalid UTF-8). */
async function rawJoined(
  port: number,
  name: string,
): Promise<{ member: Member; conn: Deno.TcpConn }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const frame = (payload: Uint8Array) => {
    const n = payload.length;
    const head = n < 126 ? [0x81, 0x80 | n] : [0x81, 0x80 | 126, n >> 8, n & 0xff];
    const bytes = new Uint8Array(head.length + 4 + n); // Mask key 0: the payload goes as it is.
    bytes.set(head);
    bytes.set(payload, head.length + 4);
    return bytes;
  };
  await conn.write(ENCODER.encode(
    `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  ));
  await conn.write(frame(ENCODER.encode(JSON.stringify({ type: "join", room: "lobby", name }))));
  let buffer = "";
  const chunk = new Uint8Array(64 * 1024);
  while (!buffer.includes('"welcome"')) {
    const n = await conn.read(chunk);
    assert.ok(n !== null, "the raw client got its welcome");
    buffer += new TextDecoder("latin1").decode(chunk.subarray(0, n));
  }
  const id = buffer.match(/"type":"welcome","id":"([^"]+)"/)?.[1];
  assert.ok(id, "the welcome names the raw client's id");
  await conn.write(frame(new Uint8Array([0xc3, 0x28, 0xff, 0xfe, 0xed, 0xa0, 0x80])));
  while (await conn.read(chunk).catch(() => null) !== null) { /* until the server drops it */ }
  return { member: { id, name }, conn };
}

Deno.test("a seeded fuzzer in the room cannot crash the server, forge or misattribute a message", async () => {
  const seed = Number(Deno.env.get("FUZZ_SEED") ?? 7);
  const rand = seededRandom(seed);
  await using server = await startServer({
    rateBurst: 1_000_000,
    ratePerSecond: 1_000_000,
    ...ONE_ADDRESS_LIFTED,
    oversizeCooldownMs: 0, // The fuzzer's oversized frames must not lock its address out.
  });
  const { client: ada, welcome: adaWelcome } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  const { client: bob, welcome: bobWelcome } = await TestClient.join(server.wsUrl, "lobby", "bob");
  await using _bob = bob;
  const members = new Map<string, Member>([
    [adaWelcome.id, { id: adaWelcome.id, name: "ada" }],
    [bobWelcome.id, { id: bobWelcome.id, name: "bob" }],
  ]);
  const sent = new Map<string, Sent>([[adaWelcome.id, new Sent()]]);
  const received = { ada: [] as ChatMessage[], bob: [] as ChatMessage[] };
  // What ada and bob see in the lobby (the fuzzer may open direct conversations with them).
  const lobby = (messages: ChatMessage[]) => messages.filter((m) => m.room === "lobby");
  const collect = () => {
    received.ada.push(...lobby(ada.drain("message")));
    received.bob.push(...lobby(bob.drain("message")));
  };
  const rssBefore = Deno.memoryUsage().rss;
  const started = performance.now();

  const CASES = 3000, BATCH = 25;
  let rejoins = 0, said = 0, probes = 0, confirmed = 0, closes = 0, raw = 0;
  let fuzzer!: TestClient, fuzzerSent!: Sent;
  const join = async () => {
    const name = `fuzz${rejoins++}`;
    const joined = await TestClient.join(server.wsUrl, "lobby", name);
    fuzzer = joined.client;
    members.set(joined.welcome.id, { id: joined.welcome.id, name: joined.welcome.name });
    sent.set(joined.welcome.id, fuzzerSent = new Sent());
  };
  /** A say whose ack proves every frame before it was handled while the fuzzer was in the room. */
  const probe = async (pending: number) => {
    const text = `probe ${probes}`, cid = `probe${probes++}`;
    fuzzerSent.record(JSON.stringify({ type: "say", text }));
    fuzzer.send({ type: "say", room: "lobby", text, cid });
    // Its ack, or the refusal that says why not (the wait is longer than the default: on a
    // loaded machine the first batches run on a cold JIT; CI once timed out here on Deno 2.5).
    const answer = await fuzzer.take(
      (m) => (m.type === "ack" || m.type === "error") && m.cid === cid,
      `the answer to ${cid}`,
      20_000,
    );
    assert.equal(answer.type, "ack", `${cid} was refused: ${JSON.stringify(answer)}`);
    confirmed += pending;
    for (const ack of fuzzer.drain("ack")) own.push(ack.id); // Its own messages, to change.
    lastId = Math.max(lastId, ...own);
    for (
      const type of ["message", "error", "ack", "typing", "presence", "history", "rooms"] as const
    ) {
      fuzzer.drain(type);
    }
  };
  await join();
  let pending = 0, lastId = 0;
  const own: number[] = [];
  for (let tried = 0; tried < CASES; tried++) {
    const frame = hostile(rand, { lastId, adaId: adaWelcome.id, own });
    fuzzerSent.record(frame);
    if (oversized(frame)) {
      if (pending) await probe(pending);
      pending = 0;
      fuzzer.send(frame);
      assert.equal((await fuzzer.waitClosed()).code, 1009);
      confirmed++, closes++;
      await join();
      continue;
    }
    fuzzer.send(frame);
    pending++;
    if (pending === BATCH) {
      await probe(pending);
      pending = 0;
    }
    if (tried % 50 === 0) {
      // The normal conversation goes on.
      const text = `normal ${said}`, cid = `n${said++}`;
      sent.get(adaWelcome.id)!.record(JSON.stringify({ type: "say", text }));
      ada.send({ type: "say", text, cid });
      await ada.next("ack", (a) => a.cid === cid);
      collect();
    }
    if (tried % 100 === 0) {
      const { member, conn } = await within(rawJoined(server.port, `raw${raw++}`), "a raw client");
      members.set(member.id, member);
      conn.close();
    }
  }
  if (pending) await probe(pending);
  await fuzzer.close();

  // Every message ada and bob saw: the last probe is the last message of all.
  const last = `probe ${probes - 1}`;
  for (const [client, into] of [[ada, received.ada], [bob, received.bob]] as const) {
    const final = await client.next("message", (m) => m.text === last);
    into.push(...lobby(client.drain("message")), final);
  }
  checkReceived("ada", received.ada, members, sent);
  checkReceived("bob", received.bob, members, sent);
  assert.deepEqual(
    received.bob.filter((m) => m.userId === adaWelcome.id).map((m) => m.text),
    Array.from({ length: said }, (_, i) => `normal ${i}`),
    "bob got every one of ada's messages, in order",
  );
  for (const notice of [...ada.drain("typing"), ...bob.drain("typing")]) {
    assert.deepEqual(members.get(notice.member.id), notice.member, "typing from a real member");
  }
  for (const notice of [...ada.drain("presence"), ...bob.drain("presence")]) {
    assert.deepEqual(members.get(notice.member.id), notice.member, "presence of a real member");
  }
  assert.equal(confirmed, CASES, "every case was handled while the fuzzer was in the room");
  const health = await (await fetch(`${server.origin}/healthz`)).json();
  assert.equal(health.ok, true);
  const grown = (Deno.memoryUsage().rss - rssBefore) / 1024 / 1024;
  assert.ok(grown < 200, `memory grew by ${grown.toFixed(0)} MB`);
  const fromFuzzer = received.bob.filter((m) => m.name.startsWith("fuzz")).length;
  console.log(
    `fuzzer: ${CASES} cases (seed ${seed}) all sent in the room, ${closes} closes (1009) and ` +
      `rejoins, ${raw} invalid UTF-8 clients; bob got ${received.bob.length} messages ` +
      `(${fromFuzzer} from the fuzzer, ${said} from ada), none forged, in ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s, RSS +${grown.toFixed(0)} MB`,
  );
});

Deno.test("the fuzzer's oracle catches a forged, misattributed or out-of-order message", () => {
  const ada: Member = { id: "u-ada", name: "ada" }, eve: Member = { id: "u-eve", name: "eve" };
  const members = new Map([[ada.id, ada], [eve.id, eve]]);
  const sent = new Map([[ada.id, new Sent()], [eve.id, new Sent()]]);
  sent.get(ada.id)!.record(JSON.stringify({ type: "say", text: "hi" }));
  sent.get(eve.id)!.record(JSON.stringify({ type: "say", text: "evil" }));
  sent.get(eve.id)!.record(JSON.stringify({ type: "edit", text: "pwned" }));
  const message = (id: number, from: Member, text: string, extra: Partial<ChatMessage> = {}) =>
    ({
      type: "message",
      id,
      room: "lobby",
      userId: from.id,
      name: from.name,
      text,
      ts: 0,
      cid: "c",
      ...extra,
    }) as ChatMessage;
  const good = [message(1, ada, "hi"), message(2, eve, "evil")];
  checkReceived("bob", good, members, sent);
  const bad: [string, ChatMessage[]][] = [
    ["a text its sender never said", [message(1, ada, "evil")]],
    ["another member's name", [message(1, eve, "evil", { name: "ada" })]],
    ["an unknown user", [message(1, { id: "u-x", name: "x" }, "hi")]],
    ["a gap in the ids", [message(1, ada, "hi"), message(3, eve, "evil")]],
    ["an edit of someone else's message", [
      ...good,
      message(3, eve, "pwned", { kind: "edit", ref: 1 }),
    ]],
    ["a delete of someone else's message", [
      ...good,
      message(3, eve, "", { kind: "delete", ref: 1 }),
    ]],
    ["a reaction that does not toggle", [
      ...good,
      message(3, eve, "", { kind: "reaction", ref: 1, emoji: "👍", on: true }),
      message(4, eve, "", { kind: "reaction", ref: 1, emoji: "👍", on: true }),
    ]],
  ];
  for (const [what, messages] of bad) {
    assert.throws(() => checkReceived("bob", messages, members, sent), assert.AssertionError, what);
  }
});

/** A server whose log events can be awaited: resolves once `count` events of `event` came. */
function eventLog() {
  const seen = new Map<string, number>();
  const waiters = new Set<() => void>();
  return {
    log: ({ event }: { event: string }) => {
      seen.set(event, (seen.get(event) ?? 0) + 1);
      for (const wake of waiters) wake();
    },
    until(event: string, count: number): Promise<void> {
      const { promise, resolve } = Promise.withResolvers<void>();
      const check = () => (seen.get(event) ?? 0) >= count && resolve();
      waiters.add(check);
      check();
      return within(promise, `${count} '${event}' events`).finally(() => waiters.delete(check));
    },
  };
}

async function rawUpgrade(origin: string): Promise<number> {
  const response = await fetch(`${origin}/ws`, {
    headers: {
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
    },
  });
  await response.body?.cancel();
  return response.status;
}

Deno.test("a connection flood from one address meets the per-IP cap with 429; /healthz still answers", async () => {
  const events = eventLog();
  await using server = await startServer({ maxConnectionsPerIp: 20, log: events.log });
  const attempts = await Promise.allSettled(
    Array.from({ length: 40 }, () => TestClient.connect(server.wsUrl)),
  );
  const open = attempts.flatMap((a) => a.status === "fulfilled" ? [a.value] : []);
  assert.equal(open.length, 20);
  assert.equal(await rawUpgrade(server.origin), 429);
  await events.until("open", 20);
  assert.equal((await (await fetch(`${server.origin}/healthz`)).json()).connections, 20);
  for (const client of open) await client.close();
  await events.until("close", 20);
  await using again = await TestClient.connect(server.wsUrl);
  assert.equal(again.socket.readyState, WebSocket.OPEN, "slots are released on close");
});

Deno.test("past MAX_CONNECTIONS new sockets get 503", async () => {
  await using server = await startServer({ maxConnections: 10, maxConnectionsPerIp: 100 });
  const clients = await Promise.all(
    Array.from({ length: 10 }, () => TestClient.connect(server.wsUrl)),
  );
  assert.equal(await rawUpgrade(server.origin), 503);
  await assert.rejects(TestClient.connect(server.wsUrl));
  for (const client of clients) await client.close();
});

Deno.test("IPv6 addresses count per /64: a host cannot step around the per-IP cap", () => {
  assert.equal(addressKey("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
  assert.equal(addressKey("2001:db8:1:2:bbbb:cccc:dddd:eeee"), "2001:db8:1:2::/64");
  assert.equal(addressKey("2001:0db8:0001:0002::9"), "2001:db8:1:2::/64");
  assert.equal(addressKey("[2001:db8::1]"), "2001:db8:0:0::/64");
  assert.equal(addressKey("::1"), "0:0:0:0::/64");
  assert.equal(addressKey("::ffff:192.0.2.1"), "192.0.2.1");
  assert.equal(addressKey("192.0.2.1"), "192.0.2.1");
  const admission = new Admission({ stats: new Stats(), maxConnectionsPerIp: 2, fdLimit: null });
  const request = new Request("http://127.0.0.1/ws");
  assert.ok(!(admission.admit(request, "2001:db8:1:2::a") instanceof Response));
  assert.ok(!(admission.admit(request, "2001:db8:1:2::b") instanceof Response));
  assert.equal((admission.admit(request, "2001:db8:1:2:ffff::c") as Response).status, 429);
  assert.ok(!(admission.admit(request, "2001:db8:1:3::a") instanceof Response), "another /64");
});

/** Opens a socket from 127.0.0.1 and sends one frame over 64 KiB; resolves once it closed 1009. */
async function oversize(server: TestServer): Promise<void> {
  const mallory = await TestClient.connect(server.wsUrl);
  mallory.send("x".repeat(64 * 1024 + 1));
  assert.equal((await mallory.waitClosed()).code, 1009);
}

Deno.test("one oversized frame costs its own connection only; the address may connect again (N12)", async () => {
  let now = 0;
  await using server = await startServer({ oversizeCooldownMs: 60_000, clock: () => now });
  const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  await oversize(server);
  assert.equal(await rawUpgrade(server.origin), 101, "one strike: the address is not refused");
  now += 30_000;
  await oversize(server);
  assert.equal(await rawUpgrade(server.origin), 101, "two strikes: still not refused");
  // A strike older than the window does not count: this third one makes two within 60 s.
  now += 30_000;
  await oversize(server);
  assert.equal(await rawUpgrade(server.origin), 101, "the first strike left the window");
  ada.send({ type: "say", text: "still here", cid: "c1" });
  await ada.next("ack", (a) => a.cid === "c1");
});

Deno.test(`${OVERSIZE_STRIKES} oversized frames within 60 s refuse the address with 429 until the cooldown ends`, async () => {
  let now = 0;
  await using server = await startServer({ oversizeCooldownMs: 60_000, clock: () => now });
  const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  for (let strike = 1; strike <= OVERSIZE_STRIKES; strike++) {
    now += 1000;
    await oversize(server);
  }
  assert.equal(await rawUpgrade(server.origin), 429);
  now += 59_999;
  assert.equal(await rawUpgrade(server.origin), 429);
  ada.send({ type: "say", text: "still here", cid: "c1" });
  await ada.next("ack", (a) => a.cid === "c1"); // Open connections of the address are not cut.
  now += 1;
  await using again = await TestClient.connect(server.wsUrl);
  assert.equal(again.socket.readyState, WebSocket.OPEN, "refused only for the cooldown");
  // After the cooldown the address starts again with no strikes.
  await oversize(server);
  assert.equal(await rawUpgrade(server.origin), 101);
});

/** The children of this process, by pid. */
function children(): Set<number> {
  const pids = new Set<number>();
  for (const task of Deno.readDirSync(`/proc/${Deno.pid}/task`)) {
    const text = Deno.readTextFileSync(`/proc/${Deno.pid}/task/${task.name}/children`);
    for (const pid of text.trim().split(/\s+/).filter(Boolean)) pids.add(Number(pid));
  }
  return pids;
}

/** Current and peak resident memory of `pid`, in MiB. */
function memory(pid: number): { rss: number; peak: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = (key: string) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+)`, "m"))![1]);
  return { rss: Math.round(kib("VmRSS") / 1024), peak: Math.round(kib("VmHWM") / 1024) };
}

/** Opens `count` upgraded connections; the refused ones are closed and counted by status. */
async function upgrades(port: number, count: number) {
  const open: Deno.TcpConn[] = [];
  const refused: number[] = [];
  for (let i = 0; i < count; i++) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(ENCODER.encode(
      `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ));
    const head = new Uint8Array(512);
    const n = await conn.read(head);
    const status = Number(new TextDecoder().decode(head.subarray(0, n ?? 0)).slice(9, 12));
    if (status === 101) open.push(conn);
    else refused.push(status), conn.close();
  }
  return { open, refused };
}

/** Streams one text frame of `bytes` on each connection; resolves with each close code. */
function streamFrames(conns: Deno.TcpConn[], bytes: number): Promise<number[]> {
  const chunk = ENCODER.encode("x".repeat(1024 * 1024));
  const head = new Uint8Array(14); // FIN, text, masked with key 0, 64-bit length.
  head.set([0x81, 0x80 | 127]);
  new DataView(head.buffer).setBigUint64(2, BigInt(bytes));
  return Promise.all(conns.map(async (conn) => {
    await conn.write(head);
    for (let sent = 0; sent < bytes; sent += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, bytes - sent));
      for (let written = 0; written < part.length;) {
        written += await conn.write(part.subarray(written));
      }
    }
    // Unmasked frames: the short `close` text frame (see websocket.ts), then the Close.
    const reply = new Uint8Array(512);
    let length = 0, at = 0;
    while (length < reply.length) {
      const ready = length - at;
      if (ready >= 2 && reply[at] === 0x81 && ready >= 2 + reply[at + 1]) {
        at += 2 + reply[at + 1];
        continue;
      }
      if (ready >= 4 && reply[at] !== 0x81) break;
      const n = await conn.read(reply.subarray(length));
      if (n === null) break;
      length += n;
    }
    conn.close();
    return reply[at] === 0x88 ? (reply[at + 2] << 8) | reply[at + 3] : 0;
  }));
}

Deno.test({
  name:
    "large frames are buffered whole (measured); a second wave from the address is refused unread",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir();
    const before = children();
    await using server = await startProcess({
      KV_PATH: `${dir}/chat.kv`,
      MAX_CONNECTIONS_PER_IP: "100",
    });
    const [pid] = [...children()].filter((p) => !before.has(p));
    assert.ok(pid, "the server's pid");
    const N = 8, MIB = 16;
    const idle = memory(pid);
    const first = await upgrades(server.port, N);
    assert.equal(first.open.length, N);
    assert.deepEqual(await streamFrames(first.open, MIB * 1024 * 1024), Array(N).fill(1009));
    const afterFirst = memory(pid);
    const perConnection = (afterFirst.peak - idle.peak) / N;
    // Deno reads a frame whole before the handler sees its size: about twice its size each
    // (the read buffer and the string), up to Deno's 64 MiB per frame.
    // How much each frame held is measured and printed below, not asserted: the peak depends
    // on how many frames the server happened to hold at once (seen as low as under 16 MiB in CI).
    assert.ok(afterFirst.peak > idle.peak, "the frames were read into memory");
    const second = await upgrades(server.port, N);
    assert.deepEqual(second.refused, Array(N).fill(429), "the address is cooling down");
    const afterSecond = memory(pid);
    assert.ok(afterSecond.peak - afterFirst.peak < MIB, "the refused wave buffered nothing");
    console.log(
      `large frames: ${N} x ${MIB} MiB frames raised the server's peak RSS from ${idle.peak} ` +
        `to ${afterFirst.peak} MiB (${perConnection.toFixed(0)} MiB per frame), all closed 1009; ` +
        `a second wave of ${N} got 429 and the peak stayed at ${afterSecond.peak} MiB`,
    );
    await server.stop("SIGTERM");
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("45 sockets reacting to the oldest of 1,000 messages cannot hold another member's acks past 500 ms (N1)", async () => {
  // As if from 45 addresses: the per-address budget would otherwise stop the flood first.
  await using server = await startServer({ rateBurst: 10_000, ...ONE_ADDRESS_LIFTED });
  const { client: seeder } = await TestClient.join(server.wsUrl, "busy", "seeder");
  await using _seeder = seeder;
  for (let i = 1; i <= 1000; i++) seeder.send({ type: "say", text: `m${i}`, cid: `m${i}` });
  await seeder.next("ack", (a) => a.cid === "m1000");
  const { client: victim } = await TestClient.join(server.wsUrl, "busy", "victim");
  await using _victim = victim;
  const reactors = await Promise.all(
    Array.from({ length: 45 }, (_, i) => TestClient.join(server.wsUrl, "busy", `r${i}`)),
  );
  try {
    const FLOOD_MS = 3000, EVERY_MS = 200;
    let stop = false;
    const flood = reactors.map(async ({ client }, i) => {
      for (let n = 0; !stop; n++) {
        client.send({ type: "react", ref: 1, emoji: "👍", cid: `r${i}-${n}` });
        client.send({ type: "edit", ref: 2, text: "not yours", cid: `e${i}-${n}` }); // refused
        await new Promise((resolve) => setTimeout(resolve, EVERY_MS));
      }
    });
    const waits: number[] = [];
    const started = performance.now();
    for (let n = 0; performance.now() - started < FLOOD_MS; n++) {
      const sent = performance.now();
      victim.send({ type: "say", text: `still here ${n}`, cid: `v${n}` });
      await victim.next("ack", (a) => a.cid === `v${n}`);
      waits.push(performance.now() - sent);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    stop = true;
    await Promise.all(flood);
    waits.sort((a, b) => a - b);
    const [median, p90, worst] = [0.5, 0.9, 1].map((q) =>
      waits[Math.min(waits.length - 1, Math.floor(q * waits.length))]
    );
    console.log(
      `reaction flood: ${waits.length} acks, median ${median.toFixed(1)} ms, p90 ${
        p90.toFixed(1)
      } ms, worst ${worst.toFixed(1)} ms`,
    );
    // Before the fix every ack fell further behind (18 s after a 10 s flood). One late ack
    // in ten is the machine, not the room's queue: a shared core can stall any process a
    // second, so the bound is on nine in ten, and the worst is printed.
    assert.ok(
      p90 < 500,
      `acks took ${waits.map((w) => w.toFixed(0)).join(", ")} ms under the flood`,
    );
  } finally {
    await Promise.all(reactors.map(({ client }) => client.close()));
  }
});
