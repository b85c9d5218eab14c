/**
 * Opens what the chat keeps state in and talks to other instances through:
 * Deno KV with a `BroadcastChannel` (or nothing, where the runtime has no
 * `BroadcastChannel`), or Redis for both; the roster, the quotas and the
 * accounts live in the same store. Also settles the session secret: the
 * configured one, or one random secret shared by every instance through
 * the store.
 *
 * @module
 */

import { resolve } from "node:path";
import { BroadcastChannelBus } from "./bus/broadcast_channel_bus.ts";
import type { Bus } from "./bus/bus.ts";
import { LocalBus } from "./bus/local_bus.ts";
import { RedisBus } from "./bus/redis_bus.ts";
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";
import { connectRedis, type RedisConnection } from "./redis/connection.ts";
import { CLOSED, type ServiceState } from "./state.ts";
import type { HistoryStore } from "./store/history.ts";
import { KvHistory } from "./store/kv_history.ts";
import { KvQuota } from "./store/kv_quota.ts";
import { backoff, isLocked } from "./store/kv_contention.ts";
import { RedisHistory } from "./store/redis_history.ts";
import { RedisQuota } from "./store/redis_quota.ts";
import { KvRoster } from "./store/kv_roster.ts";
import { RedisRoster } from "./store/redis_roster.ts";
import type { Quota } from "./store/quota.ts";
import { KvModeration } from "./store/kv_moderation.ts";
import type { ModerationStore } from "./store/moderation.ts";
import { RedisModeration } from "./store/redis_moderation.ts";
import type { Roster } from "./store/roster.ts";
import type { AccountStore } from "./store/accounts.ts";
import { KvAccounts } from "./store/kv_accounts.ts";
import { RedisAccounts } from "./store/redis_accounts.ts";
import type { FileStore } from "./store/files.ts";
import { KvFiles } from "./store/kv_files.ts";
import { KvUsage } from "./store/kv_usage.ts";
import { RedisFiles } from "./store/redis_files.ts";
import { RedisUsage } from "./store/redis_usage.ts";
import { S3Files } from "./store/s3_files.ts";
import type { Usage } from "./store/usage.ts";

/** The opened backends. */
export interface Backends {
  history: HistoryStore;
  /** Name claims and presence in the shared store. */
  roster: Roster;
  /** Counters per key and time window in the shared store, so every instance counts alike. */
  quota: Quota;
  /** Moderation: owners, moderators, mutes, bans, slow mode, topics, reports, audit logs. */
  moderation: ModerationStore;
  /** Accounts, their passkeys and sessions (`/auth/`), in the shared store. */
  accounts: AccountStore;
  /** Uploaded files: in S3 when `config.s3` is set, else in the history's store. */
  files: FileStore;
  /** Amounts per key and time window (bytes uploaded per user and room) in the shared store. */
  usage: Usage;
  /** Whether the store's change notifications cross instances (Deno Deploy's KV). */
  watchStore: boolean;
  bus: Bus;
  /** Whether the store is reachable, for `/healthz`. */
  storeState: () => ServiceState;
  /** The secret that signs session tokens. */
  sessionSecret: string;
  /** What this instance runs on, for the startup log line. */
  description: string;
  /** Closes the bus and the store. */
  close(): Promise<void>;
}

const SECRET_KEY = "chat:session-secret";
const SECRET_ATTEMPTS = 20;

/**
 * Opens the backends `config` names. Throws when the store cannot be
 * opened; the caller retries.
 *
 * @example Usage
 * ```ts ignore
 * import { loadConfig } from "./config.ts";
 * const backends = await openBackends(loadConfig({ KV_PATH: ":memory:" }));
 * await backends.close();
 * ```
 */
export async function openBackends(config: Config, log: Logger = () => {}): Promise<Backends> {
  return config.redisUrl
    ? await openRedis(config, config.redisUrl, log)
    : await openKv(config, log);
}

/**
 * Many processes or machines: Redis holds the history and carries the
 * fan-out. Each connection logs when it goes down or comes back
 * (`store state=down reason=…`, `bus state=ok`).
 */
async function openRedis(config: Config, url: string, log: Logger): Promise<Backends> {
  const report = (part: "store" | "bus") => (state: ServiceState) => {
    if (state === CLOSED) return; // closed by us, at shutdown
    log(
      state.ok
        ? { event: part, state: "ok" }
        : { event: part, state: "down", reason: state.reason ?? "unknown" },
    );
  };
  const redis = await connectRedis(url, { onStateChange: report("store") });
  let sessionSecret: string;
  try {
    sessionSecret = config.sessionSecret ?? await sharedRedisSecret(redis);
  } catch (error) {
    await redis.close();
    throw error;
  }
  const bus = await RedisBus.connect(url, { onStateChange: report("bus") });
  return {
    history: new RedisHistory(redis.client, {
      limit: config.historyLimit,
      maxRooms: config.maxRooms,
    }),
    roster: new RedisRoster(redis.client),
    quota: new RedisQuota(redis.client),
    moderation: new RedisModeration(redis.client),
    accounts: new RedisAccounts(redis.client),
    files: config.s3 ? new S3Files(config.s3) : new RedisFiles(redis.client),
    usage: new RedisUsage(redis.client),
    watchStore: false,
    bus,
    storeState: () => redis.state,
    sessionSecret,
    description: "Redis history and pub/sub" + filesDescription(config),
    async close() {
      await bus.close();
      await redis.close();
    },
  };
}

