/**
 * The entry point as hosts run it: `deno serve main.ts`, `deno run main.ts`
 * (container hosts, Deno Deploy), a start that fails and is retried, and
 * two processes starting at once on a fresh KV file.
 */
import assert from "node:assert/strict";
import { relative } from "node:path";
import { Starter } from "../src/starter.ts";
import { TestClient } from "./helpers.ts";
import { type ServerProcess, startProcess } from "./process.ts";

/** Joins `room` on `wsUrl` and has one message stored and echoed. */
async function chatOnce(wsUrl: string, room: string, name: string): Promise<void> {
  await using client = (await TestClient.join(wsUrl, room, name)).client;
  client.send({ type: "say", text: `hi from ${name}`, cid: "e1" });
  assert.equal((await client.next("message", (m) => m.name === name)).text, `hi from ${name}`);
}

/** What `server` printed, for a failure message. */
function describe(label: string, server: ServerProcess): string {
  return `Server ${label} printed:\n  ${server.output.join("\n  ")}`;
}

Deno.test("deno run main.ts serves on PORT with a relative KV path (the default's kind), as container hosts run it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Deno 2.5 opens no KV file by a relative path: the server gives it an absolute one.
    const kvPath = relative(Deno.cwd(), `${dir}/chat.kv`);
    await using server = await startProcess({ KV_PATH: kvPath }, 0, [], {
      command: "run",
    });
    await chatOnce(server.wsUrl, "run", "ada");
    const page = await fetch(`${server.origin}/`);
    assert.equal(page.status, 200);
    await page.body?.cancel();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("as on Deno Deploy: deno run, DENO_DEPLOYMENT_ID set, Deno.openKv() with no path", async () => {
  // A location of its own gives this run a fresh default KV (each Deno version writes values
  // the older ones cannot read, and CI runs this test under 2.9 and then 2.5).
  const location = `https://deploy-${crypto.randomUUID().slice(0, 8)}.test/`;
  await using server = await startProcess({ DENO_DEPLOYMENT_ID: "test-deployment" }, 0, [], {
    command: "run",
    runArgs: ["--location", location],
  });
  await server.waitFor(/History and fan-out: Deno KV \(the platform's\)/);
  await chatOnce(server.wsUrl, `deploy-${crypto.randomUUID().slice(0, 8)}`, "ada");
});

Deno.test("a start that fails is reported on /healthz and never cached: the next try starts", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // KV in a folder that does not exist yet: opening it fails.
    await using server = await startProcess({ KV_PATH: `${dir}/missing/chat.kv` });
    await server.waitFor(/Cannot start: .*retrying on the next request/);
    const health = await (await fetch(`${server.origin}/healthz`)).json();
    assert.equal(health.status, "degraded");
    assert.match(health.reason, /^starting: /);
    const page = await fetch(`${server.origin}/`);
    assert.equal(page.status, 503);
    await page.body?.cancel();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Starter retries a failed start after retryMs, and keeps a good one", async () => {
  let attempts = 0;
  const reports: string[] = [];
  const starter = new Starter(() => {
    attempts++;
    return attempts === 1 ? Promise.reject(new Error("KV is locked")) : Promise.resolve("up");
  }, { retryMs: 0, report: (line) => reports.push(line) });
  const first = await starter.get();
  assert.equal(first.ok, false);
  assert.match(reports[0], /Cannot start: Error: KV is locked/);
  assert.deepEqual(await starter.get(), { ok: true, value: "up" });
  assert.deepEqual(await starter.get(), { ok: true, value: "up" });
  assert.equal(attempts, 2);
});

Deno.test("two processes starting at once on a fresh KV file both serve", async () => {
  for (let round = 0; round < 3; round++) {
    const dir = await Deno.makeTempDir();
    try {
      const env = { KV_PATH: `${dir}/chat.kv` };
      const [a, b] = await Promise.all([startProcess(env), startProcess(env)]);
      await using _a = a;
      await using _b = b;
      await Promise.all([chatOnce(a.wsUrl, "race", "ada"), chatOnce(b.wsUrl, "race", "bob")])
        .catch((error) => {
          // What each server printed tells why (a refused join is logged there).
          throw new Error(`${error.message}\n${describe("A", a)}\n${describe("B", b)}`);
        });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});
