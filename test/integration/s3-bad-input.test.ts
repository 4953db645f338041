/**
 * The gateway against bad input, with raw HTTP (so paths reach it exactly as
 * written): every mistake gets the right S3 error, nothing crashes, nothing
 * stored changes.
 */
import test from "ava";
import { request } from "node:http";
import { createHash, randomBytes } from "node:crypto";
import { startS3, S3_CREDS } from "../helpers/gateway.ts";
import { signRequest, type Headers } from "../../src/gateway/auth.ts";
import { checksumOf } from "../../src/gateway/body.ts";

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function send(endpoint: string, method: string, path: string, o: { headers?: Headers; body?: string | Buffer; sign?: boolean; region?: string; now?: Date; abortAfter?: number; payloadHash?: string } = {}): Promise<Reply> {
  const url = new URL(endpoint);
  const body = o.body === undefined ? undefined : Buffer.from(o.body);
  const q = path.indexOf("?");
  const base: Headers = { host: url.host, ...(body ? { "content-length": String(body.length) } : {}), ...o.headers };
  const headers =
    o.sign === false
      ? base
      : signRequest({ method, rawPath: q < 0 ? path : path.slice(0, q), rawQuery: q < 0 ? "" : path.slice(q + 1), headers: base }, { ...S3_CREDS, region: o.region ?? S3_CREDS.region }, {
          ...(o.now ? { now: o.now } : {}),
          payloadHash: o.payloadHash ?? (body ? createHash("sha256").update(body).digest("hex") : "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        });
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, headers: headers as Record<string, string> }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString() }));
    });
    req.on("error", reject);
    if (body && o.abortAfter !== undefined) {
      req.write(body.subarray(0, o.abortAfter));
      setTimeout(() => {
        req.destroy();
        resolve({ status: 0, headers: {}, body: "" });
      }, 200);
      return;
    }
    req.end(body);
  });
}

const code = (r: Reply) => /<Code>([^<]+)<\/Code>/.exec(r.body)?.[1];

test("auth: anonymous, bad signature, wrong region, skewed clock, unknown key, SigV2", async (t) => {
  const { endpoint } = await startS3(t);
  const anon = await send(endpoint, "GET", "/", { sign: false });
  t.is(anon.status, 403);
  t.is(code(anon), "AccessDenied");
  t.regex(anon.body, /<RequestId>[0-9A-F]{16}<\/RequestId>/);
  const ids = await Promise.all([1, 2, 3].map(async () => (await send(endpoint, "GET", "/", { sign: false })).headers["x-amz-request-id"]));
  t.is(new Set([...ids, /<RequestId>([0-9A-F]{16})<\/RequestId>/.exec(anon.body)?.[1]]).size, 4, "every request has its own id");
  const tampered = await send(endpoint, "GET", "/", { headers: { "x-amz-meta-x": "1" } });
  t.is(tampered.status, 200, "a signed extra header is fine");
  const r = await new Promise<Reply>((resolve) => {
    const url = new URL(endpoint);
    const h = signRequest({ method: "GET", rawPath: "/", rawQuery: "", headers: { host: url.host } }, S3_CREDS);
    request({ host: url.hostname, port: url.port, method: "GET", path: "/?list-type=2", headers: h as Record<string, string> }, (res) => {
      let b = "";
      res.on("data", (c) => (b += c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: b }));
    }).end();
  });
  t.is(code(r), "SignatureDoesNotMatch");
  t.is(r.status, 403);
  t.is(code(await send(endpoint, "GET", "/", { region: "eu-west-1" })), "AuthorizationHeaderMalformed");
  const skew = await send(endpoint, "GET", "/", { now: new Date(Date.now() - 20 * 60_000) });
  t.is(code(skew), "RequestTimeTooSkewed");
  t.is(skew.status, 403);
  const amzDate = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  const unknownKey = `AWS4-HMAC-SHA256 Credential=NOPE/${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00`;
  t.is(code(await send(endpoint, "GET", "/", { sign: false, headers: { authorization: unknownKey, "x-amz-date": amzDate } })), "InvalidAccessKeyId");
  t.is(code(await send(endpoint, "GET", "/", { sign: false, headers: { authorization: "AWS AKIA:c2ln" } })), "AccessDenied");
});

