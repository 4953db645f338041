/**
 * The SDK's wire: one connection with its timeouts, a request whose service
 * error reply becomes the ShoalError it names, retries of idempotent calls,
 * JSON calls through the v1 codec, and large bodies sent straight into the
 * bucket's stream (./direct.ts) or streamed through the storage actor
 * (src/transfer). Every other module of the SDK talks through it.
 */
import { headers as natsHeaders, nuid, type Msg, type NatsConnection } from "@nats-io/nats-core";
import { ShoalError, errorFromWire, toShoalError } from "../errors/index.ts";
import { bucketSubject, mpuSubject, objectSubject, type BucketOp, type MpuOp, type ObjectOp } from "../subjects/index.ts";
import * as v1 from "../subjects/v1.ts";
import { H } from "../subjects/headers.ts";
import { retry } from "../runtime/backoff.ts";
import { sendStream, DEFAULT_WINDOW } from "../transfer/index.ts";
import { DirectPath, parseOffer } from "./direct.ts";
import type { Body, ClientOptions, ObjectMeta } from "./types.ts";

export interface RequestOptions {
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** A body of any accepted shape as chunks. */
export async function* toIterable(body: Body): AsyncGenerator<Uint8Array> {
  if (typeof body === "string") {
    yield Buffer.from(body);
  } else if (body instanceof Uint8Array) {
    yield body;
  } else if (typeof (body as ReadableStream).getReader === "function") {
    const reader = (body as ReadableStream<Uint8Array>).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } else {
    for await (const c of body as AsyncIterable<Uint8Array | string>) yield typeof c === "string" ? Buffer.from(c) : c;
  }
}

/** The body's bytes when it is already in memory (a string or bytes), else undefined. */
export function inMemory(body: Body): Uint8Array | undefined {
  return typeof body === "string" ? Buffer.from(body) : body instanceof Uint8Array ? body : undefined;
}

/** A reply's JSON payload; a reply that is not JSON is the service's fault (InternalError). */
export function replyJson(m: Msg): unknown {
  try {
    return m.json();
  } catch (e) {
    throw new ShoalError("InternalError", "the service's reply is not JSON", { cause: e });
  }
}

/** An object's metadata from the headers of a GET reply. */
export function metaFromHeaders(bucket: string, key: string, m: Msg): ObjectMeta {
  return v1.metaFromReplyHeaders(bucket, key, (n) => m.headers?.get(n) || undefined, m.headers?.keys() ?? []);
}

export class Wire {
  readonly nc: NatsConnection;
  readonly timeoutMs: number;
  readonly deadlineMs: number;
  /** The ETag of puts that do not say (ClientOptions.etag). */
  readonly etag: "md5" | "sha256";
  /** The direct body path, unless the client turned it off. */
  readonly direct: DirectPath | undefined;

  constructor(nc: NatsConnection, opts: ClientOptions = {}) {
    this.nc = nc;
    this.direct = opts.direct === false ? undefined : new DirectPath(nc);
    this.timeoutMs = opts.timeoutMs ?? 3000;
    this.deadlineMs = opts.deadlineMs ?? 20_000;
    this.etag = opts.etag ?? "md5";
  }

  /** One request; a service error reply becomes the ShoalError it names. */
  async request(subject: string, data: Uint8Array | string, o: RequestOptions = {}): Promise<Msg> {
    let h;
    if (o.headers) {
      h = natsHeaders();
      for (const [k, v] of Object.entries(o.headers)) h.set(k, v);
    }
    let m: Msg;
    try {
      m = await this.nc.request(subject, data, { timeout: o.timeoutMs ?? this.timeoutMs, ...(h ? { headers: h } : {}) });
    } catch (e) {
      throw toShoalError(e);
    }
    const err = errorFromWire((n) => m.headers?.get(n) || undefined, m.data.length < 65536 ? m.string() : undefined);
    if (err) throw err;
    return m;
  }

  /** Retries an idempotent call on retryable failures within the deadline. */
  idempotent<T>(fn: () => Promise<T>): Promise<T> {
    return retry(fn, { attempts: 10, baseMs: 100, maxMs: 1000, deadlineMs: this.deadlineMs });
  }

