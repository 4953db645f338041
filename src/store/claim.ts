/**
 * Direct uploads, the store side: a writer published the chunks itself and
 * claims what it wrote; this checks the claim against the stream and commits.
 *
 * The claim names the chunks' sequences as the writer's acks gave them
 * (`seqs`, when the offer allowed it). They are taken when they are
 * well-formed (ascending, one per chunk) and the stream counts exactly that
 * many messages on the upload's chunk subject, because nothing trusts them
 * beyond the writer's own object: every read checks that each message it is
 * handed is on the object's chunk subject, at the recorded sequence, and of
 * the chunk's size (src/store/reader.ts), and no delete uses recorded
 * sequences — chunks go by a purge of their own subject (removeChunks). A
 * lying writer can spoil only the object it wrote, as any ADR-20 writer can.
 * (Before 2026-12-04 the sequences were always read back with a headers-only
 * consumer at commit: 23–64 ms of every direct PUT and part, and the server
 * reading the object's records again; docs/benchmarks.md.)
 *
 * A claim without `seqs` (a writer that predates them) is read back as
 * before: a headers-only ordered consumer on the chunk subject lists every
 * stored chunk — its sequence, its `Nats-Msg-Id` (`<nuid>.<index>`) and its
 * `Nats-Msg-Size` — without sending the bodies (a batched Direct Get walk
 * when the stream allows no more consumers: readChunkHeaders): the count must
 * match the claimed size, the indexes must run 0…n-1 once each, every chunk
 * but the last must be full and the sizes must add up. The digests are the
 * writer's, as with any ADR-20 writer; whole-object reads verify the CRC-32
 * (or the SHA-256).
 */
import { ShoalError } from "../errors/index.ts";
import { chunkSubject } from "../subjects/index.ts";
import type { ObjectInfo } from "./format.ts";
import { retry, isRetryable } from "../runtime/backoff.ts";
import type { JsMsg } from "@nats-io/jetstream";
import { toJetError } from "../jet/errors.ts";
import { dropOrdered } from "../jet/consume.ts";
import { readSubject } from "../jet/direct.ts";
import { isMaximumConsumers } from "../errors/nats.ts";
import { lastOnSubject } from "./reader.ts";
import { decodeRuns } from "./format.ts";
import { commitChunks, DEFAULT_PUBLISH_TIMING, headWithRetry, removeChunks, timingOf, wantsMd5, type PublishTiming } from "./writer.ts";
import type { Jet, PutOptions, StoreRef, WrittenChunks } from "./types.ts";

/** What a writer that published chunks itself claims it wrote. */
export interface ClaimedChunks {
  size: number;
  /** Hex MD5; "" when none was computed (an ETag from the SHA-256: PutOptions.etag). */
  md5hex: string;
  /** Base64url SHA-256, padded. */
  sha256: string;
  /** CRC-32, 8 hex digits, when the writer sent it. */
  crc32?: string;
  /** The chunks' sequences from the writer's acks, as runs (format.ts encodeRuns), when it sent them. */
  seqs?: string;
}

/** Whether the subject's last chunk (read linearizably) has an index past `counted` chunks. */
async function moreThanCounted(jsm: Jet["jsm"], store: StoreRef, subject: string, id: string, counted: number): Promise<boolean> {
  const last = await named(`the last chunk of ${subject}`, () => lastOnSubject(jsm, store, subject));
  if (!last) return false;
  const tail = (last.header?.get("Nats-Msg-Id") ?? "").slice(id.length + 1);
  return /^(0|[1-9][0-9]{0,8})$/.test(tail) && Number(tail) + 1 > counted;
}

/** `f()`, its failure named (which read failed, and how JetStream said it): the message a caller or log sees. */
async function named<T>(what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw toJetError(e, what);
  }
}

