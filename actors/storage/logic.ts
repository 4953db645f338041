/**
 * Pure decisions of the storage actor: evaluating preconditions, building
 * reply headers, paging uploads. No I/O; unit-tested. Requests are decoded
 * and validated by the v1 codec (src/subjects/v1.ts), which the SDK shares.
 */
import { ShoalError } from "../../src/errors/index.ts";
import { encodeParts, encodeRuns, parseRange, type ByteRange, type ObjectInfo } from "../../src/store/format.ts";
import type { UploadRecord } from "../../src/store/multipart.ts";
import { H } from "../../src/subjects/headers.ts";
import type { DirectRead } from "../../src/subjects/direct.ts";
import { objectInfoReply, type Conditions, type UploadListQuery } from "../../src/subjects/v1.ts";

export {
  MAX_USER_META_BYTES,
  MAX_DELETE_KEYS,
  decodeBucketCreate,
  decodeBucketName,
  decodeClaim,
  decodeCopy,
  decodeDeleteMany,
  decodeGet,
  decodeKeyOnly,
  decodeList,
  decodeMpuComplete,
  decodeMpuCreate,
  decodeMpuList,
  decodeMpuPart,
  decodeMpuParts,
  decodeMpuRef,
  decodePut,
  decodeSweep,
  decodeVersionList,
  optVersionId,
  type BodyHeaders,
  type Conditions,
  type CopyRequest,
  type DirectClaim,
  type GetRequest,
  type PutRequest,
  type UploadListQuery,
} from "../../src/subjects/v1.ts";

/** Largest body a GET returns inline in its reply (the rest streams). */
export const INLINE_MAX = 512 * 1024;

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
    ...(info.parts ? { parts: encodeParts(info.parts) } : {}),
    sha256: info.sha256,
    ...(info.crc32 !== undefined ? { crc32: info.crc32 } : {}),
    ...(range ? { range: { start: range.start, end: range.end } } : {}),
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
  if (info.crc32 !== undefined) h[H.crc32Reply] = info.crc32;
  if (range) h[H.contentRange] = `bytes ${range.start}-${range.end}/${info.size}`;
  if (info.versionId !== undefined) h[H.versionId] = info.versionId;
  for (const [k, v] of Object.entries(info.userMeta)) h[`${H.metaPrefix}${k}`] = v;
  return h;
}

/** JSON form of an object's info (HEAD, PUT replies, `nats req`): the v1 codec's, which the SDK decodes. */
export function infoJson(bucket: string, info: ObjectInfo): Record<string, unknown> {
  return objectInfoReply(bucket, info);
}

export function resolveRange(spec: string | undefined, size: number): ByteRange | undefined {
  return parseRange(spec, size);
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

