/**
 * The object format: the standard NATS Object Store metadata (ADR-20) plus
 * what Shoal adds, carried in the metadata's `headers` record (never a side
 * file), so `nats object ls/get/info` and @nats-io/obj read Shoal's data as is.
 *
 *   Content-Type        the object's media type
 *   Shoal-Etag          S3 ETag: hex MD5 of the body, or "<hex>-<parts>" for multipart
 *   Shoal-Meta-<name>   user metadata (S3 x-amz-meta-<name>)
 *   Shoal-Chunk-Seqs    stream sequences of the chunks, as runs "start+count,…"
 *   Shoal-Source        on a replicated copy: "<source stream>:<source seq>:<source
 *                       incarnation>", the commit it copies (replication never lets
 *                       an older one win; the incarnation tells a re-created
 *                       source bucket's commits from the old one's)
 *   Shoal-Version-Id    the version's id in a versioned bucket (a nuid, or "null" for a
 *                       write while versioning is suspended); absent = the "null" version
 *   Shoal-Delete-Marker "1" on a delete marker that is a version (versioned or suspended
 *                       bucket); a `deleted` message without it is an unversioned delete
 *   Shoal-Deletes-Version  on a message that records DELETE ?versionId=<id>: the version
 *                       it removes (the message itself repeats the key's new current
 *                       version, or is a plain delete when none is left)
 *   Shoal-Parts         on a composed multipart object (src/store/compose.ts): its parts,
 *                       each on its own chunk subject, in order (encodeParts). The stored
 *                       message says `deleted: true`, so stock readers see no object until
 *                       the background copy restates it; Shoal reads it as live
 *                       (decodeStoredMeta)
 *   Shoal-Restates      on the background copy's metadata: the stream sequence of the
 *                       composed commit it restates in the stock form (same version, same
 *                       bytes; not a new change: no event, no second replication)
 *   Shoal-Crc32         "<crc>:<nuid>": CRC-32 (zlib's, 8 hex digits) of the bytes on the
 *                       chunk subject <nuid>. Shoal's whole-object reads check it instead of
 *                       the SHA-256 digest (3× cheaper; the digest stays for stock readers).
 *                       Ignored unless <nuid> is the metadata's own: headers copied onto
 *                       other bytes by a stock tool cannot vouch for them
 *
 * Chunk i (0-based) covers bytes [i·chunkSize, min((i+1)·chunkSize, size)).
 */
import { ShoalError } from "../errors/index.ts";

export const DIGEST_PREFIX = "SHA-256=";
export const H_CONTENT_TYPE = "Content-Type";
export const H_ETAG = "Shoal-Etag";
export const H_META_PREFIX = "Shoal-Meta-";
export const H_CHUNK_SEQS = "Shoal-Chunk-Seqs";
export const H_SOURCE = "Shoal-Source";
/** The id of the client call that wrote this version (or marker): a retried call finds its own commit. */
export const H_REQUEST_ID = "Shoal-Request-Id";
export const H_VERSION_ID = "Shoal-Version-Id";
export const H_DELETE_MARKER = "Shoal-Delete-Marker";
export const H_DELETES_VERSION = "Shoal-Deletes-Version";
export const H_PARTS = "Shoal-Parts";
export const H_RESTATES = "Shoal-Restates";
export const H_CRC32 = "Shoal-Crc32";
/** The version id S3 gives writes made while a bucket is unversioned or suspended. */
export const NULL_VERSION = "null";

/** ADR-20 metadata as stored (JSON on `$O.<store>.M.<base64url(key)>`). */
export interface StoredMeta {
  name: string;
  description?: string;
  headers?: Record<string, string[]>;
  options?: { max_chunk_size?: number; link?: { bucket: string; name?: string } };
  metadata?: Record<string, string>;
  bucket: string;
  nuid: string;
  size: number;
  chunks: number;
  mtime: string;
  digest: string;
  deleted?: boolean;
}

/** What Shoal reads out of one object's metadata. */
export interface ObjectInfo {
  key: string;
  size: number;
  etag: string;
  /** Base64url (padded) SHA-256 of the body, as in the digest field. */
  sha256: string;
  /** CRC-32 of the body (8 hex digits) when Shoal wrote it (`Shoal-Crc32`): what a whole-object read checks. */
  crc32?: string;
  contentType: string;
  mtime: string;
  /**
   * The object's revision: the stream sequence of the metadata message that
   * committed it (for a composed object's stock form, of the composed
   * commit it restates — compare-and-set uses the message's own sequence,
   * Head.revision).
   */
  revision: number;
  chunkSize: number;
  chunks: number;
  nuid: string;
  /** Chunk sequences when known (written by Shoal); undefined for stock objects. */
  chunkSeqs: number[] | undefined;
  userMeta: Record<string, string>;
  /** On a replicated copy: the source commit it copies (incarnation absent on copies made before it was recorded). */
  source?: CommitSource;
  /** The client call that committed this version, when it sent one. */
  requestId?: string;
  /** The version id (`Shoal-Version-Id`): absent on a write made while the bucket was never versioned (S3's "null" version). */
  versionId?: string;
  /**
   * A composed multipart object (`Shoal-Parts`): its bytes are these parts'
   * chunks, in order; `nuid` and `chunkSeqs` are then not the bytes' (the
   * whole object has no SHA-256 yet: `sha256` is "").
   */
  parts?: PartRef[];
  /** On the background copy of a composed object: the revision of the commit it restates. */
  restates?: number;
}

