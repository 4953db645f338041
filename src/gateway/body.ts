/**
 * Request bodies on their way from HTTP to NATS: decoding `aws-chunked`
 * framing (signed or unsigned, with trailers), and verifying what the client
 * promised about the bytes — Content-Length, x-amz-decoded-content-length,
 * x-amz-content-sha256, Content-MD5 and x-amz-checksum-* — while they stream.
 *
 * Every check that fails throws from the iterator before it ends, so the
 * upload is aborted and nothing is committed. Memory: at most one aws-chunked
 * chunk (capped) is held; plain bodies pass through untouched, and a chunk's
 * data is copied only when it spans socket reads (joined once).
 */
import { createHash, timingSafeEqual, type Hash } from "node:crypto";
import { ShoalError } from "../errors/index.ts";
import { Crc, crc32, crc32c } from "../runtime/crc32.ts";
import { chunkSignature, trailerSignature, type Verified } from "./auth.ts";

const MAX_CHUNK = 16 * 1024 * 1024;
const MAX_LINE = 4096;
/** Trailer lines accepted after the final chunk (S3 sends one or two). */
const MAX_TRAILER_LINES = 16;

type Digester = { update(b: Uint8Array): unknown; digest(): Buffer };
const ALGORITHMS: Record<string, { make: () => Digester; bytes: number }> = {
  crc32: { make: () => new Crc(crc32), bytes: 4 },
  crc32c: { make: () => new Crc(crc32c), bytes: 4 },
  sha1: { make: () => createHash("sha1") as Hash & Digester, bytes: 20 },
  sha256: { make: () => createHash("sha256") as Hash & Digester, bytes: 32 },
};

export function checksumOf(alg: string, data: Uint8Array): string {
  const a = ALGORITHMS[alg];
  if (!a) throw new ShoalError("InvalidArgument", `unknown checksum algorithm ${alg}`);
  const d = a.make();
  d.update(data);
  return d.digest().toString("base64");
}

/** Constant-time comparison of two signatures. */
function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** What the headers promise about the body, checked as it streams. */
export interface BodyPromises {
  /** Bytes expected after decoding (Content-Length, or x-amz-decoded-content-length). */
  length?: number;
  /** Hex SHA-256 of the body (x-amz-content-sha256 when it is a digest). */
  sha256Hex?: string;
  /** x-amz-checksum-<alg> header values, base64. */
  checksums: Map<string, string>;
  /** Trailer names declared in x-amz-trailer (their values arrive at the end). */
  trailers: string[];
}

function lower(h: Record<string, string | string[] | undefined>, n: string): string | undefined {
  const v = h[n];
  return Array.isArray(v) ? v.join(",") : v;
}

/** Reads the promises from the request headers; malformed values → InvalidDigest / InvalidArgument. */
export function promisesFrom(h: Record<string, string | string[] | undefined>, v: Verified | undefined): BodyPromises {
  const checksums = new Map<string, string>();
  for (const alg of Object.keys(ALGORITHMS)) {
    const val = lower(h, `x-amz-checksum-${alg}`);
    if (val === undefined) continue;
    if (Buffer.from(val, "base64").length !== ALGORITHMS[alg]!.bytes) throw new ShoalError("InvalidDigest", `x-amz-checksum-${alg} is not a valid ${alg} checksum`);
    checksums.set(alg, val);
  }
  const trailers = (lower(h, "x-amz-trailer") ?? "")
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  for (const tr of trailers) if (!/^x-amz-checksum-(crc32|crc32c|sha1|sha256)$/.test(tr)) throw new ShoalError("InvalidArgument", `unsupported trailer ${tr}`);
  const decoded = lower(h, "x-amz-decoded-content-length");
  const cl = lower(h, "content-length");
  const chunked = isAwsChunked(h, v);
  const lenText = chunked ? decoded : cl;
  if (chunked && decoded === undefined) throw new ShoalError("MissingContentLength", "aws-chunked bodies need x-amz-decoded-content-length");
  const length = lenText === undefined ? undefined : /^\d{1,16}$/.test(lenText) ? Number(lenText) : NaN;
  if (length !== undefined && Number.isNaN(length)) throw new ShoalError("InvalidArgument", "the content length is not a number");
  const sha = v?.contentSha256;
  return {
    ...(length !== undefined ? { length } : {}),
    ...(sha && /^[0-9a-f]{64}$/.test(sha) ? { sha256Hex: sha } : {}),
    checksums,
    trailers,
  };
}

