/**
 * Where files go: `S3_*` read all or none, and `openBackends` opening the
 * file store and the usage counts on the history's store, or S3.
 */
import assert from "node:assert/strict";
import { openBackends } from "../src/backends.ts";
import { DEFAULTS, loadConfig } from "../src/config.ts";
import { KvFiles } from "../src/store/kv_files.ts";
import { KvUsage } from "../src/store/kv_usage.ts";
import { S3Files } from "../src/store/s3_files.ts";

const S3 = {
  S3_ENDPOINT: "http://127.0.0.1:9000",
  S3_BUCKET: "chat",
  S3_ACCESS_KEY_ID: "key",
  S3_SECRET_ACCESS_KEY: "secret",
};

Deno.test("S3_*: all four make a location, none leave it unset, some are an error", () => {
  assert.equal(loadConfig({}).s3, undefined);
  assert.deepEqual(loadConfig(S3).s3, {
    endpoint: "http://127.0.0.1:9000",
    bucket: "chat",
    accessKeyId: "key",
    secretAccessKey: "secret",
    region: DEFAULTS.s3Region,
  });
  assert.equal(loadConfig({ ...S3, S3_REGION: "auto" }).s3?.region, "auto");
  assert.throws(
    () => loadConfig({ S3_ENDPOINT: "http://127.0.0.1:9000", S3_BUCKET: "chat" }),
    /^TypeError: Cannot read S3_ACCESS_KEY_ID: it must be set with S3_ENDPOINT, S3_BUCKET/,
  );
  assert.throws(() => loadConfig({ ...S3, S3_ENDPOINT: "ftp://x" }), /not an http\(s\) URL/);
  assert.equal(loadConfig({ MAX_UPLOAD_BYTES: "5" }).maxUploadBytes, 5);
});

Deno.test("openBackends: files and usage in Deno KV, or files in S3", async () => {
  const kv = await openBackends(loadConfig({ KV_PATH: ":memory:", SESSION_SECRET: "s" }));
  try {
    assert.ok(kv.files instanceof KvFiles);
    assert.ok(kv.usage instanceof KvUsage);
  } finally {
    await kv.close();
  }
  const s3 = await openBackends(loadConfig({ KV_PATH: ":memory:", SESSION_SECRET: "s", ...S3 }));
  try {
    assert.ok(s3.files instanceof S3Files);
    assert.match(s3.description, /files in S3 \(127\.0\.0\.1:9000\/chat\)/);
  } finally {
    await s3.close();
  }
});