/** One part of a composed object: the chunks of one multipart part. */
export interface PartRef {
  /** nuid of the part's chunk subject. */
  id: string;
  size: number;
  chunkSize: number;
  chunks: number;
  seqs: number[];
  /** Base64url SHA-256 of the part, padded (the digest form). */
  sha256: string;
  /** CRC-32 of the part (8 hex digits), when its writer recorded it. */
  crc32?: string;
}

/** One chunk subject of a version: its nuid, and its sequences when the metadata records them. */
export interface ChunkRef {
  nuid: string;
  chunkSeqs: number[] | undefined;
}

/**
 * The ETag of an object written without an MD5 (Shoal-Etag-Kind: sha256):
 * the first 16 bytes of its SHA-256 in hex, then "-1". The suffix is how S3
 * marks an ETag that is not the body's MD5 (multipart, encrypted objects;
 * MinIO's "no-compat" mode), so S3 tools that check a download against an
 * MD5-looking ETag leave it alone. Deterministic: the same bytes give the
 * same ETag.
 */
export function sha256Etag(sha256: string): string {
  return `${Buffer.from(sha256, "base64url").subarray(0, 16).toString("hex")}-1`;
}

/** A version's chunk subjects: its own, or each of its parts' when composed. */
export function chunkRefs(info: ObjectInfo): ChunkRef[] {
  return info.parts ? info.parts.map((p) => ({ nuid: p.id, chunkSeqs: p.seqs })) : [{ nuid: info.nuid, chunkSeqs: info.chunkSeqs }];
}

/** `id:size:chunkSize:chunks:runs:sha256[:crc32]` per part, `;`-separated (runs as encodeRuns, with `+` and `,`). */
export function encodeParts(parts: readonly PartRef[]): string {
  return parts.map((p) => `${p.id}:${p.size}:${p.chunkSize}:${p.chunks}:${encodeRuns(p.seqs)}:${p.sha256}${p.crc32 ? `:${p.crc32}` : ""}`).join(";");
}

export function decodeParts(text: string): PartRef[] {
  const out: PartRef[] = [];
  for (const item of text.split(";")) {
    const m = /^([A-Za-z0-9]{1,64}):(\d{1,16}):(\d{1,10}):(\d{1,10}):([0-9+,]*):([A-Za-z0-9_-]{43}=?)(?::([0-9a-f]{8}))?$/.exec(item);
    if (!m) throw new ShoalError("MalformedPayload", `bad part entry ${JSON.stringify(item.slice(0, 60))}`);
    const size = Number(m[2]);
    const chunkSize = Number(m[3]);
    const chunks = Number(m[4]);
    // chunk i of a part covers [i·chunkSize, …): ranges are mapped on that
    if (chunkSize < 1 || chunks !== Math.ceil(size / chunkSize)) throw new ShoalError("MalformedPayload", "a part's chunks do not match its size and chunk size");
    out.push({ id: m[1]!, size, chunkSize, chunks, seqs: decodeRuns(m[5]!, chunks), sha256: m[6]!, ...(m[7] ? { crc32: m[7] } : {}) });
  }
  return out;
}

// --- chunk sequence runs ----------------------------------------------------------

/** Encodes ascending sequences as runs: [5,6,7,10] → "5+3,10+1". */
export function encodeRuns(seqs: readonly number[]): string {
  const runs: string[] = [];
  let i = 0;
  while (i < seqs.length) {
    const start = seqs[i]!;
    let n = 1;
    while (i + n < seqs.length && seqs[i + n] === start + n) n++;
    runs.push(`${start}+${n}`);
    i += n;
  }
  return runs.join(",");
}

/** Decodes runs, validating shape, order and the expected count. */
export function decodeRuns(text: string, expected: number): number[] {
  if (text === "") {
    if (expected === 0) return [];
    throw new ShoalError("MalformedPayload", "empty chunk index");
  }
  const out: number[] = [];
  let prev = 0;
  for (const part of text.split(",")) {
    const m = /^(\d{1,16})\+(\d{1,9})$/.exec(part);
    if (!m) throw new ShoalError("MalformedPayload", `bad chunk index run ${JSON.stringify(part.slice(0, 40))}`);
    const start = Number(m[1]);
    const n = Number(m[2]);
    if (start <= prev || n < 1 || out.length + n > expected) throw new ShoalError("MalformedPayload", "chunk index out of order or too long");
    for (let k = 0; k < n; k++) out.push(start + k);
    prev = start + n - 1;
  }
  if (out.length !== expected) throw new ShoalError("MalformedPayload", `chunk index lists ${out.length} chunks, expected ${expected}`);
  return out;
}

