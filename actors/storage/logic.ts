/**
 * Pure decisions of the storage actor: decoding and validating requests,
 * evaluating preconditions, building reply headers. No I/O; unit-tested.
 */
import { ShoalError } from "../../src/errors/index.ts";
import { assertBucketName, assertKey } from "../../src/store/names.ts";
import { encodeRuns, parseRange, type ByteRange, type ObjectInfo } from "../../src/store/format.ts";
import { MAX_KEYS, type ListOptions } from "../../src/store/index.ts";
import { field, onlyFields } from "../../src/subjects/payload.ts";
import { assertPartNumber, MAX_PART_NUMBER, type UploadRecord } from "../../src/store/multipart.ts";
import { H } from "../../src/subjects/headers.ts";
import type { DirectRead } from "../../src/subjects/direct.ts";

/** Largest body a GET returns inline in its reply (the rest streams). */
export const INLINE_MAX = 512 * 1024;
/** Most user metadata, as S3 allows (2 KiB of names and values). */
export const MAX_USER_META_BYTES = 2048;
export const MAX_DELETE_KEYS = 1000;

type Get = (name: string) => string | undefined;

export interface PutRequest extends BodyHeaders {
  key: string;
  contentType: string | undefined;
  userMeta: Record<string, string>;
  ifNoneMatch: boolean;
  ifMatch: string | undefined;
}

const TOKEN_CHARS = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export function decodePut(get: Get, names: Iterable<string>): PutRequest {
  const key = assertKey(get(H.key));
  const userMeta: Record<string, string> = {};
  let metaBytes = 0;
  for (const n of names) {
    if (!n.toLowerCase().startsWith(H.metaPrefix.toLowerCase())) continue;
    const name = n.slice(H.metaPrefix.length).toLowerCase();
    const value = get(n) ?? "";
    if (!name || !TOKEN_CHARS.test(name)) throw new ShoalError("InvalidArgument", `invalid metadata name ${JSON.stringify(name)}`);
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(value)) throw new ShoalError("InvalidArgument", `metadata ${name} holds control characters`);
    metaBytes += Buffer.byteLength(name) + Buffer.byteLength(value);
    userMeta[name] = value;
  }
  if (metaBytes > MAX_USER_META_BYTES) throw new ShoalError("RequestHeaderTooLarge", `user metadata is ${metaBytes} bytes; at most ${MAX_USER_META_BYTES} are allowed`);
  const inm = get(H.ifNoneMatch);
  if (inm !== undefined && inm.trim() !== "*") throw new ShoalError("NotImplemented", "If-None-Match on PUT supports only *");
  const ct = get(H.contentType);
  if (ct !== undefined && (ct.length > 256 || /[\u0000-\u001f\u007f]/.test(ct))) throw new ShoalError("InvalidArgument", "invalid Content-Type");
  return { key, contentType: ct, userMeta, ifNoneMatch: inm !== undefined, ifMatch: get(H.ifMatch), ...decodeBodyHeaders(get) };
}

/** How a body travels and what it must hash to: the headers a put and a part share. */
export interface BodyHeaders {
  /** Content-MD5, as hex. */
  md5Hex: string | undefined;
  /** Shoal-Sha256 (base64). */
  sha256B64: string | undefined;
  /** Streamed through the actor (Shoal-Stream: 1). */
  stream: boolean;
  /** Written by the caller itself (Shoal-Direct: 1; see direct.ts). */
  direct: boolean;
}

function decodeBodyHeaders(get: Get): BodyHeaders {
  const md5 = get(H.contentMd5);
  let md5Hex: string | undefined;
  if (md5 !== undefined) {
    const b = Buffer.from(md5, "base64");
    if (b.length !== 16 || b.toString("base64") !== md5.trim()) throw new ShoalError("InvalidArgument", "Content-MD5 must be the base64 of 16 bytes");
    md5Hex = b.toString("hex");
  }
  const sha = get(H.sha256);
  if (sha !== undefined) {
    const b = Buffer.from(sha, "base64");
    if (b.length !== 32 || b.toString("base64") !== sha.trim()) throw new ShoalError("InvalidArgument", "Shoal-Sha256 must be the base64 of 32 bytes");
  }
  const stream = get(H.stream) === "1";
  const direct = get(H.direct) === "1";
  if (stream && direct) throw new ShoalError("InvalidRequest", "a body streams through the actor (Shoal-Stream) or is written directly (Shoal-Direct), not both");
  return { md5Hex, sha256B64: sha, stream, direct };
}

