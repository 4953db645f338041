/**
 * The v1 codec (src/subjects/v1.ts): one validator each for keys, user
 * metadata and conditions, shared by the SDK (encoders) and the storage
 * actor (decoders); issue 14, defect 2.
 */
import test from "ava";
import fc from "fast-check";
import { MsgHdrsImpl } from "@nats-io/nats-core/internal";
import { ShoalError } from "../../src/errors/index.ts";
import { H } from "../../src/subjects/headers.ts";
import * as v1 from "../../src/subjects/v1.ts";

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    if (!(e instanceof ShoalError)) throw e;
    return e.code;
  }
};

/** Headers as the actor sees them after the wire: encoded and decoded by the NATS client. */
function throughWire(h: Record<string, string>): { get: (n: string) => string | undefined; names: string[] } {
  const out = new MsgHdrsImpl();
  for (const [k, v] of Object.entries(h)) out.set(k, v);
  const back = MsgHdrsImpl.decode(out.encode());
  return { get: (n) => (back.has(n) ? back.get(n) : undefined), names: back.keys() };
}

const metaName = fc.stringMatching(/^[a-z0-9!#$%&'*+.^_`|~-]{1,20}$/);
const anyMeta = fc.dictionary(fc.oneof(metaName, fc.string({ maxLength: 12 })), fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: "binary", maxLength: 20 }), fc.string({ maxLength: 2100 })), { maxKeys: 6 });

/** The three ways metadata reaches the actor: put headers, CopyObject (REPLACE) JSON, CreateMultipartUpload JSON. */
function viaPut(md: Record<string, string>) {
  const h: Record<string, string> = { [H.key]: "k" };
  for (const [k, v] of Object.entries(md)) h[`${H.metaPrefix}${k}`] = v;
  return v1.decodePut((n) => h[n], Object.keys(h)).userMeta;
}
const viaCopy = (md: Record<string, string>) => v1.decodeCopy({ sourceBucket: "src-b", sourceKey: "a", key: "b", metadataDirective: "REPLACE", metadata: md }).metadata;
const viaMpu = (md: Record<string, string>) => v1.decodeMpuCreate({ key: "k", metadata: md }).metadata;

test("put, copy and multipart creation agree on every metadata map (one validator)", (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(anyMeta, (md) => {
        // a put's headers cannot hold CR/LF at all: what a header can carry is compared
        const headerable = Object.values(md).every((v) => !/[\r\n]/.test(v));
        const copy = codeOf(() => viaCopy(md));
        const mpu = codeOf(() => viaMpu(md));
        if (copy !== mpu) return false;
        if (copy === undefined && JSON.stringify(viaCopy(md)) !== JSON.stringify(viaMpu(md))) return false;
        if (headerable && Object.keys(md).every((k) => /^[!-~]+$/.test(k) && !k.includes(":"))) {
          const put = codeOf(() => viaPut(md));
          if (put !== copy) return false;
          if (put === undefined && JSON.stringify(viaPut(md)) !== JSON.stringify(viaCopy(md))) return false;
        }
        return true;
      }),
      { numRuns: 500 },
    ),
  );
});

test("CopyObject and multipart creation refuse control characters and oversized metadata (they used to store them)", (t) => {
  for (const decode of [viaCopy, viaMpu]) {
    t.is(codeOf(() => decode({ a: "x\r\ny" })), "InvalidArgument");
    t.is(codeOf(() => decode({ a: "x\u0000" })), "InvalidArgument");
    t.is(codeOf(() => decode({ a: "x".repeat(3000) })), "RequestHeaderTooLarge");
    t.is(codeOf(() => decode({ "bad name": "x" })), "InvalidArgument");
  }
  t.is(codeOf(() => v1.decodeMpuCreate({ key: "k", contentType: "text/plain\r\nX: y" })), "InvalidArgument");
  t.is(codeOf(() => v1.decodeCopy({ sourceBucket: "src-b", sourceKey: "a", key: "b", contentType: "a\u0001" })), "InvalidArgument");
});