export function isAwsChunked(h: Record<string, string | string[] | undefined>, v: Verified | undefined): boolean {
  const sha = v?.contentSha256 ?? lower(h, "x-amz-content-sha256") ?? "";
  return sha.startsWith("STREAMING-") || /(^|,)\s*aws-chunked\s*(,|$)/.test(lower(h, "content-encoding") ?? "");
}

/**
 * Decodes an aws-chunked body. With `verified` signing material and a signed
 * streaming mode, every chunk signature (and the trailer's) is checked.
 * Trailer values are stored into `trailerOut`.
 */
export async function* decodeAwsChunked(source: AsyncIterable<Uint8Array>, o: { verified?: Verified; signed: boolean; trailerOut: Map<string, string> }): AsyncGenerator<Uint8Array> {
  let buf: Buffer = Buffer.alloc(0);
  const it = source[Symbol.asyncIterator]();
  let done = false;
  let prevSig = o.verified?.seedSignature ?? "";
  // Reads are appended to a list and joined only when a parse step needs more
  // than `buf` holds, so a large chunk costs one copy, not one per read.
  const parts: Buffer[] = [];
  let partBytes = 0;
  const more = async (need = 1): Promise<boolean> => {
    while (partBytes < need) {
      if (done) break;
      const r = await it.next();
      if (r.done) {
        done = true;
        break;
      }
      // a view, not a copy: nothing writes into a read once it is delivered
      parts.push(Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength));
      partBytes += r.value.byteLength;
    }
    if (partBytes === 0) return false;
    buf = buf.length === 0 && parts.length === 1 ? parts[0]! : Buffer.concat([buf, ...parts]);
    parts.length = 0;
    partBytes = 0;
    return true;
  };
  const line = async (): Promise<string> => {
    for (;;) {
      const i = buf.indexOf("\r\n");
      if (i >= 0) {
        const l = buf.subarray(0, i).toString("latin1");
        buf = buf.subarray(i + 2);
        return l;
      }
      if (buf.length > MAX_LINE) throw new ShoalError("InvalidArgument", "aws-chunked: a chunk header line is too long");
      if (!(await more())) throw new ShoalError("IncompleteBody", "aws-chunked: the body ended inside a chunk header");
    }
  };
  const take = async (n: number): Promise<Buffer> => {
    while (buf.length < n) if (!(await more(n - buf.length))) throw new ShoalError("IncompleteBody", "aws-chunked: the body ended inside a chunk");
    const out = buf.subarray(0, n);
    buf = buf.subarray(n);
    return out;
  };
  for (;;) {
    const header = await line();
    const m = /^([0-9a-fA-F]{1,8})(?:;chunk-signature=([0-9a-f]{64}))?$/.exec(header);
    if (!m) throw new ShoalError("InvalidArgument", `aws-chunked: malformed chunk header ${JSON.stringify(header.slice(0, 80))}`);
    const size = parseInt(m[1]!, 16);
    if (size > MAX_CHUNK) throw new ShoalError("InvalidArgument", `aws-chunked: chunk of ${size} bytes exceeds ${MAX_CHUNK}`);
    if (o.signed && !m[2]) throw new ShoalError("SignatureDoesNotMatch", "aws-chunked: a chunk signature is missing");
    // a view of the read(s) it came in (joined only when it spans reads): passed on, never written to
    const data = size > 0 ? await take(size) : Buffer.alloc(0);
    if (o.signed && o.verified) {
      const want = chunkSignature(o.verified.signingKey, o.verified.amzDate, o.verified.scope, prevSig, data);
      if (!sameHex(want, m[2]!)) throw new ShoalError("SignatureDoesNotMatch", "aws-chunked: a chunk signature does not match");
      prevSig = want;
    }
    if (size > 0) {
      const crlf = await take(2);
      if (crlf[0] !== 13 || crlf[1] !== 10) throw new ShoalError("InvalidArgument", "aws-chunked: a chunk is not followed by CRLF");
      yield data;
      continue;
    }
    // Final chunk: optional trailer lines, then an empty line (or end of body).
    const trailerLines: string[] = [];
    for (;;) {
      if (buf.length === 0 && done) break;
      if (buf.length === 0 && !(await more())) break;
      const l = await line();
      if (l === "") break;
      trailerLines.push(l);
      if (trailerLines.length > MAX_TRAILER_LINES) throw new ShoalError("InvalidArgument", `aws-chunked: more than ${MAX_TRAILER_LINES} trailer lines`);
    }
    let trailerSig: string | undefined;
    const signedPart: string[] = [];
    for (const l of trailerLines) {
      const i = l.indexOf(":");
      if (i <= 0) throw new ShoalError("InvalidArgument", "aws-chunked: malformed trailer");
      const name = l.slice(0, i).trim().toLowerCase();
      const value = l.slice(i + 1).trim();
      if (name === "x-amz-trailer-signature") trailerSig = value;
      else {
        o.trailerOut.set(name, value);
        signedPart.push(`${name}:${value}\n`);
      }
    }
    if (o.signed && o.verified && trailerLines.length > 0) {
      const want = trailerSignature(o.verified.signingKey, o.verified.amzDate, o.verified.scope, prevSig, signedPart.join(""));
      if (trailerSig === undefined || !sameHex(want, trailerSig)) throw new ShoalError("SignatureDoesNotMatch", "aws-chunked: the trailer signature does not match");
    }
    // nothing may follow the terminator: not in this read, nor in a later one
    for (;;) {
      if (buf.toString("latin1").trim() !== "") throw new ShoalError("InvalidArgument", "aws-chunked: data after the final chunk");
      buf = Buffer.alloc(0);
      if (!(await more())) return;
    }
  }
}