export interface Conditions {
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  ifUnmodifiedSince?: string;
}

export interface GetRequest extends Conditions {
  key: string;
  range: string | undefined;
  /** Inbox to stream a large body to. */
  stream: string | undefined;
  window: number | undefined;
  /** The reader fetches the chunks itself when the body does not fit in the reply. */
  direct: boolean;
}

function optDate(o: Record<string, unknown>, name: string): string | undefined {
  const v = field.optString(o, name);
  if (v !== undefined && Number.isNaN(Date.parse(v))) throw new ShoalError("InvalidArgument", `${name} is not a date`);
  return v;
}

export function decodeGet(o: Record<string, unknown>): GetRequest {
  onlyFields(o, ["key", "range", "ifMatch", "ifNoneMatch", "ifModifiedSince", "ifUnmodifiedSince", "stream", "window", "direct"]);
  const stream = field.optString(o, "stream");
  if (stream !== undefined && !/^[^\s*>]+$/.test(stream)) throw new ShoalError("MalformedPayload", "stream must be a subject");
  return {
    key: assertKey(field.string(o, "key")),
    range: field.optString(o, "range"),
    ifMatch: field.optString(o, "ifMatch"),
    ifNoneMatch: field.optString(o, "ifNoneMatch"),
    ifModifiedSince: optDate(o, "ifModifiedSince"),
    ifUnmodifiedSince: optDate(o, "ifUnmodifiedSince"),
    stream,
    window: field.optInt(o, "window", 64 * 1024, 64 * 1024 * 1024),
    direct: field.optBool(o, "direct") ?? false,
  };
}

/**
 * What a reader needs to fetch an object's chunks itself with Direct Get
 * (the payload of a GET reply carrying `Shoal-Direct: 1`).
 */
export function directReadJson(store: { name: string; stream: string }, info: ObjectInfo, range: ByteRange | undefined): DirectRead {
  return {
    v: 1,
    stream: store.stream,
    store: store.name,
    nuid: info.nuid,
    size: info.size,
    chunks: info.chunks,
    chunkSize: info.chunkSize,
    ...(info.chunkSeqs ? { seqs: encodeRuns(info.chunkSeqs) } : {}),
    sha256: info.sha256,
    ...(range ? { range: { start: range.start, end: range.end } } : {}),
  };
}

export function decodeKeyOnly(o: Record<string, unknown>, extra: string[] = []): { key: string } & Conditions {
  onlyFields(o, ["key", "ifMatch", "ifNoneMatch", "ifModifiedSince", "ifUnmodifiedSince", ...extra]);
  return {
    key: assertKey(field.string(o, "key")),
    ifMatch: field.optString(o, "ifMatch"),
    ifNoneMatch: field.optString(o, "ifNoneMatch"),
    ifModifiedSince: optDate(o, "ifModifiedSince"),
    ifUnmodifiedSince: optDate(o, "ifUnmodifiedSince"),
  };
}

