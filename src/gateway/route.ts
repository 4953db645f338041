/**
 * S3 request routing: which bucket and key a request names (path-style or
 * virtual-hosted-style) and which S3 operation it is. Pure; unit-tested.
 *
 * Keys are taken from the raw path and percent-decoded exactly once, byte
 * for byte (`a%2Fb` is the key `a/b`; `..`, `//` and empty segments are
 * ordinary key bytes, as in S3 — there is no file system to escape). A path
 * that does not decode to valid UTF-8 is refused.
 */
import { ShoalError } from "../errors/index.ts";

export type Operation =
  | "ListBuckets"
  | "CreateBucket"
  | "DeleteBucket"
  | "HeadBucket"
  | "GetBucketLocation"
  | "ListObjects"
  | "ListObjectsV2"
  | "ListMultipartUploads"
  | "DeleteObjects"
  | "PutObject"
  | "CopyObject"
  | "GetObject"
  | "HeadObject"
  | "DeleteObject"
  | "CreateMultipartUpload"
  | "UploadPart"
  | "UploadPartCopy"
  | "CompleteMultipartUpload"
  | "AbortMultipartUpload"
  | "ListParts"
  | "GetBucketCors"
  | "PutBucketCors"
  | "DeleteBucketCors"
  | "GetBucketLifecycleConfiguration"
  | "PutBucketLifecycleConfiguration"
  | "DeleteBucketLifecycle"
  | "GetBucketVersioning"
  | "PutBucketVersioning"
  | "ListObjectVersions"
  | "Preflight";

/** Query parameters that carry a signature, not a sub-resource (SigV4 and SigV2 presigned URLs). */
const AUTH_PARAMS = /^(X-Amz-(Algorithm|Credential|Date|Expires|SignedHeaders|Signature|Security-Token|Content-Sha256)|AWSAccessKeyId|Signature|Expires)$/i;

export interface Route {
  op: Operation;
  bucket: string | undefined;
  key: string | undefined;
  /** Decoded query parameters (first value of each name). */
  query: Map<string, string>;
}

/** Decodes %XX escapes to bytes, then the bytes as UTF-8 (strictly). */
export function decodePathSegment(raw: string): string {
  if (!/^(?:[^%]|%[0-9A-Fa-f]{2})*$/.test(raw)) throw new ShoalError("InvalidArgument", "the path has a malformed percent-escape");
  const bytes = Buffer.from(raw.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), "latin1");
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ShoalError("InvalidArgument", "the key is not valid UTF-8");
  }
}

/** Query string → decoded names and values ('+' is a space, as browsers and SDKs send it). */
export function parseQuery(raw: string): Map<string, string> {
  const q = new Map<string, string>();
  if (!raw) return q;
  for (const part of raw.split("&")) {
    if (!part) continue;
    const i = part.indexOf("=");
    const name = decodePathSegment((i < 0 ? part : part.slice(0, i)).replaceAll("+", "%20"));
    const value = i < 0 ? "" : decodePathSegment(part.slice(i + 1).replaceAll("+", "%20"));
    if (!q.has(name)) q.set(name, value);
  }
  return q;
}

/** Bucket from a virtual-hosted Host header (`<bucket>.<domain>[:port]`), if it is one. */
export function bucketFromHost(host: string | undefined, domains: readonly string[]): string | undefined {
  if (!host) return undefined;
  const name = host.replace(/:\d+$/, "").toLowerCase();
  for (const d of domains) {
    const suffix = `.${d.toLowerCase()}`;
    if (name.endsWith(suffix) && name.length > suffix.length) return name.slice(0, -suffix.length);
  }
  return undefined;
}

/**
 * Resolves a request to an operation. `rawPath` is the request target's path
 * (not decoded); `hostBucket` the bucket named by the Host header, if any.
 */
