/**
 * The configuration: `loadConfig` against `DEFAULTS`, its refusals, and the
 * README's "Configuration" table against `ENVIRONMENT`, so the two cannot
 * drift apart.
 */
import assert from "node:assert/strict";
import { type Config, DEFAULTS, ENVIRONMENT, type EnvSetting, loadConfig } from "../src/config.ts";

const README = new URL("../README.md", import.meta.url);

/** The variables whose default is a number: read as non-negative integers. */
const INTEGERS = ENVIRONMENT.filter((e) => /^`\d+`$/.test(e.shown)).map((e) => e.name);

/** The settings without an entry in DEFAULTS, as loadConfig leaves them when nothing is set. */
const UNSET: Partial<Config> = {
  allowedOrigins: [],
  sessionSecret: undefined,
  redisUrl: undefined,
  metrics: { enabled: false, token: undefined },
  auth: { jwtSecret: undefined, publicKey: undefined, algorithm: undefined, jwksUrl: undefined },
};

Deno.test("loadConfig with no variables set: every default from DEFAULTS", () => {
  const config = loadConfig({});
  const expected = Object.fromEntries(
    Object.keys(config).map((key) => [
      key,
      key in DEFAULTS ? DEFAULTS[key as keyof typeof DEFAULTS] : UNSET[key as keyof Config],
    ]),
  );
  assert.deepEqual(config, expected);
  assert.deepEqual(
    Object.keys(config).filter((key) => !(key in DEFAULTS) && !(key in UNSET)),
    [],
    "every setting has its default in DEFAULTS (or is one of the unset ones above)",
  );
  const empty = Object.fromEntries(ENVIRONMENT.map(({ name }) => [name, ""]));
  assert.deepEqual(loadConfig(empty), config, "an empty variable counts as unset");
});

Deno.test("loadConfig reads each integer variable into its own setting", () => {
  assert.ok(INTEGERS.includes("HISTORY_LIMIT") && INTEGERS.includes("PORT"));
  const defaults = loadConfig({});
  for (const name of INTEGERS) {
    const config = loadConfig({ [name]: "4242" });
    const changed = Object.keys(config).filter((key) =>
      config[key as keyof Config] !== defaults[key as keyof Config] &&
      typeof config[key as keyof Config] === "number"
    );
    assert.equal(changed.length, 1, `${name} sets one setting`);
    const key = changed[0] as keyof Config & keyof typeof DEFAULTS;
    assert.equal(config[key], 4242, name);
    assert.equal(`\`${DEFAULTS[key]}\``, ENVIRONMENT.find((e) => e.name === name)!.shown, name);
    assert.equal(loadConfig({ [name]: "0" })[key], 0, name);
  }
});

Deno.test("loadConfig: a bad integer throws a TypeError naming the variable", () => {
  for (const name of INTEGERS) {
    const values = ["abc", "-1", "1.5", "12px", "9007199254740993", "NaN", "Infinity"];
    // Number() would read these as numbers: blanks as 0, hex, exponents and signs.
    values.push(" ", "0x10", "1e3", "+5", "0b11");
    for (const value of values) {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (error: unknown) => {
          assert.ok(error instanceof TypeError, `${name}=${value}: a TypeError`);
          assert.equal(
            error.message,
            `Cannot read ${name}: '${value}' is not a non-negative integer`,
          );
          return true;
        },
        `${name}=${JSON.stringify(value)}`,
      );
    }
  }
});

Deno.test("loadConfig reads the other variables", () => {
  const config = loadConfig({
    KV_PATH: ":memory:",
    ALLOWED_ORIGINS: " https://a.example , ,https://b.example",
    SESSION_SECRET: "s",
    LOG_FORMAT: "json",
    REDIS_URL: "redis://127.0.0.1:1",
    METRICS_TOKEN: "t",
    AUTH_JWT_SECRET: "j",
    AUTH_PUBLIC_KEY: "k",
    AUTH_JWT_ALG: "ES256",
    AUTH_JWKS_URL: "https://keys.example",
  });
  assert.equal(config.kvPath, ":memory:");
  assert.deepEqual(config.allowedOrigins, ["https://a.example", "https://b.example"]);
  assert.equal(config.sessionSecret, "s");
  assert.equal(config.logFormat, "json");
  assert.equal(config.redisUrl, "redis://127.0.0.1:1");
  assert.deepEqual(config.metrics, { enabled: true, token: "t" }, "a token turns metrics on");
  assert.deepEqual(config.auth, {
    jwtSecret: "j",
    publicKey: "k",
    algorithm: "ES256",
    jwksUrl: "https://keys.example",
  });
  assert.deepEqual(loadConfig({ METRICS: "1" }).metrics, { enabled: true, token: undefined });
  assert.equal(loadConfig({ LOG_FORMAT: "yaml" }).logFormat, "text", "unknown formats: text");
  assert.equal(loadConfig({ DENO_DEPLOYMENT_ID: "d" }).kvPath, undefined, "Deploy: its own KV");
  assert.equal(loadConfig({ DENO_DEPLOYMENT_ID: "d", KV_PATH: "x.kv" }).kvPath, "x.kv");
});

