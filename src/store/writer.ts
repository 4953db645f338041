/**
 * Writing objects: chunks are published with a bounded window of pending
 * acks (not one at a time), MD5 and SHA-256 are computed while streaming, the
 * metadata is committed last (compare-and-set on the key's last sequence),
 * the replaced version's chunks are deleted after the commit, and any failure
 * or abort deletes the chunks written so far: a failed write is invisible and
 * leaves nothing behind. The replaced metadata message stays until the sweep
 * removes it — after every durable reader of the commit log (the
 * replicator) has passed it — so no change goes unseen. No purges and no
 * rollups (see deleteSeqs).
 */
import { AdaptiveHasher, type Digests } from "./hasher.ts";
import { headers as natsHeaders, nuid } from "@nats-io/nats-core";
import type { NatsConnection } from "@nats-io/nats-core";
import type { MsgHdrs } from "@nats-io/nats-core";
import type { JetStreamClient, JetStreamManager, PubAck } from "@nats-io/jetstream";
import { ShoalError } from "../errors/index.ts";
import { retry } from "../runtime/backoff.ts";
import { chunkSubject, metaSubject } from "../subjects/index.ts";
import { buildHeaders, DIGEST_PREFIX, H_REQUEST_ID, type ObjectInfo, type StoredMeta, toObjectInfo } from "./format.ts";
import { assertStream, directGet, headObject } from "./reader.ts";
import { HEADER_ROOM, isOwnedChunk, rechunk } from "../transfer/rechunk.ts";

/**
 * Default chunk: the server's max_payload less room for headers, so that a
 * chunk travels unchanged (no copy, no re-split) as one flow-controlled
 * transfer message from the SDK to the storage actor.
 */
export function defaultChunkSize(maxPayload: number): number {
  return maxPayload - HEADER_ROOM;
}
export const DEFAULT_WINDOW_BYTES = 8 * 1024 * 1024;
const WRONG_LAST_SEQUENCE = 10071;

/** The three handles the store needs from one connection. */
export interface Jet {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

export interface StoreRef {
  /** Object store name (`<token>[__<shard>]`). */
  name: string;
  /** Backing stream (`OBJ_<name>`). */
  stream: string;
}

export interface PutOptions {
  contentType?: string;
  userMeta?: Record<string, string>;
  /** Bytes per chunk (clamped to the server's max_payload). */
  chunkSize?: number;
  /** Most bytes published but not yet acknowledged. */
  windowBytes?: number;
  /** Fail with PreconditionFailed when a live object has this key. */
  ifNoneMatch?: boolean;
  /** Fail with PreconditionFailed unless the live object's ETag is this. */
  ifMatch?: string;
  /** Verify the body against these before committing (BadDigest otherwise). */
  expectMd5Hex?: string;
  expectSha256B64?: string;
  /** Refuse bodies larger than this (EntityTooLarge), checked while streaming. */
  maxSize?: number;
  /** Use this ETag instead of the body's MD5 (multipart: md5-of-md5s-N). */
  etagOverride?: string;
  /** A replicated copy: the source commit it copies (Shoal-Source). */
  source?: { stream: string; seq: number };
  signal?: AbortSignal;
  /** How long one publish may keep retrying (through a stream-leader failover) before the put fails. */
  timeoutMs?: number;
  /** Ack deadline of one publish attempt. */
  attemptTimeoutMs?: number;
  /**
   * The client call's id, the same on each of its retries: stored with the
   * version, so a retry of a put that committed (its reply lost) returns that
   * commit instead of committing — and announcing — the object twice.
   */
  requestId?: string;
}

/** Publish deadlines: one attempt, and all attempts of one message. */
export interface PublishTiming {
  attemptMs: number;
  deadlineMs: number;
  signal?: AbortSignal;
}
export const DEFAULT_PUBLISH_TIMING: PublishTiming = Object.freeze({ attemptMs: 1000, deadlineMs: 15_000 });

/**
 * Publishes with a message id and retries retryable failures (timeouts, no
 * responders, JetStream unavailable) with the same id until the deadline.
 * JetStream's duplicate window makes an attempt whose ack was lost count
 * once: the retry is answered `duplicate` with the first attempt's sequence.
 * This is what lets a put ride through a stream-leader failover instead of
 * failing and starting over.
 */
export function publishOnce(js: JetStreamClient, subject: string, data: Uint8Array | string, msgID: string, t: PublishTiming, headers?: MsgHdrs): Promise<PubAck> {
  return retry(() => js.publish(subject, data, { msgID, timeout: t.attemptMs, ...(headers ? { headers } : {}) }), {
    attempts: 1000,
    baseMs: 50,
    maxMs: 250,
    deadlineMs: t.deadlineMs,
    ...(t.signal ? { signal: t.signal } : {}),
  });
}

function apiCode(e: unknown): number | undefined {
  const c = (e as { api_error?: { err_code?: number }; code?: unknown })?.api_error?.err_code;
  if (typeof c === "number") return c;
  return /wrong last sequence/i.test(String((e as Error)?.message)) ? WRONG_LAST_SEQUENCE : undefined;
}

/**
 * Messages are removed one by one (message deletes), never with a filtered
 * purge or a `Nats-Rollup` header: on nats-server 2.9.10 a purge — including
 * the one a rollup triggers — moves every consumer of the stream past
 * messages it has not delivered yet (fixed upstream in 2.9.12,
 * nats-server#3838). Measured here: 59 of 80 delete markers published with
 * rollups were never delivered to a watching consumer; 0 of 80 with message
 * deletes. Skipped messages would make the list index and the event stream
 * miss commits.
 */
export async function deleteSeqs(jsm: JetStreamManager, stream: string, seqs: readonly number[]): Promise<void> {
  const queue = [...seqs];
  const worker = async () => {
    for (let seq = queue.shift(); seq !== undefined; seq = queue.shift()) {
      try {
        await jsm.streams.deleteMessage(stream, seq, false);
      } catch (e) {
        if (!/no message found|not found/i.test(String((e as Error)?.message))) throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, queue.length) }, worker));
}

