/**
 * aws-chunked bodies and streaming checksums (src/gateway/body.ts), driven the
 * way the gateway drives them (promisesFrom → decodeAwsChunked → verifyBody):
 * AWS's streaming example, signed chunks from our own signer, the unsigned
 * trailer form, every checksum algorithm, byte-at-a-time and random splits,
 * bad framing, tampering, and bounded buffering. Complements gateway-body.test.ts.
 */
import test from "ava";
import fc from "fast-check";
import { createHash, randomBytes } from "node:crypto";
import { ShoalError } from "../../src/errors/index.ts";
import {
  STREAMING_SIGNED,
  STREAMING_SIGNED_TRAILER,
  STREAMING_UNSIGNED_TRAILER,
  UNSIGNED_PAYLOAD,
  chunkSignature,
  signingKey,
  trailerSignature,
  type Headers,
  type Verified,
} from "../../src/gateway/auth.ts";
import { checksumOf, decodeAwsChunked, isAwsChunked, promisesFrom, verifyBody } from "../../src/gateway/body.ts";

type Alg = "crc32" | "crc32c" | "sha1" | "sha256";
const ALGS: Alg[] = ["crc32", "crc32c", "sha1", "sha256"];
type Mode = typeof STREAMING_SIGNED | typeof STREAMING_SIGNED_TRAILER | typeof STREAMING_UNSIGNED_TRAILER;

const KEY = signingKey("test-secret", "20260101", "us-east-1");
const SEED = createHash("sha256").update("seed").digest("hex");
const verifiedFor = (mode: string, seed = SEED): Verified => ({
  accessKey: "ak",
  signingKey: KEY,
  seedSignature: seed,
  scope: "20260101/us-east-1/s3/aws4_request",
  amzDate: "20260101T000000Z",
  contentSha256: mode,
  presigned: false,
});

/** Encodes `parts` in `mode`, the way the AWS SDKs do. */
function encode(parts: Uint8Array[], mode: Mode, o: { trailer?: Alg; trailerValue?: string; seed?: string } = {}): Buffer {
  const v = verifiedFor(mode, o.seed);
  const signed = mode !== STREAMING_UNSIGNED_TRAILER;
  const out: Buffer[] = [];
  let prev = v.seedSignature;
  for (const p of [...parts.filter((x) => x.length > 0), new Uint8Array(0)]) {
    let head = p.length.toString(16);
    if (signed) {
      prev = chunkSignature(KEY, v.amzDate, v.scope, prev, p);
      head += `;chunk-signature=${prev}`;
    }
    out.push(Buffer.from(`${head}\r\n`), Buffer.from(p));
    if (p.length > 0) out.push(Buffer.from("\r\n"));
  }
  if (o.trailer) {
    const line = `x-amz-checksum-${o.trailer}:${o.trailerValue ?? checksumOf(o.trailer, Buffer.concat(parts))}`;
    out.push(Buffer.from(`${line}\r\n`));
    if (signed) out.push(Buffer.from(`x-amz-trailer-signature:${trailerSignature(KEY, v.amzDate, v.scope, prev, `${line}\n`)}\r\n`));
  }
  out.push(Buffer.from("\r\n"));
  return Buffer.concat(out);
}

/** Request headers an SDK sends with such a body. */
function headersFor(decodedLength: number, o: { trailer?: Alg; checksum?: [Alg, string] } = {}): Headers {
  return {
    "content-encoding": "aws-chunked",
    "x-amz-decoded-content-length": String(decodedLength),
    ...(o.trailer ? { "x-amz-trailer": `x-amz-checksum-${o.trailer}` } : {}),
    ...(o.checksum ? { [`x-amz-checksum-${o.checksum[0]}`]: o.checksum[1] } : {}),
  };
}

/** The gateway's body pipeline (as in ops.ts bodyOf). */
function pipeline(source: AsyncIterable<Uint8Array>, headers: Headers, v: Verified, md5Base64?: string): AsyncIterable<Uint8Array> {
  const promises = promisesFrom(headers, v);
  const trailers = new Map<string, string>();
  const signed = v.contentSha256 === STREAMING_SIGNED || v.contentSha256 === STREAMING_SIGNED_TRAILER;
  const body = isAwsChunked(headers, v) ? decodeAwsChunked(source, { verified: v, signed, trailerOut: trailers }) : source;
  return verifyBody(body, promises, { trailers, ...(md5Base64 ? { md5Base64 } : {}) });
}

