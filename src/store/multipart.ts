/**
 * Multipart uploads, S3 semantics, with all state in JetStream so that any
 * storage instance (and any gateway in front of it) can continue an upload.
 *
 * - State: KV `shoal_multipart`; key `<token>.<uploadId>` holds the upload
 *   (key, content type, user metadata, created), `<token>.<uploadId>.<n>`
 *   each part (its chunks' nuid and sequences, size, MD5, SHA-256).
 * - Part bytes: chunks in the bucket's own stream, `$O.<token>.C.<nuid>`,
 *   written exactly like an object's; no metadata refers to them until the
 *   upload completes. The sweep treats chunks named by a part record of an
 *   open upload as referenced.
 * - Complete: the chosen parts become the object without a byte copied
 *   (compose.ts composeObject: one metadata message listing them, committed
 *   like any put; up to MAX_COMPOSED_PARTS parts); its ETag is S3's MD5 of
 *   the parts' binary MD5s, `-N`. The parts' chunks are the object's from
 *   then on: only their records go. Stock tools see the object once its
 *   background copy (compose.ts restateComposed) has run. More parts than
 *   one message can list, or parts of uneven chunks: the parts are read in
 *   order and written as one object (a copy), and their chunks go.
 * - Abandoned uploads: the sweep removes uploads older than the configured
 *   age (storage.multipartMaxAgeMs) with their parts' chunks. Parts carry
 *   no per-message TTL: a TTL cannot be cleared once stored
 *   (docs/datapath.md), and a composed object keeps its parts' chunks.
 * - Complete is idempotent, as S3's: the object is committed with the request
 *   id `mpu.<uploadId>` (a retry whose commit landed finds it), the upload
 *   record then becomes a completion record holding the result (compare-and-
 *   set), and a repeated CompleteMultipartUpload returns that result. The
 *   completion record is removed by the sweep after COMPLETED_TTL_MS (or the
 *   upload age limit, if shorter); parts, list-parts and abort of a completed
 *   upload answer NoSuchUpload, as S3 does.
 * - A part uploaded again replaces the earlier one's record, not its chunks:
 *   a completion that read the earlier record may be composing with them.
 *   Unreferenced, they are orphans the sweep removes (below).
 * - No part leaks: a part recorded while its upload is aborted, completed or
 *   expired (a race) is caught by recordPart's second look, and failing that
 *   by the sweep, which removes part records whose upload is gone; their
 *   chunks, unless a composed object holds them, are then orphans the sweep
 *   removes (only parts of open uploads protect chunks from it).
 */
import type { KV } from "@nats-io/kv";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { kvGetLinear, kvKeys, sharedKv } from "../runtime/replicas.ts";
import { createHash } from "node:crypto";
import { nuid } from "@nats-io/nats-core";
import { ShoalError } from "../errors/index.ts";
import { KV as KV_NAMES, PARTS_META, bucketToken, chunkSubject } from "../subjects/index.ts";
import { decodeRuns, encodeParts, encodeRuns, type ObjectInfo, type PartRef } from "./format.ts";
import { composeObject, MAX_COMPOSED_PARTS } from "./compose.ts";
import { leaderGet } from "./reader.ts";
import { readSeqs } from "../jet/index.ts";
import { apiCode, checkDigests, putObject, removeChunks, writeChunks, type Jet, type StoreRef, type WrittenChunks } from "./writer.ts";

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
  /** Set once the upload is completed: when, and the object it made (what a repeated Complete returns). */
  completed?: { at: string; info: ObjectInfo };
  /**
   * Set (compare-and-set) by a completion, once its request is checked and
   * before it commits anything: from then on an abort is refused
   * (NoSuchUpload, as for a completed upload) and the sweep's expiry leaves
   * the parts' chunks to the orphan pass, so no object a completion commits
   * loses its chunks to an abort racing it. A completion that stopped after
   * setting it (its commit failed, or its answer was lost) is finished by
   * its retry; until then the upload cannot be aborted.
   */
  completing?: { at: string };
}

/** How long a completed upload's result is kept for repeated CompleteMultipartUpload requests. */
export const COMPLETED_TTL_MS = 3_600_000;

