/**
 * The S3 operations, each mapped onto the SDK (and so onto the storage
 * service). Inputs are validated here (S3's names for S3's mistakes);
 * everything about storage — names, ranges, conditions, multipart rules — is
 * decided by the storage actor, whose typed errors become S3 errors.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { createHash } from "node:crypto";
import { ShoalError, toShoalError } from "../errors/index.ts";
import type { GatewayConfig } from "../config.ts";
import type { ShoalClient, ObjectMeta } from "../client/index.ts";
import type { Logger } from "../log.ts";
import { encodeToken } from "../store/index.ts";
import { awsEncode, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, type Verified } from "./auth.ts";
import { decodeAwsChunked, isAwsChunked, promisesFrom, verifyBody } from "./body.ts";
import { decodePathSegment, type Route } from "./route.ts";
import { childText, childrenNamed, parseXml, xml, type XmlChild } from "./xml.ts";

export interface OpContext {
  req: IncomingMessage;
  res: ServerResponse;
  route: Route;
  verified: Verified;
  client: ShoalClient;
  config: GatewayConfig;
  requestId: string;
  log: Logger;
}

/** Bodies up to this size are read whole and sent inline (one NATS request). */
const INLINE_BODY = 512 * 1024;
const MAX_XML_BODY = 2 * 1024 * 1024;
const MAX_USER_META = 2048;

const quote = (etag: string) => `"${etag}"`;
const isoDate = (d: string) => new Date(d).toISOString();
const httpDate = (d: string) => new Date(d).toUTCString();

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(",") : v;
}

function owner(ctx: OpContext): XmlChild[] {
  return [
    ["ID", createHash("sha256").update(ctx.verified.accessKey).digest("hex")],
    ["DisplayName", ctx.verified.accessKey],
  ];
}

function sendXml(res: ServerResponse, status: number, body: string): void {
  res.statusCode = status;
  res.setHeader("Content-Type", "application/xml");
  res.setHeader("Content-Length", Buffer.byteLength(body));
  res.end(body);
}

function empty(res: ServerResponse, status: number): void {
  res.statusCode = status;
  res.end();
}

/** x-amz-meta-* → user metadata (names lower-cased), S3's 2 KiB limit. */
function userMetadata(req: IncomingMessage): Record<string, string> {
  const md: Record<string, string> = {};
  let bytes = 0;
  for (const [k, v] of Object.entries(req.headers)) {
    if (!k.startsWith("x-amz-meta-") || v === undefined) continue;
    const name = k.slice("x-amz-meta-".length);
    const value = Array.isArray(v) ? v.join(",") : v;
    bytes += Buffer.byteLength(name) + Buffer.byteLength(value);
    md[name] = value;
  }
  if (bytes > MAX_USER_META) throw new ShoalError("RequestHeaderTooLarge", `user metadata is ${bytes} bytes; S3 allows ${MAX_USER_META}`);
  return md;
}

function requireBucket(r: Route): string {
  if (r.bucket === undefined) throw new ShoalError("InvalidRequest", "no bucket named");
  return r.bucket;
}
function requireKey(r: Route): string {
  if (r.key === undefined) throw new ShoalError("InvalidRequest", "no key named");
  return r.key;
}

function intParam(q: Map<string, string>, name: string, min: number, max: number, clampMax = false): number | undefined {
  const v = q.get(name);
  if (v === undefined) return undefined;
  if (!/^-?\d{1,10}$/.test(v)) throw new ShoalError("InvalidArgument", `${name} must be an integer`);
  const n = Number(v);
  if (n < min) throw new ShoalError("InvalidArgument", `${name} must be at least ${min}`);
  if (n > max) {
    if (clampMax) return max;
    throw new ShoalError("InvalidArgument", `${name} must be at most ${max}`);
  }
  return n;
}

// --- request bodies ------------------------------------------------------------------

/**
 * The request body, decoded (aws-chunked) and checked as it streams against
 * what the headers promise. An upload (`forUpload`) leaves Content-MD5 and a
 * hex x-amz-content-sha256 to the storage service, which hashes every body
 * anyway (on the direct path, the SDK's hashing worker): `digests` are then
 * passed with the put, and the gateway does not hash the bytes a second time.
 */
