/**
 * How fast Deno KV commits on this machine, with the same operations the
 * server's KV history does for each stored batch of `say`s (see
 * `#appendBatch` in `src/store/kv_history.ts`), on either of its paths:
 *
 * - read path: read the room's counter, directory entry, floor and the room
 *   count (one `getMany`), look up the batch's `cid`s (`getMany`, ten keys
 *   at a time), then one atomic commit that checks the counter and sets,
 *   per message, the message and its `cid` (with `expireIn`), and once the
 *   counter and the room's directory entry (4 mutations for one message);
 * - fast path (no reads): the counter's entry is the one this process last
 *   committed; the commit checks it and that each `cid` is absent, and sets
 *   the same keys.
 *
 * Nothing is deleted on the way: once a room holds 1,100 messages (the
 * limit and a tenth), its 100 oldest are deleted in one commit of their own,
 * by id and without reading them, while the room goes on appending (as
 * `kv_prune.ts` does in the background in a room without changes); that
 * time is in the case's total, not in an append's. `--layout previous` runs the previous version's operations
 * instead, for a comparison in the same run: no directory entry, and each
 * message past the limit deleted in the append's own commit.
 *
 * Standalone: it copies those operations and imports nothing from the server.
 *
 * ```sh
 * deno run -A bench/kv_commits.ts                      # KV file in a temp folder, and :memory:
 * deno run -A bench/kv_commits.ts --seconds 2          # per case
 * deno run -A bench/kv_commits.ts --layout previous    # the previous version's operations
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
  /** Commits that pruned (the current layout only). */
  prunes: number;
  /** Keys set or deleted per message, on average, prunes included. */
  mutationsPerMessage: number;
}

const HISTORY_LIMIT = 1000;
/** Messages a room may hold past the limit before they are pruned. */
const PRUNE_SLACK = 100;
const CID_TTL_MS = 86_400_000;

/** Which version's operations to run. */
type Layout = "current" | "previous";

interface State {
  layout: Layout;
  next: number;
  counters: Map<string, Deno.KvEntryMaybe<number>>;
  /** Per room: the highest id pruned, and the pruning running, if any. */
  floors: Map<string, number>;
  pruning: Map<string, Promise<void>>;
  prunes: number;
}

/** One append of `batch` messages to `room`, as the server's KV history does it. */
async function append(
  kv: Deno.Kv,
  room: string,
  c: Case,
  state: State,
  commitTimes: LatencyHistogram,
): Promise<boolean> {
  const current = state.layout === "current";
  const seqKey = ["rooms", room, "seq"];
  const cidKey = (cid: string) => ["rooms", room, "cid", "0123456789abcdef", cid];
  const cids = Array.from({ length: c.batch }, () => `c${state.next++}`);
  const known = state.counters.get(room);
  const fast = c.fast && known !== undefined;
  const seq = fast ? known : current
    ? (await kv.getMany<[number, unknown, unknown, unknown]>([
      seqKey,
      ["dir", room],
      ["rooms", room, "floor"],
      ["meta", "rooms"],
    ]))[0]
    : await kv.get<number>(seqKey);
  if (!fast) {
    const chunks = [];
    for (let i = 0; i < cids.length; i += 10) {
      chunks.push(kv.getMany<number[]>(cids.slice(i, i + 10).map(cidKey)));
    }
    await Promise.all(chunks);
  }
  const op = kv.atomic().check(seq);
  let id = seq.value ?? 0;
  let ts = 0;
  for (const cid of cids) {
    id++;
    ts = Date.now();
    const message = {
      type: "message",
      id,
      ts,
      room,
      userId: "0123456789abcdef",
      name: "bench-user",
      text: "T0000000001764240000000000.......",
      cid,
    };
    if (fast) op.check({ key: cidKey(cid), versionstamp: null });
    op.set(cidKey(cid), id, { expireIn: CID_TTL_MS }).set(["rooms", room, "msg", id], message);
    if (!current && id > HISTORY_LIMIT) op.delete(["rooms", room, "msg", id - HISTORY_LIMIT]);
  }
  op.set(seqKey, id);
  if (current) op.set(["dir", room], { lastId: id, lastTs: ts, plain: id, changes: 0 });
  const started = performance.now();
  const result = await op.commit();
  commitTimes.record(performance.now() - started);
  if (result.ok) {
    state.counters.set(room, { key: seqKey, value: id, versionstamp: result.versionstamp });
    const floor = state.floors.get(room) ?? 0;
    if (current && id - floor > HISTORY_LIMIT + PRUNE_SLACK && !state.pruning.has(room)) {
      const run = prune(kv, room, floor, id - floor - HISTORY_LIMIT, state)
        .finally(() => state.pruning.delete(room));
      state.pruning.set(room, run);
    }
  } else state.counters.delete(room);
  return result.ok;
}

