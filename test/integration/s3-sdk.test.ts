import test from "ava";
import { createHash, randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Readable } from "node:stream";
import {
  S3Client,
  CreateBucketCommand,
  PutObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectsCommand,
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  DeleteBucketCommand,
  ListBucketsCommand,
  HeadBucketCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { startS3, S3_CREDS } from "../helpers/gateway.ts";

const run = promisify(execFile);
const MiB = 1024 * 1024;

function s3(endpoint: string) {
  return new S3Client({
    endpoint,
    region: S3_CREDS.region,
    forcePathStyle: true,
    credentials: { accessKeyId: S3_CREDS.accessKey, secretAccessKey: S3_CREDS.secretKey },
  });
}

test("@aws-sdk/client-s3 v3 (default flexible checksums): the whole scenario", async (t) => {
  const { endpoint, client: shoal } = await startS3(t);
  const c = s3(endpoint);
  t.teardown(() => c.destroy());
  await c.send(new CreateBucketCommand({ Bucket: "sdk-bucket" }));
  t.true((await c.send(new ListBucketsCommand({}))).Buckets?.some((b) => b.Name === "sdk-bucket"));
  await c.send(new HeadBucketCommand({ Bucket: "sdk-bucket" }));

  // small object: a Buffer body (checksum header) and a stream body (aws-chunked with a CRC32 trailer)
  await c.send(new PutObjectCommand({ Bucket: "sdk-bucket", Key: "docs/a.txt", Body: "hello, shoal", ContentType: "text/plain", Metadata: { owner: "ada" } }));
  await c.send(new PutObjectCommand({ Bucket: "sdk-bucket", Key: "docs/b.txt", Body: Readable.from([Buffer.from("streamed "), Buffer.from("body")]), ContentLength: 13 }));
  t.is(Buffer.from(await shoal.getBytes("sdk-bucket", "docs/b.txt")).toString(), "streamed body", "no chunk framing or trailer in the stored bytes");
  const a = await c.send(new GetObjectCommand({ Bucket: "sdk-bucket", Key: "docs/a.txt" }));
  t.is(await a.Body!.transformToString(), "hello, shoal");
  t.is(a.ContentType, "text/plain");
  t.is(a.Metadata?.["owner"], "ada");
  t.is(a.ETag, `"${createHash("md5").update("hello, shoal").digest("hex")}"`);

  // >= 64 MiB: multipart through lib-storage
  const big = randomBytes(66 * MiB + 123);
  const up = new Upload({ client: c, params: { Bucket: "sdk-bucket", Key: "big/blob.bin", Body: Readable.from((function* () { for (let o = 0; o < big.length; o += MiB) yield big.subarray(o, o + MiB); })()) }, partSize: 8 * MiB, queueSize: 4 });
  const done = await up.done();
  t.regex(done.ETag ?? "", /^"[0-9a-f]{32}-9"$/);
  const head = await c.send(new HeadObjectCommand({ Bucket: "sdk-bucket", Key: "big/blob.bin" }));
  t.is(head.ContentLength, big.length);
  const whole = await c.send(new GetObjectCommand({ Bucket: "sdk-bucket", Key: "big/blob.bin" }));
  t.is(createHash("sha256").update(await whole.Body!.transformToByteArray()).digest("hex"), createHash("sha256").update(big).digest("hex"));

  // ranged get
  const r = await c.send(new GetObjectCommand({ Bucket: "sdk-bucket", Key: "big/blob.bin", Range: "bytes=10485760-10485769" }));
  t.is(r.ContentRange, `bytes 10485760-10485769/${big.length}`);
  t.true(Buffer.from(await r.Body!.transformToByteArray()).equals(big.subarray(10485760, 10485770)));

  // list with prefix and delimiter, v2 and v1
  const l2 = await c.send(new ListObjectsV2Command({ Bucket: "sdk-bucket", Delimiter: "/" }));
  t.deepEqual(l2.CommonPrefixes?.map((p) => p.Prefix), ["big/", "docs/"]);
  const l2p = await c.send(new ListObjectsV2Command({ Bucket: "sdk-bucket", Prefix: "docs/", MaxKeys: 1 }));
  t.deepEqual(l2p.Contents?.map((o) => o.Key), ["docs/a.txt"]);
  t.true(l2p.IsTruncated);
  const l2n = await c.send(new ListObjectsV2Command({ Bucket: "sdk-bucket", Prefix: "docs/", ContinuationToken: l2p.NextContinuationToken }));
  t.deepEqual(l2n.Contents?.map((o) => o.Key), ["docs/b.txt"]);
  const l1 = await c.send(new ListObjectsCommand({ Bucket: "sdk-bucket", Prefix: "docs/", Marker: "docs/a.txt" }));
  t.deepEqual(l1.Contents?.map((o) => o.Key), ["docs/b.txt"]);

  // copy (server side), with metadata replaced
  const cp = await c.send(new CopyObjectCommand({ Bucket: "sdk-bucket", Key: "docs/c.txt", CopySource: "sdk-bucket/docs/a.txt", MetadataDirective: "REPLACE", Metadata: { owner: "grace" }, ContentType: "text/x-copy" }));
  t.is(cp.CopyObjectResult?.ETag, a.ETag);
  const ch = await c.send(new HeadObjectCommand({ Bucket: "sdk-bucket", Key: "docs/c.txt" }));
  t.is(ch.Metadata?.["owner"], "grace");
  t.is(ch.ContentType, "text/x-copy");

  // presigned GET and PUT, fetched with curl
  const getUrl = await getSignedUrl(c, new GetObjectCommand({ Bucket: "sdk-bucket", Key: "docs/a.txt" }), { expiresIn: 300 });
  t.is((await run("curl", ["-sf", getUrl])).stdout, "hello, shoal");
  const putUrl = await getSignedUrl(c, new PutObjectCommand({ Bucket: "sdk-bucket", Key: "docs/presigned.txt" }), { expiresIn: 300 });
  await run("curl", ["-sf", "-X", "PUT", "--data-binary", "via presigned PUT", "-H", "Content-Type:", putUrl]);
  t.is(Buffer.from(await shoal.getBytes("sdk-bucket", "docs/presigned.txt")).toString(), "via presigned PUT");

  // delete, batch delete, remove bucket
  await c.send(new DeleteObjectCommand({ Bucket: "sdk-bucket", Key: "docs/c.txt" }));
  const del = await c.send(new DeleteObjectsCommand({ Bucket: "sdk-bucket", Delete: { Objects: ["docs/a.txt", "docs/b.txt", "docs/presigned.txt", "big/blob.bin"].map((Key) => ({ Key })) } }));
  t.is(del.Deleted?.length, 4, JSON.stringify(del));
  t.deepEqual((await c.send(new ListObjectsV2Command({ Bucket: "sdk-bucket" }))).Contents ?? [], []);
  await c.send(new DeleteBucketCommand({ Bucket: "sdk-bucket" }));
  t.false((await c.send(new ListBucketsCommand({}))).Buckets?.some((b) => b.Name === "sdk-bucket") ?? false);
});

test("flexible checksums on GET and HEAD: with ChecksumMode ENABLED a whole object comes with the CRC-32 Shoal recorded (FULL_OBJECT); ranges, objects without one and requests without the mode get none", async (t) => {
  const { endpoint, url } = await startS3(t);
  const c = s3(endpoint);
  t.teardown(() => c.destroy());
  await c.send(new CreateBucketCommand({ Bucket: "sdk-crc" }));
  const { crc32 } = await import("node:zlib") as unknown as { crc32: (b: Uint8Array) => number };
  const b64 = (n: number) => { const x = Buffer.alloc(4); x.writeUInt32BE(n >>> 0); return x.toString("base64"); };
  for (const [key, body] of [["small", Buffer.from("checksummed")], ["large", randomBytes(3 * MiB + 5)]] as const) {
    await c.send(new PutObjectCommand({ Bucket: "sdk-crc", Key: key, Body: body }));
    const want = b64(crc32(body));
    const g = await c.send(new GetObjectCommand({ Bucket: "sdk-crc", Key: key, ChecksumMode: "ENABLED" }));
    t.true(Buffer.from(await g.Body!.transformToByteArray()).equals(body), `${key}: bytes`);
    t.is(g.ChecksumCRC32, want, `${key}: GET carries the CRC-32 of the bytes`);
    t.is(g.ChecksumType, "FULL_OBJECT");
    const h = await c.send(new HeadObjectCommand({ Bucket: "sdk-crc", Key: key, ChecksumMode: "ENABLED" }));
    t.is(h.ChecksumCRC32, want, `${key}: HEAD too`);
    const r = await c.send(new GetObjectCommand({ Bucket: "sdk-crc", Key: key, Range: "bytes=1-4", ChecksumMode: "ENABLED" }));
    t.is(r.ChecksumCRC32, undefined, `${key}: a range has none`);
    await r.Body!.transformToByteArray();
    // without the mode: a client that did not ask gets none
    const plain = await c.send(new HeadObjectCommand({ Bucket: "sdk-crc", Key: key }));
    t.is(plain.ChecksumCRC32, undefined, `${key}: none unasked`);
  }
  // an object written by stock tools has no CRC-32: none is claimed
  const { Objm } = await import("@nats-io/obj");
  const { connectTo } = await import("../helpers/nats.ts");
  const os = await new Objm(await connectTo(t, url)).open("sdk-crc");
  await os.putBlob({ name: "stock" }, Buffer.from("from stock tools"));
  const s = await c.send(new GetObjectCommand({ Bucket: "sdk-crc", Key: "stock", ChecksumMode: "ENABLED" }));
  t.is(await s.Body!.transformToString(), "from stock tools");
  t.is(s.ChecksumCRC32, undefined);
});

test("multipart state lives in JetStream: an upload begun on one gateway finishes on another after the first is gone", async (t) => {
  const { gateways, client: shoal } = await startS3(t, { gateways: 2, instances: 2 });
  const a = s3(gateways[0]!.url);
  const b = s3(gateways[1]!.url);
  t.teardown(() => {
    a.destroy();
    b.destroy();
  });
  const { CreateMultipartUploadCommand, UploadPartCommand, CompleteMultipartUploadCommand, ListPartsCommand, ListMultipartUploadsCommand } = await import("@aws-sdk/client-s3");
  await a.send(new CreateBucketCommand({ Bucket: "handoff" }));
  const { UploadId } = await a.send(new CreateMultipartUploadCommand({ Bucket: "handoff", Key: "k.bin", ContentType: "application/x-handoff" }));
  const p1 = randomBytes(5 * MiB);
  const p2 = randomBytes(1234);
  const e1 = (await a.send(new UploadPartCommand({ Bucket: "handoff", Key: "k.bin", UploadId, PartNumber: 1, Body: p1 }))).ETag!;
  await gateways[0]!.close();
  t.is((await b.send(new ListMultipartUploadsCommand({ Bucket: "handoff" }))).Uploads?.[0]?.UploadId, UploadId);
  t.deepEqual((await b.send(new ListPartsCommand({ Bucket: "handoff", Key: "k.bin", UploadId }))).Parts?.map((p) => p.PartNumber), [1]);
  const e2 = (await b.send(new UploadPartCommand({ Bucket: "handoff", Key: "k.bin", UploadId, PartNumber: 2, Body: p2 }))).ETag!;
  const done = await b.send(new CompleteMultipartUploadCommand({ Bucket: "handoff", Key: "k.bin", UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: e1 }, { PartNumber: 2, ETag: e2 }] } }));
  t.regex(done.ETag!, /-2"$/);
  const got = await shoal.get("handoff", "k.bin");
  t.true(Buffer.from(await got.bytes()).equals(Buffer.concat([p1, p2])));
  t.is(got.info.contentType, "application/x-handoff");
});