test("bad requests get S3 errors and change nothing", async (t) => {
  const { endpoint, client } = await startS3(t);
  t.is((await send(endpoint, "PUT", "/bad-input")).status, 200);
  t.is((await send(endpoint, "PUT", "/bad-input/keep.txt", { body: "keep me" })).status, 200);
  const before = JSON.stringify(await client.listPage("bad-input", {}));
  const big = randomBytes(3 * 1024 * 1024);

  const cases: Array<[string, Promise<Reply>, number, string]> = [
    ["invalid bucket name", send(endpoint, "PUT", "/Bad_Bucket"), 400, "InvalidBucketName"],
    ["too short bucket name", send(endpoint, "PUT", "/ab"), 400, "InvalidBucketName"],
    ["missing bucket", send(endpoint, "GET", "/no-such-bucket/x"), 404, "NoSuchBucket"],
    ["missing key", send(endpoint, "GET", "/bad-input/nope"), 404, "NoSuchKey"],
    ["unsatisfiable range", send(endpoint, "GET", "/bad-input/keep.txt", { headers: { range: "bytes=100-200" } }), 416, "InvalidRange"],
    ["unknown operation", send(endpoint, "GET", "/bad-input?acl"), 501, "NotImplemented"],
    ["unknown object operation", send(endpoint, "PUT", "/bad-input/keep.txt?tagging", { body: "<Tagging/>" }), 501, "NotImplemented"],
    ["malformed XML", send(endpoint, "POST", "/bad-input?delete", { body: "<Delete><Object><Key>keep.txt</Key></Object>" }), 400, "MalformedXML"],
    ["entity expansion", send(endpoint, "POST", "/bad-input?delete", { body: '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><Delete><Object><Key>&b;</Key></Object></Delete>' }), 400, "MalformedXML"],
    ["undefined entity", send(endpoint, "POST", "/bad-input?delete", { body: "<Delete><Object><Key>&xxe;</Key></Object></Delete>" }), 400, "MalformedXML"],
    ["deep XML", send(endpoint, "POST", "/bad-input?delete", { body: `${"<a>".repeat(100)}${"</a>".repeat(100)}` }), 400, "MalformedXML"],
    ["oversized XML body", send(endpoint, "POST", "/bad-input?delete", { body: `<Delete>${"<Object><Key>k</Key></Object>".repeat(100_000)}</Delete>` }), 400, "EntityTooLarge"],
    ["oversized headers", send(endpoint, "PUT", "/bad-input/big-headers", { body: "x", headers: { "x-amz-meta-pad": "p".repeat(20_000) } }), 400, "RequestHeaderSectionTooLarge"],
    ["user metadata over 2 KiB", send(endpoint, "PUT", "/bad-input/big-meta", { body: "x", headers: { "x-amz-meta-pad": "p".repeat(3000) } }), 400, "RequestHeaderSectionTooLarge"],
    ["bad Content-MD5", send(endpoint, "PUT", "/bad-input/md5", { body: "data", headers: { "content-md5": createHash("md5").update("other").digest("base64") } }), 400, "BadDigest"],
    ["malformed Content-MD5", send(endpoint, "PUT", "/bad-input/md5", { body: "data", headers: { "content-md5": "not-md5" } }), 400, "InvalidDigest"],
    ["bad checksum", send(endpoint, "PUT", "/bad-input/crc", { body: "data", headers: { "x-amz-checksum-crc32": checksumOf("crc32", Buffer.from("other")) } }), 400, "BadDigest"],
    ["unsigned put", send(endpoint, "PUT", "/bad-input/sha", { sign: false, body: "data" }), 403, "AccessDenied"],
    ["payload hash mismatch", send(endpoint, "PUT", "/bad-input/sha", { body: "data", payloadHash: createHash("sha256").update("other").digest("hex") }), 400, "XAmzContentSHA256Mismatch"],
    // large bodies stream to the store, which checks the digests the gateway hands it
    ["payload hash mismatch, 3 MiB", send(endpoint, "PUT", "/bad-input/sha-big", { body: big, payloadHash: createHash("sha256").update("other").digest("hex") }), 400, "XAmzContentSHA256Mismatch"],
    ["bad Content-MD5, 3 MiB", send(endpoint, "PUT", "/bad-input/md5-big", { body: big, headers: { "content-md5": createHash("md5").update("other").digest("base64") } }), 400, "BadDigest"],
    ["aws-chunked body without framing", send(endpoint, "PUT", "/bad-input/short", { body: "data", headers: { "x-amz-decoded-content-length": "10", "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "content-encoding": "aws-chunked" } }), 400, "IncompleteBody"],
    ["bad part number", send(endpoint, "PUT", "/bad-input/k?partNumber=0&uploadId=abc", { body: "x" }), 400, "InvalidArgument"],
    ["unknown upload", send(endpoint, "PUT", "/bad-input/k?partNumber=1&uploadId=abcdefghij", { body: "x" }), 404, "NoSuchUpload"],
    ["bad max-keys", send(endpoint, "GET", "/bad-input?list-type=2&max-keys=abc"), 400, "InvalidArgument"],
    ["bad continuation token", send(endpoint, "GET", "/bad-input?list-type=2&continuation-token=%%%"), 400, "InvalidArgument"],
    ["bad percent-encoding", send(endpoint, "GET", "/bad-input/%ZZ"), 400, "InvalidArgument"],
    ["invalid UTF-8 key", send(endpoint, "GET", "/bad-input/%FF%FE"), 400, "InvalidArgument"],
    ["key over 1024 bytes", send(endpoint, "PUT", `/bad-input/${"k".repeat(1025)}`, { body: "x" }), 400, "KeyTooLongError"],
    ["copy from a missing source", send(endpoint, "PUT", "/bad-input/copy", { headers: { "x-amz-copy-source": "/bad-input/missing" } }), 404, "NoSuchKey"],
    ["copy onto itself", send(endpoint, "PUT", "/bad-input/keep.txt", { headers: { "x-amz-copy-source": "/bad-input/keep.txt" } }), 400, "InvalidRequest"],
    ["wrong location", send(endpoint, "PUT", "/other-region", { body: "<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>" }), 400, "InvalidArgument"],
  ];
  for (const [what, p, status, c] of cases) {
    const r = await p;
    t.is(r.status, status, what);
    t.is(code(r), c, `${what}: ${r.body.slice(0, 200)}`);
    t.notRegex(r.body, /at .*\.ts:\d+|stack|node_modules/, `${what}: no internals in the reply`);
  }
  t.is(JSON.stringify(await client.listPage("bad-input", {})), before, "nothing stored changed");
  t.false((await client.listBuckets()).some((b) => b.name === "other-region"));
  t.is(Buffer.from(await client.getBytes("bad-input", "keep.txt")).toString(), "keep me");
});

test("key tricks are just keys: dots, double slashes, empty segments, escapes and unicode forms stay distinct", async (t) => {
  const { endpoint, client } = await startS3(t);
  await send(endpoint, "PUT", "/tricks");
  const keys: Array<[string, string]> = [
    ["/tricks/a/../b", "a/../b"],
    ["/tricks/b", "b"],
    ["/tricks//lead", "/lead"],
    ["/tricks/x//y", "x//y"],
    ["/tricks/x/y/", "x/y/"],
    ["/tricks/sp%20ace+plus", "sp ace+plus"],
    ["/tricks/pct%2525", "pct%25"],
    ["/tricks/slash%2Fenc", "slash/enc"],
    [`/tricks/${encodeURIComponent("caf\u00e9")}`, "caf\u00e9"],
    [`/tricks/${encodeURIComponent("cafe\u0301")}`, "cafe\u0301"],
  ];
  for (const [path, key] of keys) {
    const r = await send(endpoint, "PUT", path, { body: `value of ${key}` });
    t.is(r.status, 200, `${path}: ${r.body}`);
  }
  for (const [, key] of keys) t.is(Buffer.from(await client.getBytes("tricks", key)).toString(), `value of ${key}`, key);
  const listed = (await client.listPage("tricks", {})).contents.map((c) => c.key).sort();
  t.deepEqual(listed, [...new Set(keys.map(([, k]) => k))].sort());
  // the same keys read back over HTTP
  t.is((await send(endpoint, "GET", "/tricks/a/../b")).body, "value of a/../b");
  t.is((await send(endpoint, "GET", "/tricks/b")).body, "value of b");
});

test("a client that disconnects mid-upload leaves nothing visible and no chunks", async (t) => {
  const { endpoint, client, url } = await startS3(t);
  await send(endpoint, "PUT", "/cut");
  const body = Buffer.alloc(3 * 1024 * 1024, 7);
  await send(endpoint, "PUT", "/cut/partial.bin", { body, abortAfter: 1024 * 1024 + 5 });
  // a multipart part cut short, too: no part recorded, no chunks
  const { uploadId } = await client.createMultipart("cut", "parted.bin");
  await send(endpoint, "PUT", `/cut/parted.bin?partNumber=1&uploadId=${uploadId}`, { body, abortAfter: 2 * 1024 * 1024 + 5 });
  const { jetstreamManager } = await import("@nats-io/jetstream");
  const { connectTo } = await import("../helpers/nats.ts");
  const jsm = await jetstreamManager(await connectTo(t, url));
  let chunks = -1;
  for (let i = 0; i < 100 && chunks !== 0; i++) {
    await new Promise((r) => setTimeout(r, 200));
    chunks = (await jsm.streams.info("OBJ_cut")).state.messages;
  }
  t.is(chunks, 0, "the aborted uploads' chunks are gone");
  t.deepEqual((await client.listParts("cut", "parted.bin", uploadId)).parts, []);
  await t.throwsAsync(() => client.head("cut", "partial.bin"), { message: /key does not exist/ });
  // and the gateway still serves
  t.is((await send(endpoint, "PUT", "/cut/whole.bin", { body: "ok" })).status, 200);
});
