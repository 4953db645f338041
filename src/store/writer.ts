/**
 * Writing objects: chunks are published with a bounded window of pending
 * acks (not one at a time), MD5 and SHA-256 are computed while streaming, the
 * metadata is committed last (compare-and-set on the key's last sequence,
 * read from the stream leader), and any failure or abort deletes the chunks
 * written so far: a failed write is invisible and leaves nothing behind.
 *
 * Nothing a commit may point at is deleted on the request path:
 * - The replaced version (by an overwrite or a delete) stays whole — its
 *   metadata message and its chunks — until the sweep removes it, once the
 *   replacement is older than the read grace period (so a GET already
 *   streaming it finishes with its bytes) and every durable reader of the
 *   commit log (the replicator) has passed it (so no change goes unseen).
 * - A commit whose outcome is unknown (no answer, a failover) keeps its
 *   chunks: the sweep decides from the stream's state whether anything
 *   refers to them.
 * No rollups, and no message is removed by a recorded sequence on the
 * request path: a write that fails or is abandoned is removed by one purge
 * of its own chunk subject (removeChunks), as the sweep purges the chunk
 * subjects of replaced versions (src/store/sweep.ts); metadata goes by
 * message deletes (see deleteSeqs).
 */
import { AdaptiveHasher, digestOf, type Digests } from "./hasher.ts";
import { createHash } from "node:crypto";
import { nuid } from "@nats-io/nats-core";
import type { JetStreamClient, JetStreamManager, PubAck } from "@nats-io/jetstream";
import type { ChunkOptions, Head, Jet, PublishTiming, PutOptions, StoreRef, WrittenChunks } from "./types.ts";
export type { ChunkOptions, Head, Jet, PublishTiming, PutOptions, StoreRef, WrittenChunks } from "./types.ts";
import { isMessageGone, isWrongLastSequence, jsApiCode } from "../errors/nats.ts";
import { ShoalError } from "../errors/index.ts";
import { retry } from "../runtime/backoff.ts";
import { enableFeatures, JS_CODES, publish, purgeSubject } from "../jet/index.ts";
import { crc32, crcHex } from "../runtime/crc32.ts";
import { chunkSubject, metaSubject } from "../subjects/index.ts";
import { keyMessages, foldVersions } from "./versions.ts";
import { buildHeaders, DIGEST_PREFIX, header, sha256Etag, isComposed, H_DELETE_MARKER, H_DELETES_VERSION, H_REQUEST_ID, H_VERSION_ID, requestIdOf, type CommitSource, type ObjectInfo, type StoredMeta, toObjectInfo, decodeStoredMeta } from "./format.ts";
import { assertStream, directGet, headObject, leaderGet } from "./reader.ts";
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




export const DEFAULT_PUBLISH_TIMING: PublishTiming = Object.freeze({ attemptMs: 1000, deadlineMs: 15_000 });

/**
 * One message with an id, through src/jet's publish: transient failures
 * (timeouts, no responders, JetStream unavailable) are retried with the same
 * id until the deadline, and JetStream's duplicate window makes an attempt
 * whose ack was lost count once. This is what lets a put ride through a
 * stream-leader failover instead of failing and starting over.
 */
function publishWith(js: JetStreamClient, subject: string, data: Uint8Array | string, msgId: string, t: PublishTiming, o: { expectLastSubjectSeq?: number } = {}): Promise<PubAck> {
  return publish(js, subject, data, { msgId, attemptMs: t.attemptMs, deadlineMs: t.deadlineMs, ...(t.signal ? { signal: t.signal } : {}), ...o });
}

/**
 * The JetStream API error code when the server answered with a refusal;
 * undefined when it did not answer — or answered that an earlier attempt
 * with the same message id is still being proposed (10158), which may yet
 * land: not a refusal.
 */
export function apiCode(e: unknown): number | undefined {
  // by the client's JetStreamApiError (src/errors/nats.ts), never by message text
  if (isWrongLastSequence(e)) return WRONG_LAST_SEQUENCE;
  const code = jsApiCode(e);
  return code === JS_CODES.DuplicateMessageInProcess ? undefined : code;
}

