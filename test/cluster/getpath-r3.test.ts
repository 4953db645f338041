/**
 * The GET path at R3 (issue 15, read half): whole and ranged GETs byte for
 * byte through each of three servers right after the PUT is acknowledged
 * (read-after-write: a replica that has not applied a chunk yet is not the
 * last word), through the SDK and the S3 gateway, and a GET in flight
 * during an overwrite finishes with the old bytes.
 */
import test from "ava";
import { randomBytes } from "node:crypto";
import { S3Client, GetObjectCommand } from "@aws-sdk/client-s3";
import { startCluster } from "../helpers/nats.ts";
import { startShoal } from "../helpers/actors.ts";
import { eventually } from "../helpers/wait.ts";
import { buildConfig } from "../../src/config.ts";
import { createLogger } from "../../src/log.ts";
import { startGateway } from "../../src/gateway/index.ts";
import { ShoalClient } from "../../src/client/index.ts";
import { S3_CREDS } from "../helpers/gateway.ts";

const MiB = 1024 * 1024;

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

test("R3: whole and ranged GETs are byte for byte through every server, at once after each PUT, by the SDK and the S3 gateway; a GET in flight across an overwrite keeps the old bytes", async (t) => {
  const cluster = await startCluster(t, 3);
  const url = cluster.urls.join(",");
  const { client } = await startShoal(t, { url, storage: { readGraceMs: 60_000, sweepIntervalMs: 0 } });
  await eventually(() => client.createBucket("getr3", { replicas: 3 }), () => true, { timeoutMs: 30_000, intervalMs: 300, what: "an R3 bucket" });
  const readers = await Promise.all(cluster.urls.map((u) => ShoalClient.connect({ servers: u })));
  t.teardown(() => Promise.all(readers.map((r) => r.close())));
  const gw = await startGateway({
    config: buildConfig({ gateway: { port: 0, host: "127.0.0.1" } }).gateway,
    client: readers[2]!,
    logger: createLogger({ level: "silent" }),
    credentials: new Map([[S3_CREDS.accessKey, S3_CREDS.secretKey]]),
  });
  t.teardown(() => gw.close());
  const s3 = new S3Client({ endpoint: gw.url, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: S3_CREDS.accessKey, secretAccessKey: S3_CREDS.secretKey } });
  t.teardown(() => s3.destroy());

  for (let round = 0; round < 3; round++) {
    const body = randomBytes(9 * MiB + 1234 * round);
    await client.put("getr3", "k", body);
    // no wait: every server's reader must see this version, whole and in pieces
    for (const [i, r] of readers.entries()) {
      t.true((await collect((await r.get("getr3", "k")).body)).equals(body), `round ${round}: whole through server ${i}`);
      const a = 1_000_000 + round * 7;
      const b = 5 * MiB + 3;
      t.true((await collect((await r.get("getr3", "k", { range: `bytes=${a}-${b}` })).body)).equals(body.subarray(a, b + 1)), `round ${round}: range through server ${i}`);
    }
    const g = await s3.send(new GetObjectCommand({ Bucket: "getr3", Key: "k" }));
    t.true(Buffer.from(await g.Body!.transformToByteArray()).equals(body), `round ${round}: whole through the gateway`);
    const gr = await s3.send(new GetObjectCommand({ Bucket: "getr3", Key: "k", Range: "bytes=2000000-2999999" }));
    t.true(Buffer.from(await gr.Body!.transformToByteArray()).equals(body.subarray(2_000_000, 3_000_000)), `round ${round}: range through the gateway`);
  }

  // in flight across an overwrite: the old version, whole
  const v1 = randomBytes(20 * MiB + 5);
  const v2 = randomBytes(20 * MiB - 5);
  await client.put("getr3", "over", v1);
  const it = (await readers[1]!.get("getr3", "over")).body[Symbol.asyncIterator]();
  const parts: Buffer[] = [];
  const first = await it.next();
  if (!first.done) parts.push(Buffer.from(first.value));
  await client.put("getr3", "over", v2);
  for (let r = await it.next(); !r.done; r = await it.next()) parts.push(Buffer.from(r.value));
  t.true(Buffer.concat(parts).equals(v1), "the read begun on v1 ends with v1's bytes");
  t.true((await collect((await readers[0]!.get("getr3", "over")).body)).equals(v2), "a new read sees v2");
});