test("metadata that passes survives the trip through NATS headers unchanged (so every later HEAD/GET works)", (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(anyMeta, (md) => {
        let ok: Record<string, string>;
        try {
          ok = viaCopy(md);
        } catch {
          return true;
        }
        const h = v1.metadataHeaders(ok);
        const wire = throughWire(h);
        return JSON.stringify(v1.userMetadataFromHeaders(wire.get, wire.names)) === JSON.stringify(ok);
      }),
      { numRuns: 500 },
    ),
  );
});

test("keys: valid UTF-8 of 1–1024 bytes (tab, LF, CR allowed) is a key; lone surrogates, other controls, empty and longer keys are not", (t) => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", minLength: 1, maxLength: 300 }), (key) => {
      const valid = key.isWellFormed() && Buffer.byteLength(key) <= 1024 && !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(key);
      return (v1.keyProblem(key) === undefined) === valid;
    }),
    { numRuns: 1000 },
  );
  t.is(v1.keyProblem("a\nb"), undefined);
  t.is(v1.keyProblem("a\r\n\tb"), undefined);
  t.truthy(v1.keyProblem("a\u0001b"));
  t.is(v1.keyProblem(" lead and trail "), undefined);
  t.truthy(v1.keyProblem("\ud800"));
  t.truthy(v1.keyProblem(""));
  t.truthy(v1.keyProblem("é".repeat(513)));
  t.is(v1.keyProblem("é".repeat(512)), undefined);
});

test("every valid key round-trips the put headers through the NATS client (CR/LF, tab and surrounding spaces included)", (t) => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", minLength: 1, maxLength: 200 }).filter((k) => v1.keyProblem(k) === undefined), (key) => {
      const wire = throughWire(v1.putHeaders(key, {}));
      return v1.decodePut(wire.get, wire.names).key === key && v1.decodeMpuPart((n) => throughWire(v1.partHeaders(key, "AbCdEf0123456789", 3, {})).get(n)).key === key;
    }),
    { numRuns: 500 },
  );
  t.is(codeOf(() => v1.keyFromHeaders((n) => (n === H.keyB64 ? "//79" : undefined))), "InvalidKey"); // bytes ff fe fd: not UTF-8
  t.is(codeOf(() => v1.keyFromHeaders((n) => (n === H.keyB64 ? "YQ" : undefined))), "InvalidKey"); // not padded base64
  t.is(v1.keyFromHeaders((n) => (n === H.keyB64 ? "IGE=" : undefined)), " a");
});

test("conditions: one validator; encoders refuse what decoders refuse, with the same code", (t) => {
  t.is(codeOf(() => v1.encodeKeyOnly("k", { ifModifiedSince: "not a date" })), "InvalidArgument");
  t.is(codeOf(() => v1.decodeKeyOnly({ key: "k", ifModifiedSince: "not a date" })), "InvalidArgument");
  t.is(codeOf(() => v1.decodeGet({ key: "k", ifMatch: "a\r\nb" })), "InvalidArgument");
  const when = new Date("2026-01-02T03:04:05Z");
  const o = JSON.parse(v1.encodeGet({ key: "k", ifUnmodifiedSince: when, ifNoneMatch: '"x"' })) as Record<string, unknown>;
  t.deepEqual(v1.decodeGet(o), { key: "k", range: undefined, ifMatch: undefined, ifNoneMatch: '"x"', ifModifiedSince: undefined, ifUnmodifiedSince: when.toUTCString(), stream: undefined, window: undefined, direct: false });
});

test("put: Shoal-Etag-Kind is md5 (the default) or sha256; anything else is InvalidArgument; a direct commit's md5 may be left out, never malformed", (t) => {
  const put = (h: Record<string, string>) => v1.decodePut((n) => h[n], Object.keys(h));
  t.is(put({ "Shoal-Key": "k" }).etagKind, "md5");
  t.is(put(v1.putHeaders("k", { etag: "sha256" })).etagKind, "sha256");
  t.is(put({ "Shoal-Key": "k", "Shoal-Etag-Kind": "md5" }).etagKind, "md5");
  t.is(codeOf(() => put({ "Shoal-Key": "k", "Shoal-Etag-Kind": "crc32" })), "InvalidArgument");
  t.is(codeOf(() => v1.putHeaders("k", { etag: "xx" as never })), "InvalidArgument");
  const sha256 = "A".repeat(43) + "=";
  t.is(v1.decodeClaim({ size: 1, sha256 }).md5, "");
  t.is(v1.decodeClaim(JSON.parse(v1.encodeClaim({ size: 1, md5: "", sha256 })) as Record<string, unknown>).md5, "");
  t.is(codeOf(() => v1.decodeClaim({ size: 1, md5: "", sha256 })), "MalformedPayload");
  t.is(codeOf(() => v1.decodeClaim({ size: 1, md5: "xyz", sha256 })), "MalformedPayload");
});