export interface PartRecord {
  v: 1;
  n: number;
  /** nuid of the part's chunks. */
  id: string;
  size: number;
  /** MD5 hex. */
  etag: string;
  sha256: string;
  /** CRC-32 (8 hex digits); absent on parts recorded before it was, or claimed by an older SDK. */
  crc32?: string;
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

/**
 * The open upload, checked to belong to `key` when given. NoSuchUpload
 * otherwise — also for a completed upload unless `completed` is true (only
 * a repeated Complete reads those).
 */
export async function getUpload(kv: KV, bucket: string, uploadId: string, key?: string, o: { completed?: boolean } = {}): Promise<UploadRecord> {
  return (await readUpload(kv, bucket, uploadId, key, o)).rec;
}

async function readUpload(kv: KV, bucket: string, uploadId: string, key?: string, o: { completed?: boolean } = {}): Promise<{ rec: UploadRecord; revision: number }> {
  const k = uploadKey(bucket, assertUploadId(uploadId));
  // A miss is confirmed with a linearizable read before it becomes
  // NoSuchUpload: right after a heal, a stale leader may answer for a
  // record acknowledged a moment ago (src/runtime/linear.ts).
  const e = (await kv.get(k)) ?? (await kvGetLinear(kv, k));
  if (!e || e.operation !== "PUT") throw new ShoalError("NoSuchUpload", undefined, { detail: { uploadId } });
  const rec = parse<UploadRecord>(e.value);
  if (key !== undefined && rec.key !== key) throw new ShoalError("NoSuchUpload", "the upload belongs to another key", { detail: { uploadId } });
  if (rec.completed && !o.completed) throw new ShoalError("NoSuchUpload", "the upload is completed", { detail: { uploadId, completed: true } });
  return { rec, revision: e.revision };
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
    if (e && e.operation === "PUT") {
      const u = parse<UploadRecord>(e.value);
      if (!u.completed) out.push(u);
    }
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
  const rec: PartRecord = { v: 1, n, id: w.id, size: w.size, etag: w.md5hex, sha256: w.sha256, ...(w.crc32 ? { crc32: w.crc32 } : {}), chunkSize: w.chunkSize, seqs: encodeRuns(w.seqs), chunks: w.seqs.length, mtime: new Date().toISOString() };
  const key = partKey(bucket, upload.uploadId, n);
  // once the record may have been written, the chunks are not ours to remove on a
  // failure without an answer: the sweep decides (a landed record keeps them)
  let ambiguous = false;
  let recorded = false;
  try {
    if (w.size > MAX_PART_SIZE) throw new ShoalError("EntityTooLarge", `a part holds at most ${MAX_PART_SIZE} bytes`);
    checkDigests(w, o);
    await getUpload(kv, bucket, upload.uploadId); // aborted or completed meanwhile?
    try {
      await kv.put(key, JSON.stringify(rec));
      recorded = true;
    } catch (e) {
      if (apiCode(e) === undefined) ambiguous = true; // no answer: the record may have landed
      throw e;
    }
    // Aborted, completed or expired between the first look and the record?
    // Then its record goes now; its chunks stay for the sweep (a completion
    // that read this record before it finished holds them; else orphans).
    await getUpload(kv, bucket, upload.uploadId);
    // The part this one replaces keeps its chunks: a completion running now
    // may have read its record already and be composing the object from them
    // (measured: a part uploaded again while its upload completed left 34 of
    // 40 acknowledged objects without their first chunk, when they were
    // removed here). Unreferenced, they are orphans the sweep removes after
    // storage.orphanGraceMs; a composed object that took them holds them.
  } catch (e) {
    if (!ambiguous) {
      if (recorded && e instanceof ShoalError && e.code === "NoSuchUpload") await kv.delete(key).catch(() => undefined);
      if (!recorded) await removeChunks(jet.jsm, store, w.id).catch(() => undefined);
    }
    throw e;
  }
  return rec;
}

/** The part as an object the reader understands. */
/**
 * A part's bytes for the completion's copy: batched Direct Gets of its
 * recorded chunk sequences (src/jet readSeqs: 8 chunks a request, 2
 * requests in flight — at most ~16 MiB held), not one Direct Get per chunk
 * with the part's SHA-256 verified on the way: the copy computes the
 * object's own SHA-256 over these very bytes, so a second hash of each part
 * bought nothing (measured: the completion of 256 MiB took 1.98 s that way).
 * The part's size is checked. A chunk a replica cannot serve yet (a Direct
 * Get answered "not found" right after a failover) is read from the stream
 * leader, one at a time, from there on.
 */
async function* partBytes(jet: Jet, store: StoreRef, p: PartRecord, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  const seqs = decodeRuns(p.seqs, p.chunks);
  const subject = chunkSubject(store.name, p.id);
  let next = 0;
  let size = 0;
  try {
    for await (const m of readSeqs(jet.jsm, store.stream, subject, seqs, { windowMsgs: 8, inflight: 2 })) {
      signal?.throwIfAborted();
      next++;
      size += m.data.byteLength;
      yield m.data;
    }
  } catch (e) {
    if (signal?.aborted) throw e;
    for (; next < seqs.length; next++) {
      const m = await leaderGet(jet.jsm, store.stream, { seq: seqs[next]! });
      if (!m || m.subject !== subject) throw new ShoalError("InternalError", `chunk ${next} of part ${p.n} is missing`, { cause: e });
      size += m.data.byteLength;
      yield m.data;
    }
  }
  if (size !== p.size) throw new ShoalError("InternalError", `part ${p.n} holds ${size} bytes, not ${p.size}`);
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

/**
 * Metadata entry recording a completed object's part sizes, as runs
 * `size*count,…` (S3 serves GET/HEAD ?partNumber=N from it). The `shoal.`
 * prefix is reserved: the gateway refuses it in x-amz-meta-* names.
 */
export { PARTS_META };

export function partSizeRuns(sizes: readonly number[]): string {
  const runs: string[] = [];
  for (let i = 0; i < sizes.length; ) {
    let j = i;
    while (j < sizes.length && sizes[j] === sizes[i]) j++;
    runs.push(j - i > 1 ? `${sizes[i]}*${j - i}` : String(sizes[i]));
    i = j;
  }
  return runs.join(",");
}

/**
 * Completes the upload: one object from the chosen parts — composed of them
 * (compose.ts) or, when they cannot be, a copy — committed with the
 * upload's own request id; then the upload record becomes a completion
 * record (the result) and the part records are removed (with their chunks
 * unless the object is composed of them). A repeated completion
 * (`upload.completed` set) returns the first one's result.
 */
export async function completeUpload(
  jet: Jet,
  kv: KV,
  store: StoreRef,
  bucket: string,
  upload: UploadRecord,
  requested: ReadonlyArray<{ n: number; etag: string }>,
  /** `copy`: complete by copying the parts into one object even when they could be composed. */
  o: { signal?: AbortSignal; versionId?: string; copy?: boolean } = {},
): Promise<ObjectInfo> {
  if (upload.completed) return upload.completed.info;
  // the request checked first: a completion refused for its parts (InvalidPart, …) marks nothing
  const recorded = await listParts(kv, bucket, upload.uploadId);
  const chosen = checkCompletion(requested, recorded);
  // the linearization point with an abort: marked completing before anything is committed
  // (a part recorded after the read above is not in this object; its chunks stay for the sweep)
  for (let attempt = 0; ; attempt++) {
    const cur = await readUpload(kv, bucket, upload.uploadId, undefined, { completed: true });
    if (cur.rec.completed) return cur.rec.completed.info;
    if (cur.rec.completing) break; // this completion's earlier attempt, or another completion: same request id, one commit
    try {
      await kv.update(uploadKey(bucket, upload.uploadId), JSON.stringify({ ...cur.rec, completing: { at: new Date().toISOString() } }), cur.revision);
      break;
    } catch (e) {
      if (attempt === 4) throw e; // changed under us each time: a part or an abort; read again
    }
  }
  const opts = {
    ...(upload.contentType ? { contentType: upload.contentType } : {}),
    userMeta: { ...upload.userMeta, [PARTS_META]: partSizeRuns(chosen.map((p) => p.size)) },
    etagOverride: multipartEtag(chosen.map((p) => p.etag)),
    // a retried or repeated completion whose commit landed finds it (writer.ts isOwnCommit)
    requestId: `mpu.${upload.uploadId}`,
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.versionId !== undefined ? { versionId: o.versionId } : {}),
  };
  const refs = o.copy ? undefined : composable(chosen, jet.nc.info?.max_payload ?? 1024 * 1024);
  let info: ObjectInfo;
  if (refs) {
    info = await composeObject(jet, store, upload.key, refs, opts);
  } else {
    async function* body(): AsyncGenerator<Uint8Array> {
      for (const p of chosen) yield* partBytes(jet, store, p, o.signal);
    }
    info = await putObject(jet, store, upload.key, body(), opts);
  }
  // the result, for repeated completions (compare-and-set: one completion record)
  for (let attempt = 0; attempt < 5; attempt++) {
    const cur = await readUpload(kv, bucket, upload.uploadId, undefined, { completed: true });
    if (cur.rec.completed) return cur.rec.completed.info; // another completion recorded first
    const done: UploadRecord = { ...cur.rec, completed: { at: new Date().toISOString(), info: { ...info, chunkSeqs: undefined, parts: undefined } } };
    try {
      await kv.update(uploadKey(bucket, upload.uploadId), JSON.stringify(done), cur.revision);
      break;
    } catch (e) {
      if (attempt === 4) throw e;
    }
  }
  // composed: the chosen parts' chunks are the object's now — only their records go
  // (and the chunks of parts not chosen); copied: every part's chunks go
  const kept = new Set(refs ? chosen.map((p) => p.id) : []);
  await removeParts(jet, kv, store, bucket, upload.uploadId, recorded, kept);
  return info;
}

/**
 * The chosen parts as the parts of a composed object, or undefined when
 * they cannot be one (then the completion copies): too many to list in one
 * metadata message (MAX_COMPOSED_PARTS, and the list within half the
 * server's max_payload: the metadata and a GET's direct-read reply carry
 * it), or a part whose chunks are not of one size (ranges are mapped on
 * chunk i covering [i·chunkSize, …)).
 */
function composable(chosen: readonly PartRecord[], maxPayload: number): PartRef[] | undefined {
  if (chosen.length > MAX_COMPOSED_PARTS) return undefined;
  const refs: PartRef[] = [];
  for (const p of chosen) {
    if (p.chunkSize < 1 || p.chunks !== Math.ceil(p.size / p.chunkSize)) return undefined;
    refs.push({ id: p.id, size: p.size, chunkSize: p.chunkSize, chunks: p.chunks, seqs: decodeRuns(p.seqs, p.chunks), sha256: p.sha256, ...(p.crc32 && /^[0-9a-f]{8}$/.test(p.crc32) ? { crc32: p.crc32 } : {}) });
  }
  return encodeParts(refs).length <= maxPayload / 2 ? refs : undefined;
}

/** Removes the given (else all) parts of an upload: chunks (unless `keep` names them), then records. */
async function removeParts(jet: Jet, kv: KV, store: StoreRef, bucket: string, uploadId: string, parts?: PartRecord[], keep?: ReadonlySet<string>): Promise<void> {
  for (const p of parts ?? (await listParts(kv, bucket, uploadId))) {
    if (!keep?.has(p.id)) await removeChunks(jet.jsm, store, p.id).catch(() => undefined);
    await kv.delete(partKey(bucket, uploadId, p.n)).catch(() => undefined);
  }
}

/**
 * Removes an upload's record and every part's chunks (an abort, or the
 * sweep's expiry). Idempotent. The record goes first, compare-and-set on the
 * revision read: an upload a completion has marked completing is refused
 * (NoSuchUpload, `completed: true`), so the completion's object keeps its
 * chunks; one marked after this read makes the delete fail, and the read
 * again refuses. A part racing with this sees NoSuchUpload. `expired`: the
 * sweep's expiry, which also takes an upload left completing by a
 * completion that never finished — its record only: the chunks are left to
 * the orphan pass (the object it may have committed holds them).
 */
export async function removeUpload(jet: Jet, kv: KV, store: StoreRef, bucket: string, uploadId: string, o: { expired?: boolean } = {}): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const cur = await readUpload(kv, bucket, uploadId);
    const completing = cur.rec.completing !== undefined;
    if (completing && !o.expired) throw new ShoalError("NoSuchUpload", "the upload is being completed", { detail: { uploadId, completed: true } });
    const all = await listParts(kv, bucket, uploadId);
    try {
      // kv.delete, not kv.purge: a purge is a rollup, see writer.ts deleteSeqs
      await kv.delete(uploadKey(bucket, uploadId), { previousSeq: cur.revision });
    } catch (e) {
      if (attempt === 4) throw e; // changed under us each time (a part, a completion): read again
      continue;
    }
    if (completing) for (const p of all) await kv.delete(partKey(bucket, uploadId, p.n)).catch(() => undefined);
    else await removeParts(jet, kv, store, bucket, uploadId, all);
    return;
  }
}