/**
 * The Nats-Msg-Id of what one call commits to one key ("m" a version, "d" a
 * delete marker, "v" a version's removal): the same for every attempt of the
 * call, whichever actor runs it and whatever head it read. An attempt that
 * starts late — its request delivered after the call's first commit was
 * acknowledged and overwritten, so it reads the later write as the head and
 * its compare-and-set passes — is then refused by JetStream's duplicate
 * window (the ack says duplicate, with the first commit's sequence) instead
 * of committing the call a second time on top of the later write (the model
 * test, seed 1110964612: an acknowledged 567 KB put replaced by a retry of an
 * earlier 633 B put of the same key). Without a request id every commit
 * attempt has an id of its own (`fallback`).
 */
export function callMsgId(kind: "m" | "d" | "v", requestId: string | undefined, key: string, fallback: string): string {
  if (requestId === undefined) return fallback;
  return `${kind}.${requestId}.${createHash("sha256").update(key).digest("base64url").slice(0, 22)}`;
}

/**
 * How long after its input is complete a write may still commit: half the
 * streams' duplicate window (2 minutes, JetStream's default), so any two
 * attempts of one call that commit do so within the window and the second
 * is answered as a duplicate (callMsgId). An attempt stalled longer — its
 * server cut off, its connection moving — fails with ServiceUnavailable and
 * leaves nothing; its caller has given up on it long before (the SDK's
 * deadline is 20 s).
 */
export const COMMIT_WINDOW_MS = 60_000;

function checkCommitBy(commitBy: number, what: string): void {
  if (Date.now() > commitBy) throw new ShoalError("ServiceUnavailable", `the ${what} took longer than ${COMMIT_WINDOW_MS / 1000} s since its input was complete; nothing was committed`);
}

/**
 * What a call committed at `seq` (a publish answered as a duplicate of it),
 * read from the leader; undefined when that message cannot be read or is not
 * a version of `key`.
 */
async function committedAt(jsm: JetStreamManager, store: StoreRef, key: string, seq: number): Promise<{ meta: StoredMeta; info: ObjectInfo | undefined } | undefined> {
  try {
    const m = await leaderGet(jsm, store.stream, { seq });
    if (!m || m.subject !== metaSubject(store.name, key)) return undefined;
    const meta = decodeStoredMeta(m.data);
    return { meta, info: meta.deleted ? undefined : toObjectInfo(meta, seq) };
  } catch {
    return undefined;
  }
}

/**
 * Metadata messages are removed one by one (message deletes), never with a
 * `Nats-Rollup` header: on nats-server 2.9.10 a purge — including the one a
 * rollup triggers — moved every consumer of the stream past messages it had
 * not delivered yet (fixed upstream in 2.9.12, nats-server#3838; measured
 * here then: 59 of 80 delete markers published with rollups never delivered
 * to a watching consumer, 0 of 80 with message deletes). Skipped messages
 * would make the list index and the event stream miss commits. Chunks are
 * purged by subject (removeChunks): on the servers Shoal needs (>= 2.14) a
 * purge filtered to one chunk subject moves no consumer of the metadata
 * subjects (`sweep` and `storage` tests hold the list index to it).
 */