/**
 * Deletes a room's `count` oldest messages above `floor` in one commit, by
 * id, and raises its floor (checked), as `kv_prune.ts` does in a room with
 * no changes (it lists the room's changes to skip their ids: none here).
 */
async function prune(
  kv: Deno.Kv,
  room: string,
  floor: number,
  count: number,
  state: State,
): Promise<void> {
  const floorKey = ["rooms", room, "floor"];
  const [_seq, dir, seen] = await kv.getMany([["rooms", room, "seq"], ["dir", room], floorKey]);
  const changes = kv.list({ prefix: ["rooms", room, "chg"] }, { limit: 1 });
  for await (const _ of changes) { /* None in this benchmark. */ }
  const op = kv.atomic().check(seen);
  const top = floor + count;
  for (let id = floor + 1; id <= top; id++) op.delete(["rooms", room, "msg", id]);
  if (dir.value === null) return;
  op.set(floorKey, { plain: top, changes: 0, prunedPlain: top, prunedChanges: 0 });
  if ((await op.commit()).ok) {
    state.floors.set(room, top);
    state.prunes++;
  }
}

async function runCase(
  kv: Deno.Kv,
  store: string,
  c: Case,
  seconds: number,
  layout: Layout,
): Promise<Outcome> {
  const appendTimes = new LatencyHistogram();
  const commitTimes = new LatencyHistogram();
  const state: State = {
    layout,
    next: 0,
    counters: new Map(),
    floors: new Map(),
    pruning: new Map(),
    prunes: 0,
  };
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
  await Promise.all(state.pruning.values());
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
    prunes: state.prunes,
    mutationsPerMessage: Math.round(mutations(layout, c.batch, commits, state.prunes) * 100) / 100,
  };
}

/** Keys set or deleted per stored message, pruning included. */
function mutations(layout: Layout, batch: number, commits: number, prunes: number): number {
  const messages = commits * batch;
  if (messages === 0) return 0;
  // Per message a message and its cid; per commit the counter (and the
  // directory entry); the previous layout deleted one message per message
  // past the limit, the current one deletes 100 and sets the floor per prune.
  if (layout === "previous") {
    return (2 * messages + commits + Math.max(0, messages - HISTORY_LIMIT)) / messages;
  }
  return (2 * messages + 2 * commits + prunes * (PRUNE_SLACK + 1)) / messages;
}

function table(outcomes: Outcome[]): string {
  const header = [
    "store",
    "case",
    "commits/s",
    "messages/s",
    "append p50/p99 ms",
    "commit p50/p99 ms",
    "µs/message",
    "mutations/message",
  ];
  const rows = outcomes.map((o) => [
    o.store,
    o.case,
    o.commitsPerSecond.toLocaleString("en-US"),
    o.messagesPerSecond.toLocaleString("en-US"),
    `${o.appendP50} / ${o.appendP99}`,
    `${o.commitP50} / ${o.commitP99}`,
    o.messagesPerSecond > 0 ? (1e6 / o.messagesPerSecond).toFixed(1) : "-",
    String(o.mutationsPerMessage),
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
      layout: { type: "string", default: "current" },
    },
  });
  const seconds = Math.min(30, Math.max(0.5, Number(values.seconds) || 3));
  const layout = values.layout;
  if (layout !== "current" && layout !== "previous") {
    throw new TypeError(`Cannot run: --layout must be current or previous, not '${layout}'`);
  }
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
            layout,
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
