/**
 * Sharing in the chat, over real sockets: a `say` that carries uploaded
 * files (and who may post which), the files going with a deleted or pruned
 * message and a deleted room, a conversation's files readable by its two
 * people only, `search` and `history {around}`, and reactions with any
 * single emoji.
 */
import assert from "node:assert/strict";
import type { ChatOptions } from "../src/chat.ts";
import type { ChatMessage } from "../src/protocol.ts";
import { KvFiles } from "../src/store/kv_files.ts";
import { KvHistory } from "../src/store/kv_history.ts";
import { startServer, TestClient, type TestServer } from "./helpers.ts";
import { ascii, png } from "./images.ts";

const API_TOKEN = "share-test-api-token-0123456789";

/** A file store that says when a file is deleted. */
class WatchedFiles extends KvFiles {
  #waiting = new Map<string, () => void>();
  /** Resolves once `id` was deleted. */
  deleted(id: string): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiting.set(id, resolve);
    return promise;
  }
  override async delete(id: string): Promise<boolean> {
    const done = await super.delete(id);
    this.#waiting.get(id)?.();
    return done;
  }
}

/** A server with files in memory; its history and file store for the test to watch. */
async function start(options: Partial<ChatOptions> & { historyLimit?: number } = {}) {
  const kv = await Deno.openKv(":memory:");
  const files = new WatchedFiles(kv);
  const history = new KvHistory(kv, { limit: options.historyLimit ?? 1000, pruneSlack: 0 });
  const server = await startServer({ history, files, apiToken: API_TOKEN, ...options });
  return {
    server,
    files,
    history,
    async [Symbol.asyncDispose]() {
      await server.close();
      await history.idle();
      kv.close();
    },
  };
}

/** Uploads `bytes` as `name` for `room`, as the guest holding `token`; answers the file's id. */
async function upload(
  server: TestServer,
  token: string,
  bytes: Uint8Array<ArrayBuffer>,
  name: string,
  room = "lobby",
): Promise<string> {
  const form = new FormData();
  form.append("file", new File([bytes], name));
  const response = await fetch(`${server.origin}/api/v1/uploads?room=${encodeURIComponent(room)}`, {
    method: "POST",
    body: form,
    headers: { "x-chat-session": token },
  });
  const body = await response.json();
  assert.equal(response.status, 201, JSON.stringify(body));
  return body.id;
}

/** GETs a file as the guest holding `token`: its status (the body is read and dropped). */
async function fetchFile(server: TestServer, id: string, token: string): Promise<number> {
  const response = await fetch(`${server.origin}/files/${id}/x`, {
    headers: { "x-chat-session": token },
  });
  await response.body?.cancel();
  return response.status;
}

Deno.test("a say carries files: the message shows them, the room reads them, a retry is the same message", async () => {
  await using s = await start();
  const { client: ada, welcome: adas } = await TestClient.join(s.server.wsUrl, "lobby", "ada");
  await using _ = ada;
  const { client: bob, welcome: bobs } = await TestClient.join(s.server.wsUrl, "lobby", "bob");
  await using __ = bob;
  const image = await upload(s.server, adas.token!, await png(40, 30), "cat.png");
  const notes = await upload(s.server, adas.token!, ascii("hello"), "notes.txt");

  ada.send({ type: "say", text: "", cid: "c1", attachments: [image, notes] });
  const message = await bob.next("message");
  assert.equal(message.text, "", "files alone need no text");
  assert.deepEqual(message.attachments, [
    {
      id: image,
      name: "cat.png",
      size: message.attachments![0].size,
      type: "image/png",
      width: 40,
      height: 30,
    },
    { id: notes, name: "notes.txt", size: 5, type: "text/plain" },
  ]);
  assert.equal(await fetchFile(s.server, image, bobs.token!), 200, "the room reads it");

  // The ack was lost: the same say again is the same message, no error.
  ada.send({ type: "say", text: "", cid: "c1", attachments: [image, notes] });
  const acks = [await ada.next("ack"), await ada.next("ack")];
  assert.deepEqual(acks.map((a) => a.id), [message.id, message.id]);

  // The same files in another message, someone else's file, no file, text needed without files.
  const refusals: [unknown, string, RegExp][] = [
    [{ cid: "c2", attachments: [image] }, "invalid_message", /posted in another message/],
    [
      { cid: "c3", attachments: [await upload(s.server, bobs.token!, ascii("x"), "b.txt")] },
      "forbidden",
      /someone else/,
    ],
    [{ cid: "c4", attachments: ["AAAAAAAAAAAAAAAAAAAAAA"] }, "not_found", /no file/],
    [{ cid: "c5", attachments: ["../etc"] }, "invalid_message", /file ids/],
    [{ cid: "c6" }, "invalid_message", /non-empty/],
  ];
  for (const [frame, code, message] of refusals) {
    ada.send({ type: "say", room: "lobby", text: "", ...frame as object });
    const error = await ada.next("error");
    assert.equal(error.code, code, JSON.stringify(frame));
    assert.match(error.message, message);
    assert.equal(error.room, "lobby");
  }
});

