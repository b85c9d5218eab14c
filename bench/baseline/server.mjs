/**
 * The benchmark's baseline: the classic Node + `ws` chat server from the
 * tutorials. On `join` it remembers the room and name; on `say` it builds the
 * same `message` object as the Deno server (id counting per room, ts from
 * Date.now()), acks the sender, and loops over `wss.clients` sending
 * `JSON.stringify(message)` to every OPEN socket in the room. No storage, no
 * backpressure, no validation beyond what the benchmark needs.
 *
 * Listens on 127.0.0.1 and `PORT` (0 picks a free port) and prints
 * `Listening on http://127.0.0.1:PORT/`. `GET /healthz` answers `{"ok":true}`.
 */

import { createServer } from "node:http";
import process from "node:process";
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";

// `require` rather than `import`, so that `deno check bench/` does not try to resolve the npm
// package: this file runs under Node only, with `ws` from ./node_modules.
const { WebSocket, WebSocketServer } = createRequire(import.meta.url)("ws");

const HOST = "127.0.0.1";
const PORT = Number(process.env.PORT ?? "0");

/** Next message id per room. */
const nextIds = new Map();

const server = createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify({ ok: true, connections: wss.clients.size }));
    return;
  }
  res.writeHead(404, { "content-type": "text/plain" });
  res.end("Not found");
});

const wss = new WebSocketServer({ server, path: "/ws" });

wss.on("connection", (ws) => {
  ws.userId = randomUUID().replaceAll("-", "");
  ws.on("error", () => {});
  ws.on("message", (data, isBinary) => {
    if (isBinary) return;
    let msg;
    try {
      msg = JSON.parse(data.toString());
    } catch {
      return;
    }
    if (msg.type === "join" && ws.room === undefined) {
      ws.room = String(msg.room);
      ws.name = String(msg.name);
      ws.send(JSON.stringify({
        type: "welcome",
        id: ws.userId,
        token: "",
        room: ws.room,
        name: ws.name,
        members: [],
        history: [],
      }));
    } else if (msg.type === "say" && ws.room !== undefined) {
      const id = (nextIds.get(ws.room) ?? 0) + 1;
      nextIds.set(ws.room, id);
      const message = {
        type: "message",
        id,
        room: ws.room,
        userId: ws.userId,
        name: ws.name,
        text: String(msg.text),
        ts: Date.now(),
        cid: String(msg.cid),
      };
      ws.send(JSON.stringify({ type: "ack", cid: message.cid, id }));
      const frame = JSON.stringify(message);
      for (const client of wss.clients) {
        if (client.room === ws.room && client.readyState === WebSocket.OPEN) client.send(frame);
      }
    }
  });
});

server.listen(PORT, HOST, () => {
  const { port } = server.address();
  console.log(`Listening on http://${HOST}:${port}/`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    for (const client of wss.clients) client.terminate();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 500).unref();
  });
}
