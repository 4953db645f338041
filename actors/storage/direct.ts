/**
 * Direct uploads: the body of a large PUT (or multipart part) goes from the
 * SDK straight into the bucket's stream, and the storage actor keeps
 * everything else — it checks the request (bucket, key, preconditions, the
 * upload), names the chunks (a nuid of its own), watches the upload, verifies
 * what was written and commits the metadata (or records the part). The bytes
 * cross the NATS server once instead of twice.
 *
 * Session (docs/api.md, "Direct uploads"): the PUT request carries
 * `Shoal-Direct: 1`; the reply names a session subject
 * `shoal.v1.xfer.<bucket>.<id>`, the stream, the chunk subject and the chunk
 * size. On that subject the writer sends `Shoal-Keepalive: 1` at least every
 * `idleMs / 3`, then either `Shoal-Commit: 1` with
 * `{"v":1,"size","md5"?,"sha256","crc32"?}` as a request (the reply is the object's
 * info — the part's, for a part — or a typed error; `md5` may be left out
 * only by a put that asked for an ETag from the SHA-256, see docs/api.md) or `Shoal-Abort:
 * <code>`. A writer that aborts has its chunks removed; so does a claim that
 * the stream contradicts (InvalidDirectUpload).
 *
 * Liveness does not depend on link speed: the keepalives travel on the
 * writer's own connection, behind up to a window of chunks, so on a slow
 * link they arrive late. Every `idleMs / 2` the actor counts the session's
 * chunks in the stream (stream info filtered on the chunk subject: no
 * bodies move); chunks that landed since the last look are progress, as a
 * keepalive is. Only a writer that showed neither for `idleMs` is gone (it
 * is found within 1.5 × idleMs): its chunks are removed.
 */
import { nuid, type Msg, type NatsConnection } from "@nats-io/nats-core";
import { ShoalError, toShoalError } from "../../src/errors/index.ts";
import { chunkSubject, transferSubject } from "../../src/subjects/index.ts";
import { H } from "../../src/subjects/headers.ts";
import { H_ABORT } from "../../src/transfer/index.ts";
import { parseJsonObject } from "../../src/subjects/payload.ts";
import { defaultChunkSize, removeChunks } from "../../src/store/writer.ts";
import type { Jet, StoreRef } from "../../src/store/types.ts";
import type { ClaimedChunks } from "../../src/store/claim.ts";
import { respondError } from "../../src/runtime/index.ts";
import { decodeClaim } from "./logic.ts";
import type { DirectOffer } from "../../src/subjects/direct.ts";

/**
 * Opens a session for one direct upload and returns the offer to send back.
 * `commit` turns the writer's claim into the result (it verifies the claim
 * against the stream and removes the chunks when it fails); `reply` answers
 * the writer's commit with it (the caller also counts it); `onEnd` hears how
 * the session ended ("ok" or an error code; errors have already been
 * answered; a failed commit's error comes with it). `opts.signal` ends the
 * session (and removes its chunks): the storage actor passes
 * `ctx.transfers`, so a graceful stop lets open sessions
 * finish until its deadline (it holds the stop while one is open); after
 * that, or after a crash, the writer's commit finds no responder and its
 * call fails (it is not retried).
 */
