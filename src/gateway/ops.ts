/**
 * The S3 operations, each mapped onto the SDK (and so onto the storage
 * service). Inputs are validated here (S3's names for S3's mistakes);
 * everything about storage — names, ranges, conditions, multipart rules — is
 * decided by the storage actor, whose typed errors become S3 errors.
 *
 * This file is the table from a route's operation to its handler; the
 * handlers live per resource in ops/: objects.ts (PUT, copy, GET/HEAD,
 * DELETE), buckets.ts (buckets and object listings), multipart.ts,
 * subresources.ts (CORS, lifecycle, versioning), and common.ts (what they
 * share: context, parameters, XML answers, bodies and digests).
 */
import type { Route } from "./route.ts";
import { type Op, type OpContext } from "./ops/common.ts";
import { listBuckets, createBucket, deleteBucket, headBucket, getBucketLocation, listObjects } from "./ops/buckets.ts";
import { putObject, copyObject, getObject, deleteObject, deleteObjects } from "./ops/objects.ts";
import { createMultipart, uploadPart, uploadPartCopy, completeMultipart, abortMultipart, listParts, listUploads } from "./ops/multipart.ts";
import { cors, lifecycle, getBucketVersioning, putBucketVersioning, listObjectVersions, preflight } from "./ops/subresources.ts";

export type { OpContext } from "./ops/common.ts";
export { partSizes } from "./ops/common.ts";
export { applyCors } from "./ops/subresources.ts";

const OPS: Record<Route["op"], Op> = {
  ListBuckets: listBuckets,
  CreateBucket: createBucket,
  DeleteBucket: deleteBucket,
  HeadBucket: headBucket,
  GetBucketLocation: getBucketLocation,
  ListObjects: listObjects(false),
  ListObjectsV2: listObjects(true),
  ListMultipartUploads: listUploads,
  DeleteObjects: deleteObjects,
  PutObject: putObject,
  CopyObject: copyObject,
  GetObject: getObject(false),
  HeadObject: getObject(true),
  DeleteObject: deleteObject,
  CreateMultipartUpload: createMultipart,
  UploadPart: uploadPart,
  UploadPartCopy: uploadPartCopy,
  CompleteMultipartUpload: completeMultipart,
  AbortMultipartUpload: abortMultipart,
  ListParts: listParts,
  GetBucketCors: cors.get,
  PutBucketCors: cors.put,
  DeleteBucketCors: cors.del,
  GetBucketLifecycleConfiguration: lifecycle.get,
  PutBucketLifecycleConfiguration: lifecycle.put,
  DeleteBucketLifecycle: lifecycle.del,
  GetBucketVersioning: getBucketVersioning,
  PutBucketVersioning: putBucketVersioning,
  ListObjectVersions: listObjectVersions,
  Preflight: preflight,
};

export function runOperation(ctx: OpContext): Promise<void> {
  return OPS[ctx.route.op](ctx);
}