async function* split(buf: Uint8Array, sizes: number[] = []): AsyncGenerator<Uint8Array> {
  let o = 0;
  let i = 0;
  while (o < buf.length) {
    const n = Math.max(1, sizes.length ? sizes[i++ % sizes.length]! : buf.length);
    yield buf.subarray(o, o + n);
    o += n;
  }
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

/** Runs the pipeline: "ok:<hex of output>" or the ShoalError code; anything else is rethrown (a crash). */
async function outcome(it: AsyncIterable<Uint8Array>): Promise<string> {
  try {
    return `ok:${(await collect(it)).toString("hex")}`;
  } catch (e) {
    if (e instanceof ShoalError) return e.code;
    throw e;
  }
}

// --- AWS's example ---------------------------------------------------------------

test("AWS vector: the streaming PUT example (66560 × 'a' in 64 KiB chunks) decodes and verifies", async (t) => {
  // AWS docs, "Signature Calculations for the Authorization Header: Transferring Payload in Multiple Chunks".
  const v: Verified = {
    accessKey: "AKIAIOSFODNN7EXAMPLE",
    signingKey: signingKey("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1"),
    seedSignature: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    scope: "20130524/us-east-1/s3/aws4_request",
    amzDate: "20130524T000000Z",
    contentSha256: STREAMING_SIGNED,
    presigned: false,
  };
  const body = Buffer.concat([
    Buffer.from("10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n"),
    Buffer.alloc(65536, "a"),
    Buffer.from("\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n"),
    Buffer.alloc(1024, "a"),
    Buffer.from("\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n"),
  ]);
  t.is(body.length, 66824); // the example's Content-Length
  const h = { "content-encoding": "aws-chunked", "x-amz-decoded-content-length": "66560", "content-length": "66824", "x-amz-storage-class": "REDUCED_REDUNDANCY" };
  const out = await collect(pipeline(split(body, [1000]), h, v));
  t.true(out.equals(Buffer.alloc(66560, "a")));
  // the same body under another request's seed signature is refused
  t.is(await outcome(pipeline(split(body), h, { ...v, seedSignature: "0".repeat(64) })), "SignatureDoesNotMatch");
});

// --- round trips -------------------------------------------------------------------

test("every mode and checksum trailer decodes exactly, fed whole and one byte at a time", async (t) => {
  const parts = [randomBytes(300), randomBytes(1), randomBytes(77)];
  const payload = Buffer.concat(parts);
  for (const mode of [STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER] as Mode[]) {
    for (const trailer of mode === STREAMING_SIGNED ? [undefined] : ALGS) {
      const enc = encode(parts, mode, trailer ? { trailer } : {});
      const h = headersFor(payload.length, trailer ? { trailer } : {});
      for (const sizes of [[], [1]]) {
        const out = await collect(pipeline(split(enc, sizes), h, verifiedFor(mode)));
        t.true(out.equals(payload), `${mode} ${trailer} ${sizes}`);
      }
    }
  }
});

test("an empty body (only the final chunk) decodes to nothing", async (t) => {
  for (const mode of [STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER] as Mode[]) {
    const trailer: Alg | undefined = mode === STREAMING_SIGNED ? undefined : "crc32c";
    const enc = encode([], mode, trailer ? { trailer } : {});
    t.is(await outcome(pipeline(split(enc), headersFor(0, trailer ? { trailer } : {}), verifiedFor(mode))), "ok:", mode);
  }
});

test("decoding is exact under any split of the input, and no framing leaks into the output (property)", async (t) => {
  await t.notThrowsAsync(
    fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 2500 }), { maxLength: 5 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 20 }),
        fc.constantFrom<Mode>(STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER),
        fc.option(fc.constantFrom(...ALGS), { nil: undefined }),
        async (sizes, splits, mode, alg) => {
          const trailer = mode === STREAMING_SIGNED ? undefined : alg;
          // payload bytes that look like framing, to catch any confusion
          const parts = sizes.map((n, i) => Buffer.from(`0;chunk-signature=${"f".repeat(64)}\r\n\r\nx-amz-trailer-signature:${i}`.repeat(Math.ceil(n / 100) + 1).slice(0, n)));
          const payload = Buffer.concat(parts);
          const enc = encode(parts, mode, trailer ? { trailer } : {});
          const out = await collect(pipeline(split(enc, splits), headersFor(payload.length, trailer ? { trailer } : {}), verifiedFor(mode)));
          return out.equals(payload);
        },
      ),
      { numRuns: 150 },
    ),
  );
});

