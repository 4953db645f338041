/**
 * AWS Signature Version 2 (HMAC-SHA1), for legacy clients: s3cmd's
 * `signurl`, awscli v1 and boto with `signature_version = s3`, old SDKs.
 * Ceph RGW and MinIO accept it too. Two forms:
 *
 *   header  Authorization: AWS <AccessKeyId>:<base64 HMAC-SHA1>
 *           Date (or x-amz-date) within 15 minutes of the server's clock
 *   query   ?AWSAccessKeyId=…&Expires=<unix seconds>&Signature=…
 *           refused once Expires has passed
 *
 * StringToSign = Method \n Content-MD5 \n Content-Type \n Date-or-Expires \n
 * CanonicalizedAmzHeaders CanonicalizedResource, where the resource is
 * `/<bucket>` (from a virtual-hosted Host) + the path as sent + the S3
 * sub-resources in the query, sorted. When x-amz-date is sent, the Date line
 * is empty (what s3cmd signs) or the Date header (what botocore signs): both
 * are tried; a bucket's own path is signed as `/<bucket>` by some clients
 * and `/<bucket>/` by others (botocore): both are tried. Signatures are
 * compared in constant time, every candidate computed.
 *
 * A SigV2 request carries no payload hash: its body is checked like an
 * unsigned one (Content-MD5 and checksums still verified).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { ShoalError } from "../errors/index.ts";
import type { SigningRequest, Verified } from "./auth.ts";

const MAX_SKEW_MS = 15 * 60 * 1000;

/** The query parameters S3 includes in a SigV2 CanonicalizedResource. */
const SUBRESOURCES = new Set([
  "acl", "cors", "delete", "lifecycle", "location", "logging", "notification", "partNumber", "policy", "requestPayment",
  "response-cache-control", "response-content-disposition", "response-content-encoding", "response-content-language",
  "response-content-type", "response-expires", "restore", "tagging", "torrent", "uploadId", "uploads", "versionId",
  "versioning", "versions", "website", "object-lock", "retention", "legal-hold", "replication", "encryption",
]);

