/**
 * Reading objects with Direct Get only — no consumer per read (ENGINE.md:
 * with a server down, consumer creation made stock gets time out while Direct
 * Get kept working). Chunks are fetched by stream sequence from the object's
 * chunk index with a bounded read-ahead window; the consumer of the iterator
 * drives it (backpressure). The SHA-256 is verified on whole-object reads.
 */
import { createHash } from "node:crypto";
import type { JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import { ShoalError, toShoalError } from "../errors/index.ts";
import { chunkSubject, metaSubject } from "../subjects/index.ts";
import { retry } from "../runtime/backoff.ts";
import { chunksForRange, decodeStoredMeta, requestIdOf, toObjectInfo, type StoredMeta, type ByteRange, type ObjectInfo } from "./format.ts";
import type { Head, StoreRef } from "./writer.ts";

/** Chunks requested ahead of the consumer. 8 × 1 MiB = the default 8 MiB window. */
export const DEFAULT_READ_AHEAD = 8;

function isNotFound(e: unknown): boolean {
  const err = e as { code?: unknown; message?: string; api_error?: { err_code?: number } };
  return err?.api_error?.err_code === 10059 || /stream not found/i.test(err?.message ?? "");
}

/**
 * Streams known to exist, per manager. A Direct Get to a stream that does not
 * exist is not answered at all (the JetStream API subjects have a responder,
 * so it times out rather than failing fast), so existence is checked once,
 * then again whenever a Direct Get fails.
 */
const known = new WeakMap<JetStreamManager, Set<string>>();

export async function assertStream(jsm: JetStreamManager, stream: string): Promise<void> {
  const set = known.get(jsm) ?? new Set<string>();
  known.set(jsm, set);
  if (set.has(stream)) return;
  try {
    await jsm.streams.info(stream);
  } catch (e) {
    if (isNotFound(e)) throw new ShoalError("NoSuchBucket", undefined, { cause: e });
    throw e;
  }
  set.add(stream);
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
        return await withAttemptTimeout(jsm.direct.getMessage(stream, query), DIRECT_GET_ATTEMPT_MS);
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

/** `p`, or a retryable Timeout after `ms` (p is left to settle on its own). */
function withAttemptTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ShoalError("Timeout", `no answer to a Direct Get within ${ms} ms`)), ms);
  });
  p.catch(() => undefined);
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The key's current state: the live object (if any), and the revision of its
 * last metadata message (live or delete marker), for compare-and-set.
 * Returns undefined when the key never existed or its history was purged.
 * Throws NoSuchBucket when the store's stream does not exist.
 */
export async function headObject(jsm: JetStreamManager, store: StoreRef, key: string): Promise<Head | undefined> {
  await assertStream(jsm, store.stream);
  let m: StoredMsg | null;
  try {
    m = await directGet(jsm, store.stream, { last_by_subj: metaSubject(store.name, key) });
  } catch (e) {
    if (isNotFound(e)) throw new ShoalError("NoSuchBucket", undefined, { cause: e });
    throw e;
  }
  if (!m) return undefined;
  const meta = decodeStoredMeta(m.data);
  if (meta.deleted) return { info: undefined, revision: undefined, markerRevision: m.seq, ...markerIdOf(meta) };
  return { info: toObjectInfo(meta, m.seq), revision: m.seq, markerRevision: undefined };
}

function markerIdOf(meta: StoredMeta): { markerRequestId?: string } {
  const { requestId } = requestIdOf(meta);
  return requestId ? { markerRequestId: requestId } : {};
}

/** Like headObject, but NoSuchKey when there is no live object. */
export async function statObject(jsm: JetStreamManager, store: StoreRef, key: string): Promise<ObjectInfo> {
  const h = await headObject(jsm, store, key);
  if (!h?.info) throw new ShoalError("NoSuchKey", undefined, { detail: { key: key.slice(0, 256) } });
  return h.info;
}

export interface ReadOptions {
  range?: ByteRange;
  readAhead?: number;
  signal?: AbortSignal;
  /** Called once per chunk fetched (tests and metrics count them). */
  onChunkFetched?: (index: number) => void;
}

/**
 * The object's bytes (or a range of them) as an async iterable. Whole-object
 * reads verify the SHA-256 and fail with InternalError on a mismatch.
 */
export async function* readObject(jsm: JetStreamManager, store: StoreRef, info: ObjectInfo, opts: ReadOptions = {}): AsyncGenerator<Uint8Array> {
  if (info.size === 0 || info.chunks === 0) return;
  const whole = opts.range === undefined || (opts.range.start === 0 && opts.range.end >= info.size - 1);
  const span = opts.range ? chunksForRange(opts.range, info.chunkSize) : { first: 0, last: info.chunks - 1, skip: 0, take: info.size };
  const sha = whole ? createHash("sha256") : undefined;
  const readAhead = Math.max(1, opts.readAhead ?? DEFAULT_READ_AHEAD);
  const subject = chunkSubject(store.name, info.nuid);

  // Fetching chunk i: by its sequence when indexed, else the next message on
  // the chunk subject after the previous chunk's sequence (stock objects).
  let walkSeq = 0;
  const fetchChunk = async (i: number): Promise<StoredMsg> => {
    const seq = info.chunkSeqs?.[i];
    const m = seq !== undefined ? await directGet(jsm, store.stream, { seq }) : await directGet(jsm, store.stream, { seq: walkSeq + 1, next_by_subj: subject });
    if (!m || m.subject !== subject) throw new ShoalError("InternalError", `chunk ${i} of ${JSON.stringify(info.key)} is missing`);
    opts.onChunkFetched?.(i);
    return m;
  };

  const queue: Array<Promise<StoredMsg>> = [];
  let next = span.first;
  const fill = () => {
    // Without an index, chunk i+1's location is only known after chunk i: no read-ahead.
    const limit = info.chunkSeqs ? readAhead : 1;
    while (queue.length < limit && next <= span.last) {
      const p = fetchChunk(next++);
      p.catch(() => undefined);
      queue.push(p);
    }
  };
  if (!info.chunkSeqs && span.first > 0) {
    // Walk to the first wanted chunk.
    for (let i = 0; i < span.first; i++) walkSeq = (await fetchChunk(i)).seq;
  }
  let remaining = span.take;
  let skip = span.skip;
  try {
    fill();
    while (queue.length > 0) {
      opts.signal?.throwIfAborted();
      const m = await queue.shift()!;
      walkSeq = m.seq;
      fill();
      let data = m.data;
      sha?.update(data);
      if (skip > 0) {
        data = data.subarray(skip);
        skip = 0;
      }
      if (data.byteLength > remaining) data = data.subarray(0, remaining);
      remaining -= data.byteLength;
      if (data.byteLength > 0) yield data;
    }
  } finally {
    // Nothing to cancel server-side: Direct Gets are plain requests.
    queue.length = 0;
  }
  if (sha) {
    const got = sha.digest("hex");
    const want = Buffer.from(info.sha256, "base64url").toString("hex");
    if (got !== want) throw new ShoalError("InternalError", `digest mismatch reading ${JSON.stringify(info.key)}`, { detail: { key: info.key.slice(0, 256) } });
  }
}