/** Upload ids of the bucket whose record is open (not completed), read now. */
async function openUploadIds(kv: KV, bucket: string): Promise<Set<string>> {
  const open = new Set<string>();
  for await (const k of keysOf(kv, `${bucketToken(bucket)}.*`)) {
    const e = await kv.get(k);
    if (e && e.operation === "PUT" && !parse<UploadRecord>(e.value).completed) open.add(parse<UploadRecord>(e.value).uploadId);
  }
  return open;
}

/**
 * nuids of chunks that recorded parts of the bucket's open uploads refer to
 * (the sweep keeps them). Parts whose upload is gone or completed protect
 * nothing: expireUploads removes them.
 */
export async function partChunkIds(kv: KV, bucket: string): Promise<Set<string>> {
  const ids = new Set<string>();
  const open = await openUploadIds(kv, bucket);
  for await (const k of keysOf(kv, `${bucketToken(bucket)}.*.*`)) {
    if (!open.has(k.split(".")[1]!)) continue;
    const e = await kv.get(k);
    if (e && e.operation === "PUT") ids.add(parse<PartRecord>(e.value).id);
  }
  return ids;
}

/**
 * Removes the bucket's open uploads created before `olderThanMs` ago, and
 * completion records older than COMPLETED_TTL_MS (or `olderThanMs`, if
 * shorter); then part records left without an open upload — recorded while
 * their upload was being aborted, completed or expired — with their chunks.
 * Returns how many uploads were removed.
 */