/** Sequences of every message on `subject` (a walk with Direct Get). */
export async function seqsOfSubject(jsm: JetStreamManager, stream: string, subject: string): Promise<number[]> {
  const seqs: number[] = [];
  for (let after = 0; ; ) {
    const m = await directGet(jsm, stream, { seq: after + 1, next_by_subj: subject });
    if (!m || m.subject !== subject) return seqs;
    seqs.push(m.seq);
    after = m.seq;
  }
}

/** Removes the chunks of `nuid` (their sequences when known, else found by walking the subject). */
export async function removeChunks(jsm: JetStreamManager, store: StoreRef, nuid: string, knownSeqs?: readonly number[]): Promise<void> {
  const seqs = knownSeqs && knownSeqs.length > 0 ? knownSeqs : await seqsOfSubject(jsm, store.stream, chunkSubject(store.name, nuid));
  await deleteSeqs(jsm, store.stream, seqs);
}

/** Chunks written under one nuid, not yet referenced by any metadata. */
export interface WrittenChunks {
  id: string;
  seqs: number[];
  size: number;
  chunkSize: number;
  md5hex: string;
  /** Base64url SHA-256, padded (ADR-20 digest form). */
  sha256: string;
}

export interface ChunkOptions {
  /** The nuid to write under (a direct upload the storage actor announced); a fresh one otherwise. */
  id?: string;
  chunkSize?: number;
  windowBytes?: number;
  maxSize?: number;
  signal?: AbortSignal;
  timing?: PublishTiming;
  /** Compute the MD5 (default); false when the ETag will not be the body's MD5 (md5hex is then ""). */
  md5?: boolean;
}

export function timingOf(o: { timeoutMs?: number; attemptTimeoutMs?: number; signal?: AbortSignal }): PublishTiming {
  return {
    attemptMs: o.attemptTimeoutMs ?? DEFAULT_PUBLISH_TIMING.attemptMs,
    deadlineMs: o.timeoutMs ?? DEFAULT_PUBLISH_TIMING.deadlineMs,
    ...(o.signal ? { signal: o.signal } : {}),
  };
}

/**
 * Streams `source` into `$O.<store>.C.<nuid>` with a bounded window of
 * pending acks, hashing (MD5 and SHA-256) as it goes. On any failure the
 * chunks written are purged before the error is thrown; on success nothing
 * refers to them yet: the caller commits metadata (put) or records them
 * (multipart part), and the sweep removes them if neither happens.
 */
