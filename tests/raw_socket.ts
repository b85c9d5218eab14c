/**
 * A bare-bones WebSocket client over a TCP connection, for tests that need
 * what a browser never does: a client that stops reading.
 *
 * @module
 */

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();

/** A decoded server frame. */
export type RawFrame = { type: "text"; text: string } | {
  type: "close";
  code: number;
  reason: string;
};

/** A WebSocket client that reads only when asked to. */
export class RawClient {
  #conn: Deno.TcpConn;
  #buffer = new Uint8Array(0);

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Connects to `port` on 127.0.0.1 and completes the upgrade to `/ws`. */
  static async connect(port: number): Promise<RawClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const client = new RawClient(conn);
    await conn.write(ENCODER.encode(
      `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
        "Sec-WebSocket-Version: 13\r\n\r\n",
    ));
    while (true) {
      const end = DECODER.decode(client.#buffer).indexOf("\r\n\r\n");
      if (end >= 0) {
        const head = DECODER.decode(client.#buffer).slice(0, end);
        if (!head.startsWith("HTTP/1.1 101")) throw new Error(`Upgrade refused: ${head}`);
        client.#buffer = client.#buffer.subarray(ENCODER.encode(head).length + 4);
        return client;
      }
      if (!await client.#fill()) throw new Error("Connection closed during the upgrade");
    }
  }

  /** Sends one masked text frame. */
  async send(text: string): Promise<void> {
    const payload = ENCODER.encode(text);
    const length = payload.length;
    const head = length < 126
      ? [0x81, 0x80 | length]
      : length < 65536
      ? [0x81, 0x80 | 126, length >> 8, length & 0xff]
      : [
        0x81,
        0x80 | 127,
        0,
        0,
        0,
        0,
        (length >>> 24) & 0xff,
        (length >> 16) & 0xff,
        (length >> 8) & 0xff,
        length & 0xff,
      ];
    const mask = crypto.getRandomValues(new Uint8Array(4));
    const frame = new Uint8Array(head.length + 4 + length);
    frame.set(head);
    frame.set(mask, head.length);
    for (let i = 0; i < length; i++) frame[head.length + 4 + i] = payload[i] ^ mask[i % 4];
    for (let written = 0; written < frame.length;) {
      written += await this.#conn.write(frame.subarray(written));
    }
  }

  /** Reads the next text or close frame, or `null` at the end of the stream. */
  async next(): Promise<RawFrame | null> {
    while (true) {
      const frame = this.#parse();
      if (frame) return frame;
      if (!await this.#fill()) return null;
    }
  }

  /** Closes the TCP connection. */
  close(): void {
    this.#conn.close();
  }

  #parse(): RawFrame | null | undefined {
    const b = this.#buffer;
    if (b.length < 2) return undefined;
    const opcode = b[0] & 0x0f;
    let length = b[1] & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (b.length < 4) return undefined;
      length = (b[2] << 8) | b[3];
      offset = 4;
    } else if (length === 127) {
      if (b.length < 10) return undefined;
      length = Number(new DataView(b.buffer, b.byteOffset + 2, 8).getBigUint64(0));
      offset = 10;
    }
    if (b.length < offset + length) return undefined;
    const payload = b.subarray(offset, offset + length);
    this.#buffer = b.subarray(offset + length);
    if (opcode === 0x8) {
      const code = payload.length >= 2 ? (payload[0] << 8) | payload[1] : 1005;
      return { type: "close", code, reason: DECODER.decode(payload.subarray(2)) };
    }
    if (opcode === 0x1) return { type: "text", text: DECODER.decode(payload) };
    return this.#parse(); // ping, pong: skip
  }

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(256 * 1024);
    const n = await this.#conn.read(chunk);
    if (n === null) return false;
    const merged = new Uint8Array(this.#buffer.length + n);
    merged.set(this.#buffer);
    merged.set(chunk.subarray(0, n), this.#buffer.length);
    this.#buffer = merged;
    return true;
  }
}