function headerValue(h: SigningRequest["headers"], name: string): string | undefined {
  const v = h[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(",") : v;
}

/** Whether a request is signed with SigV2 (header `AWS …`, or AWSAccessKeyId/Signature in the query). */
export function isV2(auth: string | undefined, q: URLSearchParams): boolean {
  if (auth !== undefined) return auth.startsWith("AWS ");
  return q.has("AWSAccessKeyId") || (q.has("Signature") && !q.has("X-Amz-Signature"));
}

function pctDecode(s: string): string {
  try {
    return decodeURIComponent(s.replaceAll("+", "%20"));
  } catch {
    throw new ShoalError("AccessDenied", "the query string is malformed");
  }
}

/** CanonicalizedResource: bucket (virtual-hosted) + path as sent + sorted sub-resources. */
export function canonicalResourceV2(rawPath: string, rawQuery: string, hostBucket: string | undefined): string {
  const sub: Array<[string, string | undefined]> = [];
  for (const part of rawQuery ? rawQuery.split("&") : []) {
    if (!part) continue;
    const i = part.indexOf("=");
    const name = pctDecode(i < 0 ? part : part.slice(0, i));
    if (SUBRESOURCES.has(name)) sub.push([name, i < 0 ? undefined : pctDecode(part.slice(i + 1))]);
  }
  sub.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const path = hostBucket !== undefined ? `/${hostBucket}${rawPath}` : rawPath;
  return sub.length ? `${path}?${sub.map(([n, v]) => (v === undefined ? n : `${n}=${v}`)).join("&")}` : path;
}

/** CanonicalizedAmzHeaders: x-amz-* (lower-case, sorted), `name:value\n` each. */
function amzHeaders(h: SigningRequest["headers"]): string {
  return Object.keys(h)
    .map((k) => k.toLowerCase())
    .filter((k) => k.startsWith("x-amz-"))
    .sort()
    .map((k) => `${k}:${(headerValue(h, k) ?? "").trim().replace(/\s+/g, " ")}\n`)
    .join("");
}

/** The paths a client may have signed for this request (see the header comment). */
function pathVariants(req: SigningRequest): SigningRequest[] {
  const bucketOnly = req.hostBucket === undefined ? /^\/[^/]+$/.test(req.rawPath) : req.rawPath === "/";
  return bucketOnly && req.hostBucket === undefined ? [req, { ...req, rawPath: `${req.rawPath}/` }] : [req];
}

export function stringToSignV2(req: SigningRequest, dateOrExpires: string): string {
  return [
    req.method.toUpperCase(),
    headerValue(req.headers, "content-md5") ?? "",
    headerValue(req.headers, "content-type") ?? "",
    dateOrExpires,
    amzHeaders(req.headers) + canonicalResourceV2(req.rawPath, req.rawQuery, req.hostBucket),
  ].join("\n");
}

export function signV2(secret: string, stringToSign: string): string {
  // header bytes as sent (Node hands them over as latin1 text)
  return createHmac("sha1", secret).update(Buffer.from(stringToSign, "latin1")).digest("base64");
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

function verified(accessKey: string, presigned: boolean): Verified {
  return { accessKey, signingKey: Buffer.alloc(0), seedSignature: "", scope: "", amzDate: "", contentSha256: "UNSIGNED-PAYLOAD", presigned };
}

/** Verifies a SigV2 request (header or query form). */
export function verifyV2(req: SigningRequest, o: { secretFor: (accessKey: string) => string | undefined; now: Date }): Verified {
  const auth = headerValue(req.headers, "authorization");
  if (auth !== undefined) {
    const m = /^AWS ([^:\s]+):(\S+)$/.exec(auth.trim());
    if (!m) throw new ShoalError("AccessDenied", "the SigV2 Authorization header must be 'AWS <AccessKeyId>:<Signature>'");
    const amzDate = headerValue(req.headers, "x-amz-date");
    const date = headerValue(req.headers, "date");
    const when = Date.parse(amzDate ?? date ?? "");
    if (Number.isNaN(when)) throw new ShoalError("AccessDenied", "the request needs a valid Date or x-amz-date header");
    if (Math.abs(o.now.getTime() - when) > MAX_SKEW_MS) {
      throw new ShoalError("RequestTimeTooSkewed", undefined, { detail: { requestTime: new Date(when).toISOString(), serverTime: o.now.toISOString() } });
    }
    const secret = o.secretFor(m[1]!);
    if (secret === undefined) throw new ShoalError("InvalidAccessKeyId");
    const candidates = amzDate !== undefined ? ["", ...(date !== undefined ? [date] : [])] : [date ?? ""];
    // every candidate is computed and compared, so the time taken does not depend on which matched
    let ok = false;
    for (const r of pathVariants(req)) for (const d of candidates) ok = same(signV2(secret, stringToSignV2(r, d)), m[2]!) || ok;
    if (!ok) throw new ShoalError("SignatureDoesNotMatch");
    return verified(m[1]!, false);
  }
  const q = new URLSearchParams(req.rawQuery);
  const accessKey = q.get("AWSAccessKeyId");
  const expires = q.get("Expires");
  const signature = q.get("Signature");
  if (!accessKey || !expires || !signature) throw new ShoalError("AccessDenied", "a SigV2 presigned URL needs AWSAccessKeyId, Expires and Signature");
  if (!/^\d{1,12}$/.test(expires)) throw new ShoalError("AccessDenied", "Expires must be a time in seconds since the epoch");
  if (o.now.getTime() > Number(expires) * 1000) throw new ShoalError("AccessDenied", "Request has expired");
  const secret = o.secretFor(accessKey);
  if (secret === undefined) throw new ShoalError("InvalidAccessKeyId");
  let ok = false;
  for (const r of pathVariants(req)) ok = same(signV2(secret, stringToSignV2(r, expires)), signature) || ok;
  if (!ok) throw new ShoalError("SignatureDoesNotMatch");
  return verified(accessKey, true);
}

/** A SigV2 presigned query string (for tests and tools). */
export function presignV2(req: { method: string; rawPath: string; hostBucket?: string }, c: { accessKey: string; secretKey: string }, expiresAt: Date): string {
  const expires = String(Math.floor(expiresAt.getTime() / 1000));
  const sig = signV2(c.secretKey, stringToSignV2({ method: req.method, rawPath: req.rawPath, rawQuery: "", headers: {}, ...(req.hostBucket !== undefined ? { hostBucket: req.hostBucket } : {}) }, expires));
  return `AWSAccessKeyId=${encodeURIComponent(c.accessKey)}&Expires=${expires}&Signature=${encodeURIComponent(sig)}`;
}
