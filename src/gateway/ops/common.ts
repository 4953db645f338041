/**
 * What every S3 operation of the gateway shares: the request context, header
 * and parameter parsing, XML answers, request bodies and their digests,
 * object headers, conditions and copy sources.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createHash } from "node:crypto";
import { ShoalError } from "../../errors/index.ts";
import type { GatewayConfig } from "../../config.ts";
import type { ShoalClient, ObjectMeta } from "../../client/index.ts";
import type { Logger } from "../../log.ts";
import { isVersionIdShape } from "../../store/versions.ts";
import { PARTS_META, RESERVED_META_PREFIX } from "../../subjects/index.ts";
import { awsEncode, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, type Verified } from "../auth.ts";
import { decodeAwsChunked, isAwsChunked, promisesFrom, verifyBody } from "../body.ts";
import { decodePathSegment, type Route } from "../route.ts";
import { parseXml, xml, type XmlChild } from "../xml.ts";
import type { BucketSettings } from "../../store/bucketsettings.ts";

export interface OpContext {
  /** How long CompleteMultipartUpload waits for the result before it commits to a 200 and keeps the connection alive (S3's behaviour). */
  completeHoldMs?: number;
  /** Per-bucket settings (CORS, lifecycle, owner). */
  settings: BucketSettings;
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
export const INLINE_BODY = 512 * 1024;
export const MAX_XML_BODY = 2 * 1024 * 1024;
export const MAX_USER_META = 2048;

export const quote = (etag: string) => `"${etag}"`;
export const isoDate = (d: string) => new Date(d).toISOString();
export const httpDate = (d: string) => new Date(d).toUTCString();

export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(",") : v;
}

export function owner(ctx: OpContext): XmlChild[] {
  return [
    ["ID", createHash("sha256").update(ctx.verified.accessKey).digest("hex")],
    ["DisplayName", ctx.verified.accessKey],
  ];
}

export function sendXml(res: ServerResponse, status: number, body: string): void {
  res.statusCode = status;
  res.setHeader("Content-Type", "application/xml");
  res.setHeader("Content-Length", Buffer.byteLength(body));
  res.end(body);
}

export function empty(res: ServerResponse, status: number): void {
  res.statusCode = status;
  res.end();
}

/**
 * HTTP headers S3 stores with an object and returns on GET and HEAD. They
 * travel in the object's metadata under the reserved prefix `shoal.` (so the
 * SDK, the storage format and replication carry them with no change), which
 * x-amz-meta-* names may not use.
 */
export const STORED_HEADERS = ["cache-control", "content-disposition", "content-encoding", "content-language", "expires"] as const;
export const RESERVED = RESERVED_META_PREFIX;

/** A header value as text: UTF-8 when its bytes are UTF-8, else the bytes as latin1 (what Node hands over). */
export function headerText(v: string): string {
  // eslint-disable-next-line no-control-regex
  if (!/[^\u0000-\u007f]/.test(v)) return v;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(v, "latin1"));
  } catch {
    return v;
  }
}
/** Text as a header value: its UTF-8 bytes, byte for byte (Node writes header strings as latin1). */
export const wireText = (v: string) => Buffer.from(v, "utf8").toString("latin1");

/** x-amz-meta-* → user metadata (names lower-cased), S3's 2 KiB limit; plus the stored HTTP headers. */
export function userMetadata(req: IncomingMessage): Record<string, string> {
  const md: Record<string, string> = {};
  let bytes = 0;
  for (const [k, v] of Object.entries(req.headers)) {
    if (!k.startsWith("x-amz-meta-") || v === undefined) continue;
    const name = k.slice("x-amz-meta-".length);
    if (name.startsWith(RESERVED)) throw new ShoalError("InvalidArgument", `x-amz-meta-${RESERVED}* names are reserved`);
    const value = headerText(Array.isArray(v) ? v.join(",") : v);
    bytes += Buffer.byteLength(name) + Buffer.byteLength(value);
    md[name] = value;
  }
  if (bytes > MAX_USER_META) throw new ShoalError("RequestHeaderTooLarge", `user metadata is ${bytes} bytes; S3 allows ${MAX_USER_META}`);
  for (const h of STORED_HEADERS) {
    let v = header(req, h);
    // aws-chunked is how this request's body was framed, not how the object is encoded
    if (h === "content-encoding" && v !== undefined) v = v.split(",").map((s) => s.trim()).filter((s) => s !== "" && s.toLowerCase() !== "aws-chunked").join(",");
    if (v) md[`${RESERVED}${h}`] = headerText(v);
  }
  return md;
}

