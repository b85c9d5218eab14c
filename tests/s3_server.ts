/**
 * A real S3 API server for tests: `npm:s3rver` (the S3 REST API over a
 * folder) in a process of its own, on 127.0.0.1. Run by `tests/s3.ts`:
 *
 * ```sh
 * deno run -A tests/s3_server.ts <port> <directory> <bucket>   # prints "S3 listening on <port>"
 * deno run -A tests/s3_server.ts --probe                        # exits 0 when s3rver loads
 * ```
 *
 * @module
 */

import S3rver from "s3rver";

if (Deno.args[0] === "--probe") Deno.exit(0);

const [port = "0", directory, bucket = "chat"] = Deno.args;
if (!directory) {
  console.error("Usage: deno run -A tests/s3_server.ts <port> <directory> <bucket>");
  Deno.exit(2);
}
const server = new S3rver({
  port: Number(port),
  address: "127.0.0.1",
  silent: true,
  directory,
  configureBuckets: [{ name: bucket, configs: [] }],
});
const address = await server.run();
console.log(`S3 listening on ${address.port}`);
Deno.addSignalListener("SIGTERM", async () => {
  await server.close();
  Deno.exit(0);
});