// --- ranges --------------------------------------------------------------------------

/** An inclusive byte range, resolved against the object size. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses an S3/HTTP range spec — `bytes=a-b`, `bytes=a-`, `bytes=-n` (the
 * `bytes=` prefix optional) — against `size`. Returns undefined when the whole
 * object is meant. Throws InvalidRange when unsatisfiable, InvalidArgument when
 * malformed. Multiple ranges are not supported (S3 does not either).
 */
export function parseRange(spec: string | undefined, size: number): ByteRange | undefined {
  if (spec === undefined || spec === "") return undefined;
  const m = /^(?:bytes=)?(\d*)-(\d*)$/.exec(spec.trim());
  if (!m || (m[1] === "" && m[2] === "")) throw new ShoalError("InvalidArgument", `malformed range ${JSON.stringify(spec.slice(0, 60))}; expected bytes=a-b, bytes=a- or bytes=-n`);
  const unsatisfiable = () => new ShoalError("InvalidRange", `range ${spec} is not satisfiable for an object of ${size} bytes`, { detail: { size } });
  if (m[1] === "") {
    const n = Number(m[2]);
    if (n === 0 || size === 0) throw unsatisfiable();
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  if (!Number.isSafeInteger(start) || start >= size) throw unsatisfiable();
  if (m[2] === "") return { start, end: size - 1 };
  const end = Number(m[2]);
  if (!Number.isSafeInteger(end) || end < start) throw new ShoalError("InvalidArgument", `malformed range ${spec}: end before start`);
  return { start, end: Math.min(end, size - 1) };
}

/** Which chunks hold a byte range, and where the range starts and ends within them. */
export function chunksForRange(r: ByteRange, chunkSize: number): { first: number; last: number; skip: number; take: number } {
  const first = Math.floor(r.start / chunkSize);
  const last = Math.floor(r.end / chunkSize);
  return { first, last, skip: r.start - first * chunkSize, take: r.end - r.start + 1 };
}

// --- metadata ------------------------------------------------------------------------

export function header(meta: StoredMeta, name: string): string | undefined {
  const h = meta.headers;
  if (!h) return undefined;
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(h)) if (k.toLowerCase() === want && Array.isArray(v) && typeof v[0] === "string") return v[0];
  return undefined;
}

/** Validates stored metadata JSON. Throws MalformedPayload (corrupt or foreign data). */
export function decodeStoredMeta(data: Uint8Array | string): StoredMeta {
  let v: unknown;
  try {
    v = JSON.parse(typeof data === "string" ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8"));
  } catch {
    throw new ShoalError("MalformedPayload", "object metadata is not JSON");
  }
  const m = v as Partial<StoredMeta>;
  if (!m || typeof m !== "object" || typeof m.name !== "string" || typeof m.nuid !== "string") throw new ShoalError("MalformedPayload", "object metadata lacks name or nuid");
  // A composed object is `deleted` for stock readers only (they cannot follow
  // its parts): to Shoal it is the live version it is.
  if (m.deleted === true && isComposed(m as StoredMeta)) m.deleted = false;
  if (!m.deleted && (typeof m.size !== "number" || typeof m.chunks !== "number" || typeof m.digest !== "string")) {
    throw new ShoalError("MalformedPayload", "object metadata lacks size, chunks or digest");
  }
  return m as StoredMeta;
}

/** Whether stored metadata is a composed multipart object (its bytes are its parts' chunks). */
export function isComposed(meta: StoredMeta): boolean {
  return header(meta, H_PARTS) !== undefined;
}

/** ObjectInfo from stored metadata and the metadata message's sequence. */
export function toObjectInfo(meta: StoredMeta, revision: number): ObjectInfo {
  const userMeta: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta.headers ?? {})) {
    if (k.toLowerCase().startsWith(H_META_PREFIX.toLowerCase()) && typeof v?.[0] === "string") userMeta[k.slice(H_META_PREFIX.length).toLowerCase()] = v[0];
  }
  const seqs = header(meta, H_CHUNK_SEQS);
  const parts = header(meta, H_PARTS);
  const restates = Number(header(meta, H_RESTATES) ?? NaN);
  const digest = meta.digest ?? "";
  const sha256 = digest.startsWith(DIGEST_PREFIX) ? digest.slice(DIGEST_PREFIX.length) : "";
  const etag = header(meta, H_ETAG) ?? (sha256 ? Buffer.from(sha256, "base64url").toString("hex").slice(0, 32) : "");
  const crc = /^([0-9a-f]{8}):(\S+)$/.exec(header(meta, H_CRC32) ?? "");
  return {
    key: meta.name,
    size: meta.size,
    etag,
    sha256,
    ...(crc && crc[2] === meta.nuid ? { crc32: crc[1]! } : {}),
    contentType: header(meta, H_CONTENT_TYPE) ?? "application/octet-stream",
    mtime: meta.mtime,
    // a restatement is the same version as the commit it restates: users keep seeing that commit's revision
    revision: Number.isSafeInteger(restates) && restates > 0 ? restates : revision,
    chunkSize: meta.options?.max_chunk_size ?? 128 * 1024,
    chunks: meta.chunks,
    nuid: meta.nuid,
    chunkSeqs: seqs === undefined ? undefined : decodeRuns(seqs, meta.chunks),
    userMeta,
    ...sourceOf(header(meta, H_SOURCE)),
    ...requestIdOf(meta),
    ...(header(meta, H_VERSION_ID) !== undefined ? { versionId: header(meta, H_VERSION_ID)! } : {}),
    ...(parts !== undefined ? { parts: checkedParts(decodeParts(parts), meta) } : {}),
    ...(Number.isSafeInteger(restates) && restates > 0 ? { restates } : {}),
  };
}