test("a gateway that is stopped gracefully lets an upload in flight finish, and refuses new connections meanwhile", async (t) => {
  const { gateway, endpoint, client: shoal } = await startS3(t);
  const c = s3(endpoint);
  t.teardown(() => c.destroy());
  await c.send(new CreateBucketCommand({ Bucket: "gdrain" }));
  const body = randomBytes(3 * MiB);
  let sent = 0;
  // 12 pieces of 256 KiB, 60 ms apart: under a second, inside the 5 s grace
  const slow = Readable.from(
    (async function* () {
      for (let o = 0; o < body.length; o += 256 * 1024) {
        sent++;
        yield body.subarray(o, o + 256 * 1024);
        await new Promise((r) => setTimeout(r, 60));
      }
    })(),
  );
  const put = c.send(new PutObjectCommand({ Bucket: "gdrain", Key: "slow.bin", Body: slow, ContentLength: body.length }));
  while (sent < 3) await new Promise((r) => setTimeout(r, 20));
  const closed = gateway.close(5000);
  await new Promise((r) => setTimeout(r, 100));
  // the listening socket is gone: a new connection is refused
  const fresh = s3(endpoint);
  t.teardown(() => fresh.destroy());
  await t.throwsAsync(() => fresh.send(new ListBucketsCommand({})));
  const out = await put;
  t.is(out.ETag, `"${createHash("md5").update(body).digest("hex")}"`);
  await closed;
  t.true(Buffer.from(await shoal.getBytes("gdrain", "slow.bin")).equals(body));
});

