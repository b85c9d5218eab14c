/**
 * The Lua scripts of `RedisHistory` (layout in `redis_history.ts`), and
 * how they run: by SHA-1, loaded again after a `SCRIPT FLUSH`. Each script
 * is one atomic step, however many server processes share the Redis.
 *
 * @example Usage
 * ```ts ignore
 * import { APPEND_SCRIPT, runScript } from "./redis_scripts.ts";
 * const reply = await runScript(client, APPEND_SCRIPT, keys, args);
 * ```
 *
 * @module
 */

import type { RedisClientType } from "redis";

/** What {@linkcode APPEND_SCRIPT} answers, as the second item of its reply. */
export const APPENDED = 0;
/** The cid was stored already: the first item is its id. */
export const DUPLICATE = 1;
/** A new room would not fit under `maxRooms`. */
export const ROOM_LIMIT = 2;
/** The changed message is no longer the one the fold was computed from: fold again. */
export const STALE = 3;
/** The room is a stream of the previous version: upgrade it first. */
export const LEGACY = 4;

/**
 * Appends one event under the room's next id, once per cid, and prunes.
 *
 * KEYS: seq, msgs, chg, floor, cid, room count, directory, legacy stream.
 * ARGV: limit; the event's JSON without its leading `{` and without `id`
 * (the script alone knows the id, and splices it in); cid TTL in ms; most
 * rooms; the room's name; the event's ts; `plain` or `change`; the changed
 * message's id; `1` when it is retained, else `0`; its JSON as the fold read
 * it; its folded JSON, or empty when the fold changes nothing.
 *
 * Replies `{id, APPENDED, …pruned}`, `{id, DUPLICATE}`, or `{0, ROOM_LIMIT
 * | STALE | LEGACY}`. A plain message past `limit` prunes the oldest and the
 * changes below it; a change past `limit` changes prunes the oldest change;
 * the floor keeps the highest id pruned. `pruned`: the JSON of each pruned
 * message that carried files, so that its files can go too.
 */
export const APPEND_SCRIPT = `
local seen = redis.call('GET', KEYS[5])
if seen then return {tonumber(seen), 1} end
if redis.call('EXISTS', KEYS[8]) == 1 then return {0, 4} end
local change = ARGV[7] == 'change'
local current
if change then
  current = redis.call('ZRANGE', KEYS[2], ARGV[8], ARGV[8], 'BYSCORE')[1]
  if ARGV[9] == '1' then
    if current ~= ARGV[10] then return {0, 3} end
  elseif current then
    return {0, 3}
  end
end
local id = redis.call('INCR', KEYS[1])
if id == 1 and redis.call('INCR', KEYS[6]) > tonumber(ARGV[4]) then
  redis.call('DECR', KEYS[6])
  redis.call('DEL', KEYS[1])
  return {0, 2}
end
local json = '{"id":' .. id .. ',' .. ARGV[2]
local limit = tonumber(ARGV[1])
local floor = tonumber(redis.call('GET', KEYS[4]) or '0')
local pruned = floor
local withFiles = {}
if change then
  redis.call('ZADD', KEYS[3], id, json)
  if ARGV[11] ~= '' then
    redis.call('ZREM', KEYS[2], current)
    redis.call('ZADD', KEYS[2], ARGV[8], ARGV[11])
  end
  local excess = redis.call('ZCARD', KEYS[3]) - limit
  if excess > 0 then
    local popped = redis.call('ZPOPMIN', KEYS[3], excess)
    pruned = math.max(pruned, tonumber(popped[#popped]))
  end
else
  redis.call('ZADD', KEYS[2], id, json)
  local excess = redis.call('ZCARD', KEYS[2]) - limit
  if excess > 0 then
    local popped = redis.call('ZPOPMIN', KEYS[2], excess)
    local top = tonumber(popped[#popped])
    pruned = math.max(pruned, top)
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', top)
    for i = 1, #popped, 2 do
      if string.find(popped[i], '"attachments":', 1, true) then withFiles[#withFiles + 1] = popped[i] end
    end
  end
end
if pruned > floor then redis.call('SET', KEYS[4], pruned) end
redis.call('SET', KEYS[5], id, 'PX', ARGV[3])
redis.call('HSET', KEYS[7], ARGV[5], '{"lastId":' .. id .. ',"lastTs":' .. ARGV[6] .. '}')
return {id, 0, unpack(withFiles)}
`;

/**
 * Deletes a room: its counter, messages, changes, floor, legacy stream and
 * directory entry, and frees its place in the room count when it had a
 * counter. KEYS: seq, msgs, chg, floor, room count, directory, legacy
 * stream. ARGV: the room's name. Replies 1 when anything was there, else 0.
 */
export const DELETE_SCRIPT = `
local held = redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[7]) +
  redis.call('HDEL', KEYS[6], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(redis.call('GET', KEYS[5]) or '0') > 0 then
  redis.call('DECR', KEYS[5])
end
redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[7])
if held > 0 then return 1 end
return 0
`;

/**
 * Replaces a room's legacy stream by the current layout, unless the stream
 * changed since it was read. KEYS: legacy stream, msgs, chg, floor,
 * directory. ARGV: the stream's length and newest entry id as read; the
 * floor; the room's name; its directory entry; how many plain messages
 * follow; then id, JSON pairs of the plain messages and then of the
 * changes. Replies 1 when upgraded, 0 when the stream changed meanwhile.
 */
export const UPGRADE_SCRIPT = `
if redis.call('XLEN', KEYS[1]) ~= tonumber(ARGV[1]) then return 0 end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if (newest and newest[1] or '') ~= ARGV[2] then return 0 end
local plain = tonumber(ARGV[6])
local i = 7
while i < #ARGV do
  local key = KEYS[3]
  if (i - 7) / 2 < plain then key = KEYS[2] end
  redis.call('ZADD', key, ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('SET', KEYS[4], ARGV[3])
redis.call('HSET', KEYS[5], ARGV[4], ARGV[5])
redis.call('DEL', KEYS[1])
return 1
`;

const shas = new Map<string, Promise<string>>();

/** Runs `script` by its SHA-1, sending it whole when Redis does not know it. */
export async function runScript(
  client: RedisClientType,
  script: string,
  keys: string[],
  args: string[],
): Promise<unknown> {
  let sha = shas.get(script);
  if (!sha) shas.set(script, sha = sha1Hex(script));
  try {
    return await client.evalSha(await sha, { keys, arguments: args });
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
    return await client.eval(script, { keys, arguments: args });
  }
}

async function sha1Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
