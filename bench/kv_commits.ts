/**
 * How fast Deno KV commits on this machine, with the same operations the
 * server's KV history does for each stored batch of `say`s (see
 * `#appendBatch` in `src/store/kv_history.ts`), on either of its paths:
 *
 * - read path: read the room's counter, look up the batch's `cid`s
 *   (`getMany`, ten keys at a time), then one atomic commit that checks the
 *   counter and sets, per message, the message and its `cid` (with
 *   `expireIn`), and the counter;
 * - fast path (no reads): the counter's entry is the one this process last
 *   committed; the commit checks it and that each `cid` is absent, and sets
 *   the same keys.
 *
 * Standalone: it copies those operations and imports nothing from the server.
 *
 * ```sh
 * deno run -A bench/kv_commits.ts              # KV file in a temp folder, and :memory:
 * deno run -A bench/kv_commits.ts --seconds 2  # per case
 * ```
 *
 * Cases: one room committing one message at a time (the many-rooms shape of
 * the benchmark, where a room rarely has two `say`s waiting), batches of 10,
 * 50 and 200 messages per commit (a busy room), and 100 rooms committing one
 * message each at the same time (what 100 small rooms do together), each
 * with the read path and the fast path. Prints commits/s, messages/s and
 * commit latency per case, and writes nothing but its temp files (removed at
 * the end). One process, so JavaScript's own time per append counts too.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { LatencyHistogram } from "./lib/histogram.ts";

interface Case {
  name: string;
  /** Rooms appending at the same time. */
  rooms: number;
  /** Messages per commit. */
  batch: number;
  /** The fast path: no reads before the commit. */
  fast: boolean;
}

const CASES: Case[] = [
  { name: "1 room, 1 message per commit, read path", rooms: 1, batch: 1, fast: false },
  { name: "1 room, 1 message per commit, fast path", rooms: 1, batch: 1, fast: true },
  { name: "1 room, 10 messages per commit, fast path", rooms: 1, batch: 10, fast: true },
  { name: "1 room, 50 messages per commit, read path", rooms: 1, batch: 50, fast: false },
  { name: "1 room, 200 messages per commit, read path", rooms: 1, batch: 200, fast: false },
  { name: "100 rooms at once, 1 message each, read path", rooms: 100, batch: 1, fast: false },
  { name: "100 rooms at once, 1 message each, fast path", rooms: 100, batch: 1, fast: true },
  { name: "100 rooms at once, 5 messages each, fast path", rooms: 100, batch: 5, fast: true },
];

interface Outcome {
  store: string;
  case: string;
  rooms: number;
  batch: number;
  commits: number;
  messages: number;
  seconds: number;
  commitsPerSecond: number;
  messagesPerSecond: number;
  /** One whole append (get + getMany + commit, or the commit alone on the fast path), in ms. */
  appendP50: number;
  appendP99: number;
  /** The commit alone, in ms. */
  commitP50: number;
  commitP99: number;
  conflicts: number;
}

const HISTORY_LIMIT = 1000;
const CID_TTL_MS = 86_400_000;

/** One append of `batch` messages to `room`, as the server's KV history does it. */
async function append(
  kv: Deno.Kv,
  room: string,
  c: Case,
  state: { next: number; counters: Map<string, Deno.KvEntryMaybe<number>> },
  commitTimes: LatencyHistogram,
): Promise<boolean> {
  const seqKey = ["rooms", room, "seq"];
  const cidKey = (cid: string) => ["rooms", room, "cid", "0123456789abcdef", cid];
  const cids = Array.from({ length: c.batch }, () => `c${state.next++}`);
  const known = state.counters.get(room);
  const fast = c.fast && known !== undefined;
  const seq = fast ? known : await kv.get<number>(seqKey);
  if (!fast) {
    const chunks = [];
    for (let i = 0; i < cids.length; i += 10) {
      chunks.push(kv.getMany<number[]>(cids.slice(i, i + 10).map(cidKey)));
    }
    await Promise.all(chunks);
  }
  const op = kv.atomic().check(seq);
  let id = seq.value ?? 0;
  for (const cid of cids) {
    id++;
    const message = {
      type: "message",
      id,
      ts: Date.now(),
      room,
      userId: "0123456789abcdef",
      name: "bench-user",
      text: "T0000000001764240000000000.......",
      cid,
    };
    if (fast) op.check({ key: cidKey(cid), versionstamp: null });
    op.set(["rooms", room, "msg", id], message).set(cidKey(cid), id, { expireIn: CID_TTL_MS });
    if (id > HISTORY_LIMIT) op.delete(["rooms", room, "msg", id - HISTORY_LIMIT]);
  }
  op.set(seqKey, id);
  const started = performance.now();
  const result = await op.commit();
  commitTimes.record(performance.now() - started);
  if (result.ok) {
    state.counters.set(room, { key: seqKey, value: id, versionstamp: result.versionstamp });
  } else state.counters.delete(room);
  return result.ok;
}