  /**
   * One JSON call. `encode` builds the subject and the payload with the v1
   * codec (src/subjects/v1.ts), which validates them as the actor will: an
   * invalid bucket name, key, metadata or condition is refused here, with
   * the actor's typed error, before anything is sent.
   */
  async json<T>(encode: () => [subject: string, payload: string], idempotent: boolean, decode: (o: unknown) => T): Promise<T> {
    const [subject, payload] = encode();
    // One id for every attempt of this call: the actor stores it with what it
    // commits, so a retry whose first attempt landed is answered, not redone.
    const headers = { [H.requestId]: nuid.next() };
    const call = async () => decode(replyJson(await this.request(subject, payload, { headers })));
    return idempotent ? this.idempotent(call) : call();
  }

  bucketCall<T>(op: BucketOp, payload: () => string, idempotent: boolean, decode: (o: unknown) => T): Promise<T> {
    return this.json<T>(() => [bucketSubject(op), payload()], idempotent, decode);
  }

  objCall<T>(op: ObjectOp, bucket: string, payload: () => string, idempotent: boolean, decode: (o: unknown) => T): Promise<T> {
    return this.json<T>(() => [objectSubject(op, bucket), payload()], idempotent, decode);
  }

  mpuCall<T>(op: MpuOp, bucket: string, payload: () => string, idempotent: boolean, decode: (o: unknown) => T): Promise<T> {
    return this.json<T>(() => [mpuSubject(op, bucket), payload()], idempotent, decode);
  }

  /**
   * A body too large for one message: written into the stream directly when
   * this connection can (the actor offers the session and commits), else
   * streamed through the actor.
   */
  async sendLarge<T>(bucket: string, subject: string, headers: Record<string, string>, body: Body, opts: { windowBytes?: number; signal?: AbortSignal }, decode: (o: unknown) => T): Promise<T> {
    if (this.direct?.usable(bucket)) {
      // Asking for an offer changes nothing the commit would not redo: an
      // offer whose answer came too late is a session no one writes to, and
      // it expires. So the ask is retried like an idempotent call (CI saw the
      // first 9 MiB PUT into a new R3 bucket miss the 3 s timeout once, while
      // every cluster test was starting at once).
      const offer = parseOffer(replyJson(await this.idempotent(() => this.request(subject, "", { headers: { ...headers, [H.direct]: "1" } }))) as Record<string, unknown>);
      const r = await this.direct.put<unknown>(bucket, offer, toIterable(body), {
        // no MD5 when the ETag comes from the SHA-256 and no Content-MD5 is to be verified
        md5: headers[H.etagKind] !== "sha256" || headers[H.contentMd5] !== undefined,
        ...(opts.windowBytes !== undefined ? { windowBytes: opts.windowBytes } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
        commitTimeoutMs: 60_000,
      });
      if (r.done) return decode(r.result);
    }
    return this.sendBody<T>(subject, headers, body, opts, decode);
  }

  /**
   * Sends a body that may be large: the request (with `Shoal-Stream: 1`) is
   * accepted with a transfer subject, the bytes stream with flow control, and
   * the reply to the end marker is the result.
   */
  async sendBody<T>(subject: string, headers: Record<string, string>, body: Body, opts: { windowBytes?: number; signal?: AbortSignal }, decode: (o: unknown) => T): Promise<T> {
    const accept = await this.request(subject, "", { headers: { ...headers, [H.stream]: "1" } });
    const { subject: xfer, window } = v1.checkReply<{ subject: string; window: number }>(replyJson(accept), "stream accept", v1.REPLY.streamAccept);
    let result: T | undefined;
    await sendStream(this.nc, xfer, toIterable(body), {
      windowBytes: Math.min(opts.windowBytes ?? DEFAULT_WINDOW, window),
      ...(opts.signal ? { signal: opts.signal } : {}),
      end: async (h) => {
        let m: Msg;
        try {
          m = await this.nc.request(xfer, "", { headers: h, timeout: 60_000 });
        } catch (e) {
          throw toShoalError(e);
        }
        const err = errorFromWire((n) => m.headers?.get(n) || undefined, m.string());
        if (err) throw err;
        result = decode(replyJson(m));
      },
    });
    return result!;
  }
}
