/**
 * Bucket endpoints of the storage actor (shoal.v1.bucket.<op>): the
 * registry (KV shoal_buckets) and each bucket's object store stream.
 */
import type { Request } from "../../src/runtime/index.ts";
import { ShoalError } from "../../src/errors/index.ts";
import { forgetRevisions } from "../../src/store/writer.ts";
import type { StoreRef } from "../../src/store/types.ts";
import { forgetStream } from "../../src/store/reader.ts";
import { ensureStore, storeInfo, storeRef, deleteStore } from "../../src/store/bucket.ts";
import { hasLiveObject } from "../../src/store/index.ts";
import { intendedReplicas } from "../../src/runtime/replicas.ts";
import { registerBucket, unregisterBucket, getBucket, listBuckets, markDeleting, deletedBy, type BucketConfig } from "../../src/store/registry.ts";
import { decodeBucketCreate, decodeBucketName } from "./logic.ts";
import type { StorageState } from "./state.ts";

export function bucketHandlers(s: StorageState) {
  const { ctx, registry, indexes, settings } = s;
  const bucketJson = (cfg: BucketConfig) => ({ name: cfg.name, replicas: cfg.replicas, created: cfg.created });

  const createBucket = async (req: Request) => {
    // default: the cluster's replica count, up to 3 (1 on a single server)
    const { bucket, replicas } = decodeBucketCreate(req.json(), ctx.storage.defaultReplicas || intendedReplicas(ctx.nc));
    const cfg: BucketConfig = { v: 1, name: bucket, replicas, shards: 1, created: new Date().toISOString(), requestId: req.requestId };
    try {
      await registerBucket(registry, cfg);
    } catch (e) {
      // A retry of a create whose answer was lost (the SDK and S3 clients
      // retry with the same request id) finds its own registration: it
      // finishes the job (the stream; creating it again is a no-op) and
      // answers as the first attempt would have.
      const mine = e instanceof ShoalError && e.code === "BucketAlreadyExists" ? await getBucket(registry, bucket) : undefined;
      if (mine?.requestId !== req.requestId) throw e;
      await ensureStore(ctx.jsm, storeRef(bucket), mine.replicas, `shoal bucket ${bucket}`);
      return { v: 1, ...bucketJson(mine) };
    }
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
    if (!cfg && !exists) {
      // a retry of the delete that removed it (its answer lost): answered as that delete was
      if ((await deletedBy(registry, bucket)) === req.requestId) return { v: 1, bucket, deleted: true };
      throw new ShoalError("NoSuchBucket", undefined, { detail: { bucket } });
    }
    if (exists && !force) {
      // the index first (cheap), then the stream itself: an index can lag
      // or belong to an older incarnation; the stream cannot
      const page = (await indexes.ready(bucket)).page({ maxKeys: 1 });
      if (page.keyCount > 0 || (await hasLiveObject(ctx.js, ctx.jsm, store))) throw new ShoalError("BucketNotEmpty", undefined, { detail: { bucket } });
    }
    if (cfg) await markDeleting(registry, cfg, req.requestId);
    await indexes.drop(bucket);
    await deleteStore(ctx.jsm, store);
    forgetStream(ctx.jsm, store.stream);
    forgetRevisions(ctx.jsm, store);
    // a bucket created again with this name starts unversioned (and without the old CORS/lifecycle rules)
    await settings.forget(bucket).catch((e: unknown) => req.log.warn({ err: e, bucket }, "bucket settings not removed"));
    if (cfg) await unregisterBucket(registry, bucket);
    return { v: 1, bucket, deleted: true };
  };

  const listAll = async () => ({ v: 1, buckets: (await listBuckets(registry)).map(bucketJson) });

  const bucketInfo = async (req: Request) => {
    const { bucket } = decodeBucketName(req.json());
    const cfg = await getBucket(registry, bucket);
    const si = await storeInfo(ctx.jsm, storeRef(bucket));
    const idx = await indexes.ready(bucket);
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

  return { createBucket, deleteBucket, listAll, bucketInfo };
}
