/**
 * What the hub calls (src/attachments.ts): check before a message is stored,
 * attach after, detach on an edit, deleteFiles on a delete or prune, and the
 * sweep of files never posted, on a fake clock.
 */
import assert from "node:assert/strict";
import { Attachments, ORPHAN_AGE_MS } from "../src/attachments.ts";
import { type NewFile, newFileId } from "../src/store/files.ts";
import { KvFiles } from "../src/store/kv_files.ts";

async function setup() {
  const kv = await Deno.openKv(":memory:");
  const files = new KvFiles(kv);
  const clock = { now: 1_000_000_000 };
  const attachments = new Attachments({ files, now: () => clock.now });
  const put = async (owner = "u1", room = "lobby") => {
    const file: NewFile = {
      id: newFileId(),
      name: "a.txt",
      type: "text/plain",
      owner,
      room,
      createdAt: clock.now,
    };
    await files.put(file, new Blob(["hello"]).stream(), 100);
    return file.id;
  };
  return { kv, files, clock, attachments, put, [Symbol.dispose]: () => kv.close() };
}

Deno.test("check names what cannot be posted; attach then decides for good", async () => {
  using s = await setup();
  const [mine, other, elsewhere] = [await s.put(), await s.put("u2"), await s.put("u1", "other")];
  const missing = newFileId();
  assert.deepEqual(await s.attachments.check([mine], "u1", "lobby"), []);
  assert.deepEqual(
    await s.attachments.check([mine, other, elsewhere, missing, "../x"], "u1", "lobby"),
    [
      { id: other, code: "forbidden" },
      { id: elsewhere, code: "other_room" },
      { id: missing, code: "not_found" },
      { id: "../x", code: "invalid" },
    ],
  );
  const results = await s.attachments.attach([mine, other], "u1", "lobby", 42);
  assert.deepEqual([...results], [[mine, "attached"], [other, "forbidden"]]);
  assert.deepEqual(await s.attachments.check([mine], "u1", "lobby"), [
    { id: mine, code: "taken", messageId: 42 },
  ]);
  assert.equal((await s.files.stat(mine))?.messageId, 42);
});

Deno.test("the sweep deletes files not posted within the orphan age, and detached ones later", async () => {
  using s = await setup();
  const posted = await s.put(), unposted = await s.put(), edited = await s.put();
  await s.attachments.attach([posted, edited], "u1", "lobby", 1);
  s.clock.now += ORPHAN_AGE_MS;
  assert.equal(await s.attachments.sweep(), 0, "not older than the age yet");
  await s.attachments.detach([edited]); // an edit dropped it: loose from now
  s.clock.now += 1;
  assert.equal(await s.attachments.sweep(), 1);
  assert.equal(await s.files.stat(unposted), null);
  assert.ok(await s.files.stat(posted));
  assert.ok(await s.files.stat(edited));
  s.clock.now += ORPHAN_AGE_MS;
  assert.equal(await s.attachments.sweep(), 1, "the detached one");
  assert.equal(await s.files.stat(edited), null);
  assert.ok(await s.files.stat(posted), "a posted file stays as long as its message");
});

Deno.test("deleteFiles deletes a deleted or pruned message's files", async () => {
  using s = await setup();
  const a = await s.put(), b = await s.put();
  await s.attachments.attach([a, b], "u1", "lobby", 7);
  assert.equal(await s.attachments.deleteFiles([a, b, newFileId(), "bad id"]), 2);
  assert.equal(await s.files.stat(a), null);
  assert.deepEqual(await s.files.loose(), []);
});

Deno.test("start sweeps on its interval; close stops it and waits for a sweep", async () => {
  using s = await setup();
  await s.put();
  s.clock.now += ORPHAN_AGE_MS + 1;
  const swept = Promise.withResolvers<void>();
  const attachments = new Attachments({
    files: s.files,
    now: () => s.clock.now,
    sweepIntervalMs: 1,
    log: (entry) => entry.swept === 1 && swept.resolve(),
  });
  attachments.start();
  // The sweep's timer does not keep a process alive; this test's wait must.
  const hold = setTimeout(() => {}, 60_000);
  await swept.promise;
  clearTimeout(hold);
  await attachments.close();
  assert.deepEqual(await s.files.loose(), []);
});