const etagList = (v: string) => v.split(",").map((s) => s.trim().replace(/^W\//, "").replaceAll('"', ""));

/**
 * HTTP/S3 precondition order (RFC 9110 §13.2.2): If-Match, else
 * If-Unmodified-Since; then If-None-Match, else If-Modified-Since.
 * Throws PreconditionFailed or NotModified.
 */
export function checkConditions(info: ObjectInfo, c: Conditions): void {
  const mtime = Math.floor(Date.parse(info.mtime) / 1000);
  if (c.ifMatch !== undefined) {
    const l = etagList(c.ifMatch);
    if (!l.includes("*") && !l.includes(info.etag)) throw new ShoalError("PreconditionFailed");
  } else if (c.ifUnmodifiedSince !== undefined && mtime > Math.floor(Date.parse(c.ifUnmodifiedSince) / 1000)) {
    throw new ShoalError("PreconditionFailed");
  }
  if (c.ifNoneMatch !== undefined) {
    const l = etagList(c.ifNoneMatch);
    if (l.includes("*") || l.includes(info.etag)) throw new ShoalError("NotModified");
  } else if (c.ifModifiedSince !== undefined && mtime <= Math.floor(Date.parse(c.ifModifiedSince) / 1000)) {
    throw new ShoalError("NotModified");
  }
}

/** Reply headers describing an object (and the range served). */
export function objectHeaders(info: ObjectInfo, range?: ByteRange): Record<string, string> {
  const h: Record<string, string> = {
    [H.objectSize]: String(info.size),
    [H.size]: String(range ? range.end - range.start + 1 : info.size),
    [H.etag]: info.etag,
    [H.sha256Reply]: info.sha256,
    [H.contentType]: info.contentType,
    [H.mtime]: info.mtime,
    [H.revision]: String(info.revision),
  };
  if (range) h[H.contentRange] = `bytes ${range.start}-${range.end}/${info.size}`;
  for (const [k, v] of Object.entries(info.userMeta)) h[`${H.metaPrefix}${k}`] = v;
  return h;
}

/** JSON form of an object's info (HEAD, PUT replies, `nats req`). */
export function infoJson(bucket: string, info: ObjectInfo): Record<string, unknown> {
  return {
    v: 1,
    bucket,
    key: info.key,
    size: info.size,
    etag: info.etag,
    sha256: info.sha256,
    contentType: info.contentType,
    mtime: info.mtime,
    revision: info.revision,
    metadata: info.userMeta,
  };
}

export function resolveRange(spec: string | undefined, size: number): ByteRange | undefined {
  return parseRange(spec, size);
}

export function decodeList(o: Record<string, unknown>): ListOptions {
  onlyFields(o, ["prefix", "delimiter", "maxKeys", "startAfter", "continuationToken"]);
  const delimiter = field.optString(o, "delimiter");
  return {
    prefix: field.optString(o, "prefix") ?? "",
    ...(delimiter ? { delimiter } : {}),
    maxKeys: field.optInt(o, "maxKeys", 0, 100_000) ?? MAX_KEYS,
    ...(field.optString(o, "startAfter") !== undefined ? { startAfter: field.optString(o, "startAfter")! } : {}),
    ...(field.optString(o, "continuationToken") !== undefined ? { continuationToken: field.optString(o, "continuationToken")! } : {}),
  };
}

export function decodeDeleteMany(o: Record<string, unknown>): string[] {
  onlyFields(o, ["keys"]);
  const keys = field.optStringArray(o, "keys", MAX_DELETE_KEYS);
  if (!keys || keys.length === 0) throw new ShoalError("MalformedPayload", `keys must list 1 to ${MAX_DELETE_KEYS} keys`);
  return keys;
}

export interface CopyRequest extends Conditions {
  sourceBucket: string;
  sourceKey: string;
  key: string;
  /** COPY keeps the source's content type and metadata; REPLACE uses the ones given. */
  metadataDirective: "COPY" | "REPLACE";
  contentType: string | undefined;
  metadata: Record<string, string>;
}

export function decodeCopy(o: Record<string, unknown>): CopyRequest {
  onlyFields(o, ["sourceBucket", "sourceKey", "key", "metadataDirective", "contentType", "metadata", "ifMatch", "ifNoneMatch", "ifModifiedSince", "ifUnmodifiedSince"]);
  const directive = field.optString(o, "metadataDirective") ?? "COPY";
  if (directive !== "COPY" && directive !== "REPLACE") throw new ShoalError("InvalidArgument", "metadataDirective must be COPY or REPLACE");
  const md = o["metadata"];
  const metadata: Record<string, string> = {};
  if (md !== undefined) {
    if (typeof md !== "object" || md === null || Array.isArray(md)) throw new ShoalError("MalformedPayload", "metadata must be an object of strings");
    for (const [k, v] of Object.entries(md)) {
      if (typeof v !== "string" || !TOKEN_CHARS.test(k)) throw new ShoalError("MalformedPayload", "metadata must be an object of strings");
      metadata[k.toLowerCase()] = v;
    }
  }
  return {
    sourceBucket: assertBucketName(field.string(o, "sourceBucket")),
    sourceKey: assertKey(field.string(o, "sourceKey")),
    key: assertKey(field.string(o, "key")),
    metadataDirective: directive,
    contentType: field.optString(o, "contentType"),
    metadata,
    ifMatch: field.optString(o, "ifMatch"),
    ifNoneMatch: field.optString(o, "ifNoneMatch"),
    ifModifiedSince: optDate(o, "ifModifiedSince"),
    ifUnmodifiedSince: optDate(o, "ifUnmodifiedSince"),
  };
}

export function decodeBucketCreate(o: Record<string, unknown>, defaultReplicas: number): { bucket: string; replicas: 1 | 3 | 5 } {
  onlyFields(o, ["bucket", "replicas"]);
  const bucket = assertBucketName(field.string(o, "bucket"));
  const r = o["replicas"] === undefined ? defaultReplicas : o["replicas"];
  if (r !== 1 && r !== 3 && r !== 5) throw new ShoalError("InvalidReplicas", `replicas must be 1, 3 or 5, got ${JSON.stringify(r)}`);
  return { bucket, replicas: r };
}

/** `{"v":1,"bucket"?}` of the sweep control: a named bucket, or all when absent. */
export function decodeSweep(o: Record<string, unknown>): { bucket?: string } {
  onlyFields(o, ["bucket"]);
  const b = field.optString(o, "bucket");
  return b === undefined ? {} : { bucket: assertBucketName(b) };
}

export function decodeBucketName(o: Record<string, unknown>, extra: string[] = []): { bucket: string; force: boolean } {
  onlyFields(o, ["bucket", ...extra]);
  return { bucket: assertBucketName(field.string(o, "bucket")), force: field.optBool(o, "force") ?? false };
}

// --- multipart ---------------------------------------------------------------------

function userMetadata(md: unknown): Record<string, string> {
  const metadata: Record<string, string> = {};
  if (md === undefined) return metadata;
  if (typeof md !== "object" || md === null || Array.isArray(md)) throw new ShoalError("MalformedPayload", "metadata must be an object of strings");
  let bytes = 0;
  for (const [k, v] of Object.entries(md)) {
    if (typeof v !== "string" || !TOKEN_CHARS.test(k)) throw new ShoalError("MalformedPayload", "metadata must be an object of strings");
    bytes += Buffer.byteLength(k) + Buffer.byteLength(v);
    metadata[k.toLowerCase()] = v;
  }
  if (bytes > MAX_USER_META_BYTES) throw new ShoalError("RequestHeaderTooLarge", `user metadata is ${bytes} bytes; at most ${MAX_USER_META_BYTES} are allowed`);
  return metadata;
}

export function decodeMpuCreate(o: Record<string, unknown>): { key: string; contentType: string | undefined; metadata: Record<string, string> } {
  onlyFields(o, ["key", "contentType", "metadata"]);
  const ct = field.optString(o, "contentType");
  // eslint-disable-next-line no-control-regex
  if (ct !== undefined && (ct.length > 256 || /[\u0000-\u001f\u007f]/.test(ct))) throw new ShoalError("InvalidArgument", "invalid contentType");
  return { key: assertKey(field.string(o, "key")), contentType: ct, metadata: userMetadata(o["metadata"]) };
}

export function decodeMpuPart(get: Get): { key: string; uploadId: string; partNumber: number } & BodyHeaders {
  const key = assertKey(get(H.key));
  const uploadId = get(H.uploadId);
  if (!uploadId) throw new ShoalError("InvalidArgument", `${H.uploadId} is required`);
  const raw = get(H.partNumber);
  const n = raw !== undefined && /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  const partNumber = assertPartNumber(n);
  return { key, uploadId, partNumber, ...decodeBodyHeaders(get) };
}

export function decodeMpuRef(o: Record<string, unknown>, extra: string[] = []): { key: string; uploadId: string } {
  onlyFields(o, ["key", "uploadId", ...extra]);
  return { key: assertKey(field.string(o, "key")), uploadId: field.string(o, "uploadId") };
}

export function decodeMpuComplete(o: Record<string, unknown>): { key: string; uploadId: string; parts: Array<{ n: number; etag: string }> } {
  const ref = decodeMpuRef(o, ["parts"]);
  const raw = o["parts"];
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_PART_NUMBER) throw new ShoalError("MalformedPayload", `parts must list 1 to ${MAX_PART_NUMBER} parts`);
  const parts = raw.map((p: unknown) => {
    if (typeof p !== "object" || p === null || Array.isArray(p)) throw new ShoalError("MalformedPayload", "each part is {partNumber, etag}");
    const r = p as Record<string, unknown>;
    onlyFields(r, ["partNumber", "etag"]);
    return { n: assertPartNumber(r["partNumber"]), etag: field.string(r, "etag") };
  });
  return { ...ref, parts };
}

export function decodeMpuParts(o: Record<string, unknown>): { key: string; uploadId: string; partNumberMarker: number; maxParts: number } {
  const ref = decodeMpuRef(o, ["partNumberMarker", "maxParts"]);
  return { ...ref, partNumberMarker: field.optInt(o, "partNumberMarker", 0, MAX_PART_NUMBER) ?? 0, maxParts: field.optInt(o, "maxParts", 0, 1000) ?? 1000 };
}

export interface UploadListQuery {
  prefix: string;
  delimiter: string | undefined;
  keyMarker: string | undefined;
  uploadIdMarker: string | undefined;
  maxUploads: number;
}

export function decodeMpuList(o: Record<string, unknown>): UploadListQuery {
  onlyFields(o, ["prefix", "delimiter", "keyMarker", "uploadIdMarker", "maxUploads"]);
  const delimiter = field.optString(o, "delimiter");
  return {
    prefix: field.optString(o, "prefix") ?? "",
    delimiter: delimiter ? delimiter : undefined,
    keyMarker: field.optString(o, "keyMarker"),
    uploadIdMarker: field.optString(o, "uploadIdMarker"),
    maxUploads: field.optInt(o, "maxUploads", 0, 1000) ?? 1000,
  };
}

/** S3 ListMultipartUploads paging over uploads sorted by key, then creation. */
export function pageUploads(all: readonly UploadRecord[], q: UploadListQuery) {
  const uploads: Array<{ key: string; uploadId: string; initiated: string }> = [];
  const prefixes = new Set<string>();
  let truncated = false;
  let last: UploadRecord | undefined;
  // Start after (key-marker, upload-id-marker) when that upload exists, else after every upload of key-marker.
  let start = 0;
  if (q.keyMarker !== undefined) {
    const at = q.uploadIdMarker === undefined ? -1 : all.findIndex((u) => u.key === q.keyMarker && u.uploadId === q.uploadIdMarker);
    start = at >= 0 ? at + 1 : all.findIndex((u) => u.key > q.keyMarker!);
    if (start < 0) start = all.length;
  }
  for (const u of all.slice(start)) {
    if (!u.key.startsWith(q.prefix)) continue;
    if (q.delimiter) {
      const i = u.key.indexOf(q.delimiter, q.prefix.length);
      if (i >= 0) {
        const cp = u.key.slice(0, i + q.delimiter.length);
        if (!prefixes.has(cp)) {
          if (uploads.length + prefixes.size >= q.maxUploads) {
            truncated = true;
            break;
          }
          prefixes.add(cp);
        }
        last = u;
        continue;
      }
    }
    if (uploads.length + prefixes.size >= q.maxUploads) {
      truncated = true;
      break;
    }
    uploads.push({ key: u.key, uploadId: u.uploadId, initiated: u.created });
    last = u;
  }
  return {
    prefix: q.prefix,
    uploads,
    commonPrefixes: [...prefixes],
    isTruncated: truncated,
    ...(truncated && last ? { nextKeyMarker: last.key, nextUploadIdMarker: last.uploadId } : {}),
  };
}

/** The commit of a direct upload: what the writer says it wrote (checked against the stream before it counts). */
export interface DirectClaim {
  size: number;
  md5: string;
  sha256: string;
}

export function decodeClaim(o: Record<string, unknown>): DirectClaim {
  onlyFields(o, ["size", "md5", "sha256"]);
  const size = field.optInt(o, "size");
  if (size === undefined) throw new ShoalError("MalformedPayload", 'field "size" is required');
  const md5 = field.string(o, "md5").toLowerCase();
  const sha256 = field.string(o, "sha256");
  if (!/^[0-9a-f]{32}$/.test(md5)) throw new ShoalError("MalformedPayload", 'field "md5" must be 32 hex digits');
  if (!/^[A-Za-z0-9_-]{43}=$/.test(sha256)) throw new ShoalError("MalformedPayload", 'field "sha256" must be the padded base64url of 32 bytes');
  return { size, md5, sha256 };
}