/**
 * One process, `deno serve --parallel` or Deno Deploy: Deno KV, and a
 * `BroadcastChannel` where the runtime has one (Deno 2.6 and later; Deno
 * Deploy runs 2.5, where instances meet through KV alone).
 */
async function openKv(config: Config, log: Logger): Promise<Backends> {
  const kv = await openKvFile(config.kvPath);
  try {
    const sessionSecret = config.sessionSecret ?? await sharedSecret(kv);
    const bus: Bus = typeof BroadcastChannel === "function"
      ? new BroadcastChannelBus()
      : new LocalBus();
    const history = new KvHistory(kv, {
      limit: config.historyLimit,
      maxRooms: config.maxRooms,
      // A remote KV (Deno Deploy's) may allow fewer checks per commit than a local file.
      maxChecks: config.kvPath === undefined ? 10 : 100,
      log,
    });
    return {
      history,
      roster: new KvRoster(kv),
      quota: new KvQuota(kv),
      moderation: new KvModeration(kv),
      accounts: new KvAccounts(kv),
      files: config.s3 ? new S3Files(config.s3) : new KvFiles(kv),
      usage: new KvUsage(kv),
      // The platform's KV (no path) pushes other instances' writes; a local file does not.
      watchStore: config.kvPath === undefined,
      bus,
      storeState: () => ({ ok: true }),
      sessionSecret,
      description: `Deno KV (${config.kvPath ?? "the platform's"})` +
        (bus instanceof BroadcastChannelBus ? " and BroadcastChannel" : ", no BroadcastChannel") +
        filesDescription(config),
      async close() {
        await bus.close();
        await history.idle(); // a pruning in flight finishes before the file closes
        kv.close();
      },
    };
  } catch (error) {
    kv.close();
    throw error;
  }
}

/**
 * Opens KV; a file that another process (or `--parallel` isolate) is
 * creating at the same moment answers "database is locked" for a moment, so
 * that is retried.
 */
async function openKvFile(path: string | undefined): Promise<Deno.Kv> {
  // Deno 2.5 (Deno Deploy's version) answers NotFound for a relative path, such as the
  // default `./chat.kv`: open it by its absolute path.
  if (path !== undefined && path !== ":memory:") path = resolve(path);
  for (let attempt = 1;; attempt++) {
    try {
      return await Deno.openKv(path);
    } catch (error) {
      if (!isLocked(error) || attempt >= SECRET_ATTEMPTS) throw error;
      await backoff(attempt, 20);
    }
  }
}

/**
 * One random secret for every instance and restart, kept in Redis. Without
 * Redis there is none to share, so the start fails (and is retried) rather
 * than sign tokens the other instances would refuse.
 */
async function sharedRedisSecret(redis: RedisConnection): Promise<string> {
  if (!redis.state.ok) {
    throw new Error(
      `Cannot share a session secret: Redis is unreachable (${redis.state.reason}); set SESSION_SECRET to start without it`,
    );
  }
  await redis.client.set(SECRET_KEY, randomSecret(), { NX: true });
  const secret = await redis.client.get(SECRET_KEY);
  if (!secret) throw new Error("Cannot share a session secret: Redis lost it, retrying");
  return secret;
}

/** One random secret for every instance and restart, kept in KV. */
async function sharedSecret(kv: Deno.Kv): Promise<string> {
  const key = ["config", "session-secret"];
  for (let attempt = 1;; attempt++) {
    try {
      const stored = await kv.get<string>(key);
      if (stored.value) return stored.value;
      const secret = randomSecret();
      const { ok } = await kv.atomic().check(stored).set(key, secret).commit();
      if (ok) return secret;
    } catch (error) {
      // Another process holds the file's write lock for a moment: retry.
      if (!isLocked(error) || attempt >= SECRET_ATTEMPTS) throw error;
      await backoff(attempt, 20);
    }
  }
}

/** Where files go, for the startup line, when not in the history's store. */
function filesDescription(config: Config): string {
  return config.s3 ? `; files in S3 (${new URL(config.s3.endpoint).host}/${config.s3.bucket})` : "";
}

function randomSecret(): string {
  return crypto.randomUUID() + crypto.randomUUID();
}
