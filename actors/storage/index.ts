/**
 * storage — serves the bucket and object API over NATS request/reply.
 *
 * Serves (NATS micro service `shoal-storage`, queue group `shoal-storage`):
 *   shoal.v1.bucket.{create,delete,list,info}
 *   shoal.v1.obj.{put,get,head,delete,list,deletemany,copy}.<bucket>
 *   shoal.v1.mpu.{create,part,complete,abort,parts,list}.<bucket>
 * Consumes: shoal.v1.xfer.<bucket>.<id> (bodies of streamed PUTs it accepted)
 * Publishes: chunks and metadata into the object stores OBJ_<bucket>
 *   ($O.<bucket>.C.<nuid>, $O.<bucket>.M.<key>), streamed GET bodies to the
 *   requester's inbox.
 * KV: shoal_buckets (the bucket registry, compare-and-set), shoal_multipart
 *   (multipart uploads and their parts).
 * Control: shoal.ctl.storage.sweep ({"v":1,"bucket"?}) sweeps now and replies
 *   with what it removed; a loop sweeps every bucket every
 *   storage.sweepIntervalMs (src/store/sweep.ts: old delete markers, orphan chunks).
 *
 * Decisions live in ./logic.ts; the store format and chunk path in src/store.
 */
import { nuid, type Msg } from "@nats-io/nats-core";
import type { KV } from "@nats-io/kv";
import { defineActor, rawReply, respondError, type ActorContext, type Request, type EndpointSpec } from "../../src/runtime/index.ts";
import { ShoalError, toShoalError } from "../../src/errors/index.ts";
import {
  BUCKET_OPS,
  KV as KV_NAMES,
  STORAGE_QUEUE,
  STORAGE_SERVICE,
  bucketFromToken,
  bucketSubject,
  controlSubject,
  objectSubjectWildcard,
  mpuSubjectWildcard,
  transferSubject,
  type MpuOp,
  type ObjectOp,
} from "../../src/subjects/index.ts";
import { H } from "../../src/subjects/headers.ts";
import { assertBucketName } from "../../src/store/names.ts";
import { putObject, deleteObject, precheckPut, type Jet, type StoreRef } from "../../src/store/writer.ts";
import { openDirectUpload } from "./direct.ts";
import { readObject, statObject, assertStream, forgetStream } from "../../src/store/reader.ts";
import { ensureStore, storeInfo, storeRef, deleteStore } from "../../src/store/bucket.ts";
import { KeyIndex } from "../../src/store/index.ts";
import { sweepStore, type SweepReport } from "../../src/store/sweep.ts";
import { openMultipart, createUpload, getUpload, uploadPart, recordPart, completeUpload, removeUpload, listParts, listUploads, partChunkIds, expireUploads, type PartRecord } from "../../src/store/multipart.ts";
import { claimedChunks, commitClaim, type ClaimedChunks } from "../../src/store/claim.ts";
import { openRegistry, registerBucket, unregisterBucket, getBucket, listBuckets, type BucketConfig } from "../../src/store/registry.ts";
import { StreamReceiver, sendStream, DEFAULT_IDLE_MS, DEFAULT_WINDOW } from "../../src/transfer/index.ts";
import { countBytes } from "../../src/metrics/index.ts";
import {
  INLINE_MAX,
  checkConditions,
  decodeBucketCreate,
  decodeBucketName,
  decodeSweep,
  decodeMpuCreate,
  decodeMpuPart,
  decodeMpuComplete,
  decodeMpuRef,
  decodeMpuParts,
  decodeMpuList,
  pageUploads,
  decodeCopy,
  decodeDeleteMany,
  decodeGet,
  decodeKeyOnly,
  decodeList,
  decodePut,
  directReadJson,
  infoJson,
  objectHeaders,
  resolveRange,
} from "./logic.ts";

/** Bucket named by the last token of an object subject. */
function bucketOf(subject: string): string {
  return assertBucketName(bucketFromToken(subject.slice(subject.lastIndexOf(".") + 1)));
}