/**
 * Passes `source` through, counting and hashing; at the end, checks every
 * promise (length, SHA-256, checksums from headers or trailers, MD5) and
 * throws before returning if one is broken.
 */
export async function* verifyBody(source: AsyncIterable<Uint8Array>, p: BodyPromises, o: { trailers?: Map<string, string>; md5Base64?: string } = {}): AsyncGenerator<Uint8Array> {
  const algs = new Set([...p.checksums.keys(), ...p.trailers.map((t) => t.slice("x-amz-checksum-".length))]);
  const digesters = new Map([...algs].map((a) => [a, ALGORITHMS[a]!.make()]));
  const sha = p.sha256Hex ? createHash("sha256") : undefined;
  const md5 = o.md5Base64 ? createHash("md5") : undefined;
  let n = 0;
  for await (const c of source) {
    n += c.byteLength;
    if (p.length !== undefined && n > p.length) throw new ShoalError("IncompleteBody", "the body is longer than its declared length");
    for (const d of digesters.values()) d.update(c);
    sha?.update(c);
    md5?.update(c);
    yield c;
  }
  if (p.length !== undefined && n !== p.length) throw new ShoalError("IncompleteBody", `the body has ${n} bytes; ${p.length} were declared`);
  if (sha && sha.digest("hex") !== p.sha256Hex) throw new ShoalError("ContentSha256Mismatch");
  if (md5 && md5.digest("base64") !== o.md5Base64) throw new ShoalError("BadDigest", "the Content-MD5 you specified did not match what was received");
  for (const [alg, d] of digesters) {
    const want = p.checksums.get(alg) ?? o.trailers?.get(`x-amz-checksum-${alg}`);
    if (want === undefined) throw new ShoalError("InvalidArgument", `the trailer x-amz-checksum-${alg} was declared but not sent`);
    if (d.digest().toString("base64") !== want) throw new ShoalError("BadDigest", `the x-amz-checksum-${alg} you specified did not match what was received`);
  }
}
