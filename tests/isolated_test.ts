/**
 * Instances that share nothing but the store, as Deno Deploy's isolated
 * instances do: two processes on one KV file, with no bus between them.
 * Messages, presence and name uniqueness must all cross through the store.
 */
import assert from "node:assert/strict";
import { KvHistory } from "../src/store/kv_history.ts";
import { KvRoster } from "../src/store/kv_roster.ts";
import { startServer, TestClient } from "./helpers.ts";
import { startProcess } from "./process.ts";

const SESSION_SECRET = "shared by both instances in this test";

Deno.test("two processes on one KV file and no bus agree on messages, presence and names", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const env = { KV_PATH: `${dir}/chat.kv`, SESSION_SECRET };
    await using a = await startProcess(env);
    await using b = await startProcess(env);

    await using ada = (await TestClient.join(a.wsUrl, "team", "ada")).client;
    const { client: bob, welcome } = await TestClient.join(b.wsUrl, "team", "bob");
    await using _bob = bob;

    // Names: the claim is in the store, so b refuses ada's name at once, in any case.
    await using impostor = await TestClient.connect(b.wsUrl);
    impostor.send({ type: "join", room: "team", name: "ADA" });
    assert.equal((await impostor.next("error")).code, "name_taken");

    // Presence: each instance reads the other's entry from the store.
    const presenceStart = performance.now();
    await ada.next("presence", (p) => p.event === "join" && p.member.name === "bob");
    if (!welcome.members.some((m) => m.name === "ada")) {
      await bob.next("presence", (p) => p.event === "join" && p.member.name === "ada");
    }
    const presenceMs = performance.now() - presenceStart;

    // Messages: b finds a's message in the store.
    const delays: number[] = [];
    for (let i = 1; i <= 3; i++) {
      const sent = performance.now();
      ada.send({ type: "say", text: `from a ${i}`, cid: `a${i}` });
      const message = await bob.next("message", (m) => m.cid === `a${i}`);
      delays.push(performance.now() - sent);
      assert.equal(message.id, i);
      assert.equal(message.name, "ada");
    }
    bob.send({ type: "say", text: "from b", cid: "b1" });
    assert.equal((await ada.next("message", (m) => m.cid === "b1")).id, 4);

    // Leaving crosses too, and frees the name.
    await bob.close();
    await ada.next("presence", (p) => p.event === "leave" && p.member.name === "bob");
    const { client: bobAgain } = await TestClient.join(a.wsUrl, "team", "bob");
    await bobAgain.close();

    console.log(
      `isolated instances: presence crossed in ${Math.round(presenceMs)} ms; ` +
        `messages crossed in ${delays.map((d) => Math.round(d)).join(", ")} ms ` +
        "(a local KV file has no change feed: the 1 s store poll carries them)",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with the store's change feed, a message crosses isolated instances without waiting for the poll", async () => {
  using kv = await Deno.openKv(":memory:");
  // Two instances on one store, no bus, and a poll too slow to matter: only kv.watch can carry it.
  const options = { watchStore: true, watchIntervalMs: 3_600_000, roster: new KvRoster(kv) };
  await using a = await startServer({ ...options, history: new KvHistory(kv) });
  await using b = await startServer({ ...options, history: new KvHistory(kv) });
  await using ada = (await TestClient.join(a.wsUrl, "team", "ada")).client;
  await using bob = (await TestClient.join(b.wsUrl, "team", "bob")).client;
  ada.send({ type: "say", text: "via the change feed", cid: "w1" });
  assert.equal((await bob.next("message")).text, "via the change feed");
});
