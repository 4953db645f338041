import test from "ava";
import fc from "fast-check";
import { createHash, randomBytes } from "node:crypto";
import { ShoalError } from "../../src/errors/index.ts";
import { chunkSignature, signingKey, trailerSignature, type Verified } from "../../src/gateway/auth.ts";
import { checksumOf, decodeAwsChunked, verifyBody, type BodyPromises } from "../../src/gateway/body.ts";

const key = signingKey("secret-key-123", "20260101", "us-east-1");
const verified: Verified = { accessKey: "ak", signingKey: key, seedSignature: "a".repeat(64), scope: "20260101/us-east-1/s3/aws4_request", amzDate: "20260101T000000Z", contentSha256: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", presigned: false };

/** Encodes `parts` as aws-chunked, signed or not, with an optional crc32 trailer. */
function encode(parts: Buffer[], o: { signed: boolean; trailer?: boolean }): Buffer {
  const out: Buffer[] = [];
  let prev = verified.seedSignature;
  for (const p of [...parts, Buffer.alloc(0)]) {
    let head = p.length.toString(16);
    if (o.signed) {
      prev = chunkSignature(key, verified.amzDate, verified.scope, prev, p);
      head += `;chunk-signature=${prev}`;
    }
    out.push(Buffer.from(`${head}\r\n`), p);
    if (p.length > 0) out.push(Buffer.from("\r\n"));
  }
  if (o.trailer) {
    const line = `x-amz-checksum-crc32:${checksumOf("crc32", Buffer.concat(parts))}`;
    out.push(Buffer.from(`${line}\r\n`));
    if (o.signed) out.push(Buffer.from(`x-amz-trailer-signature:${trailerSignature(key, verified.amzDate, verified.scope, prev, `${line}\n`)}\r\n`));
  }
  out.push(Buffer.from("\r\n"));
  return Buffer.concat(out);
}

async function* pieces(buf: Buffer, cuts: number[]): AsyncGenerator<Uint8Array> {
  let o = 0;
  for (const c of [...cuts.map((x) => x % (buf.length + 1))].sort((a, b) => a - b)) {
    if (c > o) yield buf.subarray(o, c);
    o = Math.max(o, c);
  }
  if (o < buf.length) yield buf.subarray(o);
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

const none: BodyPromises = { checksums: new Map(), trailers: [] };

test("aws-chunked decodes to the exact payload however the bytes are split (signed, unsigned, trailers)", async (t) => {
  await t.notThrowsAsync(
    fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 0, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 12 }), fc.boolean(), fc.boolean(), async (sizes, cuts, signed, trailer) => {
        const parts = sizes.map((n) => randomBytes(n));
        const enc = encode(parts, { signed, trailer });
        const trailers = new Map<string, string>();
        const body = decodeAwsChunked(pieces(enc, cuts), { verified, signed, trailerOut: trailers });
        const p: BodyPromises = { length: parts.reduce((a, b) => a + b.length, 0), checksums: new Map(), trailers: trailer ? ["x-amz-checksum-crc32"] : [] };
        const got = await collect(verifyBody(body, p, { trailers }));
        return got.equals(Buffer.concat(parts)) && !got.includes(Buffer.from("chunk-signature"));
      }),
      { numRuns: 60 },
    ),
  );
});

test("aws-chunked: a bad chunk or trailer signature, truncation and bad framing are refused", async (t) => {
  const parts = [randomBytes(100), randomBytes(50)];
  const good = encode(parts, { signed: true, trailer: true });
  const run = (buf: Buffer, signed = true) => collect(verifyBody(decodeAwsChunked(pieces(buf, []), { verified, signed, trailerOut: new Map() }), none));
  const codeOf = async (p: Promise<unknown>) => ((await t.throwsAsync(p, { instanceOf: ShoalError })) as ShoalError).code;
  const flipped = Buffer.from(good);
  const at = good.indexOf("\r\n") + 2 + 10;
  flipped[at] = flipped[at]! ^ 1; // a payload byte
  t.is(await codeOf(run(flipped)), "SignatureDoesNotMatch");
  const badTrailer = Buffer.from(good.toString("latin1").replace(/x-amz-checksum-crc32:[^\r]+/, "x-amz-checksum-crc32:AAAAAA=="), "latin1");
  t.is(await codeOf(run(badTrailer)), "SignatureDoesNotMatch");
  t.is(await codeOf(run(good.subarray(0, 120))), "IncompleteBody");
  t.is(await codeOf(run(Buffer.from("zz\r\nhello\r\n0\r\n\r\n"), false)), "InvalidArgument");
  t.is(await codeOf(run(Buffer.from("5\r\nhelloXX0\r\n\r\n"), false)), "InvalidArgument");
  t.is(await codeOf(run(Buffer.from("5\r\nhello\r\n0\r\n\r\n"), true)), "SignatureDoesNotMatch");
  t.is(await codeOf(run(Buffer.from(`${(64 * 1024 * 1024).toString(16)}\r\n`), false)), "InvalidArgument");
});

test("verifyBody: length, SHA-256, MD5 and checksums are checked before the body ends", async (t) => {
  const body = Buffer.from("hello, shoal");
  const codeOf = async (p: BodyPromises, o: { md5Base64?: string } = {}) => {
    try {
      await collect(verifyBody(pieces(body, [3, 7]), p, o));
      return "ok";
    } catch (e) {
      return (e as ShoalError).code;
    }
  };
  t.is(await codeOf({ ...none, length: 12 }), "ok");
  t.is(await codeOf({ ...none, length: 13 }), "IncompleteBody");
  t.is(await codeOf({ ...none, length: 5 }), "IncompleteBody");
  t.is(await codeOf({ ...none, sha256Hex: createHash("sha256").update(body).digest("hex") }), "ok");
  t.is(await codeOf({ ...none, sha256Hex: "0".repeat(64) }), "ContentSha256Mismatch");
  t.is(await codeOf(none, { md5Base64: createHash("md5").update(body).digest("base64") }), "ok");
  t.is(await codeOf(none, { md5Base64: createHash("md5").update("x").digest("base64") }), "BadDigest");
  for (const alg of ["crc32", "crc32c", "sha1", "sha256"]) {
    t.is(await codeOf({ ...none, checksums: new Map([[alg, checksumOf(alg, body)]]) }), "ok", alg);
    t.is(await codeOf({ ...none, checksums: new Map([[alg, checksumOf(alg, Buffer.from("other"))]]) }), "BadDigest", alg);
  }
  // known CRC values (the same as zlib's crc32 and iSCSI's crc32c of "123456789")
  t.is(Buffer.from(checksumOf("crc32", Buffer.from("123456789")), "base64").toString("hex"), "cbf43926");
  t.is(Buffer.from(checksumOf("crc32c", Buffer.from("123456789")), "base64").toString("hex"), "e3069283");
});