test("the decoder streams: a chunk comes out before the rest of the body has arrived", async (t) => {
  const a = randomBytes(4096);
  const b = randomBytes(10);
  const enc = encode([a, b], STREAMING_SIGNED);
  const firstFrame = enc.indexOf("\r\n", enc.indexOf("\r\n") + 2 + a.length) + 2; // header + data + CRLF
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  async function* source() {
    yield enc.subarray(0, firstFrame);
    await gate;
    yield enc.subarray(firstFrame);
  }
  const it = decodeAwsChunked(source(), { verified: verifiedFor(STREAMING_SIGNED), signed: true, trailerOut: new Map() })[Symbol.asyncIterator]();
  const first = await Promise.race([it.next(), new Promise<"stuck">((r) => setTimeout(() => r("stuck"), 2000))]);
  t.not(first, "stuck", "the first chunk was held back until the whole body arrived");
  if (first !== "stuck") t.true(Buffer.from(first.value as Uint8Array).equals(a));
  release();
  const rest: Buffer[] = [];
  for (let r = await it.next(); !r.done; r = await it.next()) rest.push(Buffer.from(r.value));
  t.true(Buffer.concat(rest).equals(b));
});

// --- tampering -----------------------------------------------------------------------

test("signed bodies: changed data, signatures, order, dropped chunks and trailers → SignatureDoesNotMatch", async (t) => {
  const parts = [randomBytes(64), randomBytes(64), randomBytes(64)];
  const payload = Buffer.concat(parts);
  const mode = STREAMING_SIGNED_TRAILER;
  const enc = encode(parts, mode, { trailer: "sha256" });
  const h = headersFor(payload.length, { trailer: "sha256" });
  const run = (buf: Buffer, hh: Headers = h) => outcome(pipeline(split(buf), hh, verifiedFor(mode)));
  t.is(await run(enc), `ok:${payload.toString("hex")}`);

  const frames = enc.toString("latin1").split(/(?<=\r\n)(?=[0-9a-f]+;chunk-signature=)/);
  t.is(frames.length, 4); // three data frames + final frame with trailers
  const join = (f: string[]) => Buffer.from(f.join(""), "latin1");
  t.is(await run(join([frames[1]!, frames[0]!, frames[2]!, frames[3]!])), "SignatureDoesNotMatch", "reordered");
  t.is(await run(join([frames[0]!, frames[2]!, frames[3]!]), headersFor(128, { trailer: "sha256" })), "SignatureDoesNotMatch", "dropped");

  const dataAt = enc.indexOf("\r\n") + 2 + 5;
  const flipped = Buffer.from(enc);
  flipped[dataAt]! ^= 0x80;
  t.is(await run(flipped), "SignatureDoesNotMatch", "data byte");

  const sig1 = /chunk-signature=([0-9a-f]{64})/.exec(frames[0]!)![1]!;
  t.is(await run(Buffer.from(enc.toString("latin1").replace(sig1, sig1.toUpperCase()), "latin1")), "InvalidArgument", "uppercase signature is not a signature");
  t.is(await run(Buffer.from(enc.toString("latin1").replace(sig1, "0".repeat(64)), "latin1")), "SignatureDoesNotMatch", "zero signature");
  t.is(await run(Buffer.from(enc.toString("latin1").replace(`;chunk-signature=${sig1}`, ""), "latin1")), "SignatureDoesNotMatch", "missing signature");
  t.is(await run(Buffer.from(enc.toString("latin1").replace(/0;chunk-signature=[0-9a-f]{64}/, `0;chunk-signature=${"1".repeat(64)}`), "latin1")), "SignatureDoesNotMatch", "final chunk");
  t.is(await run(Buffer.from(enc.toString("latin1").replace(/x-amz-trailer-signature:[^\r]*\r\n/, ""), "latin1")), "SignatureDoesNotMatch", "trailer signature dropped");
  t.is(await run(Buffer.from(enc.toString("latin1").replace(/x-amz-trailer-signature:[0-9a-f]/, "x-amz-trailer-signature:_"), "latin1")), "SignatureDoesNotMatch", "trailer signature changed");
  const other = checksumOf("sha256", Buffer.from("other"));
  t.is(await run(Buffer.from(enc.toString("latin1").replace(/x-amz-checksum-sha256:[^\r]*/, `x-amz-checksum-sha256:${other}`), "latin1")), "SignatureDoesNotMatch", "trailer value changed");
});