async function runCase(kv: Deno.Kv, store: string, c: Case, seconds: number): Promise<Outcome> {
  const appendTimes = new LatencyHistogram();
  const commitTimes = new LatencyHistogram();
  const state = { next: 0, counters: new Map<string, Deno.KvEntryMaybe<number>>() };
  const prefix = `${c.name.replaceAll(" ", "-")}-${Date.now()}`;
  let commits = 0, conflicts = 0;
  const started = performance.now();
  const until = started + seconds * 1000;
  // Every room appends in a loop, one append at a time, as each room's queue does.
  await Promise.all(Array.from({ length: c.rooms }, async (_, r) => {
    while (performance.now() < until) {
      const t = performance.now();
      const ok = await append(kv, `${prefix}-${r}`, c, state, commitTimes);
      appendTimes.record(performance.now() - t);
      if (ok) commits++;
      else conflicts++;
    }
  }));
  const elapsed = (performance.now() - started) / 1000;
  const a = appendTimes.summary(), m = commitTimes.summary();
  return {
    store,
    case: c.name,
    rooms: c.rooms,
    batch: c.batch,
    commits,
    messages: commits * c.batch,
    seconds: Math.round(elapsed * 100) / 100,
    commitsPerSecond: Math.round(commits / elapsed),
    messagesPerSecond: Math.round((commits * c.batch) / elapsed),
    appendP50: a.p50,
    appendP99: a.p99,
    commitP50: m.p50,
    commitP99: m.p99,
    conflicts,
  };
}

function table(outcomes: Outcome[]): string {
  const header = [
    "store",
    "case",
    "commits/s",
    "messages/s",
    "append p50/p99 ms",
    "commit p50/p99 ms",
  ];
  const rows = outcomes.map((o) => [
    o.store,
    o.case,
    o.commitsPerSecond.toLocaleString("en-US"),
    o.messagesPerSecond.toLocaleString("en-US"),
    `${o.appendP50} / ${o.appendP99}`,
    `${o.commitP50} / ${o.commitP99}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join(
    "\n",
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seconds: { type: "string", default: "3" },
      json: { type: "string" },
      stores: { type: "string", default: "file,memory" },
    },
  });
  const seconds = Math.min(30, Math.max(0.5, Number(values.seconds) || 3));
  const dir = await Deno.makeTempDir({ prefix: "kv-commits-" });
  const outcomes: Outcome[] = [];
  try {
    for (const store of values.stores.split(",")) {
      for (const c of CASES) {
        // A fresh database per case, as the benchmark starts a fresh server per step.
        const path = store === "memory" ? ":memory:" : `${dir}/${outcomes.length}.kv`;
        const kv = await Deno.openKv(path);
        try {
          const outcome = await runCase(
            kv,
            store === "memory" ? "KV :memory:" : "KV file",
            c,
            seconds,
          );
          outcomes.push(outcome);
          console.error(
            `${outcome.store}, ${c.name}: ${outcome.commitsPerSecond} commits/s, ` +
              `${outcome.messagesPerSecond} messages/s, commit p50 ${outcome.commitP50} ms, ` +
              `p99 ${outcome.commitP99} ms`,
          );
        } finally {
          kv.close();
        }
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  console.log(table(outcomes));
  if (values.json) await Deno.writeTextFile(values.json, JSON.stringify(outcomes, null, 2) + "\n");
}

if (import.meta.main) {
  await main();
}
