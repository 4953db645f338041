/**
 * The console's JSON API (`/api/…`). Every handler calls Shoal through the
 * SDK on the server; the browser never sees a NATS connection or a secret.
 * Bodies (uploads, downloads) stream both ways: an upload's request body is
 * handed to the SDK as a stream, a download's SDK body is piped to the
 * response, so no object is ever held whole in memory.
 *
 *   GET    /api/session                         who is logged in, and the CSRF token
 *   POST   /api/login  {accessKey, secretKey}   → session cookie
 *   POST   /api/logout
 *   GET    /api/buckets                         with object count, bytes, replicas, created
 *   POST   /api/buckets {name, replicas?}
 *   DELETE /api/buckets/<b> {confirm?}          non-empty only when confirm === <b>
 *   GET    /api/buckets/<b>/objects?prefix=&delimiter=&max=&token=   one page
 *   GET    /api/buckets/<b>/object?key=         details (head)
 *   GET    /api/buckets/<b>/download?key=[&inline=1]
 *   PUT    /api/buckets/<b>/object?key=         body = the object (Content-Type kept)
 *   POST   /api/buckets/<b>/delete {keys}
 *   POST   /api/buckets/<b>/uploads {key, contentType?}            → {uploadId}
 *   PUT    /api/buckets/<b>/uploads/<id>/parts/<n>?key=            body = the part → {etag}
 *   POST   /api/buckets/<b>/uploads/<id>/complete {key, parts}
 *   DELETE /api/buckets/<b>/uploads/<id>?key=
 *   POST   /api/buckets/<b>/share {key, expiresIn}                 → {url, expires}
 *   GET    /api/cluster                         health view, rebalancer, versions
 *   GET    /api/events                          server-sent events from SHOAL_EVENTS
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ShoalError } from "../errors/index.ts";
import type { ShoalClient } from "../client/index.ts";
import { awsEncode, presignQuery } from "../gateway/auth.ts";
import type { Logger } from "../log.ts";
import { assertBucketName, assertKey } from "../store/names.ts";

/** The longest a share link may live (S3's limit for presigned URLs). */
export const MAX_SHARE_SECONDS = 7 * 24 * 3600;
/** Largest JSON request body. */
const MAX_JSON_BYTES = 64 * 1024;
/** Objects per listing page: default and most. */
export const PAGE_DEFAULT = 200;
export const PAGE_MAX = 1000;
/** Largest single PUT and largest part (S3: 5 GiB each). */
const MAX_BODY_BYTES = 5 * 1024 ** 3;
/** Most event streams open at once per console. */
const MAX_EVENT_STREAMS = 64;

export interface ApiContext {
  req: IncomingMessage;
  res: ServerResponse;
  client: ShoalClient;
  /** The logged-in access key (set for every route but login/session). */
  accessKey: string;
  secretFor: (accessKey: string) => string | undefined;
  region: string;
  /** The S3 endpoint's public origin, e.g. http://s3.example.com:9000. */
  publicUrl: string;
  query: URLSearchParams;
  log: Logger;
  version: string;
  now: () => Date;
  /** Closed when the console closes (event streams end). */
  closing: AbortSignal;
  events: { open: number };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader("Content-Type", "application/json; charset=utf-8");
  res.setHeader("Content-Length", Buffer.byteLength(text));
  res.end(text);
}

export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = req.headers["content-type"] ?? "";
  if (!/^application\/json\b/i.test(type)) throw new ShoalError("InvalidRequest", "send the request body as application/json");
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > MAX_JSON_BYTES) throw new ShoalError("EntityTooLarge", `a JSON request body holds at most ${MAX_JSON_BYTES} bytes`);
    chunks.push(c);
  }
  if (n === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new ShoalError("MalformedPayload", "the request body is not valid JSON");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ShoalError("MalformedPayload", "the request body must be a JSON object");
  return v as Record<string, unknown>;
}

function str(o: Record<string, unknown>, k: string, what = k): string {
  const v = o[k];
  if (typeof v !== "string" || v === "") throw new ShoalError("InvalidArgument", `${what} is required`);
  return v;
}