function bodyOf(ctx: OpContext, forUpload = false): { source: AsyncIterable<Uint8Array>; length: number | undefined; digests: UploadDigests } {
  const { req, verified } = ctx;
  const promises = promisesFrom(req.headers, verified);
  const md5 = header(req, "content-md5");
  if (md5 !== undefined && Buffer.from(md5, "base64").length !== 16) throw new ShoalError("InvalidDigest", "Content-MD5 is not the base64 of 16 bytes");
  const trailers = new Map<string, string>();
  let source: AsyncIterable<Uint8Array> = req;
  if (isAwsChunked(req.headers, verified)) {
    const signed = verified.contentSha256 === STREAMING_SIGNED || verified.contentSha256 === STREAMING_SIGNED_TRAILER;
    source = decodeAwsChunked(req, { verified, signed, trailerOut: trailers });
  } else if (promises.length === undefined && header(req, "transfer-encoding") === undefined && req.method === "PUT") {
    throw new ShoalError("MissingContentLength");
  }
  const digests: UploadDigests = {};
  if (forUpload) {
    if (md5 !== undefined) digests.contentMd5 = Buffer.from(md5, "base64").toString("base64");
    if (promises.sha256Hex !== undefined) digests.sha256 = Buffer.from(promises.sha256Hex, "hex").toString("base64");
    delete promises.sha256Hex;
  }
  const md5Here = md5 !== undefined && !forUpload;
  return { source: verifyBody(source, promises, { trailers, ...(md5Here ? { md5Base64: md5 } : {}) }), length: promises.length, digests };
}

/** Digests an upload's bytes must have, checked by the storage service before it commits. */
interface UploadDigests {
  contentMd5?: string;
  sha256?: string;
}

/**
 * Runs a put or part with `digests` delegated: the service's BadDigest for
 * the SHA-256 is S3's XAmzContentSHA256Mismatch (it came from that header).
 */
async function withDigests<T>(digests: UploadDigests, fn: (d: UploadDigests) => Promise<T>): Promise<T> {
  try {
    return await fn(digests);
  } catch (e) {
    if (digests.sha256 !== undefined && e instanceof ShoalError && e.code === "BadDigest" && e.detail?.["digest"] === "sha256") throw new ShoalError("ContentSha256Mismatch");
    throw e;
  }
}

async function collect(it: AsyncIterable<Uint8Array>, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of it) {
    n += c.byteLength;
    if (n > limit) throw new ShoalError("EntityTooLarge", `the request body exceeds ${limit} bytes`);
    parts.push(Buffer.from(c));
  }
  return Buffer.concat(parts);
}

/** Small bodies are read whole (one inline NATS request); large ones stream. */
async function uploadBody(ctx: OpContext): Promise<{ body: AsyncIterable<Uint8Array> | Buffer; digests: UploadDigests }> {
  const { source, length, digests } = bodyOf(ctx, true);
  if (length !== undefined && length > ctx.config.maxPutBytes) throw new ShoalError("EntityTooLarge", `a single PUT holds at most ${ctx.config.maxPutBytes} bytes; use a multipart upload`);
  if (length !== undefined && length <= INLINE_BODY) return { body: await collect(source, INLINE_BODY), digests };
  return { body: source, digests };
}

async function xmlBody(ctx: OpContext) {
  const { source } = bodyOf(ctx);
  const text = (await collect(source, MAX_XML_BODY)).toString("utf8");
  return parseXml(text);
}

// --- responses for objects -----------------------------------------------------------

function objectHeaders(res: ServerResponse, m: ObjectMeta): void {
  res.setHeader("ETag", quote(m.etag));
  res.setHeader("Last-Modified", httpDate(m.mtime));
  res.setHeader("Content-Type", m.contentType || "application/octet-stream");
  res.setHeader("Accept-Ranges", "bytes");
  for (const [k, v] of Object.entries(m.metadata)) res.setHeader(`x-amz-meta-${k}`, v);
}