Deno.test("ENVIRONMENT lists every variable loadConfig reads, and only those", () => {
  const read = new Set<string>();
  const spy = new Proxy({}, {
    get(_, key) {
      if (typeof key === "string") read.add(key);
      return undefined;
    },
  });
  loadConfig(spy);
  const listed = ENVIRONMENT.map((e) => e.name);
  // The rest are documented in another variable's meaning (AUTH_JWT_ALG, DENO_DEPLOYMENT_ID).
  const mentioned = [...read].filter((name) => !listed.includes(name));
  for (const name of mentioned) {
    assert.ok(
      ENVIRONMENT.some((e) => e.meaning.includes(`\`${name}\``)),
      `${name} is read but neither listed nor mentioned`,
    );
  }
  assert.deepEqual(listed.filter((name) => !read.has(name)), [], "listed but never read");
  assert.equal(new Set(listed).size, listed.length, "no variable is listed twice");
});

/** The rows of the README's "Configuration" table. */
async function readmeTable(): Promise<EnvSetting[]> {
  const text = await Deno.readTextFile(README);
  const section = text.split(/^## /m).find((s) => s.startsWith("Configuration\n"));
  assert.ok(section, "README.md has a '## Configuration' section");
  const rows = section.split("\n").filter((line) => line.startsWith("|"));
  assert.ok(rows.length > 2, "the section has a table");
  const cells = (row: string) =>
    row.slice(1, row.trimEnd().endsWith("|") ? row.trimEnd().length - 1 : undefined)
      .split(/(?<!\\)\|/).map((cell) => cell.trim().replaceAll("\\|", "|"));
  assert.deepEqual(cells(rows[0]), ["Variable", "Default", "Meaning"]);
  assert.match(rows[1], /^\|[\s|:-]+$/, "the second row is the separator");
  return rows.slice(2).map((row) => {
    const [variable, shown, meaning, ...extra] = cells(row);
    assert.deepEqual(extra, [], `three cells in ${row}`);
    const name = variable.match(/^`([A-Z0-9_]+)`$/)?.[1];
    assert.ok(name, `a variable in backticks: ${variable}`);
    return { name, shown, meaning };
  });
}

const normalize = (text: string) => text.replace(/\s+/g, " ").trim();

Deno.test("the README's configuration table equals ENVIRONMENT", async () => {
  const table = await readmeTable();
  const documented = new Map(table.map((row) => [row.name, row]));
  const differences: string[] = [];
  for (const setting of ENVIRONMENT) {
    const row = documented.get(setting.name);
    if (!row) {
      differences.push(`${setting.name}: missing from the README`);
      continue;
    }
    if (row.shown !== setting.shown) {
      differences.push(
        `${setting.name}: default ${row.shown} in the README, ${setting.shown} in code`,
      );
    }
    if (normalize(row.meaning) !== normalize(setting.meaning)) {
      differences.push(
        `${setting.name}: meaning ${JSON.stringify(row.meaning)} in the README, ` +
          `${JSON.stringify(setting.meaning)} in code`,
      );
    }
  }
  for (const row of table) {
    if (!ENVIRONMENT.some((e) => e.name === row.name)) {
      differences.push(`${row.name}: in the README only`);
    }
  }
  assert.deepEqual(differences, [], "README.md's table and ENVIRONMENT in src/config.ts differ");
  assert.deepEqual(
    table.map((row) => row.name),
    ENVIRONMENT.map((e) => e.name),
    "in the same order",
  );
});
