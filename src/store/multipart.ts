/**
 * Multipart uploads, S3 semantics, with all state in JetStream so that any
 * storage instance (and any gateway in front of it) can continue an upload.
 *
 * - State: KV `shoal_multipart`; key `<token>.<uploadId>` holds the upload
 *   (key, content type, user metadata, created), `<token>.<uploadId>.<n>`
 *   each part (its chunks' nuid and sequences, size, MD5, SHA-256).
 * - Part bytes: chunks in the bucket's own stream, `$O.<token>.C.<nuid>`,
 *   written exactly like an object's; no metadata refers to them until the
 *   upload completes. The sweep treats chunks named by a part record as
 *   referenced, and removes uploads older than the configured age.
 * - Complete: the parts' chunks are read in order (each part's SHA-256
 *   checked) and written as one object, committed like any put; its ETag is
 *   S3's MD5 of the parts' binary MD5s, `-N`. Then the parts go. This costs
 *   one copy inside the cluster; it keeps the result a standard ADR-20
 *   object that stock tools read.
 */
import type { KV } from "@nats-io/kv";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { kvKeys, sharedKv } from "../runtime/replicas.ts";
import { createHash } from "node:crypto";
import { nuid } from "@nats-io/nats-core";
import { ShoalError } from "../errors/index.ts";
import { KV as KV_NAMES, bucketToken } from "../subjects/index.ts";
import { decodeRuns, encodeRuns, type ObjectInfo } from "./format.ts";
import { readObject } from "./reader.ts";
import { checkDigests, putObject, removeChunks, writeChunks, type Jet, type StoreRef, type WrittenChunks } from "./writer.ts";

export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
export const MAX_PART_NUMBER = 10_000;

export interface UploadRecord {
  v: 1;
  bucket: string;
  key: string;
  uploadId: string;
  created: string;
  contentType?: string;
  userMeta: Record<string, string>;
}

export interface PartRecord {
  v: 1;
  n: number;
  /** nuid of the part's chunks. */
  id: string;
  size: number;
  /** MD5 hex. */
  etag: string;
  sha256: string;
  chunkSize: number;
  /** Chunk sequences as runs (format.ts). */
  seqs: string;
  chunks: number;
  mtime: string;
}

export function openMultipart(js: JetStreamClient, jsm: JetStreamManager): Promise<KV> {
  return sharedKv(js, jsm, KV_NAMES.multipart, { history: 1 });
}

const uploadKey = (bucket: string, uploadId: string) => `${bucketToken(bucket)}.${uploadId}`;
const partKey = (bucket: string, uploadId: string, n: number) => `${uploadKey(bucket, uploadId)}.${n}`;

function assertUploadId(id: string): string {
  if (!/^[A-Za-z0-9]{8,64}$/.test(id)) throw new ShoalError("NoSuchUpload", "the upload id is not one Shoal issued", { detail: { uploadId: id.slice(0, 80) } });
  return id;
}

export function assertPartNumber(n: unknown): number {
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > MAX_PART_NUMBER) {
    throw new ShoalError("InvalidArgument", `part numbers are integers from 1 to ${MAX_PART_NUMBER}`);
  }
  return n;
}

function parse<T>(data: Uint8Array): T {
  return JSON.parse(new TextDecoder().decode(data)) as T;
}

/** Keys matching `filter` (src/runtime/replicas.ts kvKeys: never kv.keys(), which can fail to end). */
async function* keysOf(kv: KV, filter: string): AsyncGenerator<string> {
  yield* await kvKeys(kv, filter);
}

export async function createUpload(kv: KV, bucket: string, key: string, o: { contentType?: string; userMeta?: Record<string, string> } = {}): Promise<UploadRecord> {
  const rec: UploadRecord = { v: 1, bucket, key, uploadId: nuid.next(), created: new Date().toISOString(), userMeta: o.userMeta ?? {}, ...(o.contentType ? { contentType: o.contentType } : {}) };
  await kv.create(uploadKey(bucket, rec.uploadId), JSON.stringify(rec));
  return rec;
}

