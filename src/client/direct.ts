/**
 * The SDK's direct data path: large bodies go between the SDK and the
 * bucket's stream without passing through a storage actor, while the actor
 * keeps every decision (validation, preconditions, naming the chunks,
 * verifying them, the compare-and-set commit, cleanup of abandoned uploads).
 *
 * PUT: the actor offers a session (actors/storage/direct.ts); the SDK
 * publishes the chunks with the same windowed, retrying, hashing chunk
 * writer the actor uses (src/store/writer.ts), keeps the session alive, and
 * sends the commit. GET: the actor answers with a descriptor (stream, nuid,
 * chunk sequences, digest) and the SDK reads the chunks with Direct Get,
 * verifying whole-object reads (CRC-32, else SHA-256), exactly as the actor would.
 *
 * A client whose NATS permissions do not reach the bucket's stream (a user
 * scoped to `shoal.v1.>` only) is found out before any byte moves, and its
 * transfers go through the actor instead: the PUT probe is a publish that
 * the server refuses without storing anything (a wrong `Nats-Expected-Stream`),
 * the GET probe is the first Direct Get.
 */
import { headers as natsHeaders, type NatsConnection } from "@nats-io/nats-core";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { ShoalError, errorFromWire, toShoalError } from "../errors/index.ts";
import { JS_CODE, isJsApiError, isNoResponders, isPermissionViolation } from "../errors/nats.ts";
import { H } from "../subjects/headers.ts";
import { H_ABORT } from "../transfer/index.ts";
import { HEADER_ROOM } from "../transfer/rechunk.ts";
import { DEFAULT_WINDOW } from "../transfer/index.ts";
import { DEFAULT_PUBLISH_TIMING, writeChunks, type Jet, type PublishTiming } from "../store/writer.ts";
import { readObject } from "../store/reader.ts";
import { decodeParts, decodeRuns, encodeRuns, type ObjectInfo } from "../store/format.ts";
import type { DirectOffer, DirectRead } from "../subjects/direct.ts";

export type { DirectOffer, DirectRead };

/**
 * Bytes all direct uploads of one client may have published and not yet
 * acknowledged: each upload's window is this shared by the uploads running,
 * between 2 MiB and the usual 8 MiB. A gateway serving four multipart
 * uploads at once then holds what one or two would, not four times it.
 */
export const DIRECT_BUDGET = 16 * 1024 * 1024;
const MIN_WINDOW = 2 * 1024 * 1024;

/** The window of one direct upload while `running` (itself included) are under way. */
export function directWindow(running: number): number {
  return Math.max(MIN_WINDOW, Math.min(DEFAULT_WINDOW, Math.floor(DIRECT_BUDGET / Math.max(1, running))));
}
/**
 * The slowest writer → server link a full window is timed for. The chunks
 * of a window are published back to back, so the last one's ack comes only
 * after the whole window crossed the link: an attempt timeout shorter than
 * that would re-send chunks that are merely queued, adding to the queue. A
 * slower link works with a smaller `windowBytes`. (The session's liveness
 * does not depend on the link: actors/storage/direct.ts.)
 */
export const SLOWEST_LINK_BYTES_PER_SEC = 512 * 1024;

/** Publish timing of a direct upload with this window: attempts long enough for the window to cross the slowest link. */
export function directTiming(windowBytes: number, signal?: AbortSignal): PublishTiming {
  const attemptMs = Math.max(DEFAULT_PUBLISH_TIMING.attemptMs, Math.ceil((windowBytes * 1000) / SLOWEST_LINK_BYTES_PER_SEC));
  return { attemptMs, deadlineMs: Math.max(DEFAULT_PUBLISH_TIMING.deadlineMs, 4 * attemptMs), ...(signal ? { signal } : {}) };
}

/** How long a store found unreachable is not tried directly again. */
const NEGATIVE_TTL_MS = 60_000;

export class DirectPath {
  private jet: Promise<Jet> | undefined;
  /** Per bucket: until when its stream is known (un)reachable from this connection. */
  private readonly reach = new Map<string, { ok: boolean; until: number }>();
  /** Direct uploads under way (they share DIRECT_BUDGET). */
  private running = 0;

  constructor(private readonly nc: NatsConnection) {}

  private handles(): Promise<Jet> {
    this.jet ??= jetstreamManager(this.nc, { checkAPI: false }).then((jsm: JetStreamManager) => ({ nc: this.nc, js: jetstream(this.nc), jsm }));
    return this.jet;
  }

  /** Whether to try the direct path for this bucket now. */
  usable(bucket: string): boolean {
    const r = this.reach.get(bucket);
    return !r || r.ok || r.until < Date.now();
  }

  private mark(bucket: string, ok: boolean): void {
    this.reach.set(bucket, { ok, until: ok ? Infinity : Date.now() + NEGATIVE_TTL_MS });
  }

  /**
   * Whether this connection may publish into the offer's stream: a publish
   * the server refuses without storing (wrong expected stream) answers with
   * that refusal when it may, and with a permission error or no responders
   * when it may not.
   */
  private async reachable(bucket: string, o: DirectOffer): Promise<boolean> {
    // a chunk and its headers must fit this connection's max_payload
    if (o.chunkSize + HEADER_ROOM > (this.nc.info?.max_payload ?? 1024 * 1024)) return false;
    if (this.reach.get(bucket)?.ok) return true;
    const { js } = await this.handles();
    let ok = false;
    try {
      await js.publish(o.chunkSubject, new Uint8Array(0), { expect: { streamName: `${o.stream}-probe` }, timeout: 2000 });
    } catch (e) {
      ok = isJsApiError(e, JS_CODE.StreamMismatch);
    }
    this.mark(bucket, ok);
    return ok;
  }

