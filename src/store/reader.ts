/**
 * Reading objects with Direct Get only — no consumer per read (ENGINE.md:
 * with a server down, consumer creation made stock gets time out while Direct
 * Get kept working). Chunks are fetched with batched Direct Get (src/jet):
 * by stream sequence from the object's chunk index, or by walking the chunk
 * subject for objects without one; the consumer of the iterator drives it
 * (backpressure). Whole-object reads are verified (CRC-32, else SHA-256).
 */
import { createHash } from "node:crypto";
import type { JetStreamClient, JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import type { QueuedIterator } from "@nats-io/nats-core";
import { isStreamNotFound } from "../errors/nats.ts";
import { ShoalError, toShoalError } from "../errors/index.ts";
import { barrierSubject, chunkSubject, metaSubject } from "../subjects/index.ts";
import { retry } from "../runtime/backoff.ts";
import { crc32, crcHex } from "../runtime/crc32.ts";
import { readSubject } from "../jet/index.ts";
import { classify } from "../jet/errors.ts";
import { linearLast, withinMs } from "../runtime/linear.ts";
import { chunksForRange, decodeStoredMeta, isVersionMarker, requestIdOf, versionIdOf, toObjectInfo, type StoredMeta, type ByteRange, type ObjectInfo, type PartRef } from "./format.ts";
import type { Head, StoreRef } from "./types.ts";

/**
 * Chunks requested ahead of the consumer: two batched Direct Gets of half as
 * many chunks each are out at once, so at most this many chunks (16 × 1 MiB
 * by default) are held per read. Measured (bench/getpath.bench.ts, R1,
 * 64 MiB, load 11–14): 8-chunk windows × 2 reached 206 MB/s through the SDK
 * against 74 for 2 × 4 on the same box; see docs/datapath.md, Reads.
 */
export const DEFAULT_READ_AHEAD = 16;

const isNotFound = isStreamNotFound;

/**
 * What a reader knows of a stream, per manager: that it exists, and whether
 * a key's head must be read linearizably (below). A Direct Get to a stream
 * that does not exist is not answered at all (the JetStream API subjects
 * have a responder, so it times out rather than failing fast), so existence
 * is checked once, then again whenever a Direct Get fails. The facts are
 * read again after STREAM_FACTS_MS (a bucket's replica count can change);
 * a failed re-read keeps the old facts.
 */
interface StreamFacts {
  /** R>1 with Direct Get and rollups: heads are read past a read barrier (src/runtime/linear.ts). */
  linear: boolean;
  at: number;
}
const known = new WeakMap<JetStreamManager, Map<string, StreamFacts>>();
export const STREAM_FACTS_MS = 30_000;

async function streamFacts(jsm: JetStreamManager, stream: string): Promise<StreamFacts> {
  const byStream = known.get(jsm) ?? new Map<string, StreamFacts>();
  known.set(jsm, byStream);
  const old = byStream.get(stream);
  if (old && Date.now() - old.at < STREAM_FACTS_MS) return old;
  let c;
  try {
    c = (await jsm.streams.info(stream)).config;
  } catch (e) {
    if (isNotFound(e)) {
      byStream.delete(stream);
      throw new ShoalError("NoSuchBucket", undefined, { cause: e });
    }
    if (old) return old;
    throw e;
  }
  // A stock @nats-io/obj client may create a stream without Direct Get; a
  // sealed stream takes no barrier. Those are read from the leader.
  const facts = { linear: (c.num_replicas ?? 1) > 1 && c.allow_direct === true && c.allow_rollup_hdrs === true && c.sealed !== true, at: Date.now() };
  byStream.set(stream, facts);
  return facts;
}

export async function assertStream(jsm: JetStreamManager, stream: string): Promise<void> {
  await streamFacts(jsm, stream);
}

/** Forgets a stream (after deleting it). */
export function forgetStream(jsm: JetStreamManager, stream: string): void {
  known.get(jsm)?.delete(stream);
}

/** How long one Direct Get may go unanswered before it is sent again. */
export const DIRECT_GET_ATTEMPT_MS = 1500;

/**
 * Direct Get with a deadline and bounded retries of the transient failures.
 * Nobody answers a Direct Get for a stream that does not exist (no
 * responders), which also happens briefly during a failover: the first such
 * failure checks whether the stream exists, and NoSuchBucket ends it.
 *
 * Each attempt gets `DIRECT_GET_ATTEMPT_MS`, not the JetStream API's 5 s:
 * during a stream-leader election a replica may take a Direct Get and never
 * answer it (measured on 2.9.10: a head stalled the full 5 s after the new
 * leader was already serving, so puts came back ~4 s after raw publishes),
 * while a retry goes to a replica that answers.
 */
export async function directGet(jsm: JetStreamManager, stream: string, query: Parameters<JetStreamManager["direct"]["getMessage"]>[1]): Promise<StoredMsg | null> {
  let checked = false;
  return retry(
    async () => {
      try {
        return await withinMs(jsm.direct.getMessage(stream, query), DIRECT_GET_ATTEMPT_MS, `a Direct Get from ${stream}`);
      } catch (e) {
        // no responders (not a timeout: that is a replica that did not answer)
        if (!checked && toShoalError(e).code === "ServiceUnavailable") {
          checked = true;
          known.get(jsm)?.delete(stream);
          await assertStream(jsm, stream);
        }
        throw e;
      }
    },
    { attempts: 20, baseMs: 50, maxMs: 1000, deadlineMs: 15_000 },
  );
}

/**
 * A message read from the stream leader (the JetStream API's message get,
 * not a Direct Get), with the same deadline and retries as directGet. Used
 * wherever a decision depends on the latest state — compare-and-set
 * commits, preconditions, the list index's catch-up, whether a commit
 * landed — because a Direct Get may be answered by a replica that has not
 * applied the last commit yet (nats-server 2.9 answers from any replica;
 * 2.11+ stops lagging replicas from answering, but "lagging" is judged by
 * the replica itself, and a commit acknowledged a moment ago may not have
 * reached it).
 */
export async function leaderGet(jsm: JetStreamManager, stream: string, query: Parameters<JetStreamManager["streams"]["getMessage"]>[1]): Promise<StoredMsg | null> {
  return retry(
    async () => {
      try {
        // each attempt bounded as a Direct Get's: during an election no leader answers at all
        return await withinMs(jsm.streams.getMessage(stream, query), DIRECT_GET_ATTEMPT_MS, `a leader read from ${stream}`);
      } catch (e) {
        if (isNotFound(e)) throw new ShoalError("NoSuchBucket", undefined, { cause: e });
        throw e;
      }
    },
    { attempts: 20, baseMs: 50, maxMs: 1000, deadlineMs: 15_000 },
  );
}

/**
 * The key's current state: the live object (if any), and the revision of its
 * last metadata message (live or delete marker), for compare-and-set.
 * Returns undefined when the key never existed or its history was purged.
 * Throws NoSuchBucket when the store's stream does not exist.
 *
 * This is what compare-and-set commits, preconditions, deletes and every
 * GET/HEAD after an acknowledged write decide on, so it must include every
 * write acknowledged before the call. A leader read is not enough on a
 * replicated stream: a leader cut off from its peers keeps answering from its
 * old state while the others elect a new one and acknowledge writes
 * (docs/architecture.md, "Read barriers"). So on R>1 streams the head is read
 * linearizably — past a read barrier only a leader with a quorum can
 * acknowledge; a stale leader's answer is refused and, while no other server
 * answers, the read fails retryably instead of returning a replaced
 * version. R1 streams have no other leader and are read from their one
 * server.
 */
export async function headObject(jsm: JetStreamManager, store: StoreRef, key: string): Promise<Head | undefined> {
  const m = await lastOnSubject(jsm, store, metaSubject(store.name, key));
  if (!m) return undefined;
  const meta = decodeStoredMeta(m.data);
  if (meta.deleted) return { info: undefined, revision: undefined, markerRevision: m.seq, ...markerIdOf(meta) };
  return { info: toObjectInfo(meta, m.seq), revision: m.seq, markerRevision: undefined };
}

/**
 * The last message on one of the store's subjects, including every write
 * acknowledged before the call: past the read barrier on R>1 streams, from
 * the leader otherwise (see headObject). NoSuchBucket when the stream is gone.
 */
export async function lastOnSubject(jsm: JetStreamManager, store: StoreRef, subject: string): Promise<StoredMsg | null> {
  const facts = await streamFacts(jsm, store.stream);
  try {
    return facts.linear ? await linearHead(jsm, store, subject) : await leaderGet(jsm, store.stream, { last_by_subj: subject });
  } catch (e) {
    if (isNotFound(e)) throw new ShoalError("NoSuchBucket", undefined, { cause: e });
    throw e;
  }
}

/** One JetStream client per manager, so that the reads of a stream share their barriers (barrierFor groups by client). */
const clients = new WeakMap<JetStreamManager, JetStreamClient>();

/**
 * The last message on `subject`, past the store's read barrier, with the
 * deadline and retries of leaderGet. A barrier the stream refuses (a limit,
 * a configuration changed since the facts were read) is not a reason to fail
 * the read: it is read from the leader instead, as before barriers.
 */
async function linearHead(jsm: JetStreamManager, store: StoreRef, subject: string): Promise<StoredMsg | null> {
  let js = clients.get(jsm);
  if (!js) clients.set(jsm, (js = jsm.jetstream()));
  const client = js;
  try {
    return await retry(() => linearLast(client, jsm, store.stream, subject, barrierSubject(store.name), 5000), { attempts: 20, baseMs: 50, maxMs: 1000, deadlineMs: 15_000 });
  } catch (e) {
    if (classify(e) !== "refused" || isNotFound(e)) throw e;
    return leaderGet(jsm, store.stream, { last_by_subj: subject });
  }
}

function markerIdOf(meta: StoredMeta): { markerRequestId?: string; markerVersionId?: string } {
  const { requestId } = requestIdOf(meta);
  return { ...(requestId ? { markerRequestId: requestId } : {}), ...(isVersionMarker(meta) ? { markerVersionId: versionIdOf(meta) } : {}) };
}

/** Like headObject, but NoSuchKey when there is no live object. */
export async function statObject(jsm: JetStreamManager, store: StoreRef, key: string): Promise<ObjectInfo> {
  const h = await headObject(jsm, store, key);
  // a current version that is a delete marker: S3 says so (x-amz-delete-marker, x-amz-version-id)
  if (!h?.info) throw new ShoalError("NoSuchKey", undefined, { detail: { key: key.slice(0, 256), ...(h?.markerVersionId !== undefined ? { deleteMarker: true, versionId: h.markerVersionId } : {}) } });
  return h.info;
}

export interface ReadOptions {
  range?: ByteRange;
  /** Chunks requested ahead of the consumer (default DEFAULT_READ_AHEAD). */
  readAhead?: number;
  signal?: AbortSignal;
  /** Called once per chunk fetched (tests and metrics count them). */
  onChunkFetched?: (index: number) => void;
}

/**
 * The object's bytes (or a range of them) as an async iterable, pulled by
 * the caller (back-pressure: no more than `readAhead` chunks are held).
 *
 * - Chunk sequences known (Shoal's metadata): batched Direct Get of exactly
 *   the chunks the range needs (`streamSeqs`), windows of half the
 *   read-ahead, two in flight — one request per window instead of one per
 *   chunk, each chunk handed on as it arrives. One or two chunks: plain
 *   Direct Gets. A chunk a replica cannot serve yet (missing, or another
 *   message in its place) is fetched one by one from there on, with the
 *   leader's answer as the last word (read-after-write at R3). Each chunk
 *   must be on the object's chunk subject, at its recorded sequence, and of
 *   its size: a direct writer's recorded sequences are its own word.
 * - Not known, one chunk (a small object Shoal wrote: its metadata went out
 *   beside its chunk): one Direct Get of the chunk subject's last message.
 * - Not known (objects written by stock tools): the chunk subject is walked
 *   by batched Direct Get (`readSubject`), one window ahead.
 *
 * Whole-object reads check the bytes as they pass and fail with
 * InternalError on a mismatch: against the CRC-32 Shoal's writers record
 * (`Shoal-Crc32`, ~5 GB/s), else against the stock digest (SHA-256, ~1.6
 * GB/s: objects written by stock tools or before the CRC was recorded).
 * Ranged reads are not checked (as stock readers, which hash only whole
 * objects).
 */
export async function* readObject(jsm: JetStreamManager, store: StoreRef, info: ObjectInfo, opts: ReadOptions = {}): AsyncGenerator<Uint8Array> {
  if (info.size === 0 || info.chunks === 0) return;
  if (info.parts) {
    yield* readParts(jsm, store, info, info.parts, opts);
    return;
  }
  const whole = opts.range === undefined || (opts.range.start === 0 && opts.range.end >= info.size - 1);
  const span = opts.range && !whole ? chunksForRange(opts.range, info.chunkSize) : { first: 0, last: info.chunks - 1, skip: 0, take: info.size };
  const check = whole ? wholeCheck(info) : undefined;
  const readAhead = Math.max(1, opts.readAhead ?? DEFAULT_READ_AHEAD);
  const subject = chunkSubject(store.name, info.nuid);
  await assertStream(jsm, store.stream);

  let remaining = span.take;
  let skip = span.skip;
  /** The next chunk index to hand out. */
  let index = span.first;
  // Shoal's writers record sequences and cut every chunk but the last to the
  // chunk size; those sequences may be a direct writer's own word
  // (src/store/claim.ts), so each chunk read by them is held to its size
  // (stock writers may cut short chunks anywhere, and record none).
  const sized = info.chunkSeqs !== undefined;
  const lastSize = info.size - (info.chunks - 1) * info.chunkSize;
  const take = (m: StoredMsg): Uint8Array | undefined => {
    if (sized && m.data.byteLength !== (index < info.chunks - 1 ? info.chunkSize : lastSize)) {
      throw new ShoalError("InternalError", `chunk ${index} of ${JSON.stringify(info.key)} holds ${m.data.byteLength} bytes, not ${index < info.chunks - 1 ? info.chunkSize : lastSize}`);
    }
    opts.onChunkFetched?.(index);
    index++;
    let data = m.data;
    check?.update(data);
    if (skip > 0) {
      data = data.subarray(skip);
      skip = 0;
    }
    if (data.byteLength > remaining) data = data.subarray(0, remaining);
    remaining -= data.byteLength;
    return data.byteLength > 0 ? data : undefined;
  };

  const seqs = info.chunkSeqs;
  if (seqs) {
    const want = seqs.slice(span.first, span.last + 1);
    if (want.length <= 2) {
      // one or two chunks (every small object): plain Direct Gets on the connection's shared
      // inbox cost less than a batch (its own subscription and an end-of-batch message)
      yield* chunkByChunk(jsm, store, subject, seqs, span.first, span.last, readAhead, opts.signal, take, info.key);
    } else {
      const windowMsgs = Math.max(1, Math.ceil(readAhead / 2));
      const inflight = Math.max(1, Math.ceil(readAhead / windowMsgs));
      try {
        for await (const m of streamSeqs(jsm, store.stream, subject, want, windowMsgs, inflight)) {
          opts.signal?.throwIfAborted();
          const d = take(m);
          if (d) yield d;
        }
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        // a replica without the chunk yet, a lost answer: one by one from here, the leader last
        yield* chunkByChunk(jsm, store, subject, seqs, index, span.last, readAhead, opts.signal, take, info.key);
      }
    }
  } else if (info.chunks === 1) {
    // One chunk and no recorded sequence (a small object's metadata goes out
    // beside its chunk, before the chunk's sequence is known): one Direct Get
    // on the connection's shared inbox. A batch would cost a subscription of
    // its own (SUB, UNSUB) and an end-of-batch message per read. Its chunk
    // subject is its own (a fresh nuid per write), so its last message is
    // its chunk; a replica without it yet is asked again through the leader.
    let m = await directGet(jsm, store.stream, { last_by_subj: subject });
    if (!m) m = await leaderGet(jsm, store.stream, { last_by_subj: subject });
    if (!m || m.subject !== subject) throw new ShoalError("InternalError", `chunk 0 of ${JSON.stringify(info.key)} is missing`);
    opts.signal?.throwIfAborted();
    const d = take(m);
    if (d) yield d;
  } else {
    let last = 0;
    for await (const m of readSubject(jsm, store.stream, subject, { windowBytes: readAhead * info.chunkSize, count: span.last + 1 })) {
      opts.signal?.throwIfAborted();
      last++;
      if (last <= span.first) {
        index++;
        continue;
      }
      const d = take(m);
      if (d) yield d;
    }
    if (index <= span.last) throw new ShoalError("InternalError", `chunk ${index} of ${JSON.stringify(info.key)} is missing`);
  }
  if (index <= span.last) throw new ShoalError("InternalError", `chunk ${index} of ${JSON.stringify(info.key)} is missing`);
  if (check && !check.matches()) throw new ShoalError("InternalError", `${check.name} mismatch reading ${JSON.stringify(info.key)}`, { detail: { key: info.key.slice(0, 256) } });
}

/** What a whole-object read checks its bytes against: the recorded CRC-32 when there is one, else the SHA-256 digest. */
function wholeCheck(info: ObjectInfo): { name: string; update(b: Uint8Array): void; matches(): boolean } {
  if (info.crc32 !== undefined) {
    const want = info.crc32;
    let c = 0;
    return { name: "CRC-32", update: (b) => void (c = crc32(b, c)), matches: () => crcHex(c) === want };
  }
  const sha = createHash("sha256");
  return {
    name: "digest",
    update: (b) => void sha.update(b),
    matches: () => sha.digest("hex") === Buffer.from(info.sha256, "base64url").toString("hex"),
  };
}

/**
 * A composed object (src/store/compose.ts): each part that the range
 * touches is read as an object of its own — its chunk subject, its chunk
 * sequences, the part of the range inside it — and a part read whole is
 * checked against its own CRC-32 (or SHA-256) (the composed object has no digest of the
 * whole until its background copy).
 */
async function* readParts(jsm: JetStreamManager, store: StoreRef, info: ObjectInfo, parts: readonly PartRef[], opts: ReadOptions): AsyncGenerator<Uint8Array> {
  const r = opts.range ?? { start: 0, end: info.size - 1 };
  let offset = 0;
  let firstChunk = 0;
  for (const p of parts) {
    const start = offset;
    const end = offset + p.size - 1;
    offset += p.size;
    const base = firstChunk;
    firstChunk += p.chunks;
    if (p.size === 0 || end < r.start) continue;
    if (start > r.end) break;
    const part: ObjectInfo = { ...info, size: p.size, chunkSize: p.chunkSize, chunks: p.chunks, nuid: p.id, chunkSeqs: p.seqs, sha256: p.sha256 };
    delete part.parts;
    if (p.crc32 !== undefined) part.crc32 = p.crc32;
    else delete part.crc32;
    const range = { start: Math.max(r.start, start) - start, end: Math.min(r.end, end) - start };
    const count = opts.onChunkFetched;
    yield* readObject(jsm, store, part, { ...opts, range, ...(count ? { onChunkFetched: (i: number) => count(base + i) } : {}) });
  }
}

/**
 * The messages at `seqs` (ascending, all on `subject`) by batched Direct
 * Get, `windowMsgs` per request and `inflight` requests out at once, each
 * message handed on as it arrives (not when its window is complete). A
 * window is asked for when the oldest one has been consumed, so at most
 * `windowMsgs × inflight` messages are held. A message missing or out of
 * place throws (the caller falls back to one-by-one reads).
 */
async function* streamSeqs(jsm: JetStreamManager, stream: string, subject: string, seqs: readonly number[], windowMsgs: number, inflight: number): AsyncGenerator<StoredMsg> {
  type Window = { it: Promise<QueuedIterator<StoredMsg>>; want: readonly number[] };
  const windows: Window[] = [];
  let next = 0;
  const fill = () => {
    while (windows.length < inflight && next < seqs.length) {
      const want = seqs.slice(next, next + windowMsgs);
      next += want.length;
      const it = jsm.direct.getBatch(stream, { seq: want[0]!, next_by_subj: subject, batch: want.length });
      it.catch(() => undefined); // awaited in order; never unhandled if the reader stops early
      windows.push({ it, want });
    }
  };
  try {
    fill();
    while (windows.length > 0) {
      const w = windows[0]!;
      let i = 0;
      for await (const m of await w.it) {
        if (m.seq !== w.want[i]) throw new ShoalError("InternalError", `expected ${subject}#${w.want[i]}, got #${m.seq}`);
        i++;
        yield m;
        if (i === w.want.length) break;
      }
      if (i !== w.want.length) throw new ShoalError("InternalError", `expected ${subject}#${w.want[i]}, got nothing`);
      windows.shift();
      fill();
    }
  } finally {
    for (const w of windows) void w.it.then((it) => it.stop(), () => undefined);
  }
}

/** Chunks `from…last` by sequence, one Direct Get each (`readAhead` in flight), the leader asked when a replica has not got one. */
async function* chunkByChunk(
  jsm: JetStreamManager, store: StoreRef, subject: string, seqs: readonly number[], from: number, last: number, readAhead: number,
  signal: AbortSignal | undefined, take: (m: StoredMsg) => Uint8Array | undefined, key: string,
): AsyncGenerator<Uint8Array> {
  const fetchChunk = async (i: number): Promise<StoredMsg> => {
    const seq = seqs[i]!;
    let m = await directGet(jsm, store.stream, { seq });
    if (!m || m.subject !== subject) m = await leaderGet(jsm, store.stream, { seq });
    if (!m || m.subject !== subject) throw new ShoalError("InternalError", `chunk ${i} of ${JSON.stringify(key)} is missing`);
    return m;
  };
  const queue: Array<Promise<StoredMsg>> = [];
  let next = from;
  const fill = () => {
    while (queue.length < readAhead && next <= last) {
      const p = fetchChunk(next++);
      p.catch(() => undefined);
      queue.push(p);
    }
  };
  fill();
  while (queue.length > 0) {
    signal?.throwIfAborted();
    const m = await queue.shift()!;
    fill();
    const d = take(m);
    if (d) yield d;
  }
}