/**
 * Hands `take` the sequence, `Nats-Msg-Id` and size of each chunk on
 * `subject`, in stream order, until it says it has all `want`: through a
 * headers-only ordered consumer (no body bytes move), deleted afterwards
 * (src/jet dropOrdered: left alone, each commit's consumer would count
 * against the stream's 1000 for 5 minutes). When the stream holds as many
 * consumers as it may — stock readers each leave one behind for 5 minutes
 * too — the chunks are walked by batched Direct Get instead, bodies and
 * all: slower, but the commit does not fail for it.
 */
async function readChunkHeaders(jet: Pick<Jet, "js" | "jsm">, store: StoreRef, subject: string, want: number, take: (seq: number, msgId: string, size: number) => boolean): Promise<void> {
  let consumer: Awaited<ReturnType<Jet["js"]["consumers"]["get"]>> | undefined;
  let fetched: AsyncIterable<JsMsg>;
  try {
    consumer = await jet.js.consumers.get(store.stream, { filter_subjects: subject, headers_only: true });
    fetched = await consumer.fetch({ max_messages: want, expires: 10_000 });
  } catch (e) {
    dropOrdered(consumer);
    if (!isMaximumConsumers(e)) throw toJetError(e, `a consumer on ${subject}`);
    for await (const m of readSubject(jet.jsm, store.stream, subject, { windowBytes: DIRECT_WALK_BYTES, count: want })) {
      if (take(m.seq, m.header?.get("Nats-Msg-Id") ?? "", m.data.byteLength)) return;
    }
    return;
  }
  try {
    for await (const m of fetched) {
      if (take(m.seq, m.headers?.get("Nats-Msg-Id") ?? "", Number(m.headers?.get("Nats-Msg-Size") ?? NaN))) return;
    }
  } finally {
    dropOrdered(consumer);
  }
}

/** Bytes per batched Direct Get when the chunks are walked instead (readChunkHeaders). */
const DIRECT_WALK_BYTES = 8 * 1024 * 1024;

const bad = (why: string) => new ShoalError("InvalidDirectUpload", `the upload's chunks do not match its claim: ${why}`);

/**
 * The chunks of upload `id` as the stream holds them, if they are what `c`
 * claims (InvalidDirectUpload otherwise).
 */
export async function verifyClaim({ js, jsm }: Jet, store: StoreRef, id: string, chunkSize: number, c: ClaimedChunks): Promise<WrittenChunks> {
  if (!/^([0-9a-f]{32})?$/.test(c.md5hex) || !/^[A-Za-z0-9_-]{43}=$/.test(c.sha256) || (c.crc32 !== undefined && !/^[0-9a-f]{8}$/.test(c.crc32))) throw bad("malformed digest");
  const subject = chunkSubject(store.name, id);
  const stored = (await named(`stream info of ${store.stream}`, () => jsm.streams.info(store.stream, { subjects_filter: subject }))).state.subjects?.[subject] ?? 0;
  const want = Math.ceil(c.size / chunkSize);
  if (stored !== want) {
    // Stream info is a leader-only answer, and a leader cut off from its
    // peers answers from its old state (docs/architecture.md, "Read
    // barriers"): the chunks the writer had acknowledged through the majority
    // can be missing from it for as long as the cut lasts. A count short of
    // the claim is checked against the subject's last chunk, read
    // linearizably; a stale count is a read failure (retried), not the claim.
    if (stored < want && (await moreThanCounted(jsm, store, subject, id, stored))) {
      throw new ShoalError("ServiceUnavailable", `stream info of ${store.stream} counted ${stored} chunks of upload ${id}, fewer than are stored (a stale answer)`);
    }
    throw bad(`${stored} chunks stored; ${c.size} bytes in chunks of ${chunkSize} take ${want}`);
  }
  let seqs: number[] = [];
  if (c.seqs !== undefined) {
    try {
      seqs = decodeRuns(c.seqs, want);
    } catch (e) {
      throw bad(`its chunk sequences: ${(e as Error).message}`);
    }
  } else if (want > 0) {
    let seen = 0;
    const take = (seq: number, msgId: string, size: number): boolean => {
      const tail = msgId.startsWith(`${id}.`) ? msgId.slice(id.length + 1) : "";
      const index = /^(0|[1-9][0-9]{0,8})$/.test(tail) ? Number(tail) : NaN;
      if (Number.isNaN(index) || index >= want || seqs[index] !== undefined) throw bad(`the chunk at sequence ${seq} has no index of its own`);
      const full = index < want - 1 ? chunkSize : c.size - (want - 1) * chunkSize;
      if (size !== full) throw bad(`chunk ${index} holds ${size} bytes, not ${full}`);
      seqs[index] = seq;
      return ++seen === want;
    };
    await readChunkHeaders({ js, jsm }, store, subject, want, take);
    // the stream info counted them all: a short read is the read failing (retried), not the claim
    if (seen !== want) throw new ShoalError("ServiceUnavailable", `only ${seen} of ${want} chunks of upload ${id} could be read back`);
    // stream order must be chunk order (a chunk sent again in a failover can land after later ones): stock readers read in stream order
    for (let i = 1; i < seqs.length; i++) if (seqs[i]! <= seqs[i - 1]!) throw bad(`chunk ${i} is stored before chunk ${i - 1}`);
  }
  return { id, seqs, size: c.size, chunkSize, md5hex: c.md5hex, sha256: c.sha256, ...(c.crc32 !== undefined ? { crc32: c.crc32 } : {}) };
}