/** The upload, checked to belong to `key` when given. NoSuchUpload otherwise. */
export async function getUpload(kv: KV, bucket: string, uploadId: string, key?: string): Promise<UploadRecord> {
  const e = await kv.get(uploadKey(bucket, assertUploadId(uploadId)));
  if (!e || e.operation !== "PUT") throw new ShoalError("NoSuchUpload", undefined, { detail: { uploadId } });
  const rec = parse<UploadRecord>(e.value);
  if (key !== undefined && rec.key !== key) throw new ShoalError("NoSuchUpload", "the upload belongs to another key", { detail: { uploadId } });
  return rec;
}

export async function listParts(kv: KV, bucket: string, uploadId: string): Promise<PartRecord[]> {
  const parts: PartRecord[] = [];
  for await (const k of keysOf(kv, `${uploadKey(bucket, uploadId)}.*`)) {
    const e = await kv.get(k);
    if (e && e.operation === "PUT") parts.push(parse<PartRecord>(e.value));
  }
  return parts.sort((a, b) => a.n - b.n);
}

/** Uploads in a bucket, sorted by key then creation (S3 ListMultipartUploads order). */
export async function listUploads(kv: KV, bucket: string): Promise<UploadRecord[]> {
  const out: UploadRecord[] = [];
  for await (const k of keysOf(kv, `${bucketToken(bucket)}.*`)) {
    const e = await kv.get(k);
    if (e && e.operation === "PUT") out.push(parse<UploadRecord>(e.value));
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.created.localeCompare(b.created)));
}

/** Digests a part's bytes must match (Content-MD5, x-amz-content-sha256 …). */
export interface PartExpectations {
  expectMd5Hex?: string;
  expectSha256B64?: string;
}

/**
 * Writes one part (replacing an earlier part with the same number). The
 * part's chunks are written first and recorded after, so a failed part
 * leaves nothing recorded (and its chunks purged by writeChunks).
 */
export async function uploadPart(
  jet: Jet,
  kv: KV,
  store: StoreRef,
  bucket: string,
  upload: UploadRecord,
  n: number,
  source: AsyncIterable<Uint8Array>,
  o: PartExpectations & { signal?: AbortSignal } = {},
): Promise<PartRecord> {
  assertPartNumber(n);
  const w: WrittenChunks = await writeChunks(jet, store, source, { maxSize: MAX_PART_SIZE, ...(o.signal ? { signal: o.signal } : {}) });
  return recordPart(jet, kv, store, bucket, upload, n, w, o);
}

/**
 * Records chunks already written (by uploadPart, or by the SDK on the direct
 * path) as part `n`, after checking them against the expected digests. On
 * any failure the chunks are removed and nothing is recorded.
 */
export async function recordPart(jet: Jet, kv: KV, store: StoreRef, bucket: string, upload: UploadRecord, n: number, w: WrittenChunks, o: PartExpectations = {}): Promise<PartRecord> {
  assertPartNumber(n);
  const rec: PartRecord = { v: 1, n, id: w.id, size: w.size, etag: w.md5hex, sha256: w.sha256, chunkSize: w.chunkSize, seqs: encodeRuns(w.seqs), chunks: w.seqs.length, mtime: new Date().toISOString() };
  try {
    if (w.size > MAX_PART_SIZE) throw new ShoalError("EntityTooLarge", `a part holds at most ${MAX_PART_SIZE} bytes`);
    checkDigests(w, o);
    await getUpload(kv, bucket, upload.uploadId); // aborted or completed meanwhile?
    const prev = await kv.get(partKey(bucket, upload.uploadId, n));
    await kv.put(partKey(bucket, upload.uploadId, n), JSON.stringify(rec));
    if (prev && prev.operation === "PUT") {
      const old = parse<PartRecord>(prev.value);
      if (old.id !== rec.id) await removeChunks(jet.jsm, store, old.id, decodeRuns(old.seqs, old.chunks)).catch(() => undefined);
    }
  } catch (e) {
    await removeChunks(jet.jsm, store, w.id, w.seqs).catch(() => undefined);
    throw e;
  }
  return rec;
}

/** The part as an object the reader understands. */
function partInfo(upload: UploadRecord, p: PartRecord): ObjectInfo {
  return {
    key: `${upload.key} (part ${p.n})`,
    size: p.size,
    etag: p.etag,
    sha256: p.sha256,
    contentType: "application/octet-stream",
    mtime: p.mtime,
    revision: 0,
    chunkSize: p.chunkSize,
    chunks: p.chunks,
    nuid: p.id,
    chunkSeqs: decodeRuns(p.seqs, p.chunks),
    userMeta: {},
  };
}

