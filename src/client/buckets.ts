/** Bucket calls (`shoal.v1.bucket.<op>`, served by the storage actor). */
import * as v1 from "../subjects/v1.ts";
import type { Wire } from "./wire.ts";
import type { BucketInfo } from "./types.ts";

const decodeBucket = (o: unknown) => v1.checkReply<BucketInfo>(o, "bucket", v1.REPLY.bucket);

export function createBucket(w: Wire, name: string, opts: { replicas?: 1 | 3 | 5 } = {}): Promise<BucketInfo> {
  // idempotent: a retry carries the same request id, and the actor answers a retry of its own create (actors/storage/buckets.ts)
  return w.bucketCall("create", () => v1.encodeBucketCreate(name, opts.replicas), true, decodeBucket);
}

export function deleteBucket(w: Wire, name: string, opts: { force?: boolean } = {}): Promise<{ deleted: boolean }> {
  return w.bucketCall("delete", () => v1.encodeBucketName(name, opts.force), true, (o) => v1.checkReply<{ deleted: boolean }>(o, "bucket delete", v1.REPLY.bucketDeleted));
}

export async function listBuckets(w: Wire): Promise<BucketInfo[]> {
  return (await w.bucketCall("list", () => JSON.stringify({ v: 1 }), true, (o) => v1.decodeBucketListReply<{ buckets: BucketInfo[] }>(o))).buckets;
}

export function bucketInfo(w: Wire, name: string): Promise<BucketInfo> {
  return w.bucketCall("info", () => v1.encodeBucketName(name), true, decodeBucket);
}