test("a wrong checksum trailer → BadDigest (signed and unsigned); a declared trailer not sent → InvalidArgument", async (t) => {
  const parts = [randomBytes(500)];
  for (const alg of ALGS) {
    const wrong = checksumOf(alg, Buffer.from("not the payload"));
    for (const mode of [STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER] as Mode[]) {
      const enc = encode(parts, mode, { trailer: alg, trailerValue: wrong }); // validly signed, wrong value
      t.is(await outcome(pipeline(split(enc, [7]), headersFor(500, { trailer: alg }), verifiedFor(mode))), "BadDigest", `${alg} ${mode}`);
    }
    const noTrailer = encode(parts, STREAMING_UNSIGNED_TRAILER);
    t.is(await outcome(pipeline(split(noTrailer), headersFor(500, { trailer: alg }), verifiedFor(STREAMING_UNSIGNED_TRAILER))), "InvalidArgument", alg);
  }
});

test("x-amz-decoded-content-length must equal the decoded byte count → IncompleteBody", async (t) => {
  const parts = [randomBytes(100), randomBytes(23)];
  const enc = encode(parts, STREAMING_SIGNED);
  const run = (n: number) => outcome(pipeline(split(enc, [13]), headersFor(n), verifiedFor(STREAMING_SIGNED)));
  t.true((await run(123)).startsWith("ok:"));
  t.is(await run(124), "IncompleteBody");
  t.is(await run(122), "IncompleteBody");
  t.is(await run(0), "IncompleteBody");
  const { "x-amz-decoded-content-length": _, ...noLength } = headersFor(123);
  t.is(t.throws(() => pipeline(split(enc), noLength, verifiedFor(STREAMING_SIGNED)), { instanceOf: ShoalError })?.code, "MissingContentLength");
});

// --- framing -------------------------------------------------------------------------

test("bad framing is IncompleteBody or InvalidArgument, never a crash", async (t) => {
  const cases: Array<[string, string | Buffer, string]> = [
    ["empty body", "", "IncompleteBody"],
    ["size without CRLF", "5", "IncompleteBody"],
    ["body ends inside data", "5\r\nhel", "IncompleteBody"],
    ["body ends before the data's CRLF", "5\r\nhello", "IncompleteBody"],
    ["body ends inside a trailer", "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAA", "IncompleteBody"],
    ["non-hex size", "zz\r\nhello\r\n0\r\n\r\n", "InvalidArgument"],
    ["negative size", "-5\r\nhello\r\n0\r\n\r\n", "InvalidArgument"],
    ["space before size", " 5\r\nhello\r\n0\r\n\r\n", "InvalidArgument"],
    ["nine hex digits", "000000005\r\nhello\r\n0\r\n\r\n", "InvalidArgument"],
    ["unknown chunk extension", "5;foo=bar\r\nhello\r\n0\r\n\r\n", "InvalidArgument"],
    ["short signature", "5;chunk-signature=abc\r\nhello\r\n0\r\n\r\n", "InvalidArgument"],
    ["data longer than its size", "5\r\nhelloXX\r\n0\r\n\r\n", "InvalidArgument"],
    ["bare LF line ends", "5\nhello\n0\n\n", "IncompleteBody"],
    ["chunk over the 16 MiB cap", `${(16 * 1024 * 1024 + 1).toString(16)}\r\n`, "InvalidArgument"],
    ["header line over 4 KiB", "a".repeat(5000), "InvalidArgument"],
    ["trailer without a colon", "5\r\nhello\r\n0\r\nnot-a-trailer\r\n\r\n", "InvalidArgument"],
  ];
  for (const [name, body, want] of cases) {
    for (const sizes of [[], [1]]) {
      const got = await outcome(decodeAwsChunked(split(Buffer.from(body), sizes), { signed: false, trailerOut: new Map() }));
      t.is(got, want, `${name} (split ${sizes})`);
    }
  }
  // the cap is enforced from the header, before any data is read
  let pulled = 0;
  async function* huge() {
    yield Buffer.from(`${(64 * 1024 * 1024).toString(16)}\r\n`);
    for (;;) {
      pulled++;
      yield Buffer.alloc(1024 * 1024);
    }
  }
  t.is(await outcome(decodeAwsChunked(huge(), { signed: false, trailerOut: new Map() })), "InvalidArgument");
  t.is(pulled, 0);
  // hex sizes are case-insensitive
  t.is(await outcome(decodeAwsChunked(split(Buffer.from(`A\r\n${"x".repeat(10)}\r\n0\r\n\r\n`)), { signed: false, trailerOut: new Map() })), `ok:${Buffer.from("x".repeat(10)).toString("hex")}`);
});