function conditionsFrom(req: IncomingMessage, prefix = "if-") {
  const o: { ifMatch?: string; ifNoneMatch?: string; ifModifiedSince?: string; ifUnmodifiedSince?: string } = {};
  const im = header(req, `${prefix}match`);
  const inm = header(req, `${prefix}none-match`);
  const ims = header(req, `${prefix}modified-since`);
  const ius = header(req, `${prefix}unmodified-since`);
  if (im !== undefined) o.ifMatch = im;
  if (inm !== undefined) o.ifNoneMatch = inm;
  // S3 ignores unparseable dates in conditions
  if (ims !== undefined && !Number.isNaN(Date.parse(ims))) o.ifModifiedSince = new Date(ims).toISOString();
  if (ius !== undefined && !Number.isNaN(Date.parse(ius))) o.ifUnmodifiedSince = new Date(ius).toISOString();
  return o;
}

const OVERRIDES: Array<[string, string]> = [
  ["response-content-type", "Content-Type"],
  ["response-content-language", "Content-Language"],
  ["response-expires", "Expires"],
  ["response-cache-control", "Cache-Control"],
  ["response-content-disposition", "Content-Disposition"],
  ["response-content-encoding", "Content-Encoding"],
];

/** `bucket/key` from x-amz-copy-source (URL-encoded, optional leading '/'). */
function copySource(ctx: OpContext): { bucket: string; key: string } {
  const raw = header(ctx.req, "x-amz-copy-source") ?? "";
  const [path, qs] = raw.split("?", 2) as [string, string | undefined];
  if (qs && /(^|&)versionId=/.test(qs)) throw new ShoalError("NotImplemented", "versioned copy sources are not supported");
  const p = decodePathSegment(path.startsWith("/") ? path.slice(1) : path);
  const i = p.indexOf("/");
  if (i <= 0 || i === p.length - 1) throw new ShoalError("InvalidArgument", "x-amz-copy-source must be <bucket>/<key>");
  return { bucket: p.slice(0, i), key: p.slice(i + 1) };
}

// --- the operations --------------------------------------------------------------------

type Op = (ctx: OpContext) => Promise<void>;

const listBuckets: Op = async (ctx) => {
  const buckets = await ctx.client.listBuckets();
  sendXml(ctx.res, 200, xml("ListAllMyBucketsResult", [
    ["Owner", owner(ctx)],
    ["Buckets", buckets.map((b): XmlChild => ["Bucket", [["Name", b.name], ["CreationDate", isoDate(b.created)]]])],
  ]));
};

const createBucket: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const rh = header(ctx.req, "x-shoal-replicas");
  const replicas = rh === undefined ? undefined : Number(rh);
  if (replicas !== undefined && replicas !== 1 && replicas !== 3 && replicas !== 5) throw new ShoalError("InvalidReplicas", "x-shoal-replicas must be 1, 3 or 5");
  const { source, length } = bodyOf(ctx);
  const text = (await collect(source, 64 * 1024)).toString("utf8");
  if (text.trim() !== "" || (length ?? 0) > 0) {
    const doc = parseXml(text);
    if (doc.name !== "CreateBucketConfiguration") throw new ShoalError("MalformedPayload", "expected CreateBucketConfiguration");
    const loc = childText(doc, "LocationConstraint") ?? "";
    if (loc !== "" && loc !== ctx.config.region) throw new ShoalError("InvalidArgument", `the location constraint ${JSON.stringify(loc)} is not this gateway's region ${ctx.config.region}`);
  }
  await ctx.client.createBucket(bucket, replicas ? { replicas } : {});
  ctx.res.setHeader("Location", `/${bucket}`);
  empty(ctx.res, 200);
};

const deleteBucket: Op = async (ctx) => {
  await ctx.client.deleteBucket(requireBucket(ctx.route));
  empty(ctx.res, 204);
};

const headBucket: Op = async (ctx) => {
  await ctx.client.bucketInfo(requireBucket(ctx.route));
  ctx.res.setHeader("x-amz-bucket-region", ctx.config.region);
  empty(ctx.res, 200);
};

const getBucketLocation: Op = async (ctx) => {
  await ctx.client.bucketInfo(requireBucket(ctx.route));
  const region = ctx.config.region === "us-east-1" ? "" : ctx.config.region;
  sendXml(ctx.res, 200, `<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${region}</LocationConstraint>`);
};

