/**
 * AWS Signature Version 4, as S3 uses it: the Authorization header and
 * presigned query strings. Verification for the gateway, and signing for our
 * own tools and tests (checked against AWS's published examples).
 *
 * Also Signature Version 2 (HMAC-SHA1), header and query forms, for legacy
 * clients (s3cmd's `signurl`, awscli v1's presign): same key pairs, same
 * skew and expiry checks, constant-time comparison.
 *
 * Limits: no SigV4a; the service is `s3`; clock skew up to 15 minutes;
 * SigV4 presigned URLs live at most 7 days (X-Amz-Expires 1–604800; outside
 * that, or expired, AccessDenied as S3 answers).
 *
 * Header values reach Node as latin1 text (one char per byte); the signature
 * is over the bytes sent, so the canonical request is hashed as latin1 bytes.
 * A client that signed the UTF-8 of a value but sent its latin1 bytes (the
 * AWS SDK v3 on Node does this for é and the like) is accepted too: the
 * second candidate is only computed when a signed header holds a byte ≥ 0x80.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { verifyV2, isV2 } from "./sigv2.ts";
import { ShoalError } from "../errors/index.ts";

export const ALGORITHM = "AWS4-HMAC-SHA256";
export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";
export const STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
export const STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
export const STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
export const MAX_SKEW_MS = 15 * 60 * 1000;
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

export type Headers = Record<string, string | string[] | undefined>;

export interface SigningRequest {
  method: string;
  /** Path as sent (percent-encoded). */
  rawPath: string;
  /** Query string as sent, without '?'. */
  rawQuery: string;
  /** Lower-case header names. */
  headers: Headers;
  /** The bucket named by a virtual-hosted Host header (SigV2's resource includes it). */
  hostBucket?: string;
}

export interface Verified {
  accessKey: string;
  /** For chunk signatures of streamed bodies. */
  signingKey: Buffer;
  seedSignature: string;
  scope: string;
  amzDate: string;
  /** x-amz-content-sha256 as sent (a hex digest to check, or one of the special values). */
  contentSha256: string;
  presigned: boolean;
}

export const sha256hex = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");
const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();

const keyCache = new Map<string, Buffer>();

/** The derived signing key; cached per secret, date, region and service (four HMACs saved per request). */
export function signingKey(secret: string, date: string, region: string, service = "s3"): Buffer {
  const id = `${secret}\u0000${date}\u0000${region}\u0000${service}`;
  let k = keyCache.get(id);
  if (!k) {
    k = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), "aws4_request");
    if (keyCache.size > 256) keyCache.clear();
    keyCache.set(id, k);
  }
  return k;
}

/** AWS URI encoding: every byte but A-Z a-z 0-9 - . _ ~ as %XX (and '/' kept when `keepSlash`). */
export function awsEncode(s: string, keepSlash: boolean): string {
  let out = "";
  for (const b of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === "/") ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Decodes %XX to bytes (no '+' handling) and returns the latin1 string of the bytes. */
function pctDecodeBytes(s: string): Buffer {
  return Buffer.from(s.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), "latin1");
}