test("mutated or truncated bodies either fail with a ShoalError or yield exactly the payload (property)", async (t) => {
  await t.notThrowsAsync(
    fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 3 }),
        fc.constantFrom<Mode>(STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }),
        fc.option(fc.nat(), { nil: undefined }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 5 }),
        async (sizes, mode, edits, cut, splits) => {
          const parts = sizes.map((n) => randomBytes(n));
          const payload = Buffer.concat(parts);
          let enc = encode(parts, mode, { trailer: "crc32c" });
          enc = Buffer.from(enc);
          for (const [at, byte] of edits) enc[at % enc.length] = byte;
          if (cut !== undefined) enc = enc.subarray(0, cut % enc.length);
          const got = await outcome(pipeline(split(enc, splits), headersFor(payload.length, { trailer: "crc32c" }), verifiedFor(mode)));
          return !got.startsWith("ok:") || got === `ok:${payload.toString("hex")}`;
        },
      ),
      { numRuns: 300 },
    ),
  );
});

// Known gap: bytes after the final chunk are refused when they arrive in a later read,
// but ignored when they came in the same read as the terminator (the drain loop only
// looks at data it pulls after the end). Flip to `test` once both are refused.
test("data after the final chunk is refused however the reads are split", async (t) => {
  const body = Buffer.from("5\r\nhello\r\n0\r\n\r\n5\r\nhello\r\n");
  for (const sizes of [[1], []]) {
    t.is(await outcome(decodeAwsChunked(split(body, sizes), { signed: false, trailerOut: new Map() })), "InvalidArgument", `split ${sizes}`);
  }
});

// Known gap (see the report that added this file): trailer lines are collected without
// a limit, so an endless trailer section grows memory until the request ends. A cap
// (a handful of lines) would make this an InvalidArgument. Flip to `test` once capped.
test("an endless trailer section is refused instead of being buffered", async (t) => {
  const lines = Buffer.from("x-amz-meta-a:b\r\n".repeat(20_000));
  const body = Buffer.concat([Buffer.from("0\r\n"), lines, Buffer.from("\r\n")]);
  const got = await outcome(decodeAwsChunked(split(body, [65536]), { signed: false, trailerOut: new Map() }));
  t.is(got, "InvalidArgument");
});

// --- non-chunked bodies: x-amz-checksum-* and Content-MD5 ------------------------------

/** Reference CRCs (bitwise, no tables) to check the gateway's implementations against. */
function refCrc(poly: number, data: Uint8Array): string {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
  }
  const out = Buffer.alloc(4);
  out.writeUInt32BE((c ^ 0xffffffff) >>> 0);
  return out.toString("base64");
}

