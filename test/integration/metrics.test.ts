import test, { type ExecutionContext } from "ava";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { startS3, S3_CREDS } from "../helpers/gateway.ts";
import { startServer } from "../helpers/nats.ts";
import { ShoalClient } from "../../src/client/index.ts";
import { has, parseMetrics, scrape, value } from "../helpers/prom.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));

function s3(endpoint: string) {
  return new S3Client({ endpoint, region: S3_CREDS.region, forcePathStyle: true, credentials: { accessKeyId: S3_CREDS.accessKey, secretAccessKey: S3_CREDS.secretKey } });
}

async function waitFor(t: ExecutionContext, what: string, ms: number, ok: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await ok().catch(() => false)) return Date.now() - t0;
    await sleep(200);
  }
  t.fail(`${what}: not within ${ms} ms`);
  return ms;
}

test("parseMetrics refuses text that is not Prometheus exposition, and broken histograms", async (t) => {
  await t.throwsAsync(() => parseMetrics("# TYPE x counter\nx{a=\"1\" 3\n"), { message: /not valid Prometheus text/ });
  await t.throwsAsync(() => parseMetrics('x{a="1"} many\n'), { message: /not valid Prometheus text/ });
  await t.throwsAsync(() => parseMetrics("x{a=1} 2\n"), { message: /not valid Prometheus text/ });
  await t.throwsAsync(() => parseMetrics('# TYPE h histogram\nh_bucket{le="1"} 5\nh_bucket{le="+Inf"} 3\nh_count 3\nh_sum 1\n'), { message: /not cumulative/ });
  await t.throwsAsync(() => parseMetrics('# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 3\nh_count 4\nh_sum 1\n'), { message: /count/ });
  t.is(value(await parseMetrics('# TYPE y gauge\ny{k="v"} 2.5\n'), "y", { k: "v" }), 2.5);
});

test("the gateway serves /metrics (Prometheus text; counters, histograms and bytes move with traffic), /healthz and /readyz (503 once NATS is gone); signed requests still reach a bucket named metrics", async (t) => {
  const { endpoint, client, srv } = await startS3(t);
  const c = s3(endpoint);
  t.teardown(() => c.destroy());

  const hz = await fetch(`${endpoint}/healthz`);
  t.is(hz.status, 200);
  t.deepEqual(await hz.json(), { status: "alive" });
  const rz = await fetch(`${endpoint}/readyz`);
  t.is(rz.status, 200);
  t.deepEqual(await rz.json(), { status: "ready" });

  const before = await scrape(`${endpoint}/metrics`);
  t.regex(before.contentType, /^text\/plain; version=0\.0\.4/);
  t.true(has(before.families, "process_resident_memory_bytes"), "process metrics are there");
  t.is(value(before.families, "shoal_actor_instances", { kind: "storage" }), 1);

  await c.send(new CreateBucketCommand({ Bucket: "counted" }));
  for (let i = 0; i < 3; i++) await c.send(new PutObjectCommand({ Bucket: "counted", Key: `k${i}`, Body: Buffer.alloc(1000, i) }));
  const got = await c.send(new GetObjectCommand({ Bucket: "counted", Key: "k1" }));
  t.is((await got.Body!.transformToByteArray()).length, 1000);
  await t.throwsAsync(() => c.send(new GetObjectCommand({ Bucket: "counted", Key: "missing" })), { name: "NoSuchKey" });
  await client.put("counted", "via-sdk", Buffer.alloc(5000, 7));

  const after = await scrape(`${endpoint}/metrics`);
  const d = (name: string, labels: Record<string, string>) => value(after.families, name, labels) - value(before.families, name, labels);
  t.is(d("shoal_requests_total", { service: "gateway", op: "PutObject", outcome: "ok" }), 3);
  t.is(d("shoal_requests_total", { service: "gateway", op: "GetObject", outcome: "ok" }), 1);
  t.is(d("shoal_requests_total", { service: "gateway", op: "GetObject", outcome: "NoSuchKey" }), 1);
  t.is(d("shoal_request_duration_seconds_count", { service: "gateway", op: "PutObject" }), 3);
  t.is(d("shoal_requests_total", { service: "storage", op: "obj-put", outcome: "ok" }), 4, "three through the gateway, one through the SDK");
  t.is(d("shoal_requests_total", { service: "storage", op: "obj-get", outcome: "NoSuchKey" }), 1);
  t.true(d("shoal_request_duration_seconds_sum", { service: "storage", op: "obj-put" }) > 0);
  t.is(d("shoal_bytes_in_total", { service: "storage" }), 3 * 1000 + 5000);
  t.true(d("shoal_bytes_out_total", { service: "storage" }) >= 1000);
  t.true(d("shoal_bytes_in_total", { service: "gateway" }) >= 3000);
  t.true(d("shoal_bytes_out_total", { service: "gateway" }) >= 1000);
  t.is(value(after.families, "shoal_requests_in_flight", { service: "gateway" }), 0);

  // a bucket called "metrics": signed S3 requests reach it, unsigned ones get the metrics
  await c.send(new CreateBucketCommand({ Bucket: "metrics" }));
  await c.send(new PutObjectCommand({ Bucket: "metrics", Key: "x", Body: "in a bucket named metrics" }));
  t.deepEqual((await c.send(new ListObjectsV2Command({ Bucket: "metrics" }))).Contents?.map((o) => o.Key), ["x"]);
  t.true(has((await scrape(`${endpoint}/metrics`)).families, "shoal_requests_total"));
  t.is((await fetch(`${endpoint}/metrics`, { method: "POST" })).status, 405);

  // NATS goes away: not ready (503 with a reason) within a few seconds, still alive
  await srv!.stop();
  const took = await waitFor(t, "/readyz answers 503", 10_000, async () => (await fetch(`${endpoint}/readyz`)).status === 503);
  t.log(`/readyz went 503 ${took} ms after the server stopped`);
  const nr = (await (await fetch(`${endpoint}/readyz`)).json()) as { status: string; reason?: string };
  t.is(nr.status, "not ready");
  t.truthy(nr.reason);
  t.is((await fetch(`${endpoint}/healthz`)).status, 200);
});