/** S3's multipart ETag: MD5 of the concatenated binary part MD5s, then `-N`. */
export function multipartEtag(partEtags: readonly string[]): string {
  const h = createHash("md5");
  for (const e of partEtags) h.update(Buffer.from(e, "hex"));
  return `${h.digest("hex")}-${partEtags.length}`;
}

/** Checks a CompleteMultipartUpload part list against the recorded parts. */
export function checkCompletion(requested: ReadonlyArray<{ n: number; etag: string }>, recorded: readonly PartRecord[]): PartRecord[] {
  if (requested.length === 0) throw new ShoalError("MalformedPayload", "the part list is empty");
  const byN = new Map(recorded.map((p) => [p.n, p]));
  const chosen: PartRecord[] = [];
  let last = 0;
  for (const r of requested) {
    assertPartNumber(r.n);
    if (r.n <= last) throw new ShoalError("InvalidPartOrder", undefined, { detail: { part: r.n } });
    last = r.n;
    const p = byN.get(r.n);
    if (!p || p.etag !== r.etag.replaceAll('"', "").toLowerCase()) throw new ShoalError("InvalidPart", undefined, { detail: { part: r.n } });
    chosen.push(p);
  }
  chosen.forEach((p, i) => {
    if (i < chosen.length - 1 && p.size < MIN_PART_SIZE) {
      throw new ShoalError("EntityTooSmall", `part ${p.n} is ${p.size} bytes; every part but the last must be at least ${MIN_PART_SIZE}`, { detail: { part: p.n } });
    }
  });
  return chosen;
}

/** Completes the upload: one object from the chosen parts, then the upload and all its parts are removed. */
export async function completeUpload(
  jet: Jet,
  kv: KV,
  store: StoreRef,
  bucket: string,
  upload: UploadRecord,
  requested: ReadonlyArray<{ n: number; etag: string }>,
  o: { signal?: AbortSignal } = {},
): Promise<ObjectInfo> {
  const recorded = await listParts(kv, bucket, upload.uploadId);
  const chosen = checkCompletion(requested, recorded);
  async function* body(): AsyncGenerator<Uint8Array> {
    for (const p of chosen) yield* readObject(jet.jsm, store, partInfo(upload, p), o.signal ? { signal: o.signal } : {});
  }
  const info = await putObject(jet, store, upload.key, body(), {
    ...(upload.contentType ? { contentType: upload.contentType } : {}),
    userMeta: upload.userMeta,
    etagOverride: multipartEtag(chosen.map((p) => p.etag)),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  await removeUpload(jet, kv, store, bucket, upload.uploadId, recorded);
  return info;
}

/** Removes an upload's record and every part's chunks. Idempotent. */
export async function removeUpload(jet: Jet, kv: KV, store: StoreRef, bucket: string, uploadId: string, parts?: PartRecord[]): Promise<void> {
  const all = parts ?? (await listParts(kv, bucket, uploadId));
  // the record first: a part racing with this sees NoSuchUpload and drops its chunks
  // (kv.delete, not kv.purge: a purge is a rollup, see writer.ts deleteSeqs)
  await kv.delete(uploadKey(bucket, uploadId));
  for (const p of all) {
    await removeChunks(jet.jsm, store, p.id, decodeRuns(p.seqs, p.chunks)).catch(() => undefined);
    await kv.delete(partKey(bucket, uploadId, p.n)).catch(() => undefined);
  }
}

/** nuids of chunks that recorded parts of the bucket's uploads refer to (the sweep keeps them). */
export async function partChunkIds(kv: KV, bucket: string): Promise<Set<string>> {
  const ids = new Set<string>();
  for await (const k of keysOf(kv, `${bucketToken(bucket)}.*.*`)) {
    const e = await kv.get(k);
    if (e && e.operation === "PUT") ids.add(parse<PartRecord>(e.value).id);
  }
  return ids;
}

/** Removes the bucket's uploads created before `olderThanMs` ago; returns how many. */
export async function expireUploads(jet: Jet, kv: KV, store: StoreRef, bucket: string, olderThanMs: number, now = Date.now()): Promise<number> {
  let n = 0;
  for (const u of await listUploads(kv, bucket)) {
    if (now - Date.parse(u.created) > olderThanMs) {
      await removeUpload(jet, kv, store, bucket, u.uploadId);
      n++;
    }
  }
  return n;
}