export function route(method: string, rawPath: string, rawQuery: string, hostBucket: string | undefined, headers: Record<string, string | string[] | undefined>): Route {
  const query = parseQuery(rawQuery);
  if (!rawPath.startsWith("/")) throw new ShoalError("InvalidRequest", "the request path must start with /");
  let bucket: string | undefined;
  let key: string | undefined;
  if (hostBucket !== undefined) {
    bucket = hostBucket;
    key = rawPath.length > 1 ? decodePathSegment(rawPath.slice(1)) : undefined;
  } else {
    const rest = rawPath.slice(1);
    const slash = rest.indexOf("/");
    const b = slash < 0 ? rest : rest.slice(0, slash);
    bucket = b === "" ? undefined : decodePathSegment(b);
    const k = slash < 0 ? "" : rest.slice(slash + 1);
    key = k === "" ? undefined : decodePathSegment(k);
  }
  const m = method.toUpperCase();
  const has = (n: string) => query.has(n);
  const subresources = [...query.keys()].filter((n) => !AUTH_PARAMS.test(n));
  if (m === "OPTIONS") {
    if (bucket === undefined) throw new ShoalError("NotImplemented", "OPTIONS needs a bucket");
    return { op: "Preflight", bucket, key, query };
  }
  const op = ((): Operation | undefined => {
    if (bucket === undefined) return m === "GET" ? "ListBuckets" : undefined;
    if (key === undefined) {
      switch (m) {
        case "GET":
          if (has("location")) return "GetBucketLocation";
          if (has("uploads")) return "ListMultipartUploads";
          if (has("cors")) return "GetBucketCors";
          if (has("lifecycle")) return "GetBucketLifecycleConfiguration";
          if (has("versioning")) return "GetBucketVersioning";
          if (has("versions")) return "ListObjectVersions";
          if (["acl", "policy", "cors", "lifecycle", "versioning", "tagging", "website", "logging", "notification", "replication", "encryption", "object-lock", "versions", "ownershipControls", "publicAccessBlock", "accelerate", "requestPayment", "analytics", "metrics", "inventory", "intelligent-tiering"].some(has)) return undefined;
          return query.get("list-type") === "2" ? "ListObjectsV2" : "ListObjects";
        case "PUT":
          if (has("cors")) return "PutBucketCors";
          if (has("lifecycle")) return "PutBucketLifecycleConfiguration";
          if (has("versioning")) return "PutBucketVersioning";
          return subresources.length === 0 ? "CreateBucket" : undefined;
        case "DELETE":
          if (has("cors")) return "DeleteBucketCors";
          if (has("lifecycle")) return "DeleteBucketLifecycle";
          return subresources.length === 0 ? "DeleteBucket" : undefined;
        case "HEAD":
          return "HeadBucket";
        case "POST":
          return has("delete") ? "DeleteObjects" : undefined;
      }
      return undefined;
    }
    switch (m) {
      case "GET":
        if (has("uploadId")) return "ListParts";
        if (["acl", "tagging", "torrent", "retention", "legal-hold", "attributes"].some(has)) return undefined;
        return "GetObject";
      case "HEAD":
        return "HeadObject";
      case "PUT":
        if (has("uploadId") || has("partNumber")) return headers["x-amz-copy-source"] !== undefined ? "UploadPartCopy" : "UploadPart";
        if (["acl", "tagging", "retention", "legal-hold"].some(has)) return undefined;
        return headers["x-amz-copy-source"] !== undefined ? "CopyObject" : "PutObject";
      case "DELETE":
        return has("uploadId") ? "AbortMultipartUpload" : has("tagging") ? undefined : "DeleteObject";
      case "POST":
        if (has("uploads")) return "CreateMultipartUpload";
        if (has("uploadId")) return "CompleteMultipartUpload";
        return undefined;
    }
    return undefined;
  })();
  if (!op) throw new ShoalError("NotImplemented", `${m} ${bucket === undefined ? "/" : key === undefined ? "on a bucket" : "on an object"}${query.size ? ` with ?${[...query.keys()].join("&")}` : ""} is not implemented`);
  return { op, bucket, key, query };
}