/** The parts must add up to the object (size and chunk count). */
function checkedParts(parts: PartRef[], meta: StoredMeta): PartRef[] {
  const size = parts.reduce((a, p) => a + p.size, 0);
  const chunks = parts.reduce((a, p) => a + p.chunks, 0);
  if (size !== meta.size || chunks !== meta.chunks) throw new ShoalError("MalformedPayload", `the parts hold ${size} bytes in ${chunks} chunks, not ${meta.size} in ${meta.chunks}`);
  return parts;
}

/** A source commit: stream, sequence and (when known) the stream's incarnation. */
export interface CommitSource {
  stream: string;
  seq: number;
  incarnation?: string;
}

function sourceOf(v: string | undefined): { source?: CommitSource } {
  const m = v === undefined ? null : /^([^:\s]+):(\d{1,16})(?::([0-9a-z]{1,40}))?$/.exec(v);
  return m ? { source: { stream: m[1]!, seq: Number(m[2]), ...(m[3] ? { incarnation: m[3] } : {}) } } : {};
}

/** Headers record for a new object's metadata. */
/** The request id a version or marker was written with, as an optional field. */
export function requestIdOf(meta: StoredMeta): { requestId?: string } {
  const id = header(meta, H_REQUEST_ID);
  return id ? { requestId: id } : {};
}

/** The version id a metadata message carries ("null" when none). */
export function versionIdOf(meta: StoredMeta): string {
  return header(meta, H_VERSION_ID) ?? NULL_VERSION;
}

/** Whether a metadata message is a delete marker that is a version (not an unversioned delete). */
export function isVersionMarker(meta: StoredMeta): boolean {
  return meta.deleted === true && header(meta, H_DELETE_MARKER) === "1";
}

export function buildHeaders(o: {
  contentType?: string;
  etag: string;
  /** Undefined when the writer does not know them (a small object's chunk pipelined with its metadata): readers walk the chunk subject. */
  chunkSeqs: readonly number[] | undefined;
  userMeta?: Record<string, string>;
  source?: CommitSource;
  requestId?: string;
  versionId?: string;
  parts?: readonly PartRef[];
  restates?: number;
  /** The CRC-32 of the bytes on chunk subject `nuid` (the metadata's own). */
  crc32?: { crc: string; nuid: string };
}): Record<string, string[]> {
  const h: Record<string, string[]> = {
    [H_CONTENT_TYPE]: [o.contentType || "application/octet-stream"],
    [H_ETAG]: [o.etag],
  };
  if (o.chunkSeqs !== undefined) h[H_CHUNK_SEQS] = [encodeRuns(o.chunkSeqs)];
  for (const [k, v] of Object.entries(o.userMeta ?? {})) h[`${H_META_PREFIX}${k.toLowerCase()}`] = [v];
  if (o.source) h[H_SOURCE] = [`${o.source.stream}:${o.source.seq}${o.source.incarnation ? `:${o.source.incarnation}` : ""}`];
  if (o.requestId) h[H_REQUEST_ID] = [o.requestId];
  if (o.versionId) h[H_VERSION_ID] = [o.versionId];
  if (o.parts) h[H_PARTS] = [encodeParts(o.parts)];
  if (o.restates !== undefined) h[H_RESTATES] = [String(o.restates)];
  if (o.crc32) h[H_CRC32] = [`${o.crc32.crc}:${o.crc32.nuid}`];
  return h;
}