function keyParam(q: URLSearchParams): string {
  const k = q.get("key");
  if (!k) throw new ShoalError("InvalidArgument", "the object's key is required (?key=…)");
  return assertKey(k);
}

/** Declared length of a streamed body, checked against the limit. */
function bodyLength(req: IncomingMessage): number | undefined {
  const h = req.headers["content-length"];
  if (h === undefined) return undefined;
  const n = Number(h);
  if (!Number.isSafeInteger(n) || n < 0) throw new ShoalError("InvalidArgument", "Content-Length is not a number");
  if (n > MAX_BODY_BYTES) throw new ShoalError("EntityTooLarge", `one request carries at most 5 GiB; larger files go in parts`);
  return n;
}

/** An AbortSignal that fires when the client goes away before its body has arrived. */
function abortedBy(req: IncomingMessage, res: ServerResponse): AbortSignal {
  const ac = new AbortController();
  // a request's "close" also comes when its body has been read: only an incomplete one is an abort
  req.once("close", () => {
    if (!req.complete) ac.abort(new ShoalError("Aborted"));
  });
  res.once("close", () => {
    if (!res.writableFinished) ac.abort(new ShoalError("Aborted"));
  });
  return ac.signal;
}

/** The request body as a stream that fails (instead of ending short) when the client aborts. */
async function* bodyOf(req: IncomingMessage, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  try {
    for await (const c of req as AsyncIterable<Buffer>) {
      if (signal.aborted) throw new ShoalError("Aborted");
      yield c;
    }
  } catch (e) {
    // the socket closing mid-body (ECONNRESET "aborted") is the client's doing, not an internal error
    if (e instanceof ShoalError) throw e;
    throw new ShoalError("Aborted", undefined, { cause: e });
  }
  if (!req.complete) throw new ShoalError("Aborted");
}