test("encoders and decoders are inverse for every v1 request", (t) => {
  const keyArb = fc.string({ minLength: 1, maxLength: 50 }).filter((k) => v1.keyProblem(k) === undefined);
  fc.assert(
    fc.property(keyArb, keyArb, fc.dictionary(metaName, fc.stringMatching(/^[a-z0-9]([a-z0-9 ]{0,20}[a-z0-9])?$/), { maxKeys: 3 }), (a, b, md) => {
      const dec = (s: string) => JSON.parse(s) as Record<string, unknown>;
      if (v1.decodeKeyOnly(dec(v1.encodeKeyOnly(a))).key !== a) return false;
      const c = v1.decodeCopy(dec(v1.encodeCopy({ bucket: "src-b", key: a }, b, { metadataDirective: "REPLACE", metadata: md })));
      if (c.sourceKey !== a || c.key !== b || JSON.stringify(c.metadata) !== JSON.stringify({ ...md })) return false;
      if (v1.decodeMpuCreate(dec(v1.encodeMpuCreate(a, { metadata: md }))).key !== a) return false;
      if (JSON.stringify(v1.decodeDeleteMany(dec(v1.encodeDeleteMany([a, b])))) !== JSON.stringify([a, b])) return false;
      const l = v1.decodeList(dec(v1.encodeList({ prefix: a, startAfter: b, maxKeys: 7 })));
      return l.prefix === a && l.startAfter === b && l.maxKeys === 7;
    }),
    { numRuns: 300 },
  );
  t.is(v1.decodeBucketCreate(JSON.parse(v1.encodeBucketCreate("my.bucket", 3)) as Record<string, unknown>, 1).replicas, 3);
  t.is(codeOf(() => v1.encodeBucketCreate("a_b")), "InvalidBucketName");
  t.is(codeOf(() => v1.encodeCopy({ bucket: "a_b", key: "k" }, "k", {})), "InvalidBucketName");
});

test("replies: the SDK decodes what the actor encodes, and refuses a reply that does not match (the service's fault: InternalError)", (t) => {
  const info = { key: "k", size: 3, etag: "e", sha256: "s", contentType: "text/plain", mtime: "2026-01-01T00:00:00Z", revision: 7, userMeta: { a: "b" } };
  t.deepEqual(v1.decodeObjectInfoReply(JSON.parse(JSON.stringify(v1.objectInfoReply("bk1", info)))), { v: 1, bucket: "bk1", key: "k", size: 3, etag: "e", sha256: "s", contentType: "text/plain", mtime: info.mtime, revision: 7, metadata: { a: "b" } } as never);
  t.is(codeOf(() => v1.decodeObjectInfoReply({ ...v1.objectInfoReply("bk1", info), size: "3" })), "InternalError");
  t.is(codeOf(() => v1.decodeObjectInfoReply({ ...v1.objectInfoReply("bk1", info), metadata: { a: 1 } })), "InternalError");
  t.is(codeOf(() => v1.decodeObjectInfoReply([])), "InternalError");
  t.is(codeOf(() => v1.decodeObjectInfoReply({ ...v1.objectInfoReply("bk1", info), v: 2 })), "UnsupportedVersion");
  t.is(codeOf(() => v1.decodeListReply({ contents: [{ key: 1 }], commonPrefixes: [], isTruncated: false, keyCount: 1 })), "InternalError");
  t.notThrows(() => v1.decodeListReply({ contents: [{ key: "a", size: 1, etag: "e", mtime: "m", revision: 1 }], commonPrefixes: ["p/"], isTruncated: false, keyCount: 2, extra: "a newer service may add fields" }));
});