export async function deleteSeqs(jsm: JetStreamManager, stream: string, seqs: readonly number[]): Promise<void> {
  const queue = [...seqs];
  const worker = async () => {
    for (let seq = queue.shift(); seq !== undefined; seq = queue.shift()) {
      try {
        await jsm.streams.deleteMessage(stream, seq, false);
      } catch (e) {
        if (!isMessageGone(e)) throw e;
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

/**
 * Removes the chunks of `nuid`: one purge of its chunk subject (a version's
 * own, a fresh nuid per write). Never by recorded sequences: those can come
 * from a direct writer's acks (src/store/claim.ts), and a delete must not
 * trust them — a purge by subject cannot reach another object's messages.
 */
export async function removeChunks(jsm: JetStreamManager, store: StoreRef, nuid: string): Promise<void> {
  await purgeSubject(jsm, store.stream, chunkSubject(store.name, nuid));
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
  // MD5, SHA-256 and CRC-32 on worker threads once the body proves large (src/store/hasher.ts)
  const hasher = new AdaptiveHasher(opts.md5 ?? true);
  let digests: Digests = { md5hex: "", sha256: "", crc32: "" };
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
      ack = await publishWith(js, chunkSubj, p.data, chunkId(p.index), timing);
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
    // A chunk whose first publish was lost and sent again lands after the
    // chunks pipelined behind it: the subject then holds the object out of
    // order (stock readers take it in stream order) and its sequences do not
    // ascend (the recorded runs could not be read back). Nothing can put it
    // in order again — the later chunks are stored, and their ids are
    // taken — so the write fails, retryably, and its chunks are removed.
    for (let i = 1; i < seqs.length; i++) {
      if (seqs[i]! <= seqs[i - 1]!) throw new ShoalError("ServiceUnavailable", `chunk ${i} of upload ${id} landed before chunk ${i - 1} (a publish sent again during a failover); the write is retryable`);
    }
    digests = await hasher.digest();
  } catch (e) {
    // Let in-flight publishes land, then remove every chunk of this attempt.
    hasher.discard();
    await Promise.allSettled(pending.map((p) => p.ack));
    if (wrote) await removeChunks(jsm, store, id).catch(() => undefined);
    if (opts.signal?.aborted && !(e instanceof ShoalError)) throw new ShoalError("Aborted", "the upload was aborted", { cause: e });
    throw e;
  }
  return { id, seqs, size, chunkSize, md5hex: digests.md5hex, sha256: digests.sha256, crc32: digests.crc32 };
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
 * Whether a writer computes the body's MD5: for the ETag (unless the put
 * gives one, or asks for an ETag from the SHA-256), and to verify a
 * Content-MD5 whatever the ETag.
 */
export function wantsMd5(opts: Pick<PutOptions, "etagOverride" | "etag" | "expectMd5Hex">): boolean {
  return opts.expectMd5Hex !== undefined || (opts.etagOverride === undefined && opts.etag !== "sha256");
}

/** The ADR-20 metadata of written chunks, with Shoal's headers. */
function metaFor(store: StoreRef, key: string, w: Omit<WrittenChunks, "seqs"> & { seqs: number[] | undefined; chunks?: number }, opts: PutOptions): StoredMeta {
  const parts = w.parts;
  return {
    name: key,
    description: "",
    headers: buildHeaders({
      contentType: opts.contentType,
      etag: opts.etagOverride ?? (w.md5hex || sha256Etag(w.sha256)),
      chunkSeqs: parts ? undefined : w.seqs,
      userMeta: opts.userMeta,
      ...(opts.source ? { source: opts.source } : {}),
      ...(opts.requestId ? { requestId: opts.requestId } : {}),
      ...(opts.versionId ? { versionId: opts.versionId } : {}),
      ...(parts ? { parts } : {}),
      ...(!parts && w.crc32 ? { crc32: { crc: w.crc32, nuid: w.id } } : {}),
    }),
    options: { max_chunk_size: w.chunkSize },
    bucket: store.name,
    nuid: w.id,
    size: w.size,
    chunks: parts ? parts.reduce((a, p) => a + p.chunks, 0) : (w.chunks ?? w.seqs?.length ?? 0),
    mtime: new Date().toISOString(),
    digest: parts ? "" : `${DIGEST_PREFIX}${w.sha256}`,
    // stock readers cannot follow parts: to them a composed object is not there yet (format.ts)
    deleted: parts !== undefined,
  };
}

/**
 * The last revision this process committed (or saw committed) per key: the
 * compare-and-set guess that lets a small PUT skip reading the key's current
 * metadata from the stream leader. A wrong guess (another writer, the sweep
 * removed a marker) costs nothing but a retry: the server refuses the commit
 * (10071) and the writer reads the key and tries again, as before. With the
 * request id, a retried call whose first attempt committed through this
 * process finds that commit here (it would otherwise commit twice).
 */
interface Remembered {
  revision: number;
  requestId: string | undefined;
  info: ObjectInfo | undefined;
}
const REMEMBER_MAX = 10_000;
/** Per connection (a replicator writes to other clusters' streams of the same name), per stream and key; the oldest entry goes first. */
const rememberedBy = new WeakMap<JetStreamManager, Map<string, Remembered>>();
const rememberKey = (store: StoreRef, key: string) => `${store.stream}\u0000${key}`;
function memoryOf(jsm: JetStreamManager): Map<string, Remembered> {
  let m = rememberedBy.get(jsm);
  if (!m) rememberedBy.set(jsm, (m = new Map()));
  return m;
}
function remember(jsm: JetStreamManager, store: StoreRef, key: string, revision: number, requestId: string | undefined, info: ObjectInfo | undefined): void {
  const m = memoryOf(jsm);
  const k = rememberKey(store, key);
  m.delete(k);
  m.set(k, { revision, requestId, info });
  if (m.size > REMEMBER_MAX) m.delete(m.keys().next().value!);
}
function recall(jsm: JetStreamManager, store: StoreRef, key: string): Remembered | undefined {
  return memoryOf(jsm).get(rememberKey(store, key));
}
function forgetKey(jsm: JetStreamManager, store: StoreRef, key: string): void {
  memoryOf(jsm).delete(rememberKey(store, key));
}
/** Forgets what this connection remembers of a store's keys (its stream was deleted). */
export function forgetRevisions(jsm: JetStreamManager, store: StoreRef): void {
  const m = memoryOf(jsm);
  const prefix = `${store.stream}\u0000`;
  for (const k of m.keys()) if (k.startsWith(prefix)) m.delete(k);
}

/**
 * What the writer learns about a stream once per process: its replicas and
 * whether a limit could refuse one message and accept the next (then a
 * chunk and its metadata are never pipelined). The stream features the data
 * path uses are turned on here for streams created before them
 * (enableFeatures: allow_batched and allow_atomic, both reversible).
 */
interface StreamTraits {
  replicas: number;
  limited: boolean;
}
const traits = new WeakMap<JetStreamManager, Map<string, Promise<StreamTraits>>>();
export function streamTraits(jsm: JetStreamManager, stream: string): Promise<StreamTraits> {
  const m = traits.get(jsm) ?? new Map<string, Promise<StreamTraits>>();
  traits.set(jsm, m);
  let t = m.get(stream);
  if (!t) {
    t = enableFeatures(jsm, stream, { batched: true, atomic: true }).then((si) => {
      const c = si.config;
      return { replicas: c.num_replicas ?? 1, limited: (c.max_bytes ?? -1) > 0 || (c.max_msgs ?? -1) > 0 || (c.max_msg_size ?? -1) > 0 || (c.max_msgs_per_subject ?? -1) > 0 };
    });
    t.catch(() => m.delete(stream)); // asked again next time
    m.set(stream, t);
  }
  return t;
}

/**
 * A PUT whose body is already in memory (an inline request: at most
 * INLINE_MAX bytes). One chunk or none: digests computed here, where the
 * bytes are (a few µs for 4 KiB), and checked before anything is written.
 *
 * Messages per PUT: the chunk and the metadata — nothing else on the
 * request path. When this process remembers the key's revision (it wrote
 * or deleted it last), the commit's compare-and-set uses it and no read of
 * the key is made; on an R1 stream without limits the chunk and the
 * metadata are then pipelined (one wait for both acks, one round trip), the
 * metadata without the chunk's sequence (readers walk the one-message chunk
 * subject). On R3+ the chunk is acknowledged before the metadata is sent,
 * with its sequence recorded: a replica that has not applied the chunk yet
 * is then asked by sequence and falls back to the leader (reader.ts). When
 * the revision is not known (first write of the key by this process, a
 * conditional PUT) the key is read from the leader while the chunk goes
 * out, as for streamed bodies. Anything the server refuses is retried
 * through the compare-and-set loop of commitChunks; the replaced version
 * stays for the sweep (read grace, events), as for every commit.
 */
export async function putBytes(jet: Jet, store: StoreRef, key: string, data: Uint8Array, opts: PutOptions = {}): Promise<ObjectInfo> {
  const { nc, js, jsm } = jet;
  const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
  const chunkSize = Math.max(1024, Math.min(opts.chunkSize ?? defaultChunkSize(maxPayload), maxPayload));
  if (data.byteLength > chunkSize) return putObject(jet, store, key, once(data), opts);
  if (opts.maxSize !== undefined && data.byteLength > opts.maxSize) throw new ShoalError("EntityTooLarge", `the body exceeds ${opts.maxSize} bytes`);
  const timing = timingOf(opts);
  // the body is in memory: the commit window starts now
  opts = { ...opts, commitBy: opts.commitBy ?? Date.now() + COMMIT_WINDOW_MS };
  await assertStream(jsm, store.stream);
  const conditional = opts.ifNoneMatch === true || opts.ifMatch !== undefined;
  const known = conditional ? undefined : recall(jsm, store, key);
  if (known && opts.requestId !== undefined && known.requestId === opts.requestId && known.info) return known.info;
  const t = await streamTraits(jsm, store.stream);
  const w = {
    id: nuid.next(),
    size: data.byteLength,
    chunkSize,
    md5hex: wantsMd5(opts) ? digestOf("md5", data, "hex") : "",
    sha256: digestOf("sha256", data, "base64url") + "=",
    crc32: crcHex(crc32(data)),
  };
  checkDigests(w, opts);
  const chunkSubj = chunkSubject(store.name, w.id);
  const sendChunk = () => publishWith(js, chunkSubj, data, `${w.id}.0`, timing);
  // R1 without limits: the chunk and a compare-and-set commit go out pipelined, guessing the key's
  // revision — the one this process last saw, or "no such key" (0) for a key it has not seen, the
  // common case of ingest; a wrong guess is refused (10071) and costs one read of the key (below)
  if (conditional || t.replicas > 1 || t.limited || data.byteLength === 0) {
    // read the key (when not known) while the chunk goes out; then the compare-and-set commit
    const prevP = known ? Promise.resolve(undefined) : headWithRetry(jsm, store, key, timing);
    prevP.catch(() => undefined);
    let prev = conditional ? await prevP : undefined;
    if (conditional && isOwnCommit(prev, opts)) return prev!.info!;
    if (conditional) checkPreconditions(prev, opts);
    let seqs: number[] = [];
    if (data.byteLength > 0) {
      try {
        seqs = [(await sendChunk()).seq];
      } catch (e) {
        await removeChunks(jsm, store, w.id).catch(() => undefined);
        throw e;
      }
    }
    if (!conditional) prev = known ? guessHead(known) : await prevP.catch(async (e: unknown) => {
      await removeChunks(jsm, store, w.id).catch(() => undefined);
      throw e;
    });
    return commitChunks(jet, store, key, { ...w, seqs }, opts, timing, prev);
  }
  // R1: chunk and metadata pipelined, one wait for both
  checkCommitBy(opts.commitBy!, "put");
  const meta = metaFor(store, key, { ...w, seqs: undefined, chunks: 1 }, opts);
  const chunkP = sendChunk();
  const metaP = publishWith(js, metaSubject(store.name, key), JSON.stringify(meta), callMsgId("m", opts.requestId, key, `${w.id}.m0`), timing, { expectLastSubjectSeq: known?.revision ?? 0 });
  const [c, m] = await Promise.allSettled([chunkP, metaP]);
  let chunkSeq = c.status === "fulfilled" ? c.value.seq : undefined;
  if (chunkSeq === undefined) {
    // Not seen on an R1 stream without limits (the two travel in order on one
    // connection); a metadata that landed without its chunk would be a
    // broken object, so the chunk is sent again (same id: stored once).
    try {
      chunkSeq = (await sendChunk()).seq;
    } catch (e) {
      if (m.status === "fulfilled" && !m.value.duplicate) throw new ShoalError("InternalError", `the chunk of ${JSON.stringify(key.slice(0, 256))} was refused after its metadata was stored`, { cause: e });
      await removeChunks(jsm, store, w.id).catch(() => undefined);
      throw e;
    }
  }
  if (m.status === "fulfilled" && !m.value.duplicate) {
    const info = toObjectInfo(meta, m.value.seq);
    remember(jsm, store, key, m.value.seq, opts.requestId, info);
    return info;
  }
  // The guess was wrong (10071), the commit's outcome is unknown, or this
  // call had committed already (a duplicate: see callMsgId): the
  // compare-and-set loop reads the key and decides (same message id: a
  // commit that did land is not stored twice).
  return commitChunks(jet, store, key, { ...w, seqs: [chunkSeq] }, opts, timing, await headWithRetry(jsm, store, key, timing));
}

/** A remembered revision as the head a commit is compared against. */
function guessHead(r: Remembered): Head {
  return r.info ? { info: r.info, revision: r.revision, markerRevision: undefined } : { info: undefined, revision: undefined, markerRevision: r.revision };
}

async function* once(data: Uint8Array): AsyncGenerator<Uint8Array> {
  if (data.byteLength > 0) yield data;
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
    // a multipart object's ETag is not its MD5, nor is one asked for from the SHA-256: no MD5 then
    md5: wantsMd5(opts),
  });
  return commitChunks(jet, store, key, w, opts, timing, conditional ? prev : await prevP.catch(() => undefined));
}

/**
 * Commits written chunks as `key`'s metadata (compare-and-set against `prev`,
 * re-read from the leader on a race). The replaced version is left to the
 * sweep (see the header). On failure the chunks are removed only when the
 * server refused the commit; when its outcome is unknown they are left to
 * the sweep, which removes them if no metadata refers to them.
 */
export async function commitChunks(jet: Jet, store: StoreRef, key: string, w: WrittenChunks, opts: PutOptions, timing: PublishTiming, prev: Head | undefined): Promise<ObjectInfo> {
  const { js, jsm } = jet;
  const metaSubj = metaSubject(store.name, key);
  const commitBy = opts.commitBy ?? Date.now() + COMMIT_WINDOW_MS;
  let ambiguous = false;
  try {
    opts.signal?.throwIfAborted();
    checkDigests(w, opts);
    const meta = metaFor(store, key, w, opts);
    // Commit, guarded by the revision we last saw (compare-and-set), so we
    // always know exactly which version we replaced. Its chunks and metadata
    // are the sweep's to remove, after the read grace period.
    for (let attempt = 0; ; attempt++) {
      // (this attempt's own metadata is the head when a publish landed and its
      // answer was lost: the retry is refused as out of date, not answered as a
      // duplicate, since the server checks the expected sequence first)
      if (isOwnCommit(prev, opts) || (prev?.info !== undefined && prev.info.nuid === w.id)) {
        // An earlier attempt of this call committed: that is the result.
        // (its chunks are not this attempt's when they differ: ours are unreferenced)
        if (prev!.info!.nuid !== w.id && !ambiguous) await removeChunks(jsm, store, w.id).catch(() => undefined);
        return prev!.info!;
      }
      checkPreconditions(prev, opts);
      checkCommitBy(commitBy, "write");
      try {
        let seq: number;
        try {
          const ack = await publishWith(js, metaSubj, JSON.stringify(meta), callMsgId("m", opts.requestId, key, `${w.id}.m${attempt}`), timing, { expectLastSubjectSeq: prev?.revision ?? prev?.markerRevision ?? 0 });
          seq = ack.seq;
          if (ack.duplicate) {
            // This call committed already: this attempt's own publish whose
            // answer was lost, or another attempt's (see callMsgId) — whose
            // version may have been replaced since. That commit is the result.
            const first = await committedAt(jsm, store, key, seq);
            if (first?.info && first.meta.nuid !== w.id) {
              forgetKey(jsm, store, key); // not necessarily the head
              if (!ambiguous) await removeChunks(jsm, store, w.id).catch(() => undefined);
              return first.info;
            }
            if (!first?.info) {
              // cannot tell whose (the message is gone): the chunks stay for the sweep
              forgetKey(jsm, store, key);
              ambiguous = true;
              return toObjectInfo(meta, seq);
            }
          }
        } catch (e) {
          // the server refused it: this publish did not land — though an earlier
          // try of it may have (its answer lost; the retry is then out of date:
          // the loop below re-reads the head and finds its own nuid)
          if (apiCode(e) !== undefined) throw e;
          // No answer: the commit may have landed, or may still land (a
          // proposal queued on a leader that is about to lose its lead can
          // be applied after we look). Our chunks are never removed from
          // here on; the sweep decides from the stream's state.
          ambiguous = true;
          const landed = await commitLanded(jsm, store, key, w.id, opts.requestId);
          if (landed === undefined || landed === false) throw e;
          if (typeof landed !== "number") return landed; // another attempt of this call committed (the server said 10158: it was in flight)
          seq = landed;
        }
        remember(jsm, store, key, seq, opts.requestId, toObjectInfo(meta, seq));
        return toObjectInfo(meta, seq);
      } catch (e) {
        if (apiCode(e) !== WRONG_LAST_SEQUENCE || attempt >= 20) throw e;
        // Someone (maybe an earlier attempt of this call) committed the same key meanwhile: re-read and re-check.
        const compared = prev?.revision ?? prev?.markerRevision ?? 0;
        prev = await headWithRetry(jsm, store, key, timing);
        const earlier = isOwnCommit(prev, opts) ? undefined : await ownCommitSince(jsm, store, key, compared, opts.requestId);
        if (earlier) {
          // Another attempt of this call (a retry another actor ran while this
          // one was slow) committed after the revision we compared against,
          // and was maybe acknowledged and overwritten since: the call has
          // taken effect, and this attempt must not land on top of a later
          // write (model test, known issue 3).
          if (!ambiguous) await removeChunks(jsm, store, w.id).catch(() => undefined);
          return earlier;
        }
      }
    }
  } catch (e) {
    if (w.size > 0 && !ambiguous) await removeChunks(jsm, store, w.id).catch(() => undefined);
    if (opts.signal?.aborted && !(e instanceof ShoalError)) throw new ShoalError("Aborted", "the upload was aborted", { cause: e });
    throw e;
  }
}

export function headWithRetry(jsm: JetStreamManager, store: StoreRef, key: string, t: PublishTiming): Promise<Head | undefined> {
  return retry(() => headObject(jsm, store, key), { attempts: 1000, baseMs: 50, maxMs: 500, deadlineMs: t.deadlineMs, ...(t.signal ? { signal: t.signal } : {}) });
}

/**
 * After a commit publish failed without an answer: the revision when the
 * key's live metadata (read from the leader) is ours, the version when
 * another attempt of the same call committed it, false when it is readable
 * and neither (not landed yet — it may still), undefined when it cannot be
 * read.
 */
async function commitLanded(jsm: JetStreamManager, store: StoreRef, key: string, id: string, requestId: string | undefined): Promise<number | ObjectInfo | false | undefined> {
  try {
    const head = await headObject(jsm, store, key);
    if (head?.info?.nuid === id && head.revision !== undefined) return head.revision;
    return requestId !== undefined && head?.info?.requestId === requestId ? head.info : false;
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
/**
 * A version that request `requestId` committed to `key` after revision
 * `after` (read from the leader), if any: the result of another attempt of
 * the same call.
 */
async function ownCommitSince(jsm: JetStreamManager, store: StoreRef, key: string, after: number, requestId: string | undefined): Promise<ObjectInfo | undefined> {
  if (requestId === undefined) return undefined;
  const mine = (await keyMessages(jsm, store, key, 10_000, after)).filter((m) => !m.meta.deleted && requestIdOf(m.meta).requestId === requestId);
  const first = mine[0];
  return first ? toObjectInfo(first.meta, first.seq) : undefined;
}

function isOwnCommit(prev: Head | undefined, opts: PutOptions): boolean {
  return opts.requestId !== undefined && prev?.info?.requestId === opts.requestId;
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
 * (compare-and-set). Idempotent: deleting a missing key succeeds. The
 * deleted version's chunks stay until the sweep removes them after the read
 * grace period, so a GET already streaming it finishes. Markers are what the
 * event stream and the list index observe; the storage actor's sweep purges
 * old ones so they do not pile up.
 *
 * With `versionId` (a versioned or suspended bucket) the marker is a version
 * of its own (`Shoal-Delete-Marker: 1`, `Shoal-Version-Id`), written whatever
 * the current version is (S3 adds a marker even over a marker or nothing),
 * and the replaced version stays (versions.ts).
 */
export async function deleteObject(
  { js, jsm }: Jet,
  store: StoreRef,
  key: string,
  timing: PublishTiming = DEFAULT_PUBLISH_TIMING,
  requestId?: string,
  o: { versionId?: string; commitBy?: number } = {},
): Promise<{ deleted: boolean; versionId?: string; deleteMarker?: boolean }> {
  const id = nuid.next();
  const commitBy = o.commitBy ?? Date.now() + COMMIT_WINDOW_MS;
  for (let attempt = 0; ; attempt++) {
    const prev = await headWithRetry(jsm, store, key, timing);
    if (o.versionId !== undefined) {
      // a retry of this call whose marker landed: that marker is the result
      if (requestId !== undefined && prev?.markerRequestId === requestId && prev.markerVersionId !== undefined) return { deleted: true, versionId: prev.markerVersionId, deleteMarker: true };
    } else if (!prev?.info) {
      // A retry of a delete whose marker landed (its reply lost) reports what that attempt did.
      return { deleted: requestId !== undefined && prev?.markerRequestId === requestId };
    }
    const expectLastSubjectSeq = prev?.revision ?? prev?.markerRevision ?? 0;
    const headers: Record<string, string[]> = {};
    if (requestId) headers[H_REQUEST_ID] = [requestId];
    if (o.versionId !== undefined) {
      headers[H_VERSION_ID] = [o.versionId];
      headers[H_DELETE_MARKER] = ["1"];
    }
    checkCommitBy(commitBy, "delete");
    const marker = { name: key, bucket: store.name, nuid: prev?.info?.nuid ?? id, size: 0, chunks: 0, digest: "", mtime: new Date().toISOString(), deleted: true, options: { max_chunk_size: prev?.info?.chunkSize ?? 128 * 1024 }, ...(Object.keys(headers).length ? { headers } : {}) };
    try {
      const ack = await publishWith(js, metaSubject(store.name, key), JSON.stringify(marker), callMsgId("d", requestId, key, `${id}.d${attempt}`), timing, { expectLastSubjectSeq });
      if (ack.duplicate) {
        // this call's marker landed before (see callMsgId); a later write may have replaced it since
        forgetKey(jsm, store, key);
        if (o.versionId === undefined) return { deleted: true };
        const first = await committedAt(jsm, store, key, ack.seq);
        return { deleted: true, versionId: (first && header(first.meta, H_VERSION_ID)) ?? o.versionId, deleteMarker: true };
      }
      remember(jsm, store, key, ack.seq, requestId, undefined);
    } catch (e) {
      if (apiCode(e) === WRONG_LAST_SEQUENCE && attempt < 20) continue;
      throw e;
    }
    return o.versionId !== undefined ? { deleted: true, versionId: o.versionId, deleteMarker: true } : { deleted: true };
  }
}

/**
 * DELETE ?versionId=: removes one version of a key (versions.ts). A message
 * is committed (compare-and-set on the key's last message) that names the
 * removed version in `Shoal-Deletes-Version` and repeats the key's new
 * current version — the previous one when the current is removed — or is an
 * unversioned delete when no version is left; so the last message per
 * subject stays the current version for ADR-20 readers, and every consumer
 * learns of the removal in order. The removed version's message and chunks
 * are the sweep's (after the read grace period). A version that does not
 * exist: `deleted: false` (idempotent).
 */
export async function deleteVersion(
  { js, jsm }: Jet,
  store: StoreRef,
  key: string,
  versionId: string,
  timing: PublishTiming = DEFAULT_PUBLISH_TIMING,
  requestId?: string,
  o: { commitBy?: number } = {},
): Promise<{ deleted: boolean; versionId: string; deleteMarker?: boolean }> {
  const commitBy = o.commitBy ?? Date.now() + COMMIT_WINDOW_MS;
  await assertStream(jsm, store.stream);
  const id = nuid.next();
  for (let attempt = 0; ; attempt++) {
    const msgs = await keyMessages(jsm, store, key);
    const versions = foldVersions(msgs);
    const i = versions.findIndex((v) => v.versionId === versionId);
    if (i < 0) {
      // a retry of this call whose removal landed reports it
      const last = msgs[msgs.length - 1]?.meta;
      const mine = requestId !== undefined && last !== undefined && requestIdOf(last).requestId === requestId && header(last, H_DELETES_VERSION) === versionId;
      return { deleted: mine, versionId };
    }
    const gone = versions[i]!;
    const next = i === versions.length - 1 ? versions[i - 1] : versions[versions.length - 1];
    const extra: Record<string, string[]> = { [H_DELETES_VERSION]: [versionId], ...(requestId ? { [H_REQUEST_ID]: [requestId] } : {}) };
    let meta: StoredMeta;
    if (next) {
      const headers = Object.fromEntries(Object.entries(next.meta.headers ?? {}).filter(([k]) => ![H_DELETES_VERSION, H_REQUEST_ID].includes(k)));
      // (a composed version repeated stays `deleted` to stock readers: format.ts decodeStoredMeta)
      meta = { ...next.meta, headers: { ...headers, ...extra }, ...(isComposed(next.meta) ? { deleted: true } : {}) };
    } else {
      meta = { name: key, bucket: store.name, nuid: gone.meta.nuid, size: 0, chunks: 0, digest: "", mtime: new Date().toISOString(), deleted: true, headers: extra };
    }
    checkCommitBy(commitBy, "version removal");
    try {
      forgetKey(jsm, store, key);
      // (the version is part of the id: one DeleteObjects call may remove several versions of a key)
      await publishWith(js, metaSubject(store.name, key), JSON.stringify(meta), callMsgId("v", requestId, `${key}\u0000${versionId}`, `${id}.v${attempt}`), timing, { expectLastSubjectSeq: msgs[msgs.length - 1]?.seq ?? 0 });
    } catch (e) {
      if (apiCode(e) === WRONG_LAST_SEQUENCE && attempt < 20) continue;
      throw e;
    }
    return { deleted: true, versionId, deleteMarker: gone.marker };
  }
}