export function contentDisposition(kind: "inline" | "attachment", key: string): string {
  const name = key.slice(key.lastIndexOf("/") + 1) || "download";
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/** Types the browser may show in place (under a sandboxing CSP); everything else downloads. */
const PREVIEWABLE = /^(image\/(png|jpeg|gif|webp|avif|bmp|svg\+xml)|text\/[a-z0-9.+-]+|application\/json)$/i;

// --- buckets -------------------------------------------------------------------------

export async function listBuckets(c: ApiContext): Promise<void> {
  const buckets = await c.client.listBuckets();
  const infos = await Promise.all(
    buckets.map(async (b) => {
      try {
        const i = await c.client.bucketInfo(b.name);
        return { name: b.name, replicas: i.replicas, created: i.created, objects: i.objects ?? null, bytes: i.bytes ?? null };
      } catch {
        return { name: b.name, replicas: b.replicas, created: b.created, objects: null, bytes: null };
      }
    }),
  );
  sendJson(c.res, 200, { buckets: infos });
}

export async function createBucket(c: ApiContext): Promise<void> {
  const body = await readJson(c.req);
  const name = str(body, "name", "a bucket name");
  const replicas = body["replicas"] === undefined ? undefined : Number(body["replicas"]);
  if (replicas !== undefined && replicas !== 1 && replicas !== 3 && replicas !== 5) throw new ShoalError("InvalidReplicas");
  const b = await c.client.createBucket(name, replicas ? { replicas } : {});
  c.log.info({ bucket: name, replicas: b.replicas, by: c.accessKey }, "console: bucket created");
  sendJson(c.res, 201, { name: b.name, replicas: b.replicas, created: b.created });
}

export async function deleteBucket(c: ApiContext, bucket: string): Promise<void> {
  const body = c.req.headers["content-type"] ? await readJson(c.req) : {};
  const confirm = body["confirm"];
  try {
    await c.client.deleteBucket(bucket);
  } catch (e) {
    if (!(e instanceof ShoalError && e.code === "BucketNotEmpty")) throw e;
    if (confirm !== bucket) throw new ShoalError("BucketNotEmpty", `bucket ${bucket} is not empty; confirm by typing its name to delete it with every object in it`);
    await c.client.deleteBucket(bucket, { force: true });
  }
  c.log.info({ bucket, by: c.accessKey }, "console: bucket deleted");
  sendJson(c.res, 200, { deleted: true });
}

// --- objects ---------------------------------------------------------------------------

export async function listObjects(c: ApiContext, bucket: string): Promise<void> {
  const q = c.query;
  const max = q.get("max") === null ? PAGE_DEFAULT : Number(q.get("max"));
  if (!Number.isInteger(max) || max < 1 || max > PAGE_MAX) throw new ShoalError("InvalidArgument", `max must be 1–${PAGE_MAX}`);
  const delimiter = q.get("delimiter") ?? "/";
  const token = q.get("token");
  const page = await c.client.listPage(bucket, {
    prefix: q.get("prefix") ?? "",
    ...(delimiter ? { delimiter } : {}),
    maxKeys: max,
    ...(token ? { continuationToken: token } : {}),
  });
  sendJson(c.res, 200, {
    prefix: q.get("prefix") ?? "",
    objects: page.contents.map((o) => ({ key: o.key, size: o.size, etag: o.etag, mtime: o.mtime })),
    prefixes: page.commonPrefixes,
    next: page.isTruncated ? page.nextContinuationToken ?? null : null,
  });
}

export async function objectDetails(c: ApiContext, bucket: string): Promise<void> {
  const m = await c.client.head(bucket, keyParam(c.query));
  sendJson(c.res, 200, { key: m.key, size: m.size, etag: m.etag, contentType: m.contentType, mtime: m.mtime, metadata: m.metadata, previewable: PREVIEWABLE.test(m.contentType.split(";")[0]!.trim()) });
}

export async function download(c: ApiContext, bucket: string): Promise<void> {
  const key = keyParam(c.query);
  const range = c.query.get("range") ?? undefined;
  if (range !== undefined && !/^bytes=\d*-\d*$/.test(range)) throw new ShoalError("InvalidRange", "range must look like bytes=0-65535");
  const signal = abortedBy(c.req, c.res);
  const obj = await c.client.get(bucket, key, { ...(range ? { range } : {}), signal });
  const type = obj.info.contentType.split(";")[0]!.trim();
  const inline = c.query.get("inline") === "1" && PREVIEWABLE.test(type);
  const res = c.res;
  res.statusCode = obj.contentRange ? 206 : 200;
  // text is shown as plain text, never rendered; the sandbox keeps scripts (SVG) inert
  res.setHeader("Content-Type", inline && (type.startsWith("text/") || type === "application/json") ? "text/plain; charset=utf-8" : obj.info.contentType || "application/octet-stream");
  res.setHeader("Content-Length", obj.length);
  if (obj.contentRange) res.setHeader("Content-Range", obj.contentRange);
  res.setHeader("ETag", `"${obj.info.etag}"`);
  res.setHeader("Content-Disposition", contentDisposition(inline ? "inline" : "attachment", key));
  res.setHeader("Content-Security-Policy", "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'");
  const body = obj.stream();
  await new Promise<void>((resolve) => {
    body.once("error", (e) => {
      c.log.warn({ err: e, bucket }, "console: download cut short");
      res.destroy();
      resolve();
    });
    res.once("close", () => {
      body.destroy();
      resolve();
    });
    body.pipe(res);
  });
}

/** Bodies up to this size are read whole and sent in one message (a folder of small files is many of these). */
const INLINE_MAX = 512 * 1024;

async function collect(body: AsyncIterable<Uint8Array>, length: number): Promise<Uint8Array> {
  const out = Buffer.allocUnsafe(length);
  let n = 0;
  for await (const c of body) {
    if (n + c.length > length) throw new ShoalError("InvalidArgument", "the body is longer than its Content-Length");
    out.set(c, n);
    n += c.length;
  }
  if (n !== length) throw new ShoalError("IncompleteBody");
  return out;
}

export async function putObject(c: ApiContext, bucket: string): Promise<void> {
  const key = keyParam(c.query);
  const length = bodyLength(c.req);
  const signal = abortedBy(c.req, c.res);
  const type = c.req.headers["content-type"];
  const body = length !== undefined && length <= INLINE_MAX ? await collect(bodyOf(c.req, signal), length) : bodyOf(c.req, signal);
  const m = await c.client.put(bucket, key, body, { ...(type ? { contentType: type } : {}), signal });
  sendJson(c.res, 200, { key: m.key, size: m.size, etag: m.etag });
}

export async function deleteObjects(c: ApiContext, bucket: string): Promise<void> {
  const body = await readJson(c.req);
  const keys = body["keys"];
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > 1000 || !keys.every((k) => typeof k === "string" && k !== "")) throw new ShoalError("InvalidArgument", "keys must list 1–1000 object names");
  const r = await c.client.deleteMany(bucket, keys as string[]);
  c.log.info({ bucket, count: r.deleted.length, by: c.accessKey }, "console: objects deleted");
  sendJson(c.res, 200, r);
}

