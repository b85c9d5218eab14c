import assert from "node:assert/strict";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from "jose";
import { AuthError, createAuthenticator } from "../src/auth/jwt.ts";
import { startServer, TestClient } from "./helpers.ts";

const SECRET = "test secret that is long enough";

async function token(claims: Record<string, unknown>, secret = SECRET): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setIssuedAt();
  if (!("exp" in claims)) jwt.setExpirationTime("1h");
  return await jwt.sign(new TextEncoder().encode(secret));
}

async function startAuthServer() {
  return await startServer({ authenticate: await createAuthenticator({ jwtSecret: SECRET }) });
}

async function refusedJoin(auth: string | undefined, code: string, reason: string) {
  await using server = await startAuthServer();
  const client = await TestClient.connect(server.wsUrl);
  client.send({ type: "join", room: "lobby", name: "ada", auth });
  assert.equal((await client.next("error")).code, code);
  const event = await client.waitClosed();
  assert.deepEqual([event.code, event.reason], [1008, reason]);
}

Deno.test("with auth on, a join without a token is refused with 1008", async () => {
  await refusedJoin(undefined, "auth_required", "authentication required");
});

Deno.test("a token with a bad signature is refused with 1008", async () => {
  await refusedJoin(
    await token({ sub: "alice" }, "another secret"),
    "auth_invalid",
    "invalid token",
  );
});

Deno.test("an expired token is refused with 1008", async () => {
  const exp = Math.floor(Date.now() / 1000) - 60;
  await refusedJoin(await token({ sub: "alice", exp }), "auth_expired", "token expired");
});

Deno.test("a valid token gets in with its sub as id and its name claim as name", async () => {
  await using server = await startAuthServer();
  await using client = await TestClient.connect(server.wsUrl);
  client.send({
    type: "join",
    room: "lobby",
    name: "ignored",
    auth: await token({ sub: "alice", name: "Alice" }),
  });
  const welcome = await client.next("welcome");
  assert.deepEqual([welcome.id, welcome.name, welcome.token], ["alice", "Alice", undefined]);
  client.send({ type: "say", text: "hi", cid: "c1", userId: "mallory" });
  const message = await client.next("message");
  assert.deepEqual([message.userId, message.name], ["alice", "Alice"]);
});

Deno.test("a room outside the token's rooms claim is refused, others are allowed", async () => {
  await using server = await startAuthServer();
  await using client = await TestClient.connect(server.wsUrl);
  const auth = await token({ sub: "alice", rooms: ["team"] });
  client.send({ type: "join", room: "lobby", name: "alice", auth });
  const error = await client.next("error");
  assert.equal(error.code, "room_forbidden");
  assert.equal(error.message, "Cannot join room: your token does not allow it");
  client.send({ type: "join", room: "team", name: "alice", auth });
  assert.equal((await client.next("welcome")).room, "team");
});

Deno.test("a token that expires while connected closes the socket with 1008", async () => {
  await using server = await startAuthServer();
  const client = await TestClient.connect(server.wsUrl);
  const exp = Math.floor(Date.now() / 1000) + 2;
  client.send({ type: "join", room: "lobby", name: "ada", auth: await token({ sub: "bob", exp }) });
  await client.next("welcome");
  const event = await client.waitClosed("the token to expire");
  assert.deepEqual([event.code, event.reason], [1008, "token expired"]);
});

Deno.test("another user cannot take a name held by a live user", async () => {
  await using server = await startAuthServer();
  await using alice = await TestClient.connect(server.wsUrl);
  alice.send({ type: "join", room: "lobby", name: "Al", auth: await token({ sub: "alice" }) });
  await alice.next("welcome");
  await using mallory = await TestClient.connect(server.wsUrl);
  mallory.send({ type: "join", room: "lobby", name: "Al", auth: await token({ sub: "mallory" }) });
  assert.equal((await mallory.next("error")).code, "name_taken");
});