export function openDirectUpload<T>(
  nc: NatsConnection,
  jet: Jet,
  bucket: string,
  store: StoreRef,
  opts: { idleMs: number; signal: AbortSignal },
  commit: (claim: ClaimedChunks, id: string, chunkSize: number) => Promise<T>,
  reply: (commitMsg: Msg, result: T) => void,
  onEnd: (outcome: string, err?: ShoalError) => void,
): DirectOffer {
  const id = nuid.next();
  const subject = transferSubject(bucket, id);
  const chunkSize = defaultChunkSize(nc.info?.max_payload ?? 1024 * 1024);
  let ended = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const sub = nc.subscribe(subject, { callback: (_e, m) => void onMessage(m) });
  const end = async (outcome: string, removeChunksToo: boolean) => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    void sub.drain().catch(() => undefined); // drain: what reached the session before the server saw the unsubscribe is still answered
    opts.signal.removeEventListener("abort", onStop);
    if (removeChunksToo) await removeChunks(jet.jsm, store, id).catch(() => undefined);
    onEnd(outcome);
  };
  const chunkSubj = chunkSubject(store.name, id);
  /** When the writer last showed it is alive: a keepalive, or (at the latest, by the look before) a chunk landing. */
  let lastSign = Date.now();
  let lastLook = Date.now();
  /** Chunks of this session seen in the stream at the last look. */
  let landed = 0;
  /** Looks in a row that could not count (JetStream not answering). */
  let blind = 0;
  const look = async () => {
    const now = Date.now();
    try {
      const si = await jet.jsm.streams.info(store.stream, { subjects_filter: chunkSubj });
      blind = 0;
      const n = si.state.subjects?.[chunkSubj] ?? 0;
      // chunks landed since the last look: the writer was alive after it
      if (n > landed) lastSign = Math.max(lastSign, lastLook);
      landed = Math.max(landed, n);
    } catch {
      // cannot tell: give the writer the benefit of the doubt, twice
      if (++blind <= 2) lastSign = Math.max(lastSign, lastLook);
    }
    lastLook = now;
    if (ended) return;
    if (Date.now() - lastSign >= opts.idleMs) void end("Timeout", true);
    else tick();
  };
  const tick = () => {
    clearTimeout(timer);
    timer = setTimeout(() => void look(), Math.max(50, Math.floor(opts.idleMs / 2)));
  };
  const arm = () => {
    lastSign = Date.now();
  };
  const onStop = () => void end("ShuttingDown", true);
  opts.signal.addEventListener("abort", onStop, { once: true });

  const onMessage = async (m: Msg) => {
    if (ended) {
      // arrived while the session was ending (before the unsubscribe took effect): answered, not dropped
      if (m.reply) respondError(m, new ShoalError("InvalidRequest", "the direct-upload session has ended"));
      return;
    }
    const abort = m.headers?.get(H_ABORT);
    if (abort) {
      if (m.reply) m.respond(JSON.stringify({ v: 1, aborted: true }));
      return end(abort.slice(0, 64), true);
    }
    if (m.headers?.get(H.commit) !== "1") {
      // a keepalive (or anything else: still alive); only a commit is a request, but no request goes unanswered
      if (m.reply) respondError(m, new ShoalError("InvalidRequest", `only a commit (${H.commit}: 1) is a request on a direct-upload session; keepalives are published`));
      return arm();
    }
    clearTimeout(timer);
    ended = true;
    void sub.drain().catch(() => undefined); // drain: what reached the session before the server saw the unsubscribe is still answered
    opts.signal.removeEventListener("abort", onStop);
    try {
      const c = decodeClaim(parseJsonObject(m.data));
      reply(m, await commit({ size: c.size, md5hex: c.md5, sha256: c.sha256, ...(c.crc32 !== undefined ? { crc32: c.crc32 } : {}), ...(c.seqs !== undefined ? { seqs: c.seqs } : {}) }, id, chunkSize));
      onEnd("ok");
    } catch (e) {
      const err = toShoalError(e);
      if (err.code === "MalformedPayload" || err.code === "UnsupportedVersion") await removeChunks(jet.jsm, store, id).catch(() => undefined);
      respondError(m, err);
      onEnd(err.code, err);
    }
  };
  tick();
  if (opts.signal.aborted) {
    void end("ShuttingDown", false);
    throw new ShoalError("ShuttingDown");
  }
  return { v: 1, subject, stream: store.stream, store: store.name, nuid: id, chunkSubject: chunkSubj, chunkSize, idleMs: opts.idleMs, crc32: true, sha256Etag: true, seqs: true };
}