async function* once(data: Uint8Array): AsyncGenerator<Uint8Array> {
  if (data.byteLength > 0) yield data;
}

/** Sleeps `ms`, returning early (without throwing) when `signal` aborts. */
function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
  return Buffer.concat(parts);
}

export const storage = defineActor({
  kind: "storage",
  description: "Shoal object and bucket API",
  contract: {
    serves: [...BUCKET_OPS.map((op) => bucketSubject(op)), ...(["put", "get", "head", "delete", "list", "deletemany", "copy"] as const).map((op) => objectSubjectWildcard(op))],
    consumes: ["shoal.v1.xfer.<bucket>.<id>", "$O.<bucket>.M.> (list index)"],
    publishes: ["$O.<bucket>.C.<nuid>", "$O.<bucket>.M.<key>", "<requester inbox> (streamed GET bodies)"],
    kv: [KV_NAMES.buckets],
  },
  service: { name: STORAGE_SERVICE, version: "1.0.0", queue: STORAGE_QUEUE },
  start: async (ctx: ActorContext) => {
    const jet: Jet = { nc: ctx.nc, js: ctx.js, jsm: ctx.jsm };
    const registry: KV = await openRegistry(ctx.js, ctx.jsm);
    const uploads: KV = await openMultipart(ctx.js, ctx.jsm);
    const indexes = new Map<string, Promise<KeyIndex>>();
    const idleMs = DEFAULT_IDLE_MS;

    const indexFor = (bucket: string): Promise<KeyIndex> => {
      let p = indexes.get(bucket);
      if (!p) {
        const store = storeRef(bucket);
        p = (async () => {
          await storeInfo(ctx.jsm, store); // NoSuchBucket when absent
          const idx = new KeyIndex(ctx.js, ctx.jsm, store);
          await idx.start();
          return idx;
        })();
        p.catch(() => indexes.delete(bucket));
        indexes.set(bucket, p);
      }
      return p;
    };
    const dropIndex = async (bucket: string) => {
      const p = indexes.get(bucket);
      indexes.delete(bucket);
      await (await p?.catch(() => undefined))?.stop();
    };

    // --- objects -----------------------------------------------------------------

    /**
     * Runs `write` on a request's body — the payload itself (inline), or a
     * flow-controlled transfer (`Shoal-Stream: 1`): accepted on a subject of
     * our own, the result sent as the reply to the sender's end marker.
     */
    const withBody = async (req: Request, bucket: string, streamed: boolean, what: string, write: (body: AsyncIterable<Uint8Array>) => Promise<Record<string, unknown>>) => {
      if (!streamed) return write(once(req.data));
      await assertStream(ctx.jsm, storeRef(bucket).stream);
      const subject = transferSubject(bucket, nuid.next());
      const receiver = new StreamReceiver(ctx.nc, subject, { idleMs });
      req.respond({ v: 1, subject, window: DEFAULT_WINDOW });
      try {
        const out = await write(receiver);
        if (receiver.endMsg) receiver.endMsg.respond(JSON.stringify(out));
      } catch (e) {
        const err = toShoalError(e);
        if (receiver.endMsg) respondError(receiver.endMsg, err);
        else StreamReceiver.refuse(ctx.nc, receiver.lastReply, err);
        req.log.info({ code: err.code }, `streamed ${what} failed`);
      }
      return undefined;
    };

    /**
     * Offers a direct upload (direct.ts) for a request whose checks passed:
     * `commit` turns the writer's claim into the result, `reply` answers the
     * commit with it. A graceful stop waits for the session (ctx.hold).
     */
    const offerDirect = <T>(req: Request, bucket: string, store: StoreRef, commit: (claim: ClaimedChunks, id: string, chunkSize: number) => Promise<T>, reply: (m: Msg, result: T) => void, about: Record<string, unknown>) => {
      const release = ctx.hold();
      return openDirectUpload(ctx.nc, jet, bucket, store, { idleMs, signal: ctx.transfers }, commit, reply, (outcome) => {
        release();
        if (outcome !== "ok") req.log.info({ code: outcome, ...about }, "direct upload failed");
      });
    };

    const put = async (req: Request) => {
      const bucket = bucketOf(req.subject);
      const store = storeRef(bucket);
      const p = decodePut(req.header, req.headers ? req.headers.keys() : []);
      const opts = {
        ...(p.contentType !== undefined ? { contentType: p.contentType } : {}),
        userMeta: p.userMeta,
        ifNoneMatch: p.ifNoneMatch,
        ...(p.ifMatch !== undefined ? { ifMatch: p.ifMatch } : {}),
        ...(p.md5Hex !== undefined ? { expectMd5Hex: p.md5Hex } : {}),
        ...(p.sha256B64 !== undefined ? { expectSha256B64: p.sha256B64 } : {}),
        signal: ctx.transfers,
        requestId: req.requestId,
      };
      if (p.direct) {
        await assertStream(ctx.jsm, store.stream);
        await precheckPut(ctx.jsm, store, p.key, opts);
        return offerDirect(
          req,
          bucket,
          store,
          (claim, id, chunkSize) => commitClaim(jet, store, id, chunkSize, p.key, claim, opts),
          (m, info) => {
            countBytes("storage", "in", info.size);
            m.respond(JSON.stringify(infoJson(bucket, info)));
          },
          { key: p.key.slice(0, 128) },
        );
      }
      return withBody(req, bucket, p.stream, "put", async (body) => {
        const info = await putObject(jet, store, p.key, body, opts);
        countBytes("storage", "in", info.size);
        return infoJson(bucket, info);
      });
    };

    const get = async (req: Request) => {
      const bucket = bucketOf(req.subject);
      const store = storeRef(bucket);
      const g = decodeGet(req.json());
      const info = await statObject(ctx.jsm, store, g.key);
      checkConditions(info, g);
      const range = resolveRange(g.range, info.size);
      const n = range ? range.end - range.start + 1 : info.size;
      const headers = objectHeaders(info, range);
      if (n <= INLINE_MAX) {
        const body = await collect(readObject(ctx.jsm, store, info, range ? { range } : {}));
        countBytes("storage", "out", body.length);
        return rawReply(body, { ...headers, [H.inline]: "1" });
      }
      if (g.direct) {
        countBytes("storage", "out", n);
        return rawReply(JSON.stringify(directReadJson(store, info, range)), { ...headers, [H.inline]: "0", [H.direct]: "1" });
      }
      if (!g.stream) {
        throw new ShoalError("EntityTooLarge", `the object (or range) is ${n} bytes; a reply holds at most ${INLINE_MAX}: ask for a range, or stream it (give "stream": "<inbox>", as the SDK and \`shoal get\` do)`);
      }
      req.respond(rawReply("", { ...headers, [H.inline]: "0" }));
      try {
        await sendStream(ctx.nc, g.stream, readObject(ctx.jsm, store, info, range ? { range, signal: ctx.transfers } : { signal: ctx.transfers }), {
          windowBytes: g.window ?? DEFAULT_WINDOW,
          idleMs,
          signal: ctx.transfers,
        });
        countBytes("storage", "out", n);
      } catch (e) {
        req.log.info({ code: toShoalError(e).code, key: g.key.slice(0, 128) }, "streamed get ended early");
      }
      return undefined;
    };

    const head = async (req: Request) => {
      const bucket = bucketOf(req.subject);
      const k = decodeKeyOnly(req.json());
      const info = await statObject(ctx.jsm, storeRef(bucket), k.key);
      checkConditions(info, k);
      return rawReply(JSON.stringify(infoJson(bucket, info)), objectHeaders(info));
    };

    const del = async (req: Request) => {
      const bucket = bucketOf(req.subject);
      const { key } = decodeKeyOnly(req.json());
      const store = storeRef(bucket);
      await assertStream(ctx.jsm, store.stream);
      return { v: 1, ...(await deleteObject(jet, store, key, undefined, req.requestId)) };
    };

    const list = async (req: Request) => {
      const bucket = bucketOf(req.subject);
      const opts = decodeList(req.json());
      const page = await (await indexFor(bucket)).list(opts);
      return { v: 1, bucket, prefix: opts.prefix ?? "", delimiter: opts.delimiter ?? null, maxKeys: opts.maxKeys, ...page };
    };

    const deleteMany = async (req: Request) => {
      const bucket = bucketOf(req.subject);
      const keys = decodeDeleteMany(req.json());
      const store = storeRef(bucket);
      await assertStream(ctx.jsm, store.stream);
      const deleted: string[] = [];
      const errors: Array<{ key: string; code: string; message: string }> = [];
      // bounded parallelism: 16 deletes at a time
      for (let i = 0; i < keys.length; i += 16) {
        await Promise.all(
          keys.slice(i, i + 16).map(async (key) => {
            try {
              decodeKeyOnly({ key });
              await deleteObject(jet, store, key, undefined, req.requestId);
              deleted.push(key);
            } catch (e) {
              const err = toShoalError(e);
              errors.push({ key, code: err.code, message: err.message });
            }
          }),
        );
      }
      return { v: 1, deleted, errors };
    };

    const copy = async (req: Request) => {
      const bucket = bucketOf(req.subject);
      const c = decodeCopy(req.json());
      const src = storeRef(c.sourceBucket);
      const info = await statObject(ctx.jsm, src, c.sourceKey);
      checkConditions(info, c);
      const dest = storeRef(bucket);
      await assertStream(ctx.jsm, dest.stream);
      const replace = c.metadataDirective === "REPLACE";
      const out = await putObject(jet, dest, c.key, readObject(ctx.jsm, src, info, { signal: ctx.transfers }), {
        contentType: replace ? (c.contentType ?? "application/octet-stream") : info.contentType,
        userMeta: replace ? c.metadata : info.userMeta,
        signal: ctx.transfers,
        requestId: req.requestId,
      });
      return infoJson(bucket, out);
    };

    // --- multipart -------------------------------------------------------------------

    const mpuCreate = async (req: Request) => {
      const bucket = bucketOf(req.subject);
      const c = decodeMpuCreate(req.json());
      await storeInfo(ctx.jsm, storeRef(bucket)); // NoSuchBucket
      const u = await createUpload(uploads, bucket, c.key, { ...(c.contentType ? { contentType: c.contentType } : {}), userMeta: c.metadata });
      return { v: 1, bucket, key: u.key, uploadId: u.uploadId };
    };

    const mpuPart = async (req: Request) => {
      const bucket = bucketOf(req.subject);
      const p = decodeMpuPart(req.header);
      const store = storeRef(bucket);
      const upload = await getUpload(uploads, bucket, p.uploadId, p.key);
      const expect = { ...(p.md5Hex ? { expectMd5Hex: p.md5Hex } : {}), ...(p.sha256B64 ? { expectSha256B64: p.sha256B64 } : {}) };
      const done = (rec: PartRecord) => {
        countBytes("storage", "in", rec.size);
        return { v: 1, partNumber: rec.n, etag: rec.etag, size: rec.size, lastModified: rec.mtime };
      };
      if (p.direct) {
        await assertStream(ctx.jsm, store.stream);
        return offerDirect(
          req,
          bucket,
          store,
          async (claim, id, chunkSize) => recordPart(jet, uploads, store, bucket, upload, p.partNumber, await claimedChunks(jet, store, id, chunkSize, claim), expect),
          (m, rec) => m.respond(JSON.stringify(done(rec))),
          { key: p.key.slice(0, 128), part: p.partNumber },
        );
      }
      return withBody(req, bucket, p.stream, "part", async (body) => done(await uploadPart(jet, uploads, store, bucket, upload, p.partNumber, body, { ...expect, signal: ctx.transfers })));
    };

    const mpuComplete = async (req: Request) => {
      const bucket = bucketOf(req.subject);
      const c = decodeMpuComplete(req.json());
      const upload = await getUpload(uploads, bucket, c.uploadId, c.key);
      const info = await completeUpload(jet, uploads, storeRef(bucket), bucket, upload, c.parts, { signal: ctx.transfers });
      return infoJson(bucket, info);
    };

    const mpuAbort = async (req: Request) => {
      const bucket = bucketOf(req.subject);
      const a = decodeMpuRef(req.json());
      await getUpload(uploads, bucket, a.uploadId, a.key);
      await removeUpload(jet, uploads, storeRef(bucket), bucket, a.uploadId);
      return { v: 1, aborted: true };
    };

    const mpuParts = async (req: Request) => {
      const bucket = bucketOf(req.subject);
      const q = decodeMpuParts(req.json());
      await getUpload(uploads, bucket, q.uploadId, q.key);
      const all = (await listParts(uploads, bucket, q.uploadId)).filter((p) => p.n > q.partNumberMarker);
      const page = all.slice(0, q.maxParts);
      return {
        v: 1,
        bucket,
        key: q.key,
        uploadId: q.uploadId,
        parts: page.map((p) => ({ partNumber: p.n, etag: p.etag, size: p.size, lastModified: p.mtime })),
        isTruncated: all.length > page.length,
        ...(all.length > page.length ? { nextPartNumberMarker: page[page.length - 1]!.n } : {}),
      };
    };

    const mpuList = async (req: Request) => {
      const bucket = bucketOf(req.subject);
      const q = decodeMpuList(req.json());
      await storeInfo(ctx.jsm, storeRef(bucket));
      return { v: 1, bucket, ...pageUploads(await listUploads(uploads, bucket), q) };
    };

    // --- buckets -------------------------------------------------------------------

    const bucketJson = (cfg: BucketConfig) => ({ name: cfg.name, replicas: cfg.replicas, created: cfg.created });

    const createBucket = async (req: Request) => {
      const { bucket, replicas } = decodeBucketCreate(req.json(), ctx.storage.defaultReplicas);
      const cfg: BucketConfig = { v: 1, name: bucket, replicas, shards: 1, created: new Date().toISOString() };
      await registerBucket(registry, cfg);
      try {
        await ensureStore(ctx.jsm, storeRef(bucket), replicas, `shoal bucket ${bucket}`);
      } catch (e) {
        await unregisterBucket(registry, bucket).catch(() => undefined);
        throw e;
      }
      return { v: 1, ...bucketJson(cfg) };
    };

    const deleteBucket = async (req: Request) => {
      const { bucket, force } = decodeBucketName(req.json(), ["force"]);
      const cfg = await getBucket(registry, bucket);
      const store: StoreRef = storeRef(bucket);
      const exists = await storeInfo(ctx.jsm, store).then(() => true, (e: unknown) => (e instanceof ShoalError && e.code === "NoSuchBucket" ? false : Promise.reject(e)));
      if (!cfg && !exists) throw new ShoalError("NoSuchBucket", undefined, { detail: { bucket } });
      if (exists && !force) {
        const page = await (await indexFor(bucket)).list({ maxKeys: 1 });
        if (page.keyCount > 0) throw new ShoalError("BucketNotEmpty", undefined, { detail: { bucket } });
      }
      await dropIndex(bucket);
      await deleteStore(ctx.jsm, store);
      forgetStream(ctx.jsm, store.stream);
      if (cfg) await unregisterBucket(registry, bucket);
      return { v: 1, bucket, deleted: true };
    };

    const listAll = async () => ({ v: 1, buckets: (await listBuckets(registry)).map(bucketJson) });

    const bucketInfo = async (req: Request) => {
      const { bucket } = decodeBucketName(req.json());
      const cfg = await getBucket(registry, bucket);
      const si = await storeInfo(ctx.jsm, storeRef(bucket));
      const idx = await indexFor(bucket);
      await idx.catchUp();
      return {
        v: 1,
        name: bucket,
        replicas: si.config.num_replicas,
        created: cfg?.created ?? si.created,
        registered: cfg !== undefined,
        objects: idx.size,
        bytes: si.state.bytes,
        messages: si.state.messages,
        stream: si.config.name,
        cluster: si.cluster
          ? {
              leader: si.cluster.leader ?? null,
              replicas: (si.cluster.replicas ?? []).map((r) => ({ name: r.name, current: r.current, offline: r.offline ?? false, lag: r.lag ?? 0 })),
            }
          : null,
      };
    };

    // --- sweep ---------------------------------------------------------------------

    const sweepOpts = (bucket: string) => ({
      markerTtlMs: ctx.storage.markerTtlMs,
      orphanGraceMs: ctx.storage.orphanGraceMs,
      alsoReferenced: () => partChunkIds(uploads, bucket),
    });
    const sweep = async (only?: string): Promise<Array<SweepReport & { uploadsExpired: number }>> => {
      const names = only !== undefined ? [only] : (await listBuckets(registry)).map((b) => b.name);
      const reports: Array<SweepReport & { uploadsExpired: number }> = [];
      for (const name of names) {
        if (ctx.signal.aborted) break;
        const store = storeRef(name);
        if (only !== undefined) await storeInfo(ctx.jsm, store); // NoSuchBucket
        try {
          const expired = await expireUploads(jet, uploads, store, name, ctx.storage.multipartMaxAgeMs);
          reports.push({ ...(await sweepStore(ctx.js, ctx.jsm, store, sweepOpts(name))), uploadsExpired: expired });
        } catch (e) {
          if (only !== undefined) throw e;
          ctx.log.warn({ err: e, bucket: name }, "sweep of a bucket failed; next round retries");
        }
      }
      const removed = reports.filter((r) => r.markersPurged + r.orphansPurged + r.uploadsExpired > 0);
      if (removed.length > 0) ctx.log.info({ reports: removed }, "sweep removed garbage");
      return reports;
    };
    const sweepControl = async (req: Request) => {
      const o = req.data.byteLength > 0 ? decodeSweep(req.json()) : {};
      return { v: 1, reports: await sweep(o.bucket) };
    };
    const sweepLoop = async () => {
      const every = ctx.storage.sweepIntervalMs;
      if (every === 0) return;
      while (!ctx.signal.aborted) {
        // jittered, so instances started together do not sweep in lockstep
        await sleepUnlessAborted(every * (0.8 + 0.4 * Math.random()), ctx.signal);
        if (!ctx.signal.aborted) await sweep();
      }
    };

    const objectEndpoints: Array<[ObjectOp, EndpointSpec["handler"]]> = [
      ["put", put],
      ["get", get],
      ["head", head],
      ["delete", del],
      ["list", list],
      ["deletemany", deleteMany],
      ["copy", copy],
    ];
    const mpuEndpoints: Array<[MpuOp, EndpointSpec["handler"]]> = [
      ["create", mpuCreate],
      ["part", mpuPart],
      ["complete", mpuComplete],
      ["abort", mpuAbort],
      ["parts", mpuParts],
      ["list", mpuList],
    ];
    return {
      endpoints: [
        ...objectEndpoints.map(([op, handler]) => ({ name: `obj-${op}`, subject: objectSubjectWildcard(op), handler })),
        { name: "bucket-create", subject: bucketSubject("create"), handler: createBucket },
        { name: "bucket-delete", subject: bucketSubject("delete"), handler: deleteBucket },
        { name: "bucket-list", subject: bucketSubject("list"), handler: listAll },
        { name: "bucket-info", subject: bucketSubject("info"), handler: bucketInfo },
        ...mpuEndpoints.map(([op, handler]) => ({ name: `mpu-${op}`, subject: mpuSubjectWildcard(op), handler })),
      ],
      controls: [{ subject: controlSubject("storage", "sweep"), handler: sweepControl }],
      loops: [{ name: "sweep", run: sweepLoop }],
      close: async () => {
        await Promise.all([...indexes.keys()].map((b) => dropIndex(b)));
      },
    };
  },
});