function encodingType(q: Map<string, string>): ((s: string) => string) | undefined {
  const e = q.get("encoding-type");
  if (e === undefined) return undefined;
  if (e !== "url") throw new ShoalError("InvalidArgument", "encoding-type must be url");
  return (s: string) => awsEncode(s, true);
}

const listObjects = (v2: boolean): Op => async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const q = ctx.route.query;
  const enc = encodingType(q);
  const e = (s: string | undefined) => (s === undefined ? undefined : enc ? enc(s) : s);
  const prefix = q.get("prefix") ?? "";
  const delimiter = q.get("delimiter") || undefined;
  const maxKeys = intParam(q, "max-keys", 0, 1000, true) ?? 1000;
  const marker = v2 ? undefined : q.get("marker");
  const startAfter = v2 ? q.get("start-after") : undefined;
  const token = v2 ? q.get("continuation-token") : undefined;
  if (token === "") throw new ShoalError("InvalidArgument", "The continuation token provided is incorrect.");
  const after = marker || startAfter;
  // A v1 marker that is a common prefix skips everything under it (as S3 does).
  const continuationToken = token ?? (after && delimiter && after.endsWith(delimiter) && after.startsWith(prefix) ? encodeToken(after, true) : undefined);
  const page = await ctx.client.listPage(bucket, {
    prefix,
    maxKeys,
    ...(delimiter ? { delimiter } : {}),
    ...(continuationToken ? { continuationToken } : after ? { startAfter: after } : {}),
  });
  const fetchOwner = !v2 || q.get("fetch-owner") === "true";
  const contents = page.contents.map((c): XmlChild => [
    "Contents",
    [
      ["Key", e(c.key)],
      ["LastModified", isoDate(c.mtime)],
      ["ETag", quote(c.etag)],
      ["Size", c.size],
      ["StorageClass", "STANDARD"],
      ...(fetchOwner ? ([["Owner", owner(ctx)]] as XmlChild[]) : []),
    ],
  ]);
  const prefixes = page.commonPrefixes.map((p): XmlChild => ["CommonPrefixes", [["Prefix", e(p)]]]);
  // v1: NextMarker is the last key or common prefix returned
  const lastKey = page.contents[page.contents.length - 1]?.key;
  const lastCp = page.commonPrefixes[page.commonPrefixes.length - 1];
  const nextMarker = lastCp !== undefined && (lastKey === undefined || lastCp > lastKey) ? lastCp : lastKey;
  const head: XmlChild[] = v2
    ? [
        ["Name", bucket],
        ["Prefix", e(prefix)],
        ...(token !== undefined ? ([["ContinuationToken", token]] as XmlChild[]) : []),
        ...(page.isTruncated && page.nextContinuationToken ? ([["NextContinuationToken", page.nextContinuationToken]] as XmlChild[]) : []),
        ...(startAfter !== undefined ? ([["StartAfter", e(startAfter)]] as XmlChild[]) : []),
        ["KeyCount", page.keyCount],
        ["MaxKeys", maxKeys],
        ...(delimiter ? ([["Delimiter", e(delimiter)]] as XmlChild[]) : []),
        ["IsTruncated", page.isTruncated],
      ]
    : [
        ["Name", bucket],
        ["Prefix", e(prefix)],
        ["Marker", e(marker ?? "")],
        ...(page.isTruncated && nextMarker !== undefined ? ([["NextMarker", e(nextMarker)]] as XmlChild[]) : []),
        ["MaxKeys", maxKeys],
        ...(delimiter ? ([["Delimiter", e(delimiter)]] as XmlChild[]) : []),
        ["IsTruncated", page.isTruncated],
      ];
  sendXml(ctx.res, 200, xml("ListBucketResult", [...head, ...(enc ? ([["EncodingType", "url"]] as XmlChild[]) : []), ...contents, ...prefixes]));
};