/**
 * verifyClaim, removing the chunks when the claim does not hold. The
 * read-back only reads, so a transient failure (no stream leader yet, a
 * consumer create or stream info that timed out: CI saw the first direct PUT
 * into a new R3 bucket refused ServiceUnavailable while every cluster test
 * was starting) is retried until the put's deadline; only a wrong claim, or
 * giving up, removes the chunks.
 */
export async function claimedChunks(jet: Jet, store: StoreRef, id: string, chunkSize: number, c: ClaimedChunks, timing: PublishTiming = DEFAULT_PUBLISH_TIMING): Promise<WrittenChunks> {
  try {
    return await retry(() => verifyClaim(jet, store, id, chunkSize, c), {
      attempts: 1000,
      baseMs: 50,
      maxMs: 500,
      deadlineMs: timing.deadlineMs,
      retryable: (e) => !(e instanceof ShoalError && e.code === "InvalidDirectUpload") && isRetryable(e),
      ...(timing.signal ? { signal: timing.signal } : {}),
    });
  } catch (e) {
    await removeChunks(jet.jsm, store, id).catch(() => undefined);
    throw e;
  }
}

/**
 * Commits a direct upload: verifies the claim (removing the chunks when it
 * does not hold), then commits exactly as a put does.
 */
export async function commitClaim(jet: Jet, store: StoreRef, id: string, chunkSize: number, key: string, c: ClaimedChunks, opts: PutOptions = {}): Promise<ObjectInfo> {
  const timing = timingOf(opts);
  // no MD5 only where none is needed: its ETag from the SHA-256, no Content-MD5 to verify
  if (c.md5hex === "" && wantsMd5(opts)) throw new ShoalError("InvalidDirectUpload", "the commit carries no MD5, and this put's ETag is its MD5 (or a Content-MD5 is to be verified)");
  // the current version is read while the chunks are checked (the commit is compare-and-set anyway)
  const prevP = headWithRetry(jet.jsm, store, key, timing);
  prevP.catch(() => undefined);
  const w = await claimedChunks(jet, store, id, chunkSize, c, timing);
  const prev = await prevP.catch(async (e: unknown) => {
    await removeChunks(jet.jsm, store, id).catch(() => undefined);
    throw e;
  });
  return commitChunks(jet, store, key, w, opts, timing, prev);
}
