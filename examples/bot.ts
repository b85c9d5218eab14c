/**
 * A bot in a few lines: posts one message through the server API, then
 * reads the room's history.
 *
 *     API_TOKEN=… CHAT_URL=http://localhost:8000 deno run --allow-net --allow-env examples/bot.ts
 *
 * @module
 */

const base = Deno.env.get("CHAT_URL") ?? "http://localhost:8000";
const headers = {
  authorization: `Bearer ${Deno.env.get("API_TOKEN")}`,
  "content-type": "application/json",
};
const room = `${base}/api/v1/rooms/lobby/messages`;

// The cid makes a retry safe: the same cid is stored once.
const posted = await fetch(room, {
  method: "POST",
  headers,
  body: JSON.stringify({ name: "deploy-bot", text: "Deployed v1.2.3", cid: crypto.randomUUID() }),
});
if (!posted.ok) throw new Error(`POST ${posted.status}: ${await posted.text()}`);
console.log("posted message", (await posted.json()).id);

const history = await fetch(`${room}?since=0&limit=10`, { headers });
const { messages } = await history.json();
for (const m of messages) console.log(`#${m.id} ${m.name}: ${m.text}`);