export async function expireUploads(jet: Jet, kv: KV, store: StoreRef, bucket: string, olderThanMs: number, now = Date.now()): Promise<number> {
  let n = 0;
  for await (const k of keysOf(kv, `${bucketToken(bucket)}.*`)) {
    const e = await kv.get(k);
    if (!e || e.operation !== "PUT") continue;
    const u = parse<UploadRecord>(e.value);
    if (u.completed) {
      if (now - Date.parse(u.completed.at) > Math.min(COMPLETED_TTL_MS, olderThanMs)) await kv.delete(k).catch(() => undefined);
    } else if (now - Date.parse(u.created) > olderThanMs) {
      await removeUpload(jet, kv, store, bucket, u.uploadId, { expired: true }).catch((e: unknown) => {
        if (!(e instanceof ShoalError && e.code === "NoSuchUpload")) throw e; // gone or completed meanwhile
      });
      n++;
    }
  }
  // Part records without an open upload: read the open ones after listing the
  // parts, so that an upload created meanwhile cannot be mistaken for a
  // missing one. Only the records go: the chunks of a completed upload's
  // parts may be its composed object's (compose.ts), and any that are not
  // are orphans the sweep removes once no metadata refers to them.
  const partKeys = await kvKeys(kv, `${bucketToken(bucket)}.*.*`);
  const open = await openUploadIds(kv, bucket);
  for (const k of partKeys) {
    const [, uploadId, num] = k.split(".");
    if (open.has(uploadId!)) continue;
    await kv.delete(partKey(bucket, uploadId!, Number(num))).catch(() => undefined);
  }
  return n;
}