test("CRC32 and CRC32C agree with a bitwise reference and the published check values (property)", (t) => {
  t.is(checksumOf("crc32", Buffer.from("123456789")), Buffer.from("cbf43926", "hex").toString("base64"));
  t.is(checksumOf("crc32c", Buffer.from("123456789")), Buffer.from("e3069283", "hex").toString("base64"));
  t.is(checksumOf("crc32", Buffer.alloc(0)), "AAAAAA==");
  t.is(checksumOf("sha256", Buffer.from("abc")), createHash("sha256").update("abc").digest("base64"));
  t.is(checksumOf("sha1", Buffer.from("abc")), createHash("sha1").update("abc").digest("base64"));
  t.is(t.throws(() => checksumOf("md4", Buffer.alloc(1)), { instanceOf: ShoalError })?.code, "InvalidArgument");
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (data) => checksumOf("crc32", data) === refCrc(0xedb88320, data) && checksumOf("crc32c", data) === refCrc(0x82f63b78, data)),
      { numRuns: 200 },
    ),
  );
});

test("plain bodies: x-amz-checksum-* headers are verified as the body streams; mismatch → BadDigest at the end", async (t) => {
  const body = randomBytes(3000);
  const v = verifiedFor(UNSIGNED_PAYLOAD);
  for (const alg of ALGS) {
    const h = { "content-length": String(body.length), [`x-amz-checksum-${alg}`]: checksumOf(alg, body) };
    t.is(await outcome(pipeline(split(body, [1]), h, v)), `ok:${body.toString("hex")}`, alg);
    const bad = { ...h, [`x-amz-checksum-${alg}`]: checksumOf(alg, Buffer.from("x")) };
    // every byte is passed on before the verdict, which comes when the body ends
    const seen: number[] = [];
    const it = pipeline(split(body, [1000]), bad, v);
    const got = await outcome(
      (async function* () {
        for await (const c of it) {
          seen.push(c.length);
          yield c;
        }
      })(),
    );
    t.is(got, "BadDigest", alg);
    t.is(seen.reduce((a, b) => a + b, 0), body.length, alg);
  }
  // all four at once
  const all = Object.fromEntries([["content-length", String(body.length)], ...ALGS.map((a) => [`x-amz-checksum-${a}`, checksumOf(a, body)])]);
  t.true((await outcome(pipeline(split(body, [17]), all, v))).startsWith("ok:"));
});

test("plain bodies: checksum headers that are not the base64 of the right size → InvalidDigest", (t) => {
  const v = verifiedFor(UNSIGNED_PAYLOAD);
  for (const [alg, value] of [["crc32", "AAAA"], ["crc32c", "AAAAAAAA"], ["sha1", "AAAAAA=="], ["sha256", checksumOf("sha1", Buffer.alloc(1))]] as const) {
    t.is(t.throws(() => promisesFrom({ [`x-amz-checksum-${alg}`]: value }, v), { instanceOf: ShoalError })?.code, "InvalidDigest", alg);
  }
  t.is(t.throws(() => promisesFrom({ "x-amz-trailer": "x-amz-checksum-md5" }, v), { instanceOf: ShoalError })?.code, "InvalidArgument");
  t.is(t.throws(() => promisesFrom({ "content-length": "12x" }, v), { instanceOf: ShoalError })?.code, "InvalidArgument");
});

test("plain bodies: Content-MD5 and a hex x-amz-content-sha256 are verified; mismatch → BadDigest / XAmzContentSHA256Mismatch", async (t) => {
  const body = randomBytes(1234);
  const md5 = createHash("md5").update(body).digest("base64");
  const sha = createHash("sha256").update(body).digest("hex");
  const h = { "content-length": String(body.length) };
  t.true((await outcome(pipeline(split(body, [1]), h, verifiedFor(sha), md5))).startsWith("ok:"));
  t.is(await outcome(pipeline(split(body), h, verifiedFor(sha), createHash("md5").update("x").digest("base64"))), "BadDigest");
  const e = await outcome(pipeline(split(body), h, verifiedFor(createHash("sha256").update("x").digest("hex"))));
  t.is(e, "ContentSha256Mismatch");
  t.is(new ShoalError("ContentSha256Mismatch").spec.s3, "XAmzContentSHA256Mismatch");
  t.is(await outcome(pipeline(split(body), { "content-length": String(body.length + 1) }, verifiedFor(UNSIGNED_PAYLOAD))), "IncompleteBody");
});
