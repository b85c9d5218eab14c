/**
 * Smoke test of the benchmark: `bench/run.ts --quick` runs our server (default
 * configuration: history in a KV file) and the baseline for a few seconds, one
 * step of each load shape (one room, many rooms) and one join, and writes a
 * JSON report with the expected shape. It checks no speed: only that the run
 * works end to end and its numbers are numbers.
 *
 * When `bench/baseline/node_modules` is missing, the quick run installs it
 * with `npm ci --prefix bench/baseline` (npm registry); if that fails, the
 * baseline is skipped with a note and only our server is checked.
 *
 * @module
 */

import assert from "node:assert/strict";

const RUN = new URL("../bench/run.ts", import.meta.url).pathname;
/** The quick run takes about 10 s; an `npm ci` on a cold cache adds some. */
const TIMEOUT_MS = 90_000;

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
    assert.equal(report.schema, 2);
    assert.ok(!Number.isNaN(Date.parse(String(report.date))), "date should be a date");
    assert.ok(isRecord(report.environment));
    assert.equal(typeof report.environment.deno, "string");
    assert.ok(isRecord(report.parameters));
    assertNumbers(report.parameters, ["stepSeconds", "loadProcesses", "textBytes"], "parameters");
    assert.ok(Array.isArray(report.parameters.shapes) && report.parameters.shapes.length === 2);
    assert.ok(isRecord(report.servers));
    assertServerReport(report.servers.ours, "ours", "file");
    const notes = Array.isArray(report.notes) ? report.notes.map(String) : [];
    if (notes.some((note) => note.startsWith("baseline skipped"))) {
      console.log(`Baseline not checked: ${notes.join("; ")}`);
    } else {
      assertServerReport(report.servers.baseline, "baseline", null);
    }
    assert.ok(Array.isArray(report.comparison) && report.comparison.length > 0);
    for (const row of report.comparison) {
      assert.ok(isRecord(row) && typeof row.metric === "string");
      assert.ok(row.ratio === null || typeof row.ratio === "number", `${row.metric}: ratio`);
    }
    assert.ok(Array.isArray(report.targets) && report.targets.length === 6, "six target checks");
    for (const check of report.targets) {
      assert.ok(isRecord(check) && typeof check.name === "string");
      assert.ok(["pass", "miss", "not measured"].includes(String(check.status)), check.name);
    }
    assert.match(output, /ours\/baseline/, "the table should be printed");
    assert.match(output, /Targets/, "the target checks should be printed");
  } finally {
    clearTimeout(timer);
    await Deno.remove(dir, { recursive: true });
  }
});