test("virtual-hosted-style addressing: the bucket in the Host header", async (t) => {
  const { endpoint, client: shoal } = await startS3(t);
  await shoal.createBucket("vhost-bucket");
  await shoal.put("vhost-bucket", "dir/file.txt", "virtual host");
  const port = new URL(endpoint).port;
  const { signRequest } = await import("../../src/gateway/auth.ts");
  const host = `vhost-bucket.localhost:${port}`;
  const headers = signRequest({ method: "GET", rawPath: "/dir/file.txt", rawQuery: "", headers: { host } }, S3_CREDS);
  const { request } = await import("node:http");
  const body = await new Promise<string>((resolve, reject) => {
    request({ host: "127.0.0.1", port, path: "/dir/file.txt", headers: headers as Record<string, string> }, (res) => {
      let b = "";
      res.on("data", (c) => (b += c));
      res.on("end", () => resolve(`${res.statusCode} ${b}`));
    })
      .on("error", reject)
      .end();
  });
  t.is(body, "200 virtual host");
});

test("S3 details: conditional GET and copy, response overrides, UploadPartCopy, abort, quiet batch delete, URL encoding, owner, location", async (t) => {
  const { endpoint, client: shoal } = await startS3(t);
  const c = s3(endpoint);
  t.teardown(() => c.destroy());
  const m = await import("@aws-sdk/client-s3");
  await c.send(new CreateBucketCommand({ Bucket: "details" }));
  const put = await c.send(new PutObjectCommand({ Bucket: "details", Key: "a b/ü.txt", Body: "conditional", ContentType: "text/plain" }));
  const etag = put.ETag!;
  // conditional GET: 304 and 412 surface as errors with those statuses
  const status = async (p: Promise<unknown>) => p.then(() => 200, (e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode);
  t.is(await status(c.send(new GetObjectCommand({ Bucket: "details", Key: "a b/ü.txt", IfNoneMatch: etag }))), 304);
  t.is(await status(c.send(new GetObjectCommand({ Bucket: "details", Key: "a b/ü.txt", IfMatch: '"0123"' }))), 412);
  t.is(await status(c.send(new GetObjectCommand({ Bucket: "details", Key: "a b/ü.txt", IfModifiedSince: new Date(Date.now() + 60_000) }))), 304);
  t.is(await status(c.send(new GetObjectCommand({ Bucket: "details", Key: "a b/ü.txt", IfUnmodifiedSince: new Date(Date.now() - 3_600_000) }))), 412);
  t.is(await status(c.send(new GetObjectCommand({ Bucket: "details", Key: "a b/ü.txt", IfMatch: etag }))), 200);
  // response-* overrides
  const o = await c.send(new GetObjectCommand({ Bucket: "details", Key: "a b/ü.txt", ResponseContentType: "application/x-override", ResponseContentDisposition: "attachment; filename=x.txt", ResponseCacheControl: "no-store" }));
  t.is(o.ContentType, "application/x-override");
  t.is(o.ContentDisposition, "attachment; filename=x.txt");
  t.is(o.CacheControl, "no-store");
  // conditional copy
  t.is(await status(c.send(new CopyObjectCommand({ Bucket: "details", Key: "copy", CopySource: `details/${encodeURIComponent("a b/ü.txt")}`, CopySourceIfMatch: '"nope"' }))), 412);
  t.is(await status(c.send(new CopyObjectCommand({ Bucket: "details", Key: "copy", CopySource: `details/${encodeURIComponent("a b/ü.txt")}`, CopySourceIfMatch: etag }))), 200);
  // UploadPartCopy (a range of an existing object) and AbortMultipartUpload
  const src = randomBytes(6 * MiB);
  await c.send(new PutObjectCommand({ Bucket: "details", Key: "src.bin", Body: src }));
  const { UploadId } = await c.send(new m.CreateMultipartUploadCommand({ Bucket: "details", Key: "assembled" }));
  const pc1 = await c.send(new m.UploadPartCopyCommand({ Bucket: "details", Key: "assembled", UploadId, PartNumber: 1, CopySource: "details/src.bin", CopySourceRange: `bytes=0-${5 * MiB - 1}` }));
  const pc2 = await c.send(new m.UploadPartCopyCommand({ Bucket: "details", Key: "assembled", UploadId, PartNumber: 2, CopySource: "details/src.bin", CopySourceRange: `bytes=${5 * MiB}-${6 * MiB - 1}` }));
  await c.send(new m.CompleteMultipartUploadCommand({ Bucket: "details", Key: "assembled", UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: pc1.CopyPartResult!.ETag! }, { PartNumber: 2, ETag: pc2.CopyPartResult!.ETag! }] } }));
  t.true(Buffer.from(await shoal.getBytes("details", "assembled")).equals(src));
  const abandoned = await c.send(new m.CreateMultipartUploadCommand({ Bucket: "details", Key: "abandoned" }));
  await c.send(new m.UploadPartCommand({ Bucket: "details", Key: "abandoned", UploadId: abandoned.UploadId, PartNumber: 1, Body: "x" }));
  await c.send(new m.AbortMultipartUploadCommand({ Bucket: "details", Key: "abandoned", UploadId: abandoned.UploadId }));
  t.is(await status(c.send(new m.ListPartsCommand({ Bucket: "details", Key: "abandoned", UploadId: abandoned.UploadId }))), 404);
  t.deepEqual((await c.send(new m.ListMultipartUploadsCommand({ Bucket: "details" }))).Uploads ?? [], []);
  // quiet batch delete reports only errors
  const quiet = await c.send(new DeleteObjectsCommand({ Bucket: "details", Delete: { Quiet: true, Objects: [{ Key: "copy" }, { Key: "never-existed" }] } }));
  t.deepEqual(quiet.Deleted ?? [], []);
  t.deepEqual(quiet.Errors ?? [], []);
  // URL-encoded listing with owners; bucket location
  const l = await c.send(new ListObjectsV2Command({ Bucket: "details", EncodingType: "url", FetchOwner: true, Prefix: "a b/" }));
  t.is(l.Contents?.[0]?.Owner?.DisplayName, "SHOALTESTKEY");
  t.true(["a%20b/%C3%BC.txt", "a b/ü.txt"].includes(l.Contents?.[0]?.Key ?? ""), l.Contents?.[0]?.Key);
  t.is((await c.send(new m.GetBucketLocationCommand({ Bucket: "details" }))).LocationConstraint ?? "", "");
});