test("`shoal start --actors storage --metrics-port 0` serves /metrics, /healthz and /readyz for a process without a gateway", async (t) => {
  const srv = await startServer(t);
  const child = spawn(process.execPath, ["bin/shoal.js", "start", "--actors", "storage", "--metrics-port", "0", "--nats", srv.url, "--log-level", "warn"], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  t.teardown(() => void child.kill("SIGKILL"));
  let out = "";
  let err = "";
  child.stderr.on("data", (b: Buffer) => (err += b.toString()));
  const metricsUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no Metrics: line in 20 s; stderr: ${err}`)), 20_000);
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
      const m = /^Metrics: (http:\/\/127\.0\.0\.1:\d+\/metrics)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once("exit", (code) => reject(new Error(`exited ${code}: ${err}`)));
  });
  const base = metricsUrl.replace(/\/metrics$/, "");
  t.is((await fetch(`${base}/healthz`)).status, 200);
  t.is((await fetch(`${base}/readyz`)).status, 200);
  t.is((await fetch(`${base}/nope`)).status, 404);
  const m0 = await scrape(metricsUrl);
  t.is(value(m0.families, "shoal_actor_instances", { kind: "storage" }), 1);

  const client = await ShoalClient.connect({ servers: srv.url });
  t.teardown(() => client.close());
  await client.createBucket("from-sdk");
  await client.put("from-sdk", "a", "hello");
  const m1 = await scrape(metricsUrl);
  t.is(value(m1.families, "shoal_requests_total", { service: "storage", op: "bucket-create", outcome: "ok" }) - value(m0.families, "shoal_requests_total", { service: "storage", op: "bucket-create", outcome: "ok" }), 1);
  t.is(value(m1.families, "shoal_bytes_in_total", { service: "storage" }) - value(m0.families, "shoal_bytes_in_total", { service: "storage" }), 5);

  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  child.kill("SIGTERM");
  t.is(await exited, 0);
});