// --- multipart uploads ------------------------------------------------------------------

export async function createUpload(c: ApiContext, bucket: string): Promise<void> {
  const body = await readJson(c.req);
  const key = str(body, "key", "the object's key");
  const contentType = typeof body["contentType"] === "string" && body["contentType"] ? body["contentType"] : undefined;
  const r = await c.client.createMultipart(bucket, key, contentType ? { contentType } : {});
  sendJson(c.res, 201, { uploadId: r.uploadId });
}

export async function uploadPart(c: ApiContext, bucket: string, uploadId: string, partText: string): Promise<void> {
  const key = keyParam(c.query);
  const n = Number(partText);
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new ShoalError("InvalidArgument", "part numbers are 1–10000");
  bodyLength(c.req);
  const signal = abortedBy(c.req, c.res);
  const p = await c.client.uploadPart(bucket, key, uploadId, n, bodyOf(c.req, signal), { signal });
  sendJson(c.res, 200, { partNumber: p.partNumber, etag: p.etag, size: p.size });
}

export async function completeUpload(c: ApiContext, bucket: string, uploadId: string): Promise<void> {
  const body = await readJson(c.req);
  const key = str(body, "key", "the object's key");
  const parts = body["parts"];
  if (!Array.isArray(parts) || parts.length === 0 || parts.length > 10_000) throw new ShoalError("InvalidArgument", "parts must list 1–10000 {partNumber, etag}");
  const list = parts.map((p: unknown) => {
    const o = p as { partNumber?: unknown; etag?: unknown };
    if (!Number.isInteger(o?.partNumber) || typeof o?.etag !== "string") throw new ShoalError("InvalidArgument", "each part is {partNumber, etag}");
    return { partNumber: o.partNumber as number, etag: o.etag };
  });
  const m = await c.client.completeMultipart(bucket, key, uploadId, list);
  sendJson(c.res, 200, { key: m.key, size: m.size, etag: m.etag });
}

export async function abortUpload(c: ApiContext, bucket: string, uploadId: string): Promise<void> {
  const r = await c.client.abortMultipart(bucket, keyParam(c.query), uploadId);
  sendJson(c.res, 200, r);
}

// --- share links -----------------------------------------------------------------------------

/** A presigned GET of `bucket/key` for the S3 endpoint at `publicUrl`, valid `expiresIn` seconds. */
export function shareUrl(o: { publicUrl: string; bucket: string; key: string; accessKey: string; secretKey: string; region: string; expiresIn: number; now: Date }): string {
  const base = new URL(o.publicUrl);
  const rawPath = `/${o.bucket}/${awsEncode(o.key, true)}`;
  const query = presignQuery({ method: "GET", rawPath, host: base.host }, { accessKey: o.accessKey, secretKey: o.secretKey, region: o.region }, o.expiresIn, o.now);
  return `${base.origin}${rawPath}?${query}`;
}

