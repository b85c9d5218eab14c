/**
 * Which site a passkey belongs to: the WebAuthn relying party (its RP ID, a
 * host name) and the page origins a ceremony's answer may come from. A
 * passkey made for one RP ID works only there, so the choice is fixed by
 * the configuration, not by what a request claims:
 *
 * 1. A request whose `Origin` is one of the server's public origins
 *    (`PUBLIC_ORIGIN`, and on Deno Deploy the app's URLs) gets the public
 *    relying party: the host name of the first public origin, answered from
 *    any public origin.
 * 2. Else a request to a `localhost` name or a loopback address gets the
 *    local one: `localhost` (or the `*.localhost` name itself), answered
 *    from the request's own origin only. Browsers refuse passkeys on IP
 *    addresses: open `http://localhost:8000`, not `http://127.0.0.1:8000`.
 * 3. Else, with public origins configured, the public one (a request without
 *    `Origin`, such as a test's); without them, none.
 *
 * @module
 */

/** A relying party: the RP ID and the origins its ceremonies may be answered from. */
export interface RelyingParty {
  /** The RP ID: a host name, such as `chat.example.com` or `localhost`. */
  rpId: string;
  /** Origins a ceremony's answer may come from (`clientDataJSON.origin`). */
  origins: string[];
}

/**
 * The relying party for `req`, given the server's public origins; `null`
 * when there is none (a host name that is neither local nor configured).
 *
 * @example Usage
 * ```ts
 * import { relyingParty } from "./relying_party.ts";
 * const req = new Request("http://localhost:8000/auth/signin/options", { method: "POST" });
 * relyingParty(req, []); // { rpId: "localhost", origins: ["http://localhost:8000"] }
 * const pub = new Request("http://10.0.0.5:8000/auth/me", {
 *   headers: { origin: "https://chat.example.com" },
 * });
 * relyingParty(pub, ["https://chat.example.com"]); // { rpId: "chat.example.com", … }
 * ```
 */
export function relyingParty(req: Request, publicOrigins: readonly string[]): RelyingParty | null {
  const origin = req.headers.get("origin");
  const pub = publicParty(publicOrigins);
  if (pub && origin !== null && pub.origins.includes(origin)) return pub;
  const own = ownOrigin(req);
  if (own && isLocal(own.hostname)) {
    const rpId = own.hostname.endsWith("localhost") ? own.hostname : "localhost";
    return { rpId, origins: [own.origin] };
  }
  return pub;
}

/** The public relying party of `origins`: the first one's host name; `null` for none. */
function publicParty(origins: readonly string[]): RelyingParty | null {
  const first = origins.length > 0 ? URL.parse(origins[0]) : null;
  return first ? { rpId: first.hostname, origins: [...origins] } : null;
}

/** The request's own origin, from its URL and `Host`. */
function ownOrigin(req: Request): URL | null {
  const url = URL.parse(req.url);
  if (!url) return null;
  return URL.parse(`${url.protocol}//${req.headers.get("host") ?? url.host}`);
}

/** `localhost`, a name under it, or a loopback address. */
function isLocal(hostname: string): boolean {
  return hostname === "localhost" || hostname.endsWith(".localhost") ||
    /^127\.\d+\.\d+\.\d+$/.test(hostname) || hostname === "[::1]";
}