const putObject: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const key = requireKey(ctx.route);
  const inm = header(ctx.req, "if-none-match");
  const im = header(ctx.req, "if-match");
  const contentType = header(ctx.req, "content-type");
  if (inm !== undefined && inm.trim() !== "*") throw new ShoalError("NotImplemented", "If-None-Match on PUT supports only *");
  const { body, digests } = await uploadBody(ctx);
  const info = await withDigests(digests, (d) =>
    ctx.client.put(bucket, key, body, {
      ...(contentType ? { contentType } : {}),
      metadata: userMetadata(ctx.req),
      ...(inm !== undefined ? { ifNoneMatch: true } : {}),
      ...(im !== undefined ? { ifMatch: im } : {}),
      ...d,
    }),
  );
  ctx.res.setHeader("ETag", quote(info.etag));
  empty(ctx.res, 200);
};

const copyObject: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const key = requireKey(ctx.route);
  const src = copySource(ctx);
  const directive = (header(ctx.req, "x-amz-metadata-directive") ?? "COPY").toUpperCase();
  if (directive !== "COPY" && directive !== "REPLACE") throw new ShoalError("InvalidArgument", "x-amz-metadata-directive must be COPY or REPLACE");
  if (directive === "COPY" && src.bucket === bucket && src.key === key) {
    throw new ShoalError("InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata.");
  }
  const contentType = header(ctx.req, "content-type");
  const info = await ctx.client.copy(src, { bucket, key }, {
    ...conditionsFrom(ctx.req, "x-amz-copy-source-if-"),
    metadataDirective: directive,
    ...(directive === "REPLACE" ? { metadata: userMetadata(ctx.req), ...(contentType ? { contentType } : {}) } : {}),
  });
  sendXml(ctx.res, 200, xml("CopyObjectResult", [["LastModified", isoDate(info.mtime)], ["ETag", quote(info.etag)]]));
};

const getObject = (headOnly: boolean): Op => async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const key = requireKey(ctx.route);
  const q = ctx.route.query;
  if (q.has("partNumber")) throw new ShoalError("NotImplemented", "GET by partNumber is not supported");
  const range = header(ctx.req, "range");
  const cond = conditionsFrom(ctx.req);
  const res = ctx.res;
  if (headOnly) {
    const m = await ctx.client.head(bucket, key, cond);
    objectHeaders(res, m);
    res.setHeader("Content-Length", m.size);
    for (const [p, h] of OVERRIDES) if (q.has(p)) res.setHeader(h, q.get(p)!);
    return empty(res, 200);
  }
  const got = await ctx.client.get(bucket, key, { ...cond, ...(range ? { range } : {}) });
  objectHeaders(res, got.info);
  for (const [p, h] of OVERRIDES) if (q.has(p)) res.setHeader(h, q.get(p)!);
  res.setHeader("Content-Length", got.length);
  if (got.contentRange) res.setHeader("Content-Range", got.contentRange);
  res.statusCode = got.contentRange ? 206 : 200;
  const body = Readable.from(got.body, { objectMode: false });
  try {
    await pipeline(body, res);
  } catch (e) {
    // the client went away, or the stream from the storage actor failed: either way the response is cut
    ctx.log.debug({ err: e, requestId: ctx.requestId }, "GET body ended early");
    res.destroy();
  }
};

const deleteObject: Op = async (ctx) => {
  await ctx.client.delete(requireBucket(ctx.route), requireKey(ctx.route));
  empty(ctx.res, 204);
};

const deleteObjects: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const doc = await xmlBody(ctx);
  if (doc.name !== "Delete") throw new ShoalError("MalformedPayload", "expected a Delete document");
  const quiet = childText(doc, "Quiet") === "true";
  const keys = childrenNamed(doc, "Object").map((o) => {
    const k = childText(o, "Key");
    if (k === undefined) throw new ShoalError("MalformedPayload", "each Object needs a Key");
    return k;
  });
  if (keys.length === 0 || keys.length > 1000) throw new ShoalError("MalformedPayload", "Delete lists 1 to 1000 objects");
  const r = await ctx.client.deleteMany(bucket, keys);
  sendXml(ctx.res, 200, xml("DeleteResult", [
    ...(quiet ? [] : r.deleted.map((k): XmlChild => ["Deleted", [["Key", k]]])),
    ...r.errors.map((er): XmlChild => {
      let s3 = er.code;
      try {
        s3 = new ShoalError(er.code as never).spec.s3;
      } catch {
        // not one of ours
      }
      return ["Error", [["Key", er.key], ["Code", s3], ["Message", er.message]]];
    }),
  ]));
};

