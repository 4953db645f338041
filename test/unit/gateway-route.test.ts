/**
 * Routing of the operations added for conformance: bucket sub-resources,
 * CORS preflight, and presigned URLs whose signature parameters are not
 * sub-resources. Plus the part-size record read by part-number GETs.
 */
import test from "ava";
import { ShoalError } from "../../src/errors/index.ts";
import { route } from "../../src/gateway/route.ts";
import { partSizeRuns } from "../../src/store/multipart.ts";
import { partSizes } from "../../src/gateway/ops.ts";
import type { ObjectMeta } from "../../src/client/index.ts";

const op = (method: string, path: string, query = "", headers: Record<string, string> = {}) => {
  try {
    return route(method, path, query, undefined, headers).op;
  } catch (e) {
    return e instanceof ShoalError ? e.code : String(e);
  }
};

test("bucket sub-resources: cors, lifecycle, versioning, versions", (t) => {
  t.is(op("GET", "/b", "cors"), "GetBucketCors");
  t.is(op("PUT", "/b", "cors"), "PutBucketCors");
  t.is(op("DELETE", "/b", "cors"), "DeleteBucketCors");
  t.is(op("GET", "/b", "lifecycle"), "GetBucketLifecycleConfiguration");
  t.is(op("PUT", "/b", "lifecycle"), "PutBucketLifecycleConfiguration");
  t.is(op("DELETE", "/b", "lifecycle"), "DeleteBucketLifecycle");
  t.is(op("GET", "/b", "versioning"), "GetBucketVersioning");
  t.is(op("PUT", "/b", "versioning"), "PutBucketVersioning");
  t.is(op("GET", "/b", "versions&prefix=a"), "ListObjectVersions");
  t.is(op("GET", "/b", "policy"), "NotImplemented");
  t.is(op("PUT", "/b", "tagging"), "NotImplemented");
});

test("OPTIONS is a CORS preflight on a bucket or an object, never on the service", (t) => {
  t.is(op("OPTIONS", "/b"), "Preflight");
  t.is(op("OPTIONS", "/b/k"), "Preflight");
  t.is(op("OPTIONS", "/"), "NotImplemented");
});

test("presigned signature parameters (SigV4 and SigV2) are not sub-resources", (t) => {
  const v4 = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00";
  t.is(op("PUT", "/b", v4), "CreateBucket");
  t.is(op("DELETE", "/b", v4), "DeleteBucket");
  t.is(op("PUT", "/b", "AWSAccessKeyId=a&Expires=1&Signature=x"), "CreateBucket");
  t.is(op("PUT", "/b", `${v4}&acl`), "NotImplemented");
});

test("part sizes are recorded as runs and read back", (t) => {
  t.is(partSizeRuns([5, 5, 5, 2]), "5*3,2");
  t.is(partSizeRuns([7]), "7");
  t.is(partSizeRuns([1, 2, 2, 1]), "1,2*2,1");
  const meta = (parts: string | undefined): ObjectMeta => ({ bucket: "b", key: "k", size: 0, etag: "x-2", sha256: "", contentType: "", mtime: "", revision: 1, metadata: parts === undefined ? {} : { "shoal.parts": parts } });
  t.deepEqual(partSizes(meta("5*3,2")), [5, 5, 5, 2]);
  t.deepEqual(partSizes(meta(partSizeRuns([1, 2, 2, 1]))), [1, 2, 2, 1]);
  t.is(partSizes(meta(undefined)), undefined);
  t.is(partSizes(meta("5*x")), undefined, "malformed → not recorded");
});
