/**
 * The TypeScript SDK. Every other edge (CLI, S3 gateway, console) uses it.
 *
 *   const shoal = await ShoalClient.connect({ servers: "nats://127.0.0.1:4222" });
 *   await shoal.createBucket("photos");
 *   await shoal.put("photos", "cat.jpg", fs.createReadStream("cat.jpg"), { contentType: "image/jpeg" });
 *   const { info, body } = await shoal.get("photos", "cat.jpg", { range: "bytes=0-1023" });
 *   for await (const entry of shoal.list("photos", { prefix: "2026/", delimiter: "/" })) …
 *
 * Errors are ShoalError with the code the service sent. Idempotent calls are
 * retried with short per-attempt timeouts and backoff, so a stream-leader
 * failover costs seconds, not stacked 5 s timeouts.
 */
import { Readable } from "node:stream";
import { createInbox, headers as natsHeaders, nuid, type Msg, type NatsConnection } from "@nats-io/nats-core";
import { ShoalError, errorFromWire, toShoalError } from "../errors/index.ts";
import { EVENTS_STREAM, bucketSubject, controlSubject, eventSubject, metaSubjectAll, mpuSubject, objectStoreName, objectStoreStream, objectSubject, type BucketOp, type ObjectOp } from "../subjects/index.ts";
import { listRules, openReplication, replDurable, ruleKey, statusKey, validateRule, type ReplicationRule, type ReplicationStatus, type ReplicationTarget, type ScrubReport } from "../store/replication.ts";
import type { ObjectEvent } from "../subjects/events.ts";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerConfig } from "@nats-io/jetstream";
import { H } from "../subjects/headers.ts";
import { connectNats } from "../connect.ts";
import { buildConfig, type NatsConfig } from "../config.ts";
import { retry } from "../runtime/backoff.ts";
import { sendStream, StreamReceiver, DEFAULT_WINDOW } from "../transfer/index.ts";
import { DirectPath, parseOffer, type DirectRead } from "./direct.ts";

/** Bodies up to this size go inline in one request. */
export const INLINE_PUT_MAX = 512 * 1024;

export type Body = Uint8Array | string | AsyncIterable<Uint8Array> | ReadableStream<Uint8Array> | NodeJS.ReadableStream;

export interface ObjectMeta {
  bucket: string;
  key: string;
  size: number;
  etag: string;
  sha256: string;
  contentType: string;
  mtime: string;
  revision: number;
  metadata: Record<string, string>;
}

export interface GetResult {
  info: ObjectMeta;
  /** Size of what `body` yields (the range, or the whole object). */
  length: number;
  /** `bytes a-b/size` when a range was served. */
  contentRange: string | undefined;
  body: AsyncIterable<Uint8Array>;
  /** The body as a Node Readable. */
  stream(): Readable;
  /** The body collected (only for small objects!). */
  bytes(): Promise<Uint8Array>;
}

export interface Conditions {
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string | Date;
  ifUnmodifiedSince?: string | Date;
}

export interface PutOptions {
  contentType?: string;
  metadata?: Record<string, string>;
  /** Only create: fail with PreconditionFailed if the key exists. */
  ifNoneMatch?: boolean;
  ifMatch?: string;
  /** Base64 MD5 of the body, verified by the service (BadDigest, detail `{digest: "md5"}`). */
  contentMd5?: string;
  /** Base64 SHA-256 of the body, verified by the service (BadDigest, detail `{digest: "sha256"}`). */
  sha256?: string;
  signal?: AbortSignal;
  /** Flow-control window of a streamed upload. */
  windowBytes?: number;
}

export interface ListEntry {
  key: string;
  size: number;
  etag: string;
  mtime: string;
  revision: number;
}

export interface ListPage {
  contents: ListEntry[];
  commonPrefixes: string[];
  isTruncated: boolean;
  nextContinuationToken?: string;
  keyCount: number;
}

export interface ListOptions {
  prefix?: string;
  delimiter?: string;
  maxKeys?: number;
  startAfter?: string;
  continuationToken?: string;
}

export interface BucketInfo {
  name: string;
  replicas: number;
  created: string;
  objects?: number;
  bytes?: number;
  cluster?: { leader: string | null; replicas: Array<{ name: string; current: boolean; offline: boolean; lag: number }> } | null;
}

export interface PartInfo {
  partNumber: number;
  etag: string;
  size: number;
  lastModified: string;
}