function awsEncodeBytes(bytes: Buffer): string {
  let out = "";
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** S3's canonical URI: each segment decoded once and re-encoded (no double encoding, '/' kept). */
export function canonicalUri(rawPath: string): string {
  return rawPath
    .split("/")
    .map((seg) => awsEncodeBytes(pctDecodeBytes(seg)))
    .join("/");
}

/** Canonical query string; `omit` drops a parameter (the signature itself, when presigned). */
export function canonicalQuery(rawQuery: string, omit?: string): string {
  if (!rawQuery) return "";
  const pairs: Array<[string, string]> = [];
  for (const part of rawQuery.split("&")) {
    if (!part) continue;
    const i = part.indexOf("=");
    const name = awsEncodeBytes(pctDecodeBytes((i < 0 ? part : part.slice(0, i)).replaceAll("+", "%20")));
    const value = i < 0 ? "" : awsEncodeBytes(pctDecodeBytes(part.slice(i + 1).replaceAll("+", "%20")));
    if (omit !== undefined && name === omit) continue;
    pairs.push([name, value]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join("&");
}

function headerValue(h: Headers, name: string): string | undefined {
  const v = h[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(",") : v;
}

function canonicalHeaders(h: Headers, signed: readonly string[]): string {
  return signed
    .map((n) => {
      const v = headerValue(h, n);
      if (v === undefined) throw new ShoalError("SignatureDoesNotMatch", `signed header ${n} is missing`);
      return `${n}:${v.trim().replace(/\s+/g, " ")}\n`;
    })
    .join("");
}

export function canonicalRequest(req: SigningRequest, signed: readonly string[], payloadHash: string, omitQuery?: string): string {
  return [req.method.toUpperCase(), canonicalUri(req.rawPath), canonicalQuery(req.rawQuery, omitQuery), canonicalHeaders(req.headers, signed), signed.join(";"), payloadHash].join("\n");
}

export function stringToSign(amzDate: string, scope: string, canonical: string, wire = false): string {
  return [ALGORITHM, amzDate, scope, sha256hex(wire ? Buffer.from(canonical, "latin1") : canonical)].join("\n");
}

/**
 * Checks `signature` against the canonical request hashed as the bytes on
 * the wire and, when a signed header holds non-ASCII bytes, as the UTF-8 of
 * the latin1 text (see the header comment).
 */
function signatureMatches(key: Buffer, amzDate: string, scope: string, canonical: string, signature: string): boolean {
  const wire = hmac(key, stringToSign(amzDate, scope, canonical, true)).toString("hex");
  if (safeEqualHex(wire, signature)) return true;
  // eslint-disable-next-line no-control-regex
  if (!/[^\u0000-\u007f]/.test(canonical)) return false;
  return safeEqualHex(hmac(key, stringToSign(amzDate, scope, canonical)).toString("hex"), signature);
}

/** `20130524T000000Z` → Date, or undefined when malformed. */
export function parseAmzDate(s: string | undefined): Date | undefined {
  const m = s ? /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  if (!m) return undefined;
  const d = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export function toAmzDate(d: Date): string {
  return d.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

function safeEqualHex(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

export interface VerifyOptions {
  region: string;
  secretFor: (accessKey: string) => string | undefined;
  now?: Date;
}

interface Credential {
  accessKey: string;
  date: string;
  region: string;
  service: string;
}

function parseCredential(c: string, bad: (why: string) => ShoalError): Credential {
  const parts = c.split("/");
  if (parts.length !== 5 || parts[4] !== "aws4_request" || !/^\d{8}$/.test(parts[1]!)) throw bad(`the credential ${JSON.stringify(c.slice(0, 120))} is malformed`);
  return { accessKey: parts[0]!, date: parts[1]!, region: parts[2]!, service: parts[3]! };
}

function checkScope(cred: Credential, amzDate: string, o: VerifyOptions, bad: (why: string) => ShoalError): void {
  if (cred.service !== "s3") throw bad(`the service '${cred.service}' is wrong; expecting 's3'`);
  if (cred.region !== o.region) throw bad(`the region '${cred.region}' is wrong; expecting '${o.region}'`);
  if (!amzDate.startsWith(cred.date)) throw bad("the credential's date does not match the request date");
}

/**
 * Verifies a request's signature. Anonymous requests → AccessDenied. Returns
 * what the caller needs to check the payload (contentSha256) and the chunk
 * signatures of a streamed body.
 */
export function verifyRequest(req: SigningRequest, o: VerifyOptions): Verified {
  const now = o.now ?? new Date();
  const auth = headerValue(req.headers, "authorization");
  const q = new URLSearchParams(req.rawQuery);
  // An empty Authorization is no signature at all: refused like an anonymous request
  if (auth !== undefined && auth.trim() === "") throw new ShoalError("AccessDenied", "the Authorization header is empty");
  if (isV2(auth, q)) return verifyV2(req, { secretFor: o.secretFor, now });
  if (auth === undefined && !q.has("X-Amz-Signature") && !q.has("X-Amz-Credential")) {
    throw new ShoalError("AccessDenied", "anonymous access is not allowed; sign the request (AWS Signature Version 4 or 2)");
  }
  if (auth !== undefined) {
    const bad = (why: string) => new ShoalError("AuthorizationHeaderMalformed", why);
    if (!auth.startsWith(`${ALGORITHM} `)) throw bad(`the authorization algorithm must be ${ALGORITHM} or AWS (Signature Version 2)`);
    const fields = new Map<string, string>();
    for (const f of auth.slice(ALGORITHM.length + 1).split(",")) {
      const i = f.indexOf("=");
      if (i > 0) fields.set(f.slice(0, i).trim(), f.slice(i + 1).trim());
    }
    const credential = fields.get("Credential");
    const signedHeaders = fields.get("SignedHeaders");
    const signature = fields.get("Signature");
    if (!credential || !signedHeaders || !signature) throw bad("the authorization header needs Credential, SignedHeaders and Signature");
    const cred = parseCredential(credential, bad);
    const amzDate = headerValue(req.headers, "x-amz-date") ?? dateHeaderAsAmz(headerValue(req.headers, "date"));
    const when = parseAmzDate(amzDate);
    if (!amzDate || !when) throw new ShoalError("AccessDenied", "the request needs a valid X-Amz-Date or Date header");
    checkScope(cred, amzDate, o, bad);
    if (Math.abs(now.getTime() - when.getTime()) > MAX_SKEW_MS) {
      throw new ShoalError("RequestTimeTooSkewed", undefined, { detail: { requestTime: when.toISOString(), serverTime: now.toISOString() } });
    }
    const signed = signedHeaders.split(";");
    if (!signed.includes("host")) throw bad("the host header must be signed");
    const secret = o.secretFor(cred.accessKey);
    if (secret === undefined) throw new ShoalError("InvalidAccessKeyId");
    const contentSha256 = headerValue(req.headers, "x-amz-content-sha256") ?? UNSIGNED_PAYLOAD;
    checkPayloadMode(contentSha256);
    const scope = `${cred.date}/${cred.region}/s3/aws4_request`;
    const key = signingKey(secret, cred.date, cred.region);
    if (!signatureMatches(key, amzDate, scope, canonicalRequest(req, signed, contentSha256), signature)) throw new ShoalError("SignatureDoesNotMatch");
    return { accessKey: cred.accessKey, signingKey: key, seedSignature: signature, scope, amzDate, contentSha256, presigned: false };
  }
  // presigned
  const bad = (why: string) => new ShoalError("AuthorizationQueryParametersError", why);
  const alg = q.get("X-Amz-Algorithm");
  const credential = q.get("X-Amz-Credential");
  const amzDate = q.get("X-Amz-Date") ?? undefined;
  const expires = q.get("X-Amz-Expires");
  const signedHeaders = q.get("X-Amz-SignedHeaders");
  const signature = q.get("X-Amz-Signature");
  if (alg !== ALGORITHM) throw bad(`X-Amz-Algorithm must be ${ALGORITHM}`);
  if (!credential || !amzDate || !expires || !signedHeaders || !signature) throw bad("a presigned URL needs X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature");
  const cred = parseCredential(credential, bad);
  const when = parseAmzDate(amzDate);
  if (!when) throw bad("X-Amz-Date is malformed");
  checkScope(cred, amzDate, o, bad);
  // S3 answers AccessDenied for an X-Amz-Expires of 0, negative or over 7 days
  const secs = /^-?\d{1,12}$/.test(expires) ? Number(expires) : NaN;
  if (Number.isNaN(secs)) throw bad("X-Amz-Expires must be a number of seconds");
  if (secs < 1) throw new ShoalError("AccessDenied", "Request has expired (X-Amz-Expires must be at least 1)");
  if (secs > MAX_PRESIGN_SECONDS) throw new ShoalError("AccessDenied", `X-Amz-Expires must be less than a week (${MAX_PRESIGN_SECONDS} seconds)`);
  if (when.getTime() - now.getTime() > MAX_SKEW_MS) throw new ShoalError("AccessDenied", "the request is not yet valid");
  if (now.getTime() > when.getTime() + secs * 1000) throw new ShoalError("AccessDenied", "Request has expired");
  const signed = signedHeaders.split(";");
  if (!signed.includes("host")) throw bad("the host header must be signed");
  const secret = o.secretFor(cred.accessKey);
  if (secret === undefined) throw new ShoalError("InvalidAccessKeyId");
  const contentSha256 = q.get("X-Amz-Content-Sha256") ?? UNSIGNED_PAYLOAD;
  checkPayloadMode(contentSha256);
  const scope = `${cred.date}/${cred.region}/s3/aws4_request`;
  const key = signingKey(secret, cred.date, cred.region);
  if (!signatureMatches(key, amzDate, scope, canonicalRequest(req, signed, contentSha256, "X-Amz-Signature"), signature)) throw new ShoalError("SignatureDoesNotMatch");
  return { accessKey: cred.accessKey, signingKey: key, seedSignature: signature, scope, amzDate, contentSha256, presigned: true };
}

const PAYLOAD_MODES = new Set([UNSIGNED_PAYLOAD, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER]);

/** x-amz-content-sha256 is a lower-case hex SHA-256 or one of S3's modes; anything else would leave the body unchecked. */
function checkPayloadMode(v: string): void {
  if (!PAYLOAD_MODES.has(v) && !/^[0-9a-f]{64}$/.test(v)) throw new ShoalError("InvalidArgument", "x-amz-content-sha256 must be a hex SHA-256 or one of UNSIGNED-PAYLOAD, STREAMING-*");
}

function dateHeaderAsAmz(d: string | undefined): string | undefined {
  if (!d) return undefined;
  const t = Date.parse(d);
  return Number.isNaN(t) ? undefined : toAmzDate(new Date(t));
}

// --- signing (our tools, tests) ----------------------------------------------------

export interface Credentials {
  accessKey: string;
  secretKey: string;
  region: string;
}

/** Adds x-amz-date, x-amz-content-sha256 and Authorization to `req.headers` (which must hold `host`). */
export function signRequest(req: SigningRequest, c: Credentials, o: { now?: Date; payloadHash?: string } = {}): Headers {
  const amzDate = toAmzDate(o.now ?? new Date());
  const date = amzDate.slice(0, 8);
  const headers: Headers = { ...req.headers, "x-amz-date": amzDate, "x-amz-content-sha256": o.payloadHash ?? UNSIGNED_PAYLOAD };
  const signed = Object.keys(headers)
    .map((h) => h.toLowerCase())
    .filter((h) => h === "host" || h.startsWith("x-amz-") || h === "content-md5" || h === "content-type" || h === "range")
    .sort();
  const scope = `${date}/${c.region}/s3/aws4_request`;
  const canonical = canonicalRequest({ ...req, headers }, signed, headers["x-amz-content-sha256"] as string);
  const signature = hmac(signingKey(c.secretKey, date, c.region), stringToSign(amzDate, scope, canonical)).toString("hex");
  return { ...headers, authorization: `${ALGORITHM} Credential=${c.accessKey}/${scope}, SignedHeaders=${signed.join(";")}, Signature=${signature}` };
}

/** A presigned URL's query string for `method rawPath` at `host` (only `host` signed). */
export function presignQuery(req: { method: string; rawPath: string; rawQuery?: string; host: string }, c: Credentials, expiresSeconds: number, now = new Date()): string {
  const amzDate = toAmzDate(now);
  const date = amzDate.slice(0, 8);
  const scope = `${date}/${c.region}/s3/aws4_request`;
  const params = [
    ...(req.rawQuery ? [req.rawQuery] : []),
    `X-Amz-Algorithm=${ALGORITHM}`,
    `X-Amz-Credential=${awsEncode(`${c.accessKey}/${scope}`, false)}`,
    `X-Amz-Date=${amzDate}`,
    `X-Amz-Expires=${expiresSeconds}`,
    "X-Amz-SignedHeaders=host",
  ].join("&");
  const canonical = canonicalRequest({ method: req.method, rawPath: req.rawPath, rawQuery: params, headers: { host: req.host } }, ["host"], UNSIGNED_PAYLOAD);
  const signature = hmac(signingKey(c.secretKey, date, c.region), stringToSign(amzDate, scope, canonical)).toString("hex");
  return `${params}&X-Amz-Signature=${signature}`;
}

/** Signature of one aws-chunked chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD). */
export function chunkSignature(key: Buffer, amzDate: string, scope: string, previous: string, chunk: Uint8Array): string {
  return hmac(key, ["AWS4-HMAC-SHA256-PAYLOAD", amzDate, scope, previous, EMPTY_SHA256, sha256hex(chunk)].join("\n")).toString("hex");
}

/** Signature of the trailer of a signed aws-chunked body. */
export function trailerSignature(key: Buffer, amzDate: string, scope: string, previous: string, trailer: string): string {
  return hmac(key, ["AWS4-HMAC-SHA256-TRAILER", amzDate, scope, previous, sha256hex(trailer)].join("\n")).toString("hex");
}