const createMultipart: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const key = requireKey(ctx.route);
  const contentType = header(ctx.req, "content-type");
  const { uploadId } = await ctx.client.createMultipart(bucket, key, { ...(contentType ? { contentType } : {}), metadata: userMetadata(ctx.req) });
  sendXml(ctx.res, 200, xml("InitiateMultipartUploadResult", [["Bucket", bucket], ["Key", key], ["UploadId", uploadId]]));
};

function partParams(ctx: OpContext): { uploadId: string; partNumber: number } {
  const uploadId = ctx.route.query.get("uploadId");
  if (!uploadId) throw new ShoalError("InvalidArgument", "uploadId is required");
  const partNumber = intParam(ctx.route.query, "partNumber", 1, 10_000);
  if (partNumber === undefined) throw new ShoalError("InvalidArgument", "partNumber is required");
  return { uploadId, partNumber };
}

const uploadPart: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const key = requireKey(ctx.route);
  const { uploadId, partNumber } = partParams(ctx);
  const { body, digests } = await uploadBody(ctx);
  const part = await withDigests(digests, (d) => ctx.client.uploadPart(bucket, key, uploadId, partNumber, body, d));
  ctx.res.setHeader("ETag", quote(part.etag));
  empty(ctx.res, 200);
};

const uploadPartCopy: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const key = requireKey(ctx.route);
  const { uploadId, partNumber } = partParams(ctx);
  const src = copySource(ctx);
  const range = header(ctx.req, "x-amz-copy-source-range");
  if (range !== undefined && !/^bytes=\d+-\d+$/.test(range)) throw new ShoalError("InvalidArgument", "x-amz-copy-source-range must be bytes=first-last");
  const got = await ctx.client.get(src.bucket, src.key, { ...conditionsFrom(ctx.req, "x-amz-copy-source-if-"), ...(range ? { range } : {}) });
  const part = await ctx.client.uploadPart(bucket, key, uploadId, partNumber, got.body);
  sendXml(ctx.res, 200, xml("CopyPartResult", [["LastModified", isoDate(part.lastModified)], ["ETag", quote(part.etag)]]));
};

const completeMultipart: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const key = requireKey(ctx.route);
  const uploadId = ctx.route.query.get("uploadId")!;
  const doc = await xmlBody(ctx);
  if (doc.name !== "CompleteMultipartUpload") throw new ShoalError("MalformedPayload", "expected a CompleteMultipartUpload document");
  const parts = childrenNamed(doc, "Part").map((p) => {
    const n = childText(p, "PartNumber");
    const etag = childText(p, "ETag");
    if (n === undefined || etag === undefined || !/^\d{1,5}$/.test(n.trim())) throw new ShoalError("MalformedPayload", "each Part needs a PartNumber and an ETag");
    return { partNumber: Number(n.trim()), etag: etag.trim() };
  });
  // Like S3: answer 200 at once and keep the connection alive with
  // whitespace while the parts are assembled; a failure is an Error document.
  const res = ctx.res;
  res.statusCode = 200;
  res.setHeader("Content-Type", "application/xml");
  res.write('<?xml version="1.0" encoding="UTF-8"?>\n');
  const keepAlive = setInterval(() => res.write(" "), 5000);
  try {
    const info = await ctx.client.completeMultipart(bucket, key, uploadId, parts);
    res.end(xml("CompleteMultipartUploadResult", [["Location", `/${bucket}/${awsEncode(key, true)}`], ["Bucket", bucket], ["Key", key], ["ETag", quote(info.etag)]]).replace(/^<\?xml[^>]*>\n/, ""));
  } catch (e) {
    const err = toShoalError(e);
    res.end(xml("Error", [["Code", err.spec.s3], ["Message", err.message], ["RequestId", ctx.requestId]], "").replace(/^<\?xml[^>]*>\n/, ""));
  } finally {
    clearInterval(keepAlive);
  }
};

const abortMultipart: Op = async (ctx) => {
  await ctx.client.abortMultipart(requireBucket(ctx.route), requireKey(ctx.route), ctx.route.query.get("uploadId")!);
  empty(ctx.res, 204);
};