Deno.test("an RS256 token verifies against AUTH_PUBLIC_KEY", async () => {
  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  const authenticate = await createAuthenticator({ publicKey: await exportSPKI(publicKey) });
  const jwt = await new SignJWT({ sub: "rsa-user" }).setProtectedHeader({ alg: "RS256" })
    .setExpirationTime("1h").sign(privateKey);
  assert.equal((await authenticate!(jwt)).userId, "rsa-user");
  await assert.rejects(authenticate!(await token({ sub: "hs-user" })), /token is invalid/);
});

Deno.test("an ES256 token verifies against keys from AUTH_JWKS_URL", async () => {
  const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = { ...await exportJWK(publicKey), kid: "k1", alg: "ES256" };
  await using jwks = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => Response.json({ keys: [jwk] }),
  );
  const authenticate = await createAuthenticator({
    jwksUrl: `http://127.0.0.1:${jwks.addr.port}/.well-known/jwks.json`,
  });
  const jwt = await new SignJWT({ sub: "ec-user", name: "Eve" })
    .setProtectedHeader({ alg: "ES256", kid: "k1" }).setExpirationTime("1h").sign(privateKey);
  assert.deepEqual(await authenticate!(jwt), {
    userId: "ec-user",
    name: "Eve",
    rooms: undefined,
    expiresAt: (await authenticate!(jwt)).expiresAt,
  });
});

Deno.test("a rooms claim that is a string is auth_invalid", async () => {
  const authenticate = await createAuthenticator({ jwtSecret: SECRET });
  await assert.rejects(
    authenticate!(await token({ sub: "alice", rooms: "team" })),
    (error: AuthError) =>
      error instanceof AuthError && error.code === "auth_invalid" &&
      error.message === "Cannot join room: the token's 'rooms' claim must be an array of strings",
  );
});

Deno.test("a rooms claim holding a non-string, or of another type, is auth_invalid", async () => {
  const authenticate = await createAuthenticator({ jwtSecret: SECRET });
  for (const rooms of [["team", 5], [null], [["team"]], [{}], null, {}, 1, true, ""]) {
    await assert.rejects(
      authenticate!(await token({ sub: "alice", rooms })),
      (error: AuthError) => error instanceof AuthError && error.code === "auth_invalid",
      JSON.stringify(rooms),
    );
  }
});

Deno.test("only an absent rooms claim allows every room; an empty one allows none", async () => {
  const authenticate = await createAuthenticator({ jwtSecret: SECRET });
  assert.equal((await authenticate!(await token({ sub: "alice" }))).rooms, undefined);
  assert.deepEqual((await authenticate!(await token({ sub: "alice", rooms: [] }))).rooms, []);
  assert.deepEqual(
    (await authenticate!(await token({ sub: "alice", rooms: ["team", "ｔｅａｍ２"] }))).rooms,
    ["team", "team2"],
    "normalized like a join's room",
  );
});

Deno.test("a join with a string rooms claim is refused with 1008, not let into every room", async () => {
  await refusedJoin(await token({ sub: "alice", rooms: "lobby" }), "auth_invalid", "invalid token");
});

Deno.test("a join with a non-string in the rooms claim is refused with 1008", async () => {
  await refusedJoin(
    await token({ sub: "alice", rooms: ["lobby", 42] }),
    "auth_invalid",
    "invalid token",
  );
});

Deno.test("a join with an empty rooms claim is room_forbidden", async () => {
  await using server = await startAuthServer();
  await using client = await TestClient.connect(server.wsUrl);
  client.send({
    type: "join",
    room: "lobby",
    name: "alice",
    auth: await token({ sub: "alice", rooms: [] }),
  });
  assert.equal((await client.next("error")).code, "room_forbidden");
});

Deno.test("a sub with a lone surrogate is auth_invalid", async () => {
  const authenticate = await createAuthenticator({ jwtSecret: SECRET });
  await assert.rejects(
    authenticate!(await token({ sub: "alice\uD800" })),
    (error: AuthError) => error instanceof AuthError && error.code === "auth_invalid",
  );
});