export interface PartList {
  bucket: string;
  key: string;
  uploadId: string;
  parts: PartInfo[];
  isTruncated: boolean;
  nextPartNumberMarker?: number;
}

export interface UploadList {
  bucket: string;
  prefix: string;
  uploads: Array<{ key: string; uploadId: string; initiated: string }>;
  commonPrefixes: string[];
  isTruncated: boolean;
  nextKeyMarker?: string;
  nextUploadIdMarker?: string;
}

export interface EventsOptions {
  /** One bucket's events; all buckets when absent. */
  bucket?: string;
  /** Only keys with this prefix (filtered here: keys are not in the subject). */
  prefix?: string;
  /** Where to start: a time, an events-stream sequence, "all" (everything kept), or "new" (default). */
  from?: Date | number | "all" | "new";
  /** A durable consumer name: resumes where it left off, each event acknowledged after it is yielded. */
  durable?: string;
  signal?: AbortSignal;
}

/** An event as delivered: the event body plus its sequence in SHOAL_EVENTS. */
export type DeliveredEvent = ObjectEvent & { seq: number };

export interface ClientOptions {
  /** Per-attempt timeout of a request. */
  timeoutMs?: number;
  /** Overall deadline of a retried (idempotent) call. */
  deadlineMs?: number;
  /**
   * Move large bodies straight between this client and the bucket's stream
   * (default true; the storage actor still decides, names, verifies and
   * commits — src/client/direct.ts). false sends every byte through the
   * storage actor. Clients whose NATS permissions do not reach the stream
   * fall back to the actor by themselves.
   */
  direct?: boolean;
}

const dateStr = (d: string | Date | undefined) => (d === undefined ? undefined : d instanceof Date ? d.toUTCString() : d);

function conditions(c: Conditions): Record<string, string> {
  const o: Record<string, string> = {};
  if (c.ifMatch !== undefined) o["ifMatch"] = c.ifMatch;
  if (c.ifNoneMatch !== undefined) o["ifNoneMatch"] = c.ifNoneMatch;
  if (c.ifModifiedSince !== undefined) o["ifModifiedSince"] = dateStr(c.ifModifiedSince)!;
  if (c.ifUnmodifiedSince !== undefined) o["ifUnmodifiedSince"] = dateStr(c.ifUnmodifiedSince)!;
  return o;
}