const listParts: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const key = requireKey(ctx.route);
  const q = ctx.route.query;
  const uploadId = q.get("uploadId")!;
  const maxParts = intParam(q, "max-parts", 0, 1000, true) ?? 1000;
  const marker = intParam(q, "part-number-marker", 0, 10_000) ?? 0;
  const r = await ctx.client.listParts(bucket, key, uploadId, { partNumberMarker: marker, maxParts });
  sendXml(ctx.res, 200, xml("ListPartsResult", [
    ["Bucket", bucket],
    ["Key", key],
    ["UploadId", uploadId],
    ["Initiator", owner(ctx)],
    ["Owner", owner(ctx)],
    ["StorageClass", "STANDARD"],
    ["PartNumberMarker", marker],
    ...(r.nextPartNumberMarker !== undefined ? ([["NextPartNumberMarker", r.nextPartNumberMarker]] as XmlChild[]) : []),
    ["MaxParts", maxParts],
    ["IsTruncated", r.isTruncated],
    ...r.parts.map((p): XmlChild => ["Part", [["PartNumber", p.partNumber], ["LastModified", isoDate(p.lastModified)], ["ETag", quote(p.etag)], ["Size", p.size]]]),
  ]));
};

const listUploads: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const q = ctx.route.query;
  const enc = encodingType(q);
  const e = (s: string | undefined) => (s === undefined ? undefined : enc ? enc(s) : s);
  const maxUploads = intParam(q, "max-uploads", 0, 1000, true) ?? 1000;
  const opts = {
    maxUploads,
    ...(q.get("prefix") ? { prefix: q.get("prefix")! } : {}),
    ...(q.get("delimiter") ? { delimiter: q.get("delimiter")! } : {}),
    ...(q.get("key-marker") ? { keyMarker: q.get("key-marker")! } : {}),
    ...(q.get("upload-id-marker") ? { uploadIdMarker: q.get("upload-id-marker")! } : {}),
  };
  const r = await ctx.client.listMultipartUploads(bucket, opts);
  sendXml(ctx.res, 200, xml("ListMultipartUploadsResult", [
    ["Bucket", bucket],
    ["KeyMarker", e(q.get("key-marker") ?? "")],
    ["UploadIdMarker", q.get("upload-id-marker") ?? ""],
    ...(r.nextKeyMarker !== undefined ? ([["NextKeyMarker", e(r.nextKeyMarker)], ["NextUploadIdMarker", r.nextUploadIdMarker]] as XmlChild[]) : []),
    ["Prefix", e(q.get("prefix") ?? "")],
    ...(q.get("delimiter") ? ([["Delimiter", e(q.get("delimiter"))]] as XmlChild[]) : []),
    ["MaxUploads", maxUploads],
    ["IsTruncated", r.isTruncated],
    ...(enc ? ([["EncodingType", "url"]] as XmlChild[]) : []),
    ...r.uploads.map((u): XmlChild => ["Upload", [["Key", e(u.key)], ["UploadId", u.uploadId], ["Initiator", owner(ctx)], ["Owner", owner(ctx)], ["StorageClass", "STANDARD"], ["Initiated", isoDate(u.initiated)]]]),
    ...r.commonPrefixes.map((p): XmlChild => ["CommonPrefixes", [["Prefix", e(p)]]]),
  ]));
};

const OPS: Record<Route["op"], Op> = {
  ListBuckets: listBuckets,
  CreateBucket: createBucket,
  DeleteBucket: deleteBucket,
  HeadBucket: headBucket,
  GetBucketLocation: getBucketLocation,
  ListObjects: listObjects(false),
  ListObjectsV2: listObjects(true),
  ListMultipartUploads: listUploads,
  DeleteObjects: deleteObjects,
  PutObject: putObject,
  CopyObject: copyObject,
  GetObject: getObject(false),
  HeadObject: getObject(true),
  DeleteObject: deleteObject,
  CreateMultipartUpload: createMultipart,
  UploadPart: uploadPart,
  UploadPartCopy: uploadPartCopy,
  CompleteMultipartUpload: completeMultipart,
  AbortMultipartUpload: abortMultipart,
  ListParts: listParts,
};

export function runOperation(ctx: OpContext): Promise<void> {
  return OPS[ctx.route.op](ctx);
}