export async function writeChunks({ nc, js, jsm }: Jet, store: StoreRef, source: AsyncIterable<Uint8Array>, opts: ChunkOptions = {}): Promise<WrittenChunks> {
  const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
  const chunkSize = Math.max(1024, Math.min(opts.chunkSize ?? defaultChunkSize(maxPayload), maxPayload));
  const windowBytes = Math.max(chunkSize, opts.windowBytes ?? DEFAULT_WINDOW_BYTES);
  const timing = opts.timing ?? timingOf(opts);
  const id = opts.id ?? nuid.next();
  const chunkSubj = chunkSubject(store.name, id);
  // MD5 and SHA-256 on a worker thread once the body proves large (src/store/hasher.ts)
  const hasher = new AdaptiveHasher(opts.md5 ?? true);
  let digests: Digests = { md5hex: "", sha256: "" };
  const seqs: number[] = [];
  const pending: Array<{ index: number; data: Uint8Array; ack: Promise<PubAck> }> = [];
  let inflight = 0;
  let size = 0;
  let wrote = false;
  const chunkId = (index: number) => `${id}.${index}`;

  // The oldest pending chunk: its first attempt went out pipelined; if that
  // failed in a retryable way, publish it again with the same id.
  const settleOldest = async () => {
    const p = pending[0]!;
    let ack: PubAck;
    try {
      ack = await p.ack;
    } catch {
      ack = await publishOnce(js, chunkSubj, p.data, chunkId(p.index), timing);
    }
    pending.shift();
    seqs[p.index] = ack.seq;
    inflight -= p.data.byteLength;
    // Hashed once stored (in order): a chunk rechunk assembled is ours alone
    // and no longer needed, so it moves to the hashing worker without a copy.
    hasher.update(p.data, isOwnedChunk(p.data));
  };

  try {
    let index = 0;
    for await (const chunk of rechunk(source, chunkSize)) {
      opts.signal?.throwIfAborted();
      size += chunk.byteLength;
      if (opts.maxSize !== undefined && size > opts.maxSize) throw new ShoalError("EntityTooLarge", `the body exceeds ${opts.maxSize} bytes`);
      wrote = true;
      const ack = js.publish(chunkSubj, chunk, { msgID: chunkId(index), timeout: timing.attemptMs });
      ack.catch(() => undefined); // observed in settleOldest; never unhandled
      pending.push({ index: index++, data: chunk, ack });
      inflight += chunk.byteLength;
      while (inflight > windowBytes) await settleOldest();
      // the hashing worker may not fall more than a window behind (memory bound)
      await hasher.caughtUp(windowBytes);
    }
    while (pending.length > 0) await settleOldest();
    opts.signal?.throwIfAborted();
    digests = await hasher.digest();
  } catch (e) {
    // Let in-flight publishes land, then remove every chunk of this attempt.
    hasher.discard();
    await Promise.allSettled(pending.map((p) => p.ack));
    if (wrote) await removeChunks(jsm, store, id).catch(() => undefined);
    if (opts.signal?.aborted && !(e instanceof ShoalError)) throw new ShoalError("Aborted", "the upload was aborted", { cause: e });
    throw e;
  }
  return { id, seqs, size, chunkSize, md5hex: digests.md5hex, sha256: digests.sha256 };
}

/**
 * Checks written chunks against the digests the writer was given. A mismatch
 * is BadDigest, its detail naming the digest (`md5` or `sha256`) so that an
 * edge can answer with its own code (the S3 gateway: x-amz-content-sha256).
 */
export function checkDigests(w: Pick<WrittenChunks, "md5hex" | "sha256">, o: { expectMd5Hex?: string; expectSha256B64?: string }): void {
  if (o.expectMd5Hex !== undefined && o.expectMd5Hex.toLowerCase() !== w.md5hex) {
    throw new ShoalError("BadDigest", "the body's MD5 does not match the one supplied", { detail: { digest: "md5" } });
  }
  if (o.expectSha256B64 !== undefined && Buffer.from(o.expectSha256B64, "base64").toString("hex") !== Buffer.from(w.sha256, "base64url").toString("hex")) {
    throw new ShoalError("BadDigest", "the body's SHA-256 does not match the one supplied", { detail: { digest: "sha256" } });
  }
}

/**
 * Streams `source` into the object store under `key` and commits it.
 * Returns the committed object's info.
 */
