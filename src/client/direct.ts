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
 * verifying the SHA-256 of whole-object reads, exactly as the actor would.
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
import { H } from "../subjects/headers.ts";
import { H_ABORT } from "../transfer/index.ts";
import { HEADER_ROOM } from "../transfer/rechunk.ts";
import { DEFAULT_WINDOW } from "../transfer/index.ts";
import { writeChunks, type Jet } from "../store/writer.ts";
import { readObject } from "../store/reader.ts";
import { decodeRuns, type ObjectInfo } from "../store/format.ts";
import type { DirectOffer, DirectRead } from "../subjects/direct.ts";

export type { DirectOffer, DirectRead };

const EXPECTED_STREAM_MISMATCH = 10060;
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
      ok = (e as { api_error?: { err_code?: number } })?.api_error?.err_code === EXPECTED_STREAM_MISMATCH || /expected stream does not match/i.test(String((e as Error)?.message));
    }
    this.mark(bucket, ok);
    return ok;
  }

  /**
   * Runs a direct upload the actor offered: false (and the session
   * abandoned, nothing written) when this connection cannot reach the
   * stream; else the commit's reply.
   */
  async put<T>(bucket: string, o: DirectOffer, source: AsyncIterable<Uint8Array>, opts: { windowBytes?: number; signal?: AbortSignal; commitTimeoutMs: number }): Promise<{ done: false } | { done: true; result: T }> {
    if (!(await this.reachable(bucket, o))) {
      this.abort(o, "NotReachable");
      return { done: false };
    }
    const jet = await this.handles();
    const keepalive = natsHeaders();
    keepalive.set("Shoal-Keepalive", "1");
    const ticker = setInterval(() => this.nc.publish(o.subject, "", { headers: keepalive }), Math.max(100, Math.floor(o.idleMs / 3)));
    this.running++;
    try {
      let w;
      try {
        w = await writeChunks(jet, { name: o.store, stream: o.stream }, source, {
          id: o.nuid,
          chunkSize: o.chunkSize,
          windowBytes: opts.windowBytes ?? directWindow(this.running),
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
      } catch (e) {
        // writeChunks removed what it wrote; the actor forgets the session.
        this.abort(o, toShoalError(e).code);
        throw e;
      }
      const h = natsHeaders();
      h.set(H.commit, "1");
      let m;
      try {
        m = await this.nc.request(o.subject, JSON.stringify({ v: 1, size: w.size, md5: w.md5hex, sha256: w.sha256 }), { headers: h, timeout: opts.commitTimeoutMs });
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
    this.nc.publish(o.subject, "", { headers: h });
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
      contentType: "",
      mtime: "",
      revision: 0,
      chunkSize: d.chunkSize,
      chunks: d.chunks,
      nuid: d.nuid,
      chunkSeqs: d.seqs === undefined ? undefined : decodeRuns(d.seqs, d.chunks),
      userMeta: {},
    };
    const it = readObject(jsm, { name: d.store, stream: d.stream }, info, { ...(d.range ? { range: d.range } : {}), ...(signal ? { signal } : {}) });
    let first: IteratorResult<Uint8Array>;
    try {
      first = await it.next();
    } catch (e) {
      const name = (e as Error)?.name;
      if (name === "PermissionViolationError" || name === "NoRespondersError" || /permissions violation|no responders/i.test(String((e as Error)?.message))) {
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
  return { v: 1, subject: s("subject"), stream: s("stream"), store: s("store"), nuid: s("nuid"), chunkSubject: s("chunkSubject"), chunkSize: n("chunkSize"), idleMs: n("idleMs") };
}