export function requireBucket(r: Route): string {
  if (r.bucket === undefined) throw new ShoalError("InvalidRequest", "no bucket named");
  return r.bucket;
}
export function requireKey(r: Route): string {
  if (r.key === undefined) throw new ShoalError("InvalidRequest", "no key named");
  checkVersionId(r.query.get("versionId"));
  return r.key;
}

/**
 * A `versionId` must be "null" (the version written while the bucket was
 * unversioned or suspended) or an id Shoal could have issued (a nuid);
 * anything else is InvalidArgument, as S3 answers.
 */
export function checkVersionId(v: string | undefined): void {
  if (v !== undefined && !isVersionIdShape(v)) throw new ShoalError("InvalidArgument", "Invalid version id specified");
}

/** `{ versionId }` from the query (checked by requireKey), for the SDK call. */
export function versionOf(r: Route): { versionId?: string } {
  const v = r.query.get("versionId");
  return v !== undefined ? { versionId: v } : {};
}

/** x-amz-version-id for a version that has an id (versioned or suspended bucket). */
export function versionHeader(res: ServerResponse, versionId: string | undefined): void {
  if (versionId !== undefined) res.setHeader("x-amz-version-id", versionId);
}

export function intParam(q: Map<string, string>, name: string, min: number, max: number, clampMax = false): number | undefined {
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
export function bodyOf(ctx: OpContext, forUpload = false): { source: AsyncIterable<Uint8Array>; length: number | undefined; digests: UploadDigests } {
  const { req, verified } = ctx;
  const promises = promisesFrom(req.headers, verified);
  const md5 = header(req, "content-md5");
  if (md5 !== undefined && Buffer.from(md5, "base64").length !== 16) throw new ShoalError("InvalidDigest", "Content-MD5 is not the base64 of 16 bytes");
  const trailers = new Map<string, string>();
  let source: AsyncIterable<Uint8Array> = req;
  if (isAwsChunked(req.headers, verified)) {
    const signed = verified.contentSha256 === STREAMING_SIGNED || verified.contentSha256 === STREAMING_SIGNED_TRAILER;
    source = decodeAwsChunked(req, { verified, signed, trailerOut: trailers });
  }
  // S3 needs the length up front: Content-Length, or x-amz-decoded-content-length for aws-chunked
  if (forUpload && promises.length === undefined) throw new ShoalError("MissingContentLength");
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
export interface UploadDigests {
  contentMd5?: string;
  sha256?: string;
}

/**
 * Runs a put or part with `digests` delegated: the service's BadDigest for
 * the SHA-256 is S3's XAmzContentSHA256Mismatch (it came from that header).
 */
export async function withDigests<T>(digests: UploadDigests, fn: (d: UploadDigests) => Promise<T>): Promise<T> {
  try {
    return await fn(digests);
  } catch (e) {
    if (digests.sha256 !== undefined && e instanceof ShoalError && e.code === "BadDigest" && e.detail?.["digest"] === "sha256") throw new ShoalError("ContentSha256Mismatch");
    throw e;
  }
}

export async function collect(it: AsyncIterable<Uint8Array>, limit: number): Promise<Buffer> {
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
export async function uploadBody(ctx: OpContext): Promise<{ body: AsyncIterable<Uint8Array> | Buffer; digests: UploadDigests }> {
  const { source, length, digests } = bodyOf(ctx, true);
  if (length !== undefined && length > ctx.config.maxPutBytes) throw new ShoalError("EntityTooLarge", `a single PUT holds at most ${ctx.config.maxPutBytes} bytes; use a multipart upload`);
  if (length !== undefined && length <= INLINE_BODY) return { body: await collect(source, INLINE_BODY), digests };
  return { body: source, digests };
}

export async function xmlBody(ctx: OpContext) {
  const { source } = bodyOf(ctx);
  const text = (await collect(source, MAX_XML_BODY)).toString("utf8");
  return parseXml(text);
}

// --- responses for objects -----------------------------------------------------------

export function objectHeaders(res: ServerResponse, m: ObjectMeta): void {
  res.setHeader("ETag", quote(m.etag));
  versionHeader(res, m.versionId);
  res.setHeader("Last-Modified", httpDate(m.mtime));
  res.setHeader("Content-Type", m.contentType || "application/octet-stream");
  res.setHeader("Accept-Ranges", "bytes");
  for (const [k, v] of Object.entries(m.metadata)) {
    if (!k.startsWith(RESERVED)) res.setHeader(`x-amz-meta-${k}`, wireText(v));
    else if ((STORED_HEADERS as readonly string[]).includes(k.slice(RESERVED.length))) res.setHeader(k.slice(RESERVED.length), wireText(v));
  }
}

/** Part sizes from `size*count,…` (undefined when not recorded). */
export function partSizes(m: ObjectMeta): number[] | undefined {
  const v = m.metadata[PARTS_META];
  if (v === undefined || !/^\d+(\*\d+)?(,\d+(\*\d+)?)*$/.test(v)) return undefined;
  const out: number[] = [];
  for (const run of v.split(",")) {
    const [size, count] = run.split("*");
    for (let i = 0; i < Number(count ?? 1) && out.length <= 10_000; i++) out.push(Number(size));
  }
  return out;
}

/**
 * The byte range of part `n` (GET/HEAD ?partNumber=n): part 1 of an object
 * that was not uploaded in parts is the whole object; any other missing part
 * is InvalidPart (400), as Ceph's s3-tests check.
 */
export function partRange(m: ObjectMeta, n: number): { range?: string; count?: number } {
  const mp = /-(\d+)$/.exec(m.etag);
  if (!mp) {
    if (n === 1) return {};
    throw new ShoalError("InvalidPart", `the object was not uploaded in parts; part ${n} does not exist`);
  }
  const sizes = partSizes(m);
  const count = Number(mp[1]);
  if (n > count) throw new ShoalError("InvalidPart", `the object has ${count} parts; part ${n} does not exist`);
  if (!sizes || sizes.length !== count) {
    if (count === 1) return { count };
    throw new ShoalError("NotImplemented", "this object was completed before Shoal recorded part sizes; it cannot be read by part");
  }
  let start = 0;
  for (let i = 0; i < n - 1; i++) start += sizes[i]!;
  const size = sizes[n - 1]!;
  if (size === 0) return { count };
  return { range: `bytes=${start}-${start + size - 1}`, count };
}

export function conditionsFrom(req: IncomingMessage, prefix = "if-") {
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

export const OVERRIDES: Array<[string, string]> = [
  ["response-content-type", "Content-Type"],
  ["response-content-language", "Content-Language"],
  ["response-expires", "Expires"],
  ["response-cache-control", "Cache-Control"],
  ["response-content-disposition", "Content-Disposition"],
  ["response-content-encoding", "Content-Encoding"],
];

/** `bucket/key` from x-amz-copy-source (URL-encoded, optional leading '/'). */
export function copySource(ctx: OpContext): { bucket: string; key: string; versionId?: string } {
  const raw = header(ctx.req, "x-amz-copy-source") ?? "";
  const [path, qs] = raw.split("?", 2) as [string, string | undefined];
  const versionId = qs ? (new URLSearchParams(qs).get("versionId") ?? undefined) : undefined;
  checkVersionId(versionId);
  const p = decodePathSegment(path.startsWith("/") ? path.slice(1) : path);
  const i = p.indexOf("/");
  if (i <= 0 || i === p.length - 1) throw new ShoalError("InvalidArgument", "x-amz-copy-source must be <bucket>/<key>");
  return { bucket: p.slice(0, i), key: p.slice(i + 1), ...(versionId !== undefined ? { versionId } : {}) };
}

// --- the operations --------------------------------------------------------------------

export type Op = (ctx: OpContext) => Promise<void>;

export function encodingType(q: Map<string, string>): ((s: string) => string) | undefined {
  const e = q.get("encoding-type");
  if (e === undefined) return undefined;
  if (e !== "url") throw new ShoalError("InvalidArgument", "encoding-type must be url");
  return (s: string) => awsEncode(s, true);
}

/** What every bucket listing reads from its query: the bucket, EncodingType, prefix, delimiter and max-keys (clamped to 1000). */
export function listingParams(ctx: OpContext): { bucket: string; q: Map<string, string>; enc: ((s: string) => string) | undefined; e: (s: string | undefined) => string | undefined; prefix: string; delimiter: string | undefined; maxKeys: number } {
  const bucket = requireBucket(ctx.route);
  const q = ctx.route.query;
  const enc = encodingType(q);
  const e = (s: string | undefined) => (s === undefined ? undefined : enc ? enc(s) : s);
  const prefix = q.get("prefix") ?? "";
  const delimiter = q.get("delimiter") || undefined;
  const maxKeys = intParam(q, "max-keys", 0, 1000, true) ?? 1000;
  return { bucket, q, enc, e, prefix, delimiter, maxKeys };
}
