import assert from "node:assert/strict";
import { SessionSigner } from "../src/auth/session.ts";
import { startServer, TestClient } from "./helpers.ts";

Deno.test("an issued token verifies to its id", async () => {
  const signer = await SessionSigner.create("secret");
  const { id, token } = await signer.issue();
  assert.match(id, /^[0-9a-f]{16}$/);
  assert.equal(await signer.verify(token), id);
});

Deno.test("a token signed with another secret, tampered or malformed is refused", async () => {
  const signer = await SessionSigner.create("secret");
  const other = await SessionSigner.create("other secret");
  const { id, token } = await other.issue();
  assert.equal(await signer.verify(token), null);
  const [, signature] = (await signer.issue()).token.split(".");
  assert.equal(await signer.verify(`${id}.${signature}`), null);
  for (const bad of ["", ".", "abc", `${id}.`, `${id}.!!`, `${id}.${signature}.x`]) {
    assert.equal(await signer.verify(bad), null, bad);
  }
});

Deno.test("a token whose signature is one base64 character (<id>.A) is refused, not thrown", async () => {
  const signer = await SessionSigner.create("secret");
  const { id } = await signer.issue();
  assert.equal(await signer.verify(`${id}.A`), null);
});

Deno.test("malformed signatures of every length and shape verify to null", async () => {
  const signer = await SessionSigner.create("secret");
  const { id, token } = await signer.issue();
  const signature = token.split(".")[1];
  const bad = [
    ...Array.from({ length: 50 }, (_, n) => `${id}.${"A".repeat(n + 1)}`),
    `${id}.${signature}=`,
    `${id}.${signature.slice(0, -1)}`,
    `${id}.${signature}A`,
    `${id}.${signature.replace(/-/g, "+").replace(/_/g, "/")}x`,
    `${id}.${signature.slice(0, 42)}${signature[42] === "A" ? "B" : "A"}`,
    `${id}.====`,
    `${id}.A===`,
    `${id}.\u00E9\u00E9\u00E9\u00E9`,
    `${id}.${"A".repeat(100_000)}`,
    `${id.toUpperCase()}.${signature}`,
    `${id}..${signature}`,
    `.${signature}`,
  ];
  for (const candidate of bad) {
    assert.equal(await signer.verify(candidate), null, candidate.slice(0, 80));
  }
  assert.equal(await signer.verify(token), id, "the real token still verifies");
});

Deno.test("a signature with stray bits in its last character is refused", async () => {
  const signer = await SessionSigner.create("secret");
  const { id, token } = await signer.issue();
  const signature = token.split(".")[1];
  // 32 bytes take 43 characters; the last one carries 4 bits and 2 unused ones.
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const last = alphabet.indexOf(signature[42]);
  for (const stray of [1, 2, 3]) {
    const twin = `${id}.${signature.slice(0, 42)}${alphabet[last ^ stray]}`;
    assert.equal(await signer.verify(twin), null, twin);
  }
});

Deno.test("a join with a malformed session token gets a welcome with a fresh id", async () => {
  await using server = await startServer();
  const first = await TestClient.join(server.wsUrl, "lobby", "ada");
  const id = first.welcome.id;
  await first.client.close();
  for (const token of [`${id}.A`, `${id}.AB`, `${id}.A===`, `${id}.`, `${id}`, "x.y.z"]) {
    await using client = await TestClient.connect(server.wsUrl);
    client.send({ type: "join", room: "lobby", name: "ada", token });
    const welcome = await client.next("welcome");
    assert.notEqual(welcome.id, id, token);
    assert.match(welcome.id, /^[0-9a-f]{16}$/);
    assert.ok(welcome.token?.startsWith(`${welcome.id}.`), token);
  }
});