Deno.test("a file uploaded for one room cannot be posted in another", async () => {
  await using s = await start();
  const { client: ada, welcome } = await TestClient.join(s.server.wsUrl, "lobby", "ada");
  await using _ = ada;
  ada.send({ type: "join", room: "design" });
  await ada.next("welcome");
  const id = await upload(s.server, welcome.token!, ascii("plan"), "plan.txt", "design");
  ada.send({ type: "say", room: "lobby", text: "see", cid: "c1", attachments: [id] });
  const error = await ada.next("error");
  assert.equal(error.code, "invalid_message");
  assert.match(error.message, /another room/);
});

Deno.test("deleting a message deletes its files; so does pruning it, and deleting its room", async () => {
  await using s = await start({ historyLimit: 2 });
  const { client: ada, welcome } = await TestClient.join(s.server.wsUrl, "lobby", "ada");
  await using _ = ada;
  const post = async (cid: string, text = "") => {
    const id = await upload(s.server, welcome.token!, ascii(cid), `${cid}.txt`);
    ada.send({ type: "say", text, cid, attachments: [id] });
    return { id, message: (await ada.next("message", (m) => m.cid === cid)).id };
  };
  const first = await post("one");
  const gone = s.files.deleted(first.id);
  ada.send({ type: "delete", ref: first.message, cid: "d1" });
  await gone;
  assert.equal(await fetchFile(s.server, first.id, welcome.token!), 404);
  const history = await s.history.get("lobby", first.message);
  assert.equal(history?.attachments, undefined, "a deleted message shows no files");

  // Three more: the oldest of them is pruned (the room keeps 2), and its file goes with it.
  const second = await post("two");
  const pruned = s.files.deleted(second.id);
  await post("three");
  await post("four");
  await pruned;
  assert.equal(await fetchFile(s.server, second.id, welcome.token!), 404);

  // Deleting the room takes the files of what it kept.
  const kept = await post("five");
  const roomGone = s.files.deleted(kept.id);
  const response = await fetch(`${s.server.origin}/api/v1/rooms/lobby`, {
    method: "DELETE",
    headers: { authorization: `Bearer ${API_TOKEN}` },
  });
  assert.equal(response.status, 204);
  await roomGone;
});

Deno.test("a conversation's files are read by its two people only", async () => {
  await using s = await start();
  const { client: ada, welcome: adas } = await TestClient.join(s.server.wsUrl, "lobby", "ada");
  await using _ = ada;
  const { client: bob, welcome: bobs } = await TestClient.join(s.server.wsUrl, "lobby", "bob");
  await using __ = bob;
  const { client: eve, welcome: eves } = await TestClient.join(s.server.wsUrl, "lobby", "eve");
  await using ___ = eve;
  ada.send({ type: "dm", name: "bob" });
  const { room } = await ada.next("welcome", (w) => w.room.startsWith("dm:"));
  const id = await upload(s.server, adas.token!, ascii("secret"), "s.txt", room);
  ada.send({ type: "say", room, text: "for you", cid: "c1", attachments: [id] });
  const pulled = await bob.next("welcome", (w) => w.room === room); // brought into it by the message
  assert.deepEqual(pulled.history.at(-1)?.attachments?.map((f) => f.id), [id]);
  assert.equal(await fetchFile(s.server, id, bobs.token!), 200);
  assert.equal(
    await fetchFile(s.server, id, eves.token!),
    404,
    "not eve's to read, nor to know of",
  );
  const refused = await fetch(`${s.server.origin}/api/v1/uploads?room=${room}`, {
    method: "POST",
    body: (() => {
      const form = new FormData();
      form.append("file", new File([ascii("x")], "x.txt"));
      return form;
    })(),
    headers: { "x-chat-session": eves.token! },
  });
  await refused.body?.cancel();
  assert.equal(refused.status, 403, "eve may not upload to their conversation");
});

