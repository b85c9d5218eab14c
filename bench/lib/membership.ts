/**
 * The membership phase: what one more room membership of a connection costs
 * the server in memory. N idle clients join one room each (rooms of 20) on a
 * fresh server, and the server's settled RSS is read; then the same N clients
 * join K rooms each (every room still of 20) on another fresh server. The
 * figure is (RSS with K rooms − RSS with 1) / ((K − 1) × N): the bytes of one
 * more membership, the rooms' own share included (K rooms each make K times
 * as many rooms).
 *
 * @module
 */

import { round } from "./histogram.ts";
import { checkLayout, openIdleWave } from "./load_runner.ts";
import {
  type BenchParameters,
  type Log,
  median,
  type MembershipParams,
  settledRss,
  withServer,
} from "./phases.ts";
import { waitForQuiet } from "./proc.ts";
import type { ServerSettings, Target } from "./servers.ts";
import type { MembershipHeap } from "../membership_heap.ts";

const MB = 1024 * 1024;
/**
 * What one membership holds in the hub's structures: `membership_heap.ts`
 * of the measured checkout, in a process of its own with a forced full
 * collection before each reading (a server's RSS after a join storm also
 * holds what the joins allocated and the allocator keeps).
 */
async function heapPerMembership(
  settings: ServerSettings,
  clients: number,
  rooms: number,
): Promise<MembershipHeap> {
  const root = settings.oursEntry.slice(0, settings.oursEntry.lastIndexOf("/") + 1);
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      `${root}bench/membership_heap.ts`,
      "--clients",
      String(clients),
      "--rooms",
      String(rooms),
    ],
    cwd: root,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout).trim().split("\n").at(-1) ?? "";
  if (!output.success) {
    throw new Error(`membership_heap.ts failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return JSON.parse(text) as MembershipHeap;
}

/** The load processes let go of their connections by themselves after this long, in seconds. */
const HOLD_SECONDS = 300;

/** The server with every client joined to `roomsPerClient` rooms, idle. */
export interface MembershipLevel {
  roomsPerClient: number;
  rooms: number;
  /** Clients that joined all their rooms. */
  held: number;
  /** held × roomsPerClient. */
  memberships: number;
  /** The server's settled RSS, in bytes and MB. */
  rssBytes: number;
  rssMb: number;
  /** Time to connect and join them all, in ms. */
  connectMs: number;
  /** The machine was quiet before the RSS was read (else it was read after the wait anyway). */
  quiet: boolean;
}

/** One round: one fresh server per level. */
export interface MembershipRound {
  one: MembershipLevel;
  many: MembershipLevel;
  /** (many.rssBytes − one.rssBytes) / ((roomsPerClient − 1) × clients). */
  bytesPerMembership: number;
  /** The same with the heap in use: what one more membership holds. `null` without it. */
  heapBytesPerMembership: number | null;
}

/** The membership phase. */
export interface Membership {
  clients: number;
  roomSize: number;
  roomsPerClient: number;
  rounds: MembershipRound[];
  /** The median over the rounds of their bytes per membership (RSS). */
  bytesPerMembership: number;
  /** The median over the rounds of their heap bytes per membership; `null` without it. */
  heapBytesPerMembership: number | null;
  /** Median RSS of each level, in MB. */
  oneRssMb: number;
  manyRssMb: number;
  errors: number;
  errorSamples: string[];
}

/** Errors the load processes counted, over the phase. */
interface Errors {
  count: number;
  samples: string[];
}

/** Opens `m.clients` idle clients in `roomsPerClient` rooms each on a fresh server; reads its RSS. */
async function level(
  target: Target,
  settings: ServerSettings,
  p: BenchParameters,
  m: MembershipParams,
  roomsPerClient: number,
  errors: Errors,
): Promise<MembershipLevel> {
  return await withServer(target, settings, async (server) => {
    await waitForQuiet([server.pid], { maxMs: p.quietMaxMs });
    const wave = await openIdleWave(server, {
      count: m.clients,
      processes: p.loadProcesses,
      roomSize: m.roomSize,
      roomsPerClient,
      tag: `m${roomsPerClient}p`,
      holdSeconds: HOLD_SECONDS,
    });
    try {
      if (wave.joined < m.clients) {
        throw new Error(
          `only ${wave.joined} of ${m.clients} clients joined their ${roomsPerClient} rooms`,
        );
      }
      const quiet = await waitForQuiet([server.pid], { maxMs: p.quietMaxMs });
      const rss = await settledRss(server);
      return {
        roomsPerClient,
        rooms: Math.ceil((m.clients * roomsPerClient) / m.roomSize),
        held: wave.joined,
        memberships: wave.joined * roomsPerClient,
        rssBytes: rss,
        rssMb: round(rss / MB, 1),
        connectMs: wave.connectMs,
        quiet: quiet.quiet,
      };
    } finally {
      const closed = await wave.close();
      errors.count += closed.errors;
      errors.samples.push(...closed.errorSamples);
    }
  });
}

/** Measures the memory per membership for `target` (see the module's documentation). */
export async function membership(
  target: Target,
  settings: ServerSettings,
  p: BenchParameters,
  m: MembershipParams,
  log: Log,
): Promise<Membership> {
  checkLayout(m.clients, m.roomSize, m.roomsPerClient, p.loadProcesses);
  const rounds: MembershipRound[] = [];
  const errors: Errors = { count: 0, samples: [] };
  const quietText = (l: MembershipLevel) => l.quiet ? "" : " (not quiet)";
  for (let n = 1; n <= m.rounds; n++) {
    const one = await level(target, settings, p, m, 1, errors);
    const many = await level(target, settings, p, m, m.roomsPerClient, errors);
    const added = (m.roomsPerClient - 1) * m.clients;
    const bytes = (many.rssBytes - one.rssBytes) / added;
    const heap = target.kind === "ours"
      ? (await heapPerMembership(settings, m.clients, m.roomsPerClient)).bytesPerMembership
      : null;
    rounds.push({ one, many, bytesPerMembership: Math.round(bytes), heapBytesPerMembership: heap });
    log(
      `  ${target.id} membership, round ${n}: ${m.clients} clients idle, 1 room each ` +
        `(${one.rooms} rooms) ${one.rssMb} MB${quietText(one)}, ${m.roomsPerClient} rooms ` +
        `each (${many.rooms} rooms) ${many.rssMb} MB${quietText(many)}: ${Math.round(bytes)} ` +
        `bytes of RSS and ${heap ?? "-"} bytes of heap per membership (joined in ` +
        `${one.connectMs} and ${many.connectMs} ms)`,
    );
  }
  return {
    clients: m.clients,
    roomSize: m.roomSize,
    roomsPerClient: m.roomsPerClient,
    rounds,
    bytesPerMembership: median(rounds.map((r) => r.bytesPerMembership)),
    heapBytesPerMembership: rounds.some((r) => r.heapBytesPerMembership === null)
      ? null
      : median(rounds.map((r) => r.heapBytesPerMembership!)),
    oneRssMb: median(rounds.map((r) => r.one.rssMb)),
    manyRssMb: median(rounds.map((r) => r.many.rssMb)),
    errors: errors.count,
    errorSamples: errors.samples.slice(0, 5),
  };
}
