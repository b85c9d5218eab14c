/**
 * Smoke test of the benchmark: `bench/run.ts --quick` runs our server (default
 * configuration: history in a KV file) and the baseline for a few seconds: one
 * sweep step of each swept shape (one room, many rooms), one join, one round of
 * the CPU phase per shape (one room, many rooms, and clients in 10 rooms each,
 * that one for our server only) and of the membership phase, and writes a
 * JSON report with the expected shape. It checks no speed: only that the run
 * works end to end, its numbers are numbers, and the rows and target checks
 * are there.
 *
 * When `bench/baseline/node_modules` is missing, the quick run installs it
 * with `npm ci --prefix bench/baseline` (npm registry); if that fails, the
 * baseline is skipped with a note and only our server is checked.
 *
 * @module
 */

import assert from "node:assert/strict";

const RUN = new URL("../bench/run.ts", import.meta.url).pathname;
/** The quick run takes about 40 s; an `npm ci` on a cold cache adds some. */
const TIMEOUT_MS = 150_000;

const STEP_NUMBERS = [
  "clients",
  "roomSize",
  "rooms",
  "rate",
  "published",
  "expected",
  "delivered",
  "deliveredRatio",
  "p50",
  "p99",
  "p999",
  "serverCpuPercent",
  "serverPeakRssMb",
  "loadCpuPercent",
  "machineCpuPercent",
  "bytesPerDelivery",
  "roomsPerClient",
  "serverCpuUsPerDelivery",
] as const;

const SWEEP_NUMBERS = [
  "clients",
  "roomSize",
  "rooms",
  "startRate",
  "headlineRate",
  "headlineDeliveredPerSecond",
] as const;

const JOIN_NUMBERS = [
  "members",
  "memberBytes",
  "memberFrames",
  "newcomerBytes",
  "totalBytes",
  "history",
] as const;

const CPU_RUN_NUMBERS = [
  "clients",
  "roomSize",
  "roomsPerClient",
  "rooms",
  "rate",
  "seconds",
  "disturbedRounds",
  "heldRounds",
] as const;

const CPU_MEDIAN_NUMBERS = [
  "usPerDelivery",
  "deliveredPerSecond",
  "deliveredRatio",
  "p50",
  "p99",
  "serverCpuPercent",
] as const;

const MEMBERSHIP_NUMBERS = [
  "clients",
  "roomSize",
  "roomsPerClient",
  "bytesPerMembership",
  "heapBytesPerMembership",
  "oneRssMb",
  "manyRssMb",
  "errors",
] as const;

const LEVEL_NUMBERS = ["roomsPerClient", "rooms", "held", "memberships", "rssMb"] as const;

