/**
 * SIGTERM to `deno serve main.ts` (a child process): clients whose frames
 * are still in flight get a clean 1001, and an upgrade while the server
 * drains gets 503 instead of a refused connection.
 */
import assert from "node:assert/strict";
import { TestClient, within } from "./helpers.ts";
import { startProcess } from "./process.ts";
import { RawClient } from "./raw_socket.ts";

async function tempKv(): Promise<{ path: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir();
  return {
    path: `${dir}/chat.kv`,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/**
 * A WebSocket client on a bare TCP connection: its writes resolve once the kernel has the
 * bytes, so a test knows its frames are in flight, and it sees a reset that a WebSocket API
 * would hide behind an abnormal close.
 */
class Wire {
  #conn: Deno.TcpConn;
  #buffer = new Uint8Array(0);

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  static async connect(port: number): Promise<Wire> {
    const wire = new Wire(await Deno.connect({ hostname: "127.0.0.1", port }));
    await wire.#write(new TextEncoder().encode(
      `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
        "Sec-WebSocket-Version: 13\r\n\r\n",
    ));
    while (true) {
      const end = new TextDecoder().decode(wire.#buffer).indexOf("\r\n\r\n");
      if (end >= 0) {
        assert.match(new TextDecoder().decode(wire.#buffer), /^HTTP\/1\.1 101/);
        wire.#buffer = wire.#buffer.subarray(end + 4);
        return wire;
      }
      assert.ok(await wire.#fill(), "the connection closed during the upgrade");
    }
  }

  /** Writes one masked frame (mask 0: the payload goes as it is). */
  send(opcode: number, payload: Uint8Array): Promise<void> {
    const n = payload.length;
    const head = n < 126
      ? [0x80 | opcode, 0x80 | n]
      : [0x80 | opcode, 0x80 | 126, n >> 8, n & 0xff];
    const frame = new Uint8Array(head.length + 4 + n);
    frame.set(head);
    frame.set(payload, head.length + 4);
    return this.#write(frame);
  }

  sendText(text: string): Promise<void> {
    return this.send(0x1, new TextEncoder().encode(text));
  }

  /**
   * Reads up to the server's Close, answers it with a Close, and reads on to the end:
   * `"1001 clean"` when the stream then ends, `"reset"` when the server reset it.
   */
  async closing(): Promise<string> {
    try {
      while (true) {
        const frame = this.#parse();
        if (!frame) {
          if (!await this.#fill()) return "end without a Close";
          continue;
        }
        if (frame.opcode !== 0x8) continue;
        const code = (frame.payload[0] << 8) | frame.payload[1];
        await this.send(0x8, frame.payload.slice(0, 2));
        while (await this.#fill()) { /* nothing more is expected */ }
        return `${code} clean`;
      }
    } catch (error) {
      if (error instanceof Deno.errors.ConnectionReset) return "reset";
      throw error;
    }
  }

  close(): void {
    this.#conn.close();
  }

  async #write(bytes: Uint8Array): Promise<void> {
    for (let written = 0; written < bytes.length;) {
      written += await this.#conn.write(bytes.subarray(written));
    }
  }

  #parse(): { opcode: number; payload: Uint8Array } | null {
    const b = this.#buffer;
    if (b.length < 2) return null;
    let length = b[1] & 0x7f, offset = 2;
    if (length === 126) [length, offset] = [(b[2] << 8) | b[3], 4];
    if (length === 127) {
      [length, offset] = [Number(new DataView(b.buffer, b.byteOffset + 2).getBigUint64(0)), 10];
    }
    if (b.length < offset + length) return null;
    this.#buffer = b.subarray(offset + length);
    return { opcode: b[0] & 0x0f, payload: b.subarray(offset, offset + length) };
  }

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    const n = await this.#conn.read(chunk);
    if (n === null) return false;
    const merged = new Uint8Array(this.#buffer.length + n);
    merged.set(this.#buffer);
    merged.set(chunk.subarray(0, n), this.#buffer.length);
    this.#buffer = merged;
    return true;
  }
}

Deno.test("SIGTERM with frames in flight: every client gets a clean 1001, none a reset", async () => {
  await using kv = await tempKv();
  await using server = await startProcess({ KV_PATH: kv.path });
  const wires: Wire[] = [];
  try {
    for (let i = 0; i < 8; i++) wires.push(await Wire.connect(server.port));
    // Each client writes a burst of large frames (each refused as too long, within the rate
    // limit's burst); once the kernel has them all, SIGTERM: the server has not read them yet.
    const large = JSON.stringify({ type: "say", text: "x".repeat(60_000), cid: "c" });
    await Promise.all(wires.map(async (wire, i) => {
      await wire.sendText(JSON.stringify({ type: "join", room: "lobby", name: `user${i}` }));
      for (let n = 0; n < 6; n++) await wire.sendText(large);
    }));
    const status = server.stop("SIGTERM");
    const endings = await Promise.all(
      wires.map((wire) => within(wire.closing(), "the server's Close")),
    );
    assert.deepEqual(endings, wires.map(() => "1001 clean"));
    assert.equal((await within(status, "the process to exit", 3000)).code, 0);
  } finally {
    for (const wire of wires) wire.close();
  }
});

Deno.test("an upgrade while the server drains gets 503, not a refused connection", async () => {
  await using kv = await tempKv();
  await using server = await startProcess({ KV_PATH: kv.path });
  const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
  // A client that never answers the server's Close keeps the drain going until the grace ends.
  const silent = await RawClient.connect(server.port);
  try {
    const status = server.stop("SIGTERM");
    await server.waitFor(/^SIGTERM: shutting down/);
    const response = await fetch(`${server.origin}/ws`, {
      headers: {
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
      },
    });
    assert.equal(response.status, 503);
    assert.equal(await response.text(), "Server is shutting down");
    const event = await ada.waitClosed();
    assert.equal(event.code, 1001);
    assert.ok(event.wasClean);
    const close = { type: "close", code: 1001, reason: "server is shutting down" };
    assert.deepEqual(await silent.next(), { type: "text", text: JSON.stringify(close) });
    assert.deepEqual(await silent.next(), close);
    assert.equal((await within(status, "the process to exit", 3000)).code, 0);
  } finally {
    silent.close();
  }
});
