/**
 * Helpers for tests of accounts over HTTP: a JSON call, the session cookie
 * a response set, and registering a name with a software authenticator.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { TestServer } from "./helpers.ts";
import type { SoftAuthenticator } from "./soft_authenticator.ts";

/** An answer: status, headers and the JSON body (or `null`). */
// deno-lint-ignore no-explicit-any
export type Answer = { status: number; headers: Headers; body: any };

/** Calls `path` on `server`; `json` is sent as the body (POST unless `method` says otherwise). */
export async function call(
  server: Pick<TestServer, "origin">,
  path: string,
  init: { method?: string; json?: unknown; body?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...init.headers };
  let body = init.body;
  if (init.json !== undefined) {
    headers["content-type"] ??= "application/json";
    body = JSON.stringify(init.json);
  }
  const method = init.method ?? (body === undefined ? "GET" : "POST");
  const response = await fetch(`${server.origin}${path}`, { method, headers, body });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text ? JSON.parse(text) : null,
  };
}

/** The cookie a response set, as a request sends it back (`chat_session=…`). */
export function cookieOf(answer: Answer): string {
  const set = answer.headers.get("set-cookie");
  assert.ok(set, "a Set-Cookie header");
  return set.split(";")[0];
}

/** Registers `name` with `authenticator`; answers the account and the session cookie. */
export async function registerAccount(
  server: Pick<TestServer, "origin">,
  authenticator: SoftAuthenticator,
  name: string,
  origin = server.origin,
): Promise<{ account: { id: string; name: string }; cookie: string; answer: Answer }> {
  const options = await call(server, "/auth/register/options", { json: { name } });
  assert.equal(options.status, 200, JSON.stringify(options.body));
  const response = await authenticator.create(options.body, origin);
  const answer = await call(server, "/auth/register/verify", { json: { response } });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return { account: answer.body.account, cookie: cookieOf(answer), answer };
}