export async function putObject(jet: Jet, store: StoreRef, key: string, source: AsyncIterable<Uint8Array>, opts: PutOptions = {}): Promise<ObjectInfo> {
  const { js, jsm } = jet;
  const timing = timingOf(opts);
  // Conditional puts check before any byte is written; unconditional ones
  // read the current version while the chunks go out (one round trip less
  // for small objects). Either way the commit is compare-and-set.
  await assertStream(jsm, store.stream); // NoSuchBucket before any write (cached after the first time)
  const conditional = opts.ifNoneMatch === true || opts.ifMatch !== undefined;
  const prevP = headWithRetry(jsm, store, key, timing);
  prevP.catch(() => undefined);
  let prev = conditional ? await prevP : undefined;
  if (conditional && isOwnCommit(prev, opts)) return prev!.info!;
  if (conditional) checkPreconditions(prev, opts);
  const w = await writeChunks(jet, store, source, {
    timing,
    ...(opts.chunkSize !== undefined ? { chunkSize: opts.chunkSize } : {}),
    ...(opts.windowBytes !== undefined ? { windowBytes: opts.windowBytes } : {}),
    ...(opts.maxSize !== undefined ? { maxSize: opts.maxSize } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    // a multipart object's ETag is not its MD5: no need to compute one
    md5: opts.etagOverride === undefined || opts.expectMd5Hex !== undefined,
  });
  return commitChunks(jet, store, key, w, opts, timing, conditional ? prev : await prevP.catch(() => undefined));
}

/**
 * Commits written chunks as `key`'s metadata (compare-and-set against `prev`,
 * re-read on a race) and purges the replaced version's chunks. On failure the
 * chunks are purged, unless the commit may have landed after all.
 */
export async function commitChunks(jet: Jet, store: StoreRef, key: string, w: WrittenChunks, opts: PutOptions, timing: PublishTiming, prev: Head | undefined): Promise<ObjectInfo> {
  const { js, jsm } = jet;
  const metaSubj = metaSubject(store.name, key);
  let ambiguous = false;
  try {
    opts.signal?.throwIfAborted();
    checkDigests(w, opts);
    const meta: StoredMeta = {
      name: key,
      description: "",
      headers: buildHeaders({
        contentType: opts.contentType,
        etag: opts.etagOverride ?? w.md5hex,
        chunkSeqs: w.seqs,
        userMeta: opts.userMeta,
        ...(opts.source ? { source: opts.source } : {}),
        ...(opts.requestId ? { requestId: opts.requestId } : {}),
      }),
      options: { max_chunk_size: w.chunkSize },
      bucket: store.name,
      nuid: w.id,
      size: w.size,
      chunks: w.seqs.length,
      mtime: new Date().toISOString(),
      digest: `${DIGEST_PREFIX}${w.sha256}`,
      deleted: false,
    };
    // Commit, guarded by the revision we last saw (compare-and-set), so we
    // always know exactly which version we replaced; then delete its chunks
    // (message deletes, see deleteSeqs; its metadata is left to the sweep).
    for (let attempt = 0; ; attempt++) {
      if (isOwnCommit(prev, opts)) {
        // An earlier attempt of this call committed: that is the result.
        if (prev!.info!.nuid !== w.id) await removeChunks(jsm, store, w.id, w.seqs).catch(() => undefined);
        return prev!.info!;
      }
      checkPreconditions(prev, opts);
      const h = natsHeaders();
      h.set("Nats-Expected-Last-Subject-Sequence", String(prev?.revision ?? prev?.markerRevision ?? 0));
      try {
        let seq: number;
        try {
          seq = (await publishOnce(js, metaSubj, JSON.stringify(meta), `${w.id}.m${attempt}`, timing, h)).seq;
        } catch (e) {
          if (apiCode(e) !== undefined) throw e; // the server refused it: it did not land
          const landed = await commitLanded(jsm, store, key, w.id);
          if (landed === undefined) ambiguous = true;
          if (typeof landed !== "number") throw e;
          seq = landed;
        }
        const info = toObjectInfo(meta, seq);
        if (prev?.info && prev.info.nuid !== w.id) await removeChunks(jsm, store, prev.info.nuid, prev.info.chunkSeqs).catch(() => undefined);
        return info;
      } catch (e) {
        if (apiCode(e) !== WRONG_LAST_SEQUENCE || attempt >= 20) throw e;
        // Someone (maybe an earlier attempt of this call) committed the same key meanwhile: re-read and re-check.
        prev = await headWithRetry(jsm, store, key, timing);
      }
    }
  } catch (e) {
    if (w.size > 0 && !ambiguous) await removeChunks(jsm, store, w.id, w.seqs).catch(() => undefined);
    if (opts.signal?.aborted && !(e instanceof ShoalError)) throw new ShoalError("Aborted", "the upload was aborted", { cause: e });
    throw e;
  }
}

export function headWithRetry(jsm: JetStreamManager, store: StoreRef, key: string, t: PublishTiming): Promise<Head | undefined> {
  return retry(() => headObject(jsm, store, key), { attempts: 1000, baseMs: 50, maxMs: 500, deadlineMs: t.deadlineMs, ...(t.signal ? { signal: t.signal } : {}) });
}

/**
 * After a commit publish failed without an answer: the revision when the
 * key's live metadata is ours (it landed), false when it is readable and not
 * ours (it did not), undefined when it cannot be read (it may have).
 */
async function commitLanded(jsm: JetStreamManager, store: StoreRef, key: string, id: string): Promise<number | false | undefined> {
  try {
    const head = await headObject(jsm, store, key);
    return head?.info?.nuid === id && head.revision !== undefined ? head.revision : false;
  } catch {
    return undefined;
  }
}

/**
 * Checks a conditional put's preconditions before any byte is written (the
 * commit checks them again, compare-and-set). Nothing to check for others.
 */
export async function precheckPut(jsm: JetStreamManager, store: StoreRef, key: string, opts: PutOptions): Promise<void> {
  if (opts.ifNoneMatch !== true && opts.ifMatch === undefined) return;
  const prev = await headWithRetry(jsm, store, key, timingOf(opts));
  if (!isOwnCommit(prev, opts)) checkPreconditions(prev, opts);
}

/** Whether the key's live version was committed by this same call (an earlier attempt of it). */
function isOwnCommit(prev: Head | undefined, opts: PutOptions): boolean {
  return opts.requestId !== undefined && prev?.info?.requestId === opts.requestId;
}

export interface Head {
  /** The live object, or undefined when the key has none (absent or deleted). */
  info: ObjectInfo | undefined;
  /** Revision of the live object. */
  revision: number | undefined;
  /** Revision of a delete marker, when that is the key's last message. */
  markerRevision: number | undefined;
  /** The request id the delete marker was written with, if any. */
  markerRequestId?: string;
}

function checkPreconditions(prev: Head | undefined, opts: PutOptions): void {
  if (opts.ifNoneMatch && prev?.info) throw new ShoalError("PreconditionFailed", "an object with this key exists (If-None-Match: *)");
  if (opts.ifMatch !== undefined) {
    const want = opts.ifMatch.replaceAll('"', "");
    if (!prev?.info || (want !== "*" && prev.info.etag !== want)) throw new ShoalError("PreconditionFailed", "the object's ETag does not match If-Match");
  }
}

/**
 * Deletes a key: a delete marker is committed over the metadata
 * (compare-and-set), then the object's chunks are deleted. Idempotent: deleting a missing key succeeds.
 * Markers are what the event stream and the list index observe; the storage
 * actor's tombstone sweep purges old ones so they do not pile up.
 */
export async function deleteObject(
  { js, jsm }: Jet,
  store: StoreRef,
  key: string,
  timing: PublishTiming = DEFAULT_PUBLISH_TIMING,
  requestId?: string,
): Promise<{ deleted: boolean }> {
  const id = nuid.next();
  for (let attempt = 0; ; attempt++) {
    const prev = await headWithRetry(jsm, store, key, timing);
    // A retry of a delete whose marker landed (its reply lost) reports what that attempt did.
    if (!prev?.info) return { deleted: requestId !== undefined && prev?.markerRequestId === requestId };
    const h = natsHeaders();
    h.set("Nats-Expected-Last-Subject-Sequence", String(prev.revision));
    const marker = { name: key, bucket: store.name, nuid: prev.info.nuid, size: 0, chunks: 0, digest: "", mtime: new Date().toISOString(), deleted: true, options: { max_chunk_size: prev.info.chunkSize }, ...(requestId ? { headers: { [H_REQUEST_ID]: [requestId] } } : {}) };
    try {
      await publishOnce(js, metaSubject(store.name, key), JSON.stringify(marker), `${id}.d${attempt}`, timing, h);
    } catch (e) {
      if (apiCode(e) === WRONG_LAST_SEQUENCE && attempt < 20) continue;
      throw e;
    }
    await removeChunks(jsm, store, prev.info.nuid, prev.info.chunkSeqs).catch(() => undefined);
    return { deleted: true };
  }
}