export async function share(c: ApiContext, bucket: string): Promise<void> {
  const body = await readJson(c.req);
  const key = str(body, "key", "the object's key");
  const expiresIn = Number(body["expiresIn"]);
  if (!Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > MAX_SHARE_SECONDS) throw new ShoalError("InvalidArgument", `a link lives 1 second to 7 days (${MAX_SHARE_SECONDS} s)`);
  await c.client.head(bucket, key); // NoSuchKey now rather than a dead link
  const secretKey = c.secretFor(c.accessKey);
  if (!secretKey) throw new ShoalError("NotAuthenticated", "this session's access key is no longer configured");
  const now = c.now();
  const url = shareUrl({ publicUrl: c.publicUrl, bucket, key, accessKey: c.accessKey, secretKey, region: c.region, expiresIn, now });
  sendJson(c.res, 200, { url, expires: new Date(now.getTime() + expiresIn * 1000).toISOString() });
}

// --- cluster -----------------------------------------------------------------------------------

export async function cluster(c: ApiContext): Promise<void> {
  const [health, rebalancer] = await Promise.allSettled([c.client.health(), c.client.rebalancerStatus()]);
  const problem = (r: PromiseSettledResult<unknown>) => {
    if (r.status === "fulfilled") return null;
    const e = r.reason instanceof ShoalError ? r.reason : new ShoalError("InternalError");
    if (e.code === "InternalError") c.log.error({ err: r.reason }, "console: cluster view failed");
    return { code: e.code, message: e.code === "InternalError" ? e.spec.message : e.message };
  };
  sendJson(c.res, 200, {
    time: c.now().toISOString(),
    version: c.version,
    health: health.status === "fulfilled" ? health.value : null,
    healthError: problem(health),
    rebalancer: rebalancer.status === "fulfilled" ? rebalancer.value : null,
    rebalancerError: problem(rebalancer),
  });
}

/** Object-change events as server-sent events, from the request on (an ordered consumer on SHOAL_EVENTS). */
export async function events(c: ApiContext): Promise<void> {
  if (c.events.open >= MAX_EVENT_STREAMS) throw new ShoalError("SlowDown", "too many live event streams are open; close another console tab");
  const bucket = c.query.get("bucket") ? assertBucketName(c.query.get("bucket")) : undefined;
  const res = c.res;
  const ac = new AbortController();
  const stop = () => ac.abort();
  c.req.once("close", stop);
  c.closing.addEventListener("abort", stop, { once: true });
  c.events.open++;
  res.statusCode = 200;
  res.setHeader("Content-Type", "text/event-stream; charset=utf-8");
  res.setHeader("Cache-Control", "no-store");
  res.setHeader("X-Accel-Buffering", "no");
  res.flushHeaders();
  res.write("retry: 3000\n\n");
  const ping = setInterval(() => res.write(": ping\n\n"), 15_000);
  try {
    // from the time of this request (not "new"): an event committed while the consumer is being made is not missed
    const it = c.client.events({ ...(bucket ? { bucket } : {}), from: new Date(Date.now() - 1000), signal: ac.signal });
    for await (const e of it) {
      if (ac.signal.aborted) break;
      const ev = { seq: e.seq, eventName: e.eventName, eventTime: e.eventTime, bucket: e.bucket, key: e.key, size: e.size };
      res.write(`id: ${e.seq}\ndata: ${JSON.stringify(ev)}\n\n`);
    }
  } catch (e) {
    if (!ac.signal.aborted) {
      const err = e instanceof ShoalError ? e : new ShoalError("ServiceUnavailable", "the event stream SHOAL_EVENTS cannot be read (is a replicator running?)");
      c.log.warn({ err: e }, "console: event stream failed");
      res.write(`event: failure\ndata: ${JSON.stringify({ code: err.code, message: err.message })}\n\n`);
    }
  } finally {
    clearInterval(ping);
    c.events.open--;
    c.req.off("close", stop);
    c.closing.removeEventListener("abort", stop);
    res.end();
  }
}