async function* toIterable(body: Body): AsyncGenerator<Uint8Array> {
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

function metaFromHeaders(bucket: string, key: string, m: Msg): ObjectMeta {
  const g = (n: string) => m.headers?.get(n) ?? "";
  const metadata: Record<string, string> = {};
  for (const k of m.headers?.keys() ?? []) if (k.toLowerCase().startsWith(H.metaPrefix.toLowerCase())) metadata[k.slice(H.metaPrefix.length).toLowerCase()] = g(k);
  return {
    bucket,
    key,
    size: Number(g(H.objectSize)),
    etag: g(H.etag),
    sha256: g(H.sha256Reply),
    contentType: g(H.contentType),
    mtime: g(H.mtime),
    revision: Number(g(H.revision)),
    metadata,
  };
}

function digestHeaders(headers: Record<string, string>, o: { contentMd5?: string; sha256?: string }): void {
  if (o.contentMd5) headers[H.contentMd5] = o.contentMd5;
  if (o.sha256) headers[H.sha256] = o.sha256;
}

export class ShoalClient {
  readonly nc: NatsConnection;
  private readonly timeoutMs: number;
  private readonly deadlineMs: number;
  private readonly owned: boolean;
  private readonly direct: DirectPath | undefined;

  constructor(nc: NatsConnection, opts: ClientOptions & { owned?: boolean } = {}) {
    this.nc = nc;
    this.direct = opts.direct === false ? undefined : new DirectPath(nc);
    this.timeoutMs = opts.timeoutMs ?? 3000;
    this.deadlineMs = opts.deadlineMs ?? 20_000;
    this.owned = opts.owned ?? false;
  }

  /** Connects with a NATS config slice, or just server URLs. */
  static async connect(cfg: Omit<Partial<NatsConfig>, "servers"> & { servers: string | readonly string[] }, opts: ClientOptions = {}): Promise<ShoalClient> {
    const nats = buildConfig({ nats: { ...cfg, servers: typeof cfg.servers === "string" ? cfg.servers : [...cfg.servers] } }).nats;
    const nc = await connectNats(nats, { name: "shoal-sdk" });
    return new ShoalClient(nc, { ...opts, owned: true });
  }

  async close(): Promise<void> {
    if (this.owned && !this.nc.isClosed()) await this.nc.close();
  }

  /** One request; a service error reply becomes the ShoalError it names. */
  private async request(subject: string, data: Uint8Array | string, o: { headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<Msg> {
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
  private idempotent<T>(fn: () => Promise<T>): Promise<T> {
    return retry(fn, { attempts: 10, baseMs: 100, maxMs: 1000, deadlineMs: this.deadlineMs });
  }

  private json<T>(subject: string, body: Record<string, unknown>, idempotent: boolean): Promise<T> {
    // One id for every attempt of this call: the actor stores it with what it
    // commits, so a retry whose first attempt landed is answered, not redone.
    const headers = { [H.requestId]: nuid.next() };
    const call = async () => (await this.request(subject, JSON.stringify({ v: 1, ...body }), { headers })).json<T>();
    return idempotent ? this.idempotent(call) : call();
  }

  private bucketCall<T>(op: BucketOp, body: Record<string, unknown>, idempotent: boolean): Promise<T> {
    return this.json<T>(bucketSubject(op), body, idempotent);
  }

  private objCall<T>(op: ObjectOp, bucket: string, body: Record<string, unknown>, idempotent: boolean): Promise<T> {
    return this.json<T>(objectSubject(op, bucket), body, idempotent);
  }

  // --- buckets ------------------------------------------------------------------

  createBucket(name: string, opts: { replicas?: 1 | 3 | 5 } = {}): Promise<BucketInfo> {
    return this.bucketCall("create", { bucket: name, ...(opts.replicas ? { replicas: opts.replicas } : {}) }, false);
  }

  deleteBucket(name: string, opts: { force?: boolean } = {}): Promise<{ deleted: boolean }> {
    return this.bucketCall("delete", { bucket: name, ...(opts.force ? { force: true } : {}) }, true);
  }

  async listBuckets(): Promise<BucketInfo[]> {
    return (await this.bucketCall<{ buckets: BucketInfo[] }>("list", {}, true)).buckets;
  }

  bucketInfo(name: string): Promise<BucketInfo> {
    return this.bucketCall("info", { bucket: name }, true);
  }

  // --- objects ------------------------------------------------------------------

  async put(bucket: string, key: string, body: Body, opts: PutOptions = {}): Promise<ObjectMeta> {
    const headers: Record<string, string> = { [H.key]: key, [H.requestId]: nuid.next() };
    if (opts.contentType) headers[H.contentType] = opts.contentType;
    if (opts.ifNoneMatch) headers[H.ifNoneMatch] = "*";
    if (opts.ifMatch) headers[H.ifMatch] = opts.ifMatch;
    digestHeaders(headers, opts);
    for (const [k, v] of Object.entries(opts.metadata ?? {})) headers[`${H.metaPrefix}${k}`] = v;
    const small = typeof body === "string" ? Buffer.from(body) : body instanceof Uint8Array ? body : undefined;
    const subject = objectSubject("put", bucket);
    if (small && small.byteLength <= INLINE_PUT_MAX) {
      const call = async () => (await this.request(subject, small, { headers, timeoutMs: this.timeoutMs + 5000 })).json<ObjectMeta>();
      // An unconditional put of the same bytes is idempotent: retry it.
      return opts.ifNoneMatch || opts.ifMatch ? call() : this.idempotent(call);
    }
    return this.sendLarge<ObjectMeta>(bucket, subject, headers, body, opts);
  }

  /**
   * A body too large for one message: written into the stream directly when
   * this connection can (the actor offers the session and commits), else
   * streamed through the actor.
   */
  private async sendLarge<T>(bucket: string, subject: string, headers: Record<string, string>, body: Body, opts: { windowBytes?: number; signal?: AbortSignal }): Promise<T> {
    if (this.direct?.usable(bucket)) {
      const offer = parseOffer((await this.request(subject, "", { headers: { ...headers, [H.direct]: "1" } })).json());
      const r = await this.direct.put<T>(bucket, offer, toIterable(body), {
        ...(opts.windowBytes !== undefined ? { windowBytes: opts.windowBytes } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
        commitTimeoutMs: 60_000,
      });
      if (r.done) return r.result;
    }
    return this.sendBody<T>(subject, headers, body, opts);
  }

  /**
   * Sends a body that may be large: the request (with `Shoal-Stream: 1`) is
   * accepted with a transfer subject, the bytes stream with flow control, and
   * the reply to the end marker is the result.
   */
  private async sendBody<T>(subject: string, headers: Record<string, string>, body: Body, opts: { windowBytes?: number; signal?: AbortSignal }): Promise<T> {
    const accept = await this.request(subject, "", { headers: { ...headers, [H.stream]: "1" } });
    const { subject: xfer, window } = accept.json<{ subject: string; window: number }>();
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
        result = m.json<T>();
      },
    });
    return result!;
  }

  // --- multipart uploads (S3 semantics) ---------------------------------------------

  async createMultipart(bucket: string, key: string, opts: { contentType?: string; metadata?: Record<string, string> } = {}): Promise<{ uploadId: string }> {
    return this.json(mpuSubject("create", bucket), { key, ...(opts.contentType ? { contentType: opts.contentType } : {}), ...(opts.metadata ? { metadata: opts.metadata } : {}) }, false);
  }

  /** Uploads part `partNumber` (1–10000; every part but the last ≥ 5 MiB). Re-uploading a number replaces the part. */
  async uploadPart(bucket: string, key: string, uploadId: string, partNumber: number, body: Body, opts: Pick<PutOptions, "contentMd5" | "sha256" | "windowBytes" | "signal"> = {}): Promise<PartInfo> {
    const headers: Record<string, string> = { [H.key]: key, [H.uploadId]: uploadId, [H.partNumber]: String(partNumber) };
    digestHeaders(headers, opts);
    const subject = mpuSubject("part", bucket);
    const small = typeof body === "string" ? Buffer.from(body) : body instanceof Uint8Array ? body : undefined;
    if (small && small.byteLength <= INLINE_PUT_MAX) {
      return this.idempotent(async () => (await this.request(subject, small, { headers, timeoutMs: this.timeoutMs + 5000 })).json<PartInfo>());
    }
    return this.sendLarge<PartInfo>(bucket, subject, headers, body, opts);
  }

  /** Assembles the listed parts into the object; its ETag is S3's `<md5 of md5s>-<N>`. */
  async completeMultipart(bucket: string, key: string, uploadId: string, parts: ReadonlyArray<{ partNumber: number; etag: string }>): Promise<ObjectMeta> {
    const body = JSON.stringify({ v: 1, key, uploadId, parts: parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag })) });
    // the copy inside the cluster takes time proportional to the size
    return (await this.request(mpuSubject("complete", bucket), body, { timeoutMs: 600_000 })).json<ObjectMeta>();
  }

  abortMultipart(bucket: string, key: string, uploadId: string): Promise<{ aborted: boolean }> {
    return this.json(mpuSubject("abort", bucket), { key, uploadId }, false);
  }

  listParts(bucket: string, key: string, uploadId: string, opts: { partNumberMarker?: number; maxParts?: number } = {}): Promise<PartList> {
    return this.json(mpuSubject("parts", bucket), { key, uploadId, ...opts }, true);
  }

  listMultipartUploads(bucket: string, opts: { prefix?: string; delimiter?: string; keyMarker?: string; uploadIdMarker?: string; maxUploads?: number } = {}): Promise<UploadList> {
    return this.json(mpuSubject("list", bucket), { ...opts }, true);
  }

  async get(bucket: string, key: string, opts: Conditions & { range?: string; windowBytes?: number; signal?: AbortSignal } = {}): Promise<GetResult> {
    const attempt = async (direct: boolean): Promise<GetResult> => {
      const inbox = createInbox();
      const receiver = new StreamReceiver(this.nc, inbox);
      let m: Msg;
      try {
        m = await this.request(
          objectSubject("get", bucket),
          JSON.stringify({
            v: 1,
            key,
            ...conditions(opts),
            ...(opts.range ? { range: opts.range } : {}),
            stream: inbox,
            window: opts.windowBytes ?? DEFAULT_WINDOW,
            ...(direct ? { direct: true } : {}),
          }),
        );
      } catch (e) {
        receiver.sub.unsubscribe();
        throw e;
      }
      const info = metaFromHeaders(bucket, key, m);
      const inline = m.headers?.get(H.inline) === "1";
      let body: AsyncIterable<Uint8Array>;
      if (m.headers?.get(H.direct) === "1") {
        receiver.sub.unsubscribe();
        const read = await this.direct!.read(bucket, key, m.json<DirectRead>(), opts.signal);
        if (!read) return attempt(false); // this connection cannot read the stream: let the actor stream it
        body = read;
      } else if (inline) {
        receiver.sub.unsubscribe();
        const data = m.data;
        body = (async function* () {
          if (data.byteLength) yield data;
        })();
      } else body = receiver;
      const length = Number(m.headers?.get(H.size) ?? info.size);
      return {
        info,
        length,
        contentRange: m.headers?.get(H.contentRange) || undefined,
        body,
        stream: () => Readable.from(body, { objectMode: false }),
        bytes: async () => {
          const parts: Uint8Array[] = [];
          for await (const c of body) parts.push(c);
          return Buffer.concat(parts);
        },
      };
    };
    return this.idempotent(() => attempt(this.direct?.usable(bucket) === true));
  }

  /** Whole body as bytes (small objects). */
  async getBytes(bucket: string, key: string, opts: Conditions & { range?: string } = {}): Promise<Uint8Array> {
    return (await this.get(bucket, key, opts)).bytes();
  }

  head(bucket: string, key: string, opts: Conditions = {}): Promise<ObjectMeta> {
    return this.objCall("head", bucket, { key, ...conditions(opts) }, true);
  }

  delete(bucket: string, key: string): Promise<{ deleted: boolean }> {
    return this.objCall("delete", bucket, { key }, true);
  }

  deleteMany(bucket: string, keys: string[]): Promise<{ deleted: string[]; errors: Array<{ key: string; code: string; message: string }> }> {
    return this.objCall("deletemany", bucket, { keys }, true);
  }

  copy(src: { bucket: string; key: string }, dest: { bucket: string; key: string }, opts: Conditions & { metadataDirective?: "COPY" | "REPLACE"; contentType?: string; metadata?: Record<string, string> } = {}): Promise<ObjectMeta> {
    return this.objCall(
      "copy",
      dest.bucket,
      {
        sourceBucket: src.bucket,
        sourceKey: src.key,
        key: dest.key,
        ...conditions(opts),
        ...(opts.metadataDirective ? { metadataDirective: opts.metadataDirective } : {}),
        ...(opts.contentType ? { contentType: opts.contentType } : {}),
        ...(opts.metadata ? { metadata: opts.metadata } : {}),
      },
      false,
    );
  }

  /**
   * Object-change events as an async iterator (stream SHOAL_EVENTS): an
   * ordered ephemeral consumer, or a durable one when `durable` is given.
   */
  async *events(opts: EventsOptions = {}): AsyncGenerator<DeliveredEvent> {
    const js = jetstream(this.nc);
    const filter = eventSubject(opts.bucket);
    const start: Partial<ConsumerConfig> =
      opts.from instanceof Date
        ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: opts.from.toISOString() }
        : typeof opts.from === "number"
          ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: opts.from }
          : opts.from === "all"
            ? { deliver_policy: DeliverPolicy.All }
            : { deliver_policy: DeliverPolicy.New };
    if (opts.durable) {
      // One message at a time, acknowledged once the caller asks for the next
      // one (or stops): nothing is held unacknowledged in a local buffer, so a
      // reader that stops and comes back resumes exactly after what it saw.
      const jsm = await jetstreamManager(this.nc);
      try {
        await jsm.consumers.info(EVENTS_STREAM, opts.durable);
      } catch {
        await jsm.consumers.add(EVENTS_STREAM, { durable_name: opts.durable, filter_subject: filter, ack_policy: AckPolicy.Explicit, ...start });
      }
      const consumer = await js.consumers.get(EVENTS_STREAM, opts.durable);
      while (!opts.signal?.aborted) {
        const m = await consumer.next({ expires: 1000 });
        if (!m) continue;
        const ev = m.json<ObjectEvent>();
        try {
          if (opts.prefix === undefined || ev.key.startsWith(opts.prefix)) yield { ...ev, seq: m.seq };
        } finally {
          await m.ackAck();
        }
      }
      return;
    }
    const consumer = await js.consumers.get(EVENTS_STREAM, { filter_subjects: filter, ...(start as object) });
    const msgs = await consumer.consume();
    const stop = () => void msgs.close().catch(() => undefined);
    opts.signal?.addEventListener("abort", stop, { once: true });
    try {
      for await (const m of msgs) {
        const ev = m.json<ObjectEvent>();
        if (opts.prefix === undefined || ev.key.startsWith(opts.prefix)) yield { ...ev, seq: m.seq };
      }
    } finally {
      opts.signal?.removeEventListener("abort", stop);
      stop();
    }
  }

  // --- replication rules (KV shoal_replication, applied by the replicator) ----------

  /** Adds a rule: every change to `source` is applied to `target` (this cluster, or `target.servers`). */
  async addReplication(source: string, target: ReplicationTarget): Promise<ReplicationRule> {
    validateRule({ source, target });
    await this.bucketInfo(source); // NoSuchBucket
    if (!target.servers?.length) await this.bucketInfo(target.bucket);
    const kv = await openReplication(jetstream(this.nc), await jetstreamManager(this.nc));
    const rule: ReplicationRule = { v: 1, id: nuid.next().slice(-10).toLowerCase(), source, target, created: new Date().toISOString() };
    await kv.create(ruleKey(rule.id), JSON.stringify(rule));
    return rule;
  }

  async listReplications(): Promise<ReplicationRule[]> {
    return listRules(await openReplication(jetstream(this.nc), await jetstreamManager(this.nc)));
  }

  /** Removes a rule, its progress and its consumer. */
  async removeReplication(id: string): Promise<{ removed: boolean }> {
    const kv = await openReplication(jetstream(this.nc), await jetstreamManager(this.nc));
    const e = await kv.get(ruleKey(id));
    if (!e || e.operation !== "PUT") return { removed: false };
    const rule = e.json<ReplicationRule>();
    await kv.delete(ruleKey(id));
    await kv.delete(statusKey(id)).catch(() => undefined);
    const jsm = await jetstreamManager(this.nc);
    await jsm.consumers.delete(objectStoreStream(rule.source), replDurable(id)).catch(() => undefined);
    return { removed: true };
  }

  /** Each rule with its lag: changes not yet applied, and how old the oldest of them is. */
  async replicationStatus(): Promise<Array<ReplicationRule & { behind: number; secondsBehind: number; status: ReplicationStatus | null }>> {
    const kv = await openReplication(jetstream(this.nc), await jetstreamManager(this.nc));
    const jsm = await jetstreamManager(this.nc);
    const out = [];
    for (const rule of await listRules(kv)) {
      const stream = objectStoreStream(rule.source);
      let behind = 0;
      let secondsBehind = 0;
      try {
        const ci = await jsm.consumers.info(stream, replDurable(rule.id));
        behind = ci.num_pending + ci.num_ack_pending;
        if (behind > 0) {
          const next = await jsm.direct.getMessage(stream, { seq: ci.ack_floor.stream_seq + 1, next_by_subj: metaSubjectAll(objectStoreName(rule.source)) }).catch(() => null);
          if (next) secondsBehind = Math.max(0, (Date.now() - next.time.getTime()) / 1000);
        }
      } catch {
        // not started yet: everything is behind
        const si = await jsm.streams.info(stream).catch(() => null);
        behind = si?.state.messages ?? 0;
      }
      const st = await kv.get(statusKey(rule.id));
      out.push({ ...rule, behind, secondsBehind, status: st && st.operation === "PUT" ? st.json<ReplicationStatus>() : null });
    }
    return out;
  }

  /** Runs anti-entropy for a rule now (on a replicator) and returns its report. */
  async scrubReplication(id: string): Promise<ScrubReport & { id: string }> {
    return (await this.request(controlSubject("replicator", "scrub"), JSON.stringify({ v: 1, id }), { timeoutMs: 600_000 })).json();
  }

  listPage(bucket: string, opts: ListOptions = {}): Promise<ListPage> {
    return this.objCall("list", bucket, { ...opts }, true);
  }

  /** Every entry (objects, and common prefixes as `{ prefix }`), page by page. */
  async *list(bucket: string, opts: Omit<ListOptions, "continuationToken"> = {}): AsyncGenerator<ListEntry | { prefix: string }> {
    let token: string | undefined;
    do {
      const page = await this.listPage(bucket, { ...opts, ...(token ? { continuationToken: token } : {}) });
      const items: Array<ListEntry | { prefix: string }> = [...page.contents, ...page.commonPrefixes.map((prefix) => ({ prefix }))];
      items.sort((a, b) => Buffer.compare(Buffer.from("key" in a ? a.key : a.prefix), Buffer.from("key" in b ? b.key : b.prefix)));
      yield* items;
      token = page.isTruncated ? page.nextContinuationToken : undefined;
    } while (token);
  }
}

export { ShoalError };
export type { ReplicationRule, ReplicationTarget, ReplicationStatus, ScrubReport } from "../store/replication.ts";
