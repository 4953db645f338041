/**
 * S3 conformance through real clients (issue 18): boto3 for most behaviours
 * (test/helpers/s3_conformance.py reports what it saw; the assertions are
 * here), curl --aws-sigv4 where the bytes on the wire matter (non-ASCII
 * metadata, Expect, a PUT without a length), s3cmd for SigV2 presigned URLs,
 * and the AWS SDK v3 for aws-chunked Content-Encoding.
 */
import test, { type ExecutionContext } from "ava";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { readFileSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { Readable } from "node:stream";
import { request } from "node:http";
import { signRequest } from "../../src/gateway/auth.ts";
import { S3Client, PutObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3";
import { startS3, S3_CREDS, S3_OTHER_CREDS } from "../helpers/gateway.ts";
import { tempDir } from "../helpers/nats.ts";
import { buildConfig } from "../../src/config.ts";
import { createLogger } from "../../src/log.ts";
import { startGateway } from "../../src/gateway/index.ts";
import type { ShoalClient } from "../../src/client/index.ts";

const exec = promisify(execFile);
const HERE = new URL(".", import.meta.url).pathname;

/** Another gateway on the same store, with its own options. */
async function extraGateway(t: ExecutionContext, client: ShoalClient, o: { now?: () => Date; completeHoldMs?: number }) {
  const gw = await startGateway({
    config: buildConfig({ gateway: { port: 0, host: "127.0.0.1" } }).gateway,
    client,
    logger: createLogger({ level: "silent" }),
    credentials: new Map([[S3_CREDS.accessKey, S3_CREDS.secretKey]]),
    ...o,
  });
  t.teardown(() => gw.close());
  return gw.url;
}

/** curl signing with SigV4 itself (curl ≥ 7.75); -i puts the response head before the body (-D to a pipe crashes curl 7.88 with --aws-sigv4). */
async function curl(endpoint: string, args: string[], shell?: string) {
  // curl 7.88 signs the body hash without sending it: say UNSIGNED-PAYLOAD, which it then signs
  const base = ["-s", "-i", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", `${S3_CREDS.accessKey}:${S3_CREDS.secretKey}`, "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"];
  const r = shell
    ? await exec("sh", ["-c", `${shell} | curl ${base.map((a) => `'${a}'`).join(" ")} ${args.map((a) => `'${a.replace("{e}", endpoint)}'`).join(" ")}`], { encoding: "buffer" })
    : await exec("curl", [...base, ...args.map((a) => a.replace("{e}", endpoint))], { encoding: "buffer", maxBuffer: 1 << 24 });
  let raw = r.stdout;
  let head = Buffer.alloc(0);
  // skip interim (1xx) heads
  for (;;) {
    const i = raw.indexOf("\r\n\r\n");
    head = raw.subarray(0, i < 0 ? raw.length : i + 4);
    raw = i < 0 ? Buffer.alloc(0) : raw.subarray(i + 4);
    if (!/^HTTP\/1\.1 1\d\d/.test(head.toString("latin1")) || raw.length === 0) break;
  }
  return { body: raw.toString("utf8"), head: head.toString("latin1"), raw: head };
}
/** Status of a request signed by Shoal's own signer and sent by Node's HTTP client. */
function rawStatus(endpoint: string, method: string, path: string, extra: Record<string, string>): Promise<number> {
  const url = new URL(endpoint);
  const headers = signRequest({ method, rawPath: path, rawQuery: "", headers: { host: url.host, ...extra } }, S3_CREDS) as Record<string, string>;
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end();
  });
}
const status = (head: string) => Number(/^HTTP\/1\.1 (\d{3})/m.exec(head)?.[1]);

test("boto3: multipart errors, part reads, presign expiry, stored headers, 304, listing, keys, bucket owners, SigV2, CORS, lifecycle, versioning reads", async (t) => {
  const { endpoint, client } = await startS3(t, { otherUser: true });
  const late = await extraGateway(t, client, { now: () => new Date(Date.now() + 2 * 3600_000) });
  const eager = await extraGateway(t, client, { completeHoldMs: 0 });
  const dir = tempDir(t, "shoal-conf-");
  const out = join(dir, "obs.json");
  await exec("python3", [join(HERE, "../helpers/s3_conformance.py"), endpoint, S3_CREDS.accessKey, S3_CREDS.secretKey, S3_OTHER_CREDS.accessKey, S3_OTHER_CREDS.secretKey, late, eager, out], { maxBuffer: 1 << 24 }).catch((e: { stderr?: string }) => {
    throw new Error(`the boto3 script failed: ${e.stderr ?? String(e)}`);
  });
  const o = JSON.parse(readFileSync(out, "utf8")) as Record<string, unknown>;
  t.log(JSON.stringify(o).slice(0, 200));
  // multipart completion errors: their own status, and inside a 200 once it is sent
  t.like(o["mpu_invalid_part"], { status: 400, code: "InvalidPart" });
  t.like(o["mpu_invalid_order"], { status: 400, code: "InvalidPartOrder" });
  t.like(o["mpu_no_such_upload"], { status: 404, code: "NoSuchUpload" });
  t.like(o["mpu_too_small"], { status: 400, code: "EntityTooSmall" });
  t.like(o["mpu_invalid_part_after_200"], { code: "InvalidPart" });
  t.regex(o["mpu_etag"] as string, /-2"$/);
  // a repeated completion is answered parseably: the same result (once the store keeps it) or NoSuchUpload
  const again = o["mpu_repeated"] as { status: number; code: string | null };
  t.true((again.status === 200 && again.code === null) || (again.status === 404 && again.code === "NoSuchUpload"), JSON.stringify(again));
  t.deepEqual(o["mpu_headers"], { cache: "no-store", disposition: "inline" }, "headers given at CreateMultipartUpload are served");
  // part-number reads
  t.deepEqual(o["part1"], { len: 5 * 1024 * 1024, count: 2, range: `bytes 0-${5 * 1024 * 1024 - 1}/${5 * 1024 * 1024 + 1234}` });
  t.deepEqual(o["part2"], { body_ok: true, count: 2, range: `bytes ${5 * 1024 * 1024}-${5 * 1024 * 1024 + 1233}/${5 * 1024 * 1024 + 1234}` });
  t.deepEqual(o["head_part2"], { len: 1234, count: 2 });
  t.like(o["part3"], { status: 400, code: "InvalidPart" });
  t.is(o["plain_part1"], "plain body");
  t.like(o["plain_part2"], { status: 400, code: "InvalidPart" });
  // presigned URLs
  t.is(o["presign_valid"], 200);
  for (const k of ["presign_zero", "presign_negative", "presign_too_long"]) t.deepEqual(o[k], { status: 403, code: "AccessDenied" }, k);
  t.is(o["presign_expired_get"], 403);
  t.is(o["presign_expired_put"], 403);
  t.is(o["presign_put_in_time"], 200);
  t.is(o["presign_create_bucket"], 200, "a presigned CreateBucket is CreateBucket, not a sub-resource");
  t.is((await client.head("conf-bucket", "late-put")).size, "in time".length, "the expired PUT stored nothing");
  // stored headers and 304
  t.deepEqual(o["stored_headers"], { "cache-control": "max-age=60", expires: "Wed, 21 Oct 2037 07:28:00 GMT", "content-encoding": "gzip", "content-disposition": 'attachment; filename="x.bin"', "content-language": "fr" });
  t.deepEqual(o["stored_headers_get"], { "cache-control": "max-age=60", "content-encoding": "gzip" });
  t.like(o["not_modified"], { status: 304, headers: { etag: o["plain_etag"] } });
  // listing
  t.deepEqual(o["max_keys_0"], { count: 0, truncated: false, contents: false });
  t.deepEqual(o["max_keys_0_v1"], { truncated: false, contents: false });
  t.like(o["empty_token"], { token: "" });
  t.true((o["empty_token"] as { keys: number }).keys > 0);
  // keys
  t.deepEqual(o["special_keys"], Array(16).fill(true));
  t.true(o["special_keys_listed"]);
  t.like(o["key_too_long"], { status: 400, code: "KeyTooLongError" });
  t.is(o["special_deleted"], 16);
  // buckets
  t.like(o["recreate_own"], { status: 200 });
  t.is(o["recreate_kept"], "plain body".length);
  t.like(o["recreate_other"], { status: 409, code: "BucketAlreadyExists" });
  // SigV2
  t.is(o["v2_get"], "signed v2");
  t.deepEqual(o["v2_list"], ["v2/a b+c"]);
  t.like(o["v2_bad_secret"], { status: 403, code: "SignatureDoesNotMatch" });
  t.deepEqual(o["v2_presigned"], { is_v2: true, body: "signed v2" });
  t.is(o["v2_presigned_expired"], 403);
  // CORS
  t.like(o["cors_none"], { status: 404, code: "NoSuchCORSConfiguration" });
  t.deepEqual(o["cors_rules"], [{ AllowedHeaders: ["*"], AllowedMethods: ["GET", "PUT"], AllowedOrigins: ["https://app.example"], ExposeHeaders: ["ETag"], MaxAgeSeconds: 600 }]);
  t.deepEqual(o["cors_preflight"], { status: 200, origin: "https://app.example", methods: "GET, PUT", headers: "content-type, x-amz-date", max_age: "600" });
  t.is(o["cors_preflight_denied"], 403);
  t.deepEqual(o["cors_get"], { status: 200, origin: "https://app.example", expose: "ETag" });
  t.like(o["cors_deleted"], { status: 404, code: "NoSuchCORSConfiguration" });
  // lifecycle configuration
  t.like(o["lc_none"], { status: 404, code: "NoSuchLifecycleConfiguration" });
  t.deepEqual(o["lc_rules"], [
    { ID: "logs", Filter: { Prefix: "logs/" }, Status: "Enabled", Expiration: { Days: 7 } },
    { ID: "old", Filter: { Prefix: "" }, Status: "Enabled", NoncurrentVersionExpiration: { NoncurrentDays: 30 }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 2 } },
  ]);
  t.like(o["lc_transition"], { status: 501, code: "NotImplemented" });
  t.like(o["lc_deleted"], { status: 404, code: "NoSuchLifecycleConfiguration" });
  // versioning reads of a bucket never versioned (versioning itself: test/integration/s3-versioning.test.ts)
  t.is(o["versioning"], null);
  t.deepEqual(o["versions"], [["plain", "null", true]]);
  t.like(o["versioning_enable"], { status: 200 });
  t.is(o["version_null"], "plain body", "versionId=null names the only version");
  t.like(o["version_other"], { status: 404, code: "NoSuchVersion" });
  // a version id that does not exist is deleted idempotently (as DELETE ?versionId= of a missing version)
  t.deepEqual(o["delete_versions"], { deleted: ["vdel", "plain"], errors: [] });
});

test("curl: non-ASCII metadata, an unknown Expect, a PUT without a length, empty Authorization, invalid UTF-8 keys, XML escaping without encoding-type", async (t) => {
  const { endpoint, client } = await startS3(t);
  await client.createBucket("curl-bucket");
  const meta = "caf\u00e9 \u65e5\u672c";
  const put = await curl(endpoint, ["-X", "PUT", "--data-binary", "body", "-H", `x-amz-meta-name: ${meta}`, "-H", "Expect: something-else", "{e}/curl-bucket/k"]);
  t.is(status(put.head), 200, put.body);
  t.is((await client.head("curl-bucket", "k")).metadata["name"], meta, "stored as the UTF-8 text sent");
  const get = await curl(endpoint, ["{e}/curl-bucket/k"]);
  t.is(get.body, "body");
  t.true(get.raw.includes(Buffer.from(`x-amz-meta-name: ${meta}`, "utf8")), "returned as the same UTF-8 bytes");
  // curl reads stdin with chunked transfer encoding: no length
  const chunked = await curl(endpoint, ["-T", "-", "{e}/curl-bucket/nolen"], "printf data");
  t.regex(chunked.head, /transfer-encoding|^HTTP/im);
  t.is(status(chunked.head), 411, chunked.body);
  t.regex(chunked.body, /<Code>MissingContentLength<\/Code>/);
  // an empty Authorization on an otherwise signed request
  // curl 7.88 cannot sign an empty header (it signs an empty name): Node's client and Shoal's signer
  t.is(await rawStatus(endpoint, "GET", "/curl-bucket/k", { expect: "" }), 200, "an empty Expect is ignored");
  const empty = await curl(endpoint, ["-H", "Authorization;", "{e}/curl-bucket/k"]);
  t.is(status(empty.head), 403);
  t.regex(empty.body, /<Code>AccessDenied<\/Code>/);
  const badUtf8 = await curl(endpoint, ["{e}/curl-bucket/%FF%FE"]);
  t.is(status(badUtf8.head), 400);
  await client.put("curl-bucket", "x&<>\"'y", "x");
  await client.put("curl-bucket", "n\nl", "x");
  await client.put("curl-bucket", "c\rr", "x");
  const list = await curl(endpoint, ["{e}/curl-bucket?list-type=2"]);
  t.regex(list.body, /<Key>x&amp;&lt;&gt;&quot;&apos;y<\/Key>/);
  t.true(list.body.includes("<Key>n\nl</Key>"), "a newline comes back as a newline");
  t.true(list.body.includes("<Key>c&#xd;r</Key>"), "a carriage return is escaped so that XML parsing keeps it");
  // curl 7.88 signs the query unsorted: give it sorted
  const listUrl = await curl(endpoint, ["{e}/curl-bucket?encoding-type=url&list-type=2"]);
  t.regex(listUrl.body, /<Key>x%26%3C%3E%22%27y<\/Key>/);
});

test("SigV2: s3cmd signurl works until it expires; awscli v1's default presign; s3cmd with signature_v2 for everything, multipart included", async (t) => {
  const { endpoint, client } = await startS3(t);
  await client.createBucket("signurl-bucket");
  await client.put("signurl-bucket", "dir/a file.txt", "signed by s3cmd");
  const dir = tempDir(t, "shoal-s3cmd-");
  const host = new URL(endpoint).host;
  const cfg = join(dir, "s3cfg");
  writeFileSync(cfg, [`[default]`, `access_key = ${S3_CREDS.accessKey}`, `secret_key = ${S3_CREDS.secretKey}`, `host_base = ${host}`, `host_bucket = ${host}`, "use_https = False", ""].join("\n"));
  const sign = async (expiry: string) => (await exec("s3cmd", ["-c", cfg, "signurl", "s3://signurl-bucket/dir/a file.txt", expiry])).stdout.trim();
  const url = await sign("+300");
  t.regex(url, /AWSAccessKeyId=/);
  t.is((await exec("curl", ["-s", url])).stdout, "signed by s3cmd");
  const expired = await sign(String(Math.floor(Date.now() / 1000) - 60));
  const r = await exec("curl", ["-s", "-w", "%{http_code}", expired]);
  t.regex(r.stdout, /<Code>AccessDenied<\/Code>.*403$/s);
  // awscli v1 presigns with SigV2 when no signature_version is configured
  writeFileSync(join(dir, "aws-config"), "[default]\ns3 =\n    addressing_style = path\n");
  const env = { ...process.env, AWS_ACCESS_KEY_ID: S3_CREDS.accessKey, AWS_SECRET_ACCESS_KEY: S3_CREDS.secretKey, AWS_DEFAULT_REGION: "us-east-1", AWS_CONFIG_FILE: join(dir, "aws-config"), AWS_SHARED_CREDENTIALS_FILE: join(dir, "none") };
  const awsUrl = (await exec("aws", ["--endpoint-url", endpoint, "s3", "presign", "s3://signurl-bucket/dir/a file.txt", "--expires-in", "300"], { env })).stdout.trim();
  t.log(awsUrl.replace(/Signature=[^&]+/, "Signature=…"));
  t.is((await exec("curl", ["-s", awsUrl])).stdout, "signed by s3cmd");
  // s3cmd signing every request with SigV2, multipart included (uploadId and partNumber are signed sub-resources)
  const v2cfg = join(dir, "s3cfg-v2");
  writeFileSync(v2cfg, [`[default]`, `access_key = ${S3_CREDS.accessKey}`, `secret_key = ${S3_CREDS.secretKey}`, `host_base = ${host}`, `host_bucket = ${host}`, "use_https = False", "signature_v2 = True", "multipart_chunk_size_mb = 5", ""].join("\n"));
  const s3cmd = async (...args: string[]) => (await exec("s3cmd", ["-c", v2cfg, ...args], { maxBuffer: 1 << 24 })).stdout;
  const big = randomBytes(11 * 1024 * 1024 + 17);
  writeFileSync(join(dir, "big.bin"), big);
  await s3cmd("mb", "s3://v2-bucket");
  await s3cmd("put", join(dir, "big.bin"), "s3://v2-bucket/big file.bin");
  t.regex((await client.head("v2-bucket", "big file.bin")).etag, /-3$/, "uploaded in 3 parts with SigV2");
  t.regex(await s3cmd("ls", "s3://v2-bucket/"), /big file\.bin/);
  await s3cmd("get", "s3://v2-bucket/big file.bin", join(dir, "big.out"));
  t.true(readFileSync(join(dir, "big.out")).equals(big));
  await s3cmd("del", "s3://v2-bucket/big file.bin");
  await s3cmd("rb", "s3://v2-bucket");
  t.false((await client.listBuckets()).some((b) => b.name === "v2-bucket"));
});

test("AWS SDK v3: a streamed (aws-chunked) upload keeps its own Content-Encoding", async (t) => {
  const { endpoint, client } = await startS3(t);
  await client.createBucket("sdk-conf");
  const s3 = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: S3_CREDS.accessKey, secretAccessKey: S3_CREDS.secretKey } });
  t.teardown(() => s3.destroy());
  const sent: string[] = [];
  s3.middlewareStack.add(
    (next) => async (args) => {
      const h = (args.request as { headers?: Record<string, string> }).headers ?? {};
      sent.push(h["content-encoding"] ?? "");
      return next(args);
    },
    { step: "finalizeRequest" },
  );
  const body = Buffer.from("gzipped bytes, say");
  await s3.send(new PutObjectCommand({ Bucket: "sdk-conf", Key: "z", Body: Readable.from([body]), ContentLength: body.length, ContentEncoding: "gzip", CacheControl: "no-cache" }));
  const h = await s3.send(new HeadObjectCommand({ Bucket: "sdk-conf", Key: "z" }));
  t.regex(sent[0]!, /aws-chunked/, "the SDK framed the body with aws-chunked");
  t.is(h.ContentEncoding, "gzip");
  t.is(h.CacheControl, "no-cache");
  t.is(h.ContentLength, body.length);
  await s3.send(new PutObjectCommand({ Bucket: "sdk-conf", Key: "latin", Body: "x", Metadata: { name: "caf\u00e9" } }));
  t.is((await client.head("sdk-conf", "latin")).metadata["name"], "caf\u00e9", "the SDK's latin1 bytes, signed as UTF-8, are accepted");
});