  /**
   * Runs a direct upload the actor offered: false (and the session
   * abandoned, nothing written) when this connection cannot reach the
   * stream; else the commit's reply.
   */
  async put<T>(bucket: string, o: DirectOffer, source: AsyncIterable<Uint8Array>, opts: { md5: boolean; windowBytes?: number; signal?: AbortSignal; commitTimeoutMs: number }): Promise<{ done: false } | { done: true; result: T }> {
    if (!(await this.reachable(bucket, o))) {
      this.abort(o, "NotReachable");
      return { done: false };
    }
    const jet = await this.handles();
    const keepalive = natsHeaders();
    keepalive.set("Shoal-Keepalive", "1");
    const ticker = setInterval(() => this.tell(o.subject, keepalive), Math.max(100, Math.floor(o.idleMs / 3)));
    this.running++;
    try {
      let w;
      const windowBytes = opts.windowBytes ?? directWindow(this.running);
      try {
        w = await writeChunks(jet, { name: o.store, stream: o.stream }, source, {
          id: o.nuid,
          chunkSize: o.chunkSize,
          windowBytes,
          timing: directTiming(windowBytes, opts.signal),
          // an actor that predates ETags from the SHA-256 needs the MD5 in the commit
          md5: opts.md5 || o.sha256Etag !== true,
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
      } catch (e) {
        // writeChunks removed what it wrote; the actor forgets the session.
        const err = toShoalError(e);
        this.abort(o, err.code);
        throw err;
      }
      const h = natsHeaders();
      h.set(H.commit, "1");
      let m;
      try {
        m = await this.nc.request(o.subject, JSON.stringify({ v: 1, size: w.size, ...(w.md5hex ? { md5: w.md5hex } : {}), sha256: w.sha256, ...(o.crc32 && w.crc32 ? { crc32: w.crc32 } : {}), ...(o.seqs ? { seqs: encodeRuns(w.seqs) } : {}) }), { headers: h, timeout: opts.commitTimeoutMs });
      } catch (e) {
        throw toShoalError(e);
      }
      const err = errorFromWire((n) => m.headers?.get(n) || undefined, m.string());
      if (err) throw err;
      return { done: true, result: m.json<T>() };
    } finally {
      clearInterval(ticker);
      this.running--;
    }
  }

  private abort(o: DirectOffer, code: string): void {
    const h = natsHeaders();
    h.set(H_ABORT, code);
    this.tell(o.subject, h);
  }

  /**
   * Best-effort word to the actor's session (a keepalive, an abort). Publish
   * throws synchronously on a closed or draining connection; from a timer that
   * would be an uncaught exception that ends the process, and on an error path
   * it would hide the real error. The actor needs neither: its idle timeout
   * ends a session that hears nothing.
   */
  private tell(subject: string, h: ReturnType<typeof natsHeaders>): void {
    try {
      this.nc.publish(subject, "", { headers: h });
    } catch {
      // connection closed: the session ends by the actor's idle timeout
    }
  }

  /**
   * The body of a GET the actor answered with a descriptor, or undefined when
   * this connection cannot read the stream (the caller asks the actor to
   * stream it instead). The first chunk is fetched before this returns.
   */
  async read(bucket: string, key: string, d: DirectRead, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array> | undefined> {
    const { jsm } = await this.handles();
    const info: ObjectInfo = {
      key,
      size: d.size,
      etag: "",
      sha256: d.sha256,
      ...(typeof d.crc32 === "string" && /^[0-9a-f]{8}$/.test(d.crc32) ? { crc32: d.crc32 } : {}),
      contentType: "",
      mtime: "",
      revision: 0,
      chunkSize: d.chunkSize,
      chunks: d.chunks,
      nuid: d.nuid,
      chunkSeqs: d.seqs === undefined ? undefined : decodeRuns(d.seqs, d.chunks),
      userMeta: {},
      ...(d.parts !== undefined ? { parts: decodeParts(d.parts) } : {}),
    };
    const it = readObject(jsm, { name: d.store, stream: d.stream }, info, { ...(d.range ? { range: d.range } : {}), ...(signal ? { signal } : {}) });
    let first: IteratorResult<Uint8Array>;
    try {
      first = await it.next();
    } catch (e) {
      if (isPermissionViolation(e) || isNoResponders(e)) {
        this.mark(bucket, false);
        return undefined;
      }
      throw e;
    }
    this.mark(bucket, true);
    return (async function* () {
      if (first.done) return;
      yield first.value;
      yield* it;
    })();
  }
}

/** A malformed offer or descriptor is the service's fault, not the caller's. */
export function parseOffer(o: Record<string, unknown>): DirectOffer {
  const s = (k: string) => {
    if (typeof o[k] !== "string") throw new ShoalError("InternalError", `the direct-upload offer lacks ${k}`);
    return o[k] as string;
  };
  const n = (k: string) => {
    if (typeof o[k] !== "number") throw new ShoalError("InternalError", `the direct-upload offer lacks ${k}`);
    return o[k] as number;
  };
  return { v: 1, subject: s("subject"), stream: s("stream"), store: s("store"), nuid: s("nuid"), chunkSubject: s("chunkSubject"), chunkSize: n("chunkSize"), idleMs: n("idleMs"), ...(o["crc32"] === true ? { crc32: true as const } : {}), ...(o["sha256Etag"] === true ? { sha256Etag: true as const } : {}), ...(o["seqs"] === true ? { seqs: true as const } : {}) };
}
