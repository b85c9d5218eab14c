/**
 * Out of file descriptors: `deno serve main.ts` runs under a low `ulimit -n`
 * (a child process), more connections come than fit, and the server
 * refuses upgrades with 503 before descriptors run out, survives the
 * exhaustion an idle-connection flood causes (Deno's accept loop fails with
 * EMFILE), keeps its open WebSockets working meanwhile, and answers
 * `/healthz` once the flood is gone.
 */
import assert from "node:assert/strict";
import { TestClient, within } from "./helpers.ts";
import { RawClient } from "./raw_socket.ts";
import { connectionsThatFit, fdReserve, probeFreeFds, readFdLimit } from "../src/http/fd_limit.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** `deno serve main.ts` under `ulimit -n fdLimit`, with its output, line by line. */
interface LimitedServer extends AsyncDisposable {
  port: number;
  origin: string;
  wsUrl: string;
  output: string[];
  /** The first line matching `pattern` at index `from` or later, waiting for it if needed. */
  waitFor(pattern: RegExp, from?: number): Promise<{ line: string; index: number }>;
}

async function startLimited(
  fdLimit: number,
  env: Record<string, string>,
  permissions = ["-A"],
): Promise<LimitedServer> {
  const serve = [
    Deno.execPath(),
    "serve",
    ...permissions,
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    MAIN,
  ];
  const child = new Deno.Command("bash", {
    args: ["-c", `ulimit -n ${fdLimit} && exec "$@"`, "bash", ...serve],
    env: { NO_COLOR: "1", KV_PATH: ":memory:", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output: string[] = [];
  const waiters = new Set<() => void>();
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      output.push(...lines);
      for (const wake of waiters) wake();
    }
  };
  const drained = Promise.all([collect(child.stdout), collect(child.stderr)]);
  let gone = false;
  const exited = child.status.then(async (status) => {
    await drained;
    gone = true;
    for (const wake of waiters) wake();
    return status;
  });
  const waitFor = (pattern: RegExp, from = 0) => {
    const find = () => {
      const index = output.findIndex((line, i) => i >= from && pattern.test(line));
      return index < 0 ? null : { line: output[index], index };
    };
    const { promise, resolve, reject } = Promise.withResolvers<{ line: string; index: number }>();
    const check = () => {
      const found = find();
      if (found) resolve(found);
      else if (gone) reject(new Error(`The server exited:\n${output.join("\n")}`));
    };
    waiters.add(check);
    check();
    return within(promise, `the server to print ${pattern}`, 10_000)
      .finally(() => waiters.delete(check));
  };
  try {
    const { line } = await waitFor(/Listening on http:\/\/127\.0\.0\.1:\d+\//);
    const port = Number(line.match(/:(\d+)\/$/)![1]);
    return {
      port,
      origin: `http://127.0.0.1:${port}`,
      wsUrl: `ws://127.0.0.1:${port}/ws`,
      output,
      waitFor,
      async [Symbol.asyncDispose]() {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
        await exited;
      },
    };
  } catch (error) {
    child.kill("SIGKILL");
    await exited;
    throw error;
  }
}

/** Sends an upgrade request on a new connection; resolves with the status and the connection. */
async function upgrade(port: number): Promise<{ status: number; conn: Deno.TcpConn }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(
    `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
      "Sec-WebSocket-Version: 13\r\n\r\n",
  ));
  const buffer = new Uint8Array(512);
  const read = await conn.read(buffer);
  const head = new TextDecoder().decode(buffer.subarray(0, read ?? 0));
  return { status: Number(head.match(/^HTTP\/1\.1 (\d{3})/)?.[1] ?? 0), conn };
}

/**
 * `/healthz` on a connection of its own, closed after: a pooled connection would keep Deno 2.5's
 * failed accept loop from reporting (it waits for that server's connections to end).
 */
async function health(origin: string): Promise<{ ok: boolean; connections: number }> {
  const client = Deno.createHttpClient({});
  try {
    return await (await fetch(`${origin}/healthz`, { client })).json();
  } finally {
    client.close();
  }
}

Deno.test("readFdLimit reads the soft limit from /proc/self/limits; the cap keeps a reserve", () => {
  const limits = "Limit                     Soft Limit           Hard Limit           Units\n" +
    "Max open files            1024                 524288               files\n";
  assert.equal(readFdLimit(() => limits), 1024);
  assert.equal(readFdLimit(() => limits.replace("1024 ", "unlimited ")), null);
  assert.equal(readFdLimit(() => "no such line"), null);
  assert.equal(
    readFdLimit(() => {
      throw new Deno.errors.NotFound("/proc/self/limits");
    }),
    null,
  );
  assert.equal(connectionsThatFit(256), 192);
  assert.equal(connectionsThatFit(1024), 1024 - fdReserve(1024));
  assert.equal(connectionsThatFit(20_000), 18_000);
  assert.equal(connectionsThatFit(40), 0);
  assert.equal(connectionsThatFit(null), Infinity);
});

Deno.test("probeFreeFds counts the descriptors it can open, and closes them", () => {
  let open = 0, closed = 0;
  const opener = (limit: number) => () => {
    if (open === limit) throw new Error("Too many open files (os error 24): open '/dev/null'");
    open++;
    return { close: () => void closed++ };
  };
  assert.equal(probeFreeFds(1000, opener(228)), 228);
  assert.equal(closed, 228);
  open = closed = 0;
  assert.equal(probeFreeFds(100, opener(228)), Infinity, "enough fit: no bound");
  assert.equal(closed, 100);
  open = closed = 0;
  assert.equal(probeFreeFds(100, opener(0)), null, "none could be opened: unknown");
  const denied = () => {
    throw new Deno.errors.NotCapable("Requires read access to /dev/null");
  };
  assert.equal(probeFreeFds(100, denied), null);
});

Deno.test({
  name:
    "without --allow-all (no /proc): the free descriptors are counted, and the cap fits under them",
  ignore: Deno.build.os !== "linux",
  async fn() {
    await using server = await startLimited(
      256,
      { MAX_CONNECTIONS_PER_IP: "1000" },
      ["--allow-net", "--allow-read", "--allow-env"],
    );
    const { line } = await server.waitFor(/^limit setting=maxConnections/);
    const free = Number(line.match(/freeFds=(\d+)/)?.[1]);
    const effective = Number(line.match(/effective=(\d+)/)?.[1]);
    assert.ok(free > 150 && free < 256, line);
    assert.equal(effective, free - fdReserve(free), line);
    const sockets: RawClient[] = [];
    try {
      while (sockets.length < effective) sockets.push(await RawClient.connect(server.port));
      const { status, conn } = await upgrade(server.port);
      conn.close();
      assert.equal(status, 503, "one past the cap");
      assert.equal((await health(server.origin)).connections, effective);
    } finally {
      for (const socket of sockets) socket.close();
    }
  },
});

Deno.test({
  name: "under ulimit -n 256: upgrades past the cap get 503, an fd flood does not kill the server",
  ignore: Deno.build.os !== "linux",
  async fn() {
    await using server = await startLimited(256, { MAX_CONNECTIONS_PER_IP: "1000" });
    const { line } = await server.waitFor(/^limit setting=maxConnections/);
    assert.match(line, /configured=10000 effective=192 fdLimit=256 reserve=64/);

    // A conversation that must go on through everything below.
    const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
    await using _ada = ada;
    const { client: bob } = await TestClient.join(server.wsUrl, "lobby", "bob");
    await using _bob = bob;
    const chat = async (text: string) => {
      ada.send({ type: "say", text, cid: text.replaceAll(" ", "-") });
      assert.equal((await bob.next("message", (m) => m.text === text)).text, text);
    };

    // Fill the cap; the next upgrades are refused with 503 (and their connections closed by us).
    const sockets: RawClient[] = [];
    try {
      while (sockets.length < 190) sockets.push(await RawClient.connect(server.port));
      const refused: number[] = [];
      for (let i = 0; i < 40; i++) {
        const { status, conn } = await upgrade(server.port);
        refused.push(status);
        conn.close();
      }
      assert.deepEqual(new Set(refused), new Set([503]), "every upgrade past the cap: 503");
      assert.equal((await health(server.origin)).connections, 192);
      await chat("at the cap");

      // Idle connections hold descriptors no cap counts: Deno's accept() fails with EMFILE.
      const stoppedBefore = server.output.length;
      const idle: Deno.TcpConn[] = [];
      for (let i = 0; i < 100; i++) {
        idle.push(
          ...await Deno.connect({ hostname: "127.0.0.1", port: server.port }).then(
            (conn) => [conn],
            () => [], // Refused while no listener is open.
          ),
        );
      }
      await chat("during the flood");
      for (const conn of idle) conn.close();
      // Deno 2.9 reports it during the flood, Deno 2.5 once the flood's connections are gone.
      await server.waitFor(/^The listener stopped \(.*Too many open files/, stoppedBefore);

      // Once the flood is gone the listener is back; each round waits for the guard's next report.
      let answered = false;
      for (let round = 0, from = stoppedBefore; round < 10 && !answered; round++) {
        const listening = await server.waitFor(/^Listening again on /, from);
        from = listening.index + 1;
        const report = await health(server.origin).catch(() => null);
        if (!report) continue;
        assert.equal(report.ok, true);
        assert.equal(report.connections, 192);
        answered = true;
      }
      assert.ok(answered, "/healthz answers after the flood");
      await chat("after the flood");
      assert.ok(!server.output.some((l) => /Uncaught/.test(l)), server.output.join("\n"));
    } finally {
      for (const socket of sockets) socket.close();
    }
  },
});
