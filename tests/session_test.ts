import assert from "node:assert/strict";
import { SessionSigner } from "../src/auth/session.ts";

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