Deno.test("search finds the current text of messages in the rooms you are in, newest first", async () => {
  await using s = await start();
  const { client: ada } = await TestClient.join(s.server.wsUrl, "lobby", "ada");
  await using _ = ada;
  ada.send({ type: "join", room: "design" });
  await ada.next("welcome");
  const say = async (room: string, text: string, cid: string) => {
    ada.send({ type: "say", room, text, cid });
    return (await ada.next("message", (m) => m.cid === cid)).id;
  };
  await say("lobby", "the blue whale", "c1");
  const edited = await say("lobby", "a red fish", "c2");
  const deleted = await say("design", "blue prints", "c3");
  await say("design", "Blueberry pie", "c4");
  ada.send({ type: "edit", room: "lobby", ref: edited, text: "a blue fish", cid: "e1" });
  ada.send({ type: "delete", room: "design", ref: deleted, cid: "d1" });
  await ada.next("message", (m) => m.cid === "d1");

  ada.send({ type: "search", q: "BLUE", cid: "s1" });
  const found = await ada.next("search");
  assert.equal(found.cid, "s1");
  assert.deepEqual(found.results.map((m) => [m.room, m.text]), [
    ["design", "Blueberry pie"],
    ["lobby", "a blue fish"],
    ["lobby", "the blue whale"],
  ]);
  assert.equal(found.hasMore, false);

  ada.send({ type: "search", q: "blue", room: "lobby" });
  assert.equal((await ada.next("search")).results.length, 2);
  ada.send({ type: "search", q: "blue", room: "kitchen" });
  assert.equal((await ada.next("error")).code, "not_joined");
  ada.send({ type: "search", q: "   " });
  assert.equal((await ada.next("error")).code, "invalid_message");

  const api = await fetch(`${s.server.origin}/api/v1/rooms/design/search?q=blue`, {
    headers: { authorization: `Bearer ${API_TOKEN}` },
  });
  const body = await api.json();
  assert.deepEqual(body.results.map((m: ChatMessage) => m.text), ["Blueberry pie"]);
});

Deno.test("history around a message brings it with its neighbours, to jump to a search result", async () => {
  await using s = await start({ rateBurst: 100 });
  const { client: ada } = await TestClient.join(s.server.wsUrl, "lobby", "ada");
  await using _ = ada;
  for (let i = 1; i <= 30; i++) ada.send({ type: "say", text: `m${i}`, cid: `c${i}` });
  for (let i = 1; i <= 30; i++) await ada.next("ack");
  ada.send({ type: "history", around: 15, limit: 10 });
  const page = await ada.next("history");
  assert.deepEqual(page.messages.map((m) => m.id), [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
  assert.equal(page.around, 15);
  assert.equal(page.hasMore, true);
  assert.equal(page.hasNewer, true);
  ada.send({ type: "history", around: 29, limit: 10 });
  const end = await ada.next("history");
  assert.deepEqual(end.messages.map((m) => m.id), [24, 25, 26, 27, 28, 29, 30]);
  assert.equal(end.hasNewer, false);
});

Deno.test("a reaction may be any single emoji, and nothing else", async () => {
  await using s = await start();
  const { client: ada } = await TestClient.join(s.server.wsUrl, "lobby", "ada");
  await using _ = ada;
  ada.send({ type: "say", text: "hi", cid: "c1" });
  const { id } = await ada.next("ack");
  for (const emoji of ["🦄", "👩🏽‍💻", "🇳🇴", "❤️"]) {
    ada.send({ type: "react", ref: id, emoji, cid: `r${emoji.codePointAt(0)}` });
    assert.equal((await ada.next("message", (m) => m.kind === "reaction")).emoji, emoji);
  }
  for (const emoji of ["x", "🦄🦄", ""]) {
    ada.send({ type: "react", ref: id, emoji, cid: "bad" });
    const error = await ada.next("error");
    assert.equal(error.code, "invalid_message");
    assert.equal(error.message, "Cannot react to message: 'emoji' must be one emoji");
  }
});