/** The target checks, by a part of their names: the six first, then #21's four and #18's one. */
const TARGET_NAMES = [
  /≥ 4× baseline/,
  /≥ 2× baseline/,
  /p99 ≤ 10 ms at half/,
  /RSS < 300 MB/,
  /idle connection/,
  /joining a room/,
  /≥ 1× baseline \(#21\)/,
  /rooms of 4 at 80 says\/s: server CPU per delivery ≤ 1\.0× baseline \(#21\)/,
  /rooms of 4 at 80 says\/s: p99 ≤ 10 ms \(#21\)/,
  /one room of 4 at 200 says\/s: server CPU per delivery ≤ 0\.4× baseline \(#21\)/,
  /≤ 2 KiB per membership .*\(#18\)/,
];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function assertNumbers(record: Record<string, unknown>, keys: readonly string[], where: string) {
  for (const key of keys) {
    const value = record[key];
    assert.ok(
      typeof value === "number" && Number.isFinite(value),
      `${where}.${key} should be a finite number, got ${JSON.stringify(value)}`,
    );
  }
}

/** The CPU phase's runs: one per shape in `shapes`, each with its medians and a counted round. */
function assertCpuRuns(runs: unknown, shapes: string[], target: string): void {
  assert.ok(Array.isArray(runs), `${target}: cpu`);
  assert.deepEqual(runs.map((r) => isRecord(r) ? r.shape : null), shapes, `${target}: cpu shapes`);
  for (const run of runs) {
    assert.ok(isRecord(run));
    const where = `${target}.cpu.${run.shape}`;
    assertNumbers(run, CPU_RUN_NUMBERS, where);
    assert.ok(isRecord(run.median), `${where}.median`);
    assertNumbers(run.median, CPU_MEDIAN_NUMBERS, `${where}.median`);
    assert.equal(typeof run.held, "boolean", `${where}.held`);
    assert.ok(Array.isArray(run.rounds) && run.rounds.length === 1, `${where}: one round`);
    assert.ok(Array.isArray(run.attempts) && run.attempts.length >= 1, `${where}: attempts`);
    const step = run.rounds[0];
    assert.ok(isRecord(step));
    assertNumbers(step, STEP_NUMBERS, `${where}.rounds[0]`);
    assert.ok((step.delivered as number) > 0, `${where}: something was delivered`);
    assert.ok((run.median.usPerDelivery as number) > 0, `${where}: some CPU per delivery`);
  }
  const multi = runs.find((r) => isRecord(r) && r.shape === "multi");
  if (multi) {
    assert.equal(multi.roomsPerClient, 10, `${target}: multi clients are in 10 rooms each`);
    assert.ok(multi.rooms > multi.clients / multi.roomSize, `${target}: multi has more rooms`);
  }
}

function assertMembership(membership: unknown): void {
  assert.ok(isRecord(membership), "ours: the membership phase ran");
  assertNumbers(membership, MEMBERSHIP_NUMBERS, "ours.membership");
  assert.ok(Array.isArray(membership.rounds) && membership.rounds.length === 1, "one round");
  const round = membership.rounds[0];
  assert.ok(isRecord(round) && isRecord(round.one) && isRecord(round.many));
  assertNumbers(round.one, LEVEL_NUMBERS, "ours.membership.rounds[0].one");
  assertNumbers(round.many, LEVEL_NUMBERS, "ours.membership.rounds[0].many");
  assert.equal(round.one.roomsPerClient, 1);
  assert.equal(round.many.roomsPerClient, membership.roomsPerClient);
  assert.equal(round.many.held, membership.clients, "every client joined all its rooms");
  assert.equal(
    round.many.memberships,
    (membership.clients as number) * (membership.roomsPerClient as number),
  );
}

function assertServerReport(report: unknown, target: string, store: string | null): void {
  assert.ok(isRecord(report), `servers.${target} should be an object`);
  assert.equal(report.target, target);
  assert.equal(report.store, store);
  assert.ok(Array.isArray(report.sweeps), `${target}: sweeps`);
  assert.deepEqual(
    report.sweeps.map((s) => isRecord(s) ? s.shape : null),
    ["room", "rooms"],
    `${target}: one sweep per shape`,
  );
  for (const sweep of report.sweeps) {
    assert.ok(isRecord(sweep));
    const where = `${target}.${sweep.shape}`;
    assertNumbers(sweep, SWEEP_NUMBERS, where);
    assert.equal(typeof sweep.atGridTop, "boolean", `${where}.atGridTop`);
    assert.ok(Array.isArray(sweep.steps) && sweep.steps.length >= 1, `${where}: a step`);
    const step = sweep.steps[0];
    assert.ok(isRecord(step));
    assertNumbers(step, STEP_NUMBERS, `${where}.steps[0]`);
    assert.equal(typeof step.pass, "boolean");
    assert.ok(step.limit === null || typeof step.limit === "string", `${where}: limit`);
    assert.ok(Array.isArray(step.loadCpuPercents), `${where}: CPU per load process`);
    assert.ok((step.published as number) > 0, `${where}: something was published`);
    assert.ok((step.delivered as number) > 0, `${where}: something was delivered`);
  }
  const rooms = report.sweeps[1] as Record<string, unknown>;
  assert.ok((rooms.rooms as number) > 1, `${target}: the many-rooms shape has several rooms`);
  assert.ok(isRecord(report.joinCost), `${target}: the join cost was measured`);
  assertNumbers(report.joinCost, JOIN_NUMBERS, `${target}.joinCost`);
  assert.ok((report.joinCost.newcomerBytes as number) > 0, `${target}: the newcomer got a welcome`);
  // The baseline has one room per connection: no multi shape, no membership phase.
  const baseline = target === "baseline";
  assertCpuRuns(report.cpu, baseline ? ["room", "rooms"] : ["room", "rooms", "multi"], target);
  if (baseline) assert.equal(report.membership, null);
  else assertMembership(report.membership);
}

Deno.test("deno task bench --quick produces well-formed JSON", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bench_test_" });
  const path = `${dir}/bench.json`;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  try {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", RUN, "--quick", "--json", path],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
      signal: controller.signal,
    }).output();
    const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    assert.equal(code, 0, `bench/run.ts --quick exited with ${code}:\n${output}`);

    const report: unknown = JSON.parse(await Deno.readTextFile(path));
    assert.ok(isRecord(report), "the report should be an object");
    assert.equal(report.mode, "quick");
    assert.equal(report.schema, 3);
    assert.ok(!Number.isNaN(Date.parse(String(report.date))), "date should be a date");
    assert.ok(isRecord(report.environment));
    assert.equal(typeof report.environment.deno, "string");
    assert.ok(isRecord(report.parameters));
    assertNumbers(report.parameters, ["stepSeconds", "loadProcesses", "textBytes"], "parameters");
    assert.ok(Array.isArray(report.parameters.shapes) && report.parameters.shapes.length === 2);
    assert.ok(Array.isArray(report.parameters.cpuShapes));
    assert.deepEqual(
      report.parameters.cpuShapes.map((s) => isRecord(s) ? s.id : null),
      ["room", "rooms", "multi"],
    );
    assert.deepEqual(report.parameters.phases, [
      "sweep",
      "latency",
      "overload",
      "join",
      "idle",
      "membership",
      "cpu",
    ]);
    assert.ok(isRecord(report.servers));
    assertServerReport(report.servers.ours, "ours", "file");
    const notes = Array.isArray(report.notes) ? report.notes.map(String) : [];
    const withBaseline = !notes.some((note) => note.startsWith("baseline skipped"));
    if (withBaseline) {
      assertServerReport(report.servers.baseline, "baseline", null);
    } else {
      console.log(`Baseline not checked: ${notes.join("; ")}`);
    }
    assert.ok(Array.isArray(report.comparison) && report.comparison.length > 0);
    for (const row of report.comparison) {
      assert.ok(isRecord(row) && typeof row.metric === "string");
      assert.ok(row.ratio === null || typeof row.ratio === "number", `${row.metric}: ratio`);
    }
    const rows = report.comparison as Record<string, unknown>[];
    const cpuRows = rows.filter((row) => row.phase === "cpu" && row.target === "ours");
    assert.equal(
      cpuRows.filter((row) => String(row.metric).endsWith("server CPU per delivery")).length,
      3,
      "a CPU-per-delivery row per shape",
    );
    for (const row of cpuRows.filter((row) => row.unit === "µs")) {
      const multi = String(row.metric).includes("10 rooms");
      assert.equal(typeof row.ours, "number", `${row.metric}: ours`);
      // The baseline has no multi shape: that row has no ratio.
      if (multi || !withBaseline) assert.equal(row.ratio, null, `${row.metric}: no ratio`);
      else assert.equal(typeof row.ratio, "number", `${row.metric}: a ratio`);
    }
    assert.ok(
      rows.some((row) => row.phase === "membership" && typeof row.ours === "number"),
      "a memory-per-membership row",
    );
    assert.ok(Array.isArray(report.targets), "target checks");
    assert.equal(report.targets.length, TARGET_NAMES.length, "eleven target checks");
    report.targets.forEach((check, i) => {
      assert.ok(isRecord(check) && typeof check.name === "string");
      assert.match(check.name, TARGET_NAMES[i]);
      assert.ok(["pass", "miss", "not measured"].includes(String(check.status)), check.name);
      assert.equal(typeof check.measured, "string", check.name);
    });
    assert.match(output, /ours\/baseline/, "the table should be printed");
    assert.match(output, /Targets/, "the target checks should be printed");
  } finally {
    clearTimeout(timer);
    await Deno.remove(dir, { recursive: true });
  }
});
