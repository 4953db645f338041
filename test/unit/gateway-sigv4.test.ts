/**
 * SigV4 (src/gateway/auth.ts) against AWS's published S3 examples, plus
 * round trips, tampering, clock skew, presigned expiry, canonical URI/query
 * properties and the streaming payload modes. Complements gateway-auth.test.ts.
 */
import test from "ava";
import fc from "fast-check";
import { createHmac } from "node:crypto";
import { ShoalError } from "../../src/errors/index.ts";
import {
  EMPTY_SHA256,
  STREAMING_SIGNED,
  STREAMING_SIGNED_TRAILER,
  STREAMING_UNSIGNED_TRAILER,
  UNSIGNED_PAYLOAD,
  awsEncode,
  canonicalQuery,
  canonicalRequest,
  canonicalUri,
  presignQuery,
  signRequest,
  signingKey,
  stringToSign,
  verifyRequest,
  type Headers,
  type SigningRequest,
} from "../../src/gateway/auth.ts";

// AWS docs, "Signature Calculations for the Authorization Header: Transferring
// Payload in a Single Chunk" and "Authenticating Requests: Using Query Parameters".
const AK = "AKIAIOSFODNN7EXAMPLE";
const SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const HOST = "examplebucket.s3.amazonaws.com";
const NOW = new Date(Date.UTC(2013, 4, 24, 0, 0, 0));
const CREDS = { accessKey: AK, secretKey: SK, region: "us-east-1" };
const opts = { region: "us-east-1", secretFor: (k: string) => (k === AK ? SK : undefined), now: NOW };

const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof ShoalError)) throw e;
    return e.code;
  }
  return "ok";
};
const sigOf = (h: Headers) => /Signature=([0-9a-f]{64})$/.exec(String(h.authorization))?.[1];
const hmacHex = (key: Buffer, s: string) => createHmac("sha256", key).update(s).digest("hex");

// --- AWS vectors ---------------------------------------------------------------------

const vectors: Array<{ name: string; req: SigningRequest; sig: string }> = [
  {
    name: "GET object with Range",
    req: { method: "GET", rawPath: "/test.txt", rawQuery: "", headers: { host: HOST, range: "bytes=0-9" } },
    sig: "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
  },
  {
    name: "GET bucket lifecycle (a value-less query parameter)",
    req: { method: "GET", rawPath: "/", rawQuery: "lifecycle", headers: { host: HOST } },
    sig: "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
  },
  {
    name: "GET bucket list objects (query sent unsorted)",
    req: { method: "GET", rawPath: "/", rawQuery: "prefix=J&max-keys=2", headers: { host: HOST } },
    sig: "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
  },
];

for (const v of vectors) {
  test(`AWS vector: ${v.name} — signRequest produces it and verifyRequest accepts it`, (t) => {
    const headers = signRequest(v.req, CREDS, { now: NOW, payloadHash: EMPTY_SHA256 });
    t.is(sigOf(headers), v.sig);
    t.regex(String(headers.authorization), new RegExp(`^AWS4-HMAC-SHA256 Credential=${AK}/20130524/us-east-1/s3/aws4_request, SignedHeaders=`));
    const ok = verifyRequest({ ...v.req, headers }, opts);
    t.is(ok.accessKey, AK);
    t.is(ok.seedSignature, v.sig);
    t.is(ok.scope, "20130524/us-east-1/s3/aws4_request");
    t.is(ok.amzDate, "20130524T000000Z");
    t.is(ok.contentSha256, EMPTY_SHA256);
    t.false(ok.presigned);
    t.true(ok.signingKey.equals(signingKey(SK, "20130524", "us-east-1")));
  });
}

test("AWS vector: presigned GET /test.txt (86400 s) — exact query string", (t) => {
  const q = presignQuery({ method: "GET", rawPath: "/test.txt", host: HOST }, CREDS, 86400, NOW);
  t.is(
    q,
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request" +
      "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host" +
      "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
  );
  const v = verifyRequest({ method: "GET", rawPath: "/test.txt", rawQuery: q, headers: { host: HOST } }, opts);
  t.true(v.presigned);
  t.is(v.contentSha256, UNSIGNED_PAYLOAD);
  t.is(v.seedSignature, "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
});

test("AWS vector: the canonical request of the Range example is byte-exact", (t) => {
  const headers: Headers = { host: HOST, range: "bytes=0-9", "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": "20130524T000000Z" };
  const canonical = canonicalRequest({ method: "GET", rawPath: "/test.txt", rawQuery: "", headers }, ["host", "range", "x-amz-content-sha256", "x-amz-date"], EMPTY_SHA256);
  t.is(
    canonical,
    "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n" +
      `x-amz-content-sha256:${EMPTY_SHA256}\nx-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n${EMPTY_SHA256}`,
  );
  t.is(
    stringToSign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", canonical),
    "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
  );
});

/** The Host header signed in these tests: only a string inside the signature (nothing listens). */
const SIGNED_HOST = "s3.shoal.test";

// --- header auth -----------------------------------------------------------------------

const PUT: SigningRequest = { method: "PUT", rawPath: "/bucket/photos/a%20b.jpg", rawQuery: "partNumber=1&uploadId=u1", headers: { host: SIGNED_HOST, "content-type": "image/jpeg" } };

test("the Date header is accepted in place of x-amz-date", (t) => {
  const headers: Headers = { host: HOST, date: "Fri, 24 May 2013 00:00:00 GMT", "x-amz-content-sha256": EMPTY_SHA256 };
  const signed = ["date", "host", "x-amz-content-sha256"];
  const scope = "20130524/us-east-1/s3/aws4_request";
  const canonical = canonicalRequest({ method: "GET", rawPath: "/test.txt", rawQuery: "", headers }, signed, EMPTY_SHA256);
  const sig = hmacHex(signingKey(SK, "20130524", "us-east-1"), stringToSign("20130524T000000Z", scope, canonical));
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${AK}/${scope},SignedHeaders=${signed.join(";")},Signature=${sig}`;
  const v = verifyRequest({ method: "GET", rawPath: "/test.txt", rawQuery: "", headers }, opts);
  t.is(v.amzDate, "20130524T000000Z");
  t.is(code(() => verifyRequest({ method: "GET", rawPath: "/test.txt", rawQuery: "", headers: { ...headers, date: "Fri, 24 May 2013 00:00:01 GMT" } }, opts)), "SignatureDoesNotMatch");
});

test("every x-amz-content-sha256 mode round-trips and is handed back as sent", (t) => {
  for (const mode of [EMPTY_SHA256, UNSIGNED_PAYLOAD, STREAMING_UNSIGNED_TRAILER, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER]) {
    const headers = signRequest(PUT, CREDS, { now: NOW, payloadHash: mode });
    const v = verifyRequest({ ...PUT, headers }, opts);
    t.is(v.contentSha256, mode, mode);
    // the payload mode is signed: switching it (e.g. to dodge the body hash) breaks the signature
    t.is(code(() => verifyRequest({ ...PUT, headers: { ...headers, "x-amz-content-sha256": mode === UNSIGNED_PAYLOAD ? EMPTY_SHA256 : UNSIGNED_PAYLOAD } }, opts)), "SignatureDoesNotMatch", mode);
  }
});

test("tampering with method, path, query, a signed header or the signature → SignatureDoesNotMatch", (t) => {
  const headers = signRequest(PUT, CREDS, { now: NOW, payloadHash: EMPTY_SHA256 });
  t.is(code(() => verifyRequest({ ...PUT, headers }, opts)), "ok");
  t.is(code(() => verifyRequest({ ...PUT, method: "POST", headers }, opts)), "SignatureDoesNotMatch");
  t.is(code(() => verifyRequest({ ...PUT, rawPath: "/bucket/photos/a%20c.jpg", headers }, opts)), "SignatureDoesNotMatch");
  t.is(code(() => verifyRequest({ ...PUT, rawPath: "/bucket/photos/a+b.jpg", headers }, opts)), "SignatureDoesNotMatch");
  t.is(code(() => verifyRequest({ ...PUT, rawQuery: "partNumber=2&uploadId=u1", headers }, opts)), "SignatureDoesNotMatch");
  t.is(code(() => verifyRequest({ ...PUT, rawQuery: "partNumber=1&uploadId=u1&x=y", headers }, opts)), "SignatureDoesNotMatch");
  t.is(code(() => verifyRequest({ ...PUT, rawQuery: "partNumber=1", headers }, opts)), "SignatureDoesNotMatch");
  t.is(code(() => verifyRequest({ ...PUT, headers: { ...headers, "content-type": "text/html" } }, opts)), "SignatureDoesNotMatch");
  t.is(code(() => verifyRequest({ ...PUT, headers: { ...headers, host: "evil.example" } }, opts)), "SignatureDoesNotMatch");
  const sig = sigOf(headers)!;
  const flipped = sig.slice(0, -1) + (sig.endsWith("0") ? "1" : "0");
  t.is(code(() => verifyRequest({ ...PUT, headers: { ...headers, authorization: String(headers.authorization).replace(sig, flipped) } }, opts)), "SignatureDoesNotMatch");
  t.is(code(() => verifyRequest({ ...PUT, headers: { ...headers, authorization: String(headers.authorization).replace(sig, sig.toUpperCase()) } }, opts)), "SignatureDoesNotMatch");
  t.is(code(() => verifyRequest({ ...PUT, headers: { ...headers, authorization: String(headers.authorization).replace(sig, sig.slice(0, 32)) } }, opts)), "SignatureDoesNotMatch");
  // unsigned headers may change freely
  t.is(code(() => verifyRequest({ ...PUT, headers: { ...headers, "user-agent": "x" } }, opts)), "ok");
  // a signed header that is missing
  const { "content-type": _, ...without } = headers;
  t.is(code(() => verifyRequest({ ...PUT, headers: without }, opts)), "SignatureDoesNotMatch");
});

test("header values are trimmed and inner whitespace folded before signing", (t) => {
  const req = { ...PUT, headers: { ...PUT.headers, "x-amz-meta-note": "  a   b  c " } };
  const headers = signRequest(req, CREDS, { now: NOW });
  t.is(code(() => verifyRequest({ ...req, headers: { ...headers, "x-amz-meta-note": "a b c" } }, opts)), "ok");
  t.is(code(() => verifyRequest({ ...req, headers: { ...headers, "x-amz-meta-note": "a bc" } }, opts)), "SignatureDoesNotMatch");
});

test("clock skew: up to 15 minutes either way is accepted, more → RequestTimeTooSkewed", (t) => {
  const headers = signRequest(PUT, CREDS, { now: NOW });
  const at = (ms: number) => code(() => verifyRequest({ ...PUT, headers }, { ...opts, now: new Date(NOW.getTime() + ms) }));
  t.is(at(15 * 60_000), "ok");
  t.is(at(-15 * 60_000), "ok");
  t.is(at(15 * 60_000 + 1000), "RequestTimeTooSkewed");
  t.is(at(-15 * 60_000 - 1000), "RequestTimeTooSkewed");
  t.is(at(365 * 86_400_000), "RequestTimeTooSkewed");
});

test("malformed or misplaced credentials → S3's codes", (t) => {
  const headers = signRequest(PUT, CREDS, { now: NOW });
  const auth = String(headers.authorization);
  const withAuth = (a: string) => code(() => verifyRequest({ ...PUT, headers: { ...headers, authorization: a } }, opts));
  t.is(code(() => verifyRequest({ ...PUT, headers }, { ...opts, region: "eu-west-1" })), "AuthorizationHeaderMalformed");
  t.is(withAuth(auth.replace("/s3/", "/iam/")), "AuthorizationHeaderMalformed");
  t.is(withAuth(auth.replace("/20130524/", "/20130525/")), "AuthorizationHeaderMalformed");
  t.is(withAuth(auth.replace("/aws4_request", "/aws4_requestx")), "AuthorizationHeaderMalformed");
  t.is(withAuth(auth.replace("/20130524/", "/2013-05-24/")), "AuthorizationHeaderMalformed");
  t.is(withAuth(auth.replace(/SignedHeaders=[^,]+/, "SignedHeaders=content-type;x-amz-date")), "AuthorizationHeaderMalformed"); // host not signed
  t.is(withAuth(auth.replace(/, Signature=.*/, "")), "AuthorizationHeaderMalformed");
  t.is(withAuth(auth.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512")), "AuthorizationHeaderMalformed");
  t.is(withAuth(""), "AccessDenied"); // an empty Authorization is no signature (S3: 403)
  t.is(withAuth(auth.replace(AK, "AKIDUNKNOWN")), "InvalidAccessKeyId");
  t.is(withAuth("AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg="), "AccessDenied"); // SigV2
  const { "x-amz-date": _, ...noDate } = headers;
  t.is(code(() => verifyRequest({ ...PUT, headers: noDate }, opts)), "AccessDenied");
  t.is(code(() => verifyRequest({ ...PUT, headers: { ...headers, "x-amz-date": "2013-05-24T00:00:00Z" } }, opts)), "AccessDenied");
});

test("anonymous requests → AccessDenied", (t) => {
  t.is(code(() => verifyRequest({ method: "GET", rawPath: "/bucket/key", rawQuery: "", headers: { host: HOST } }, opts)), "AccessDenied");
  t.is(code(() => verifyRequest({ method: "GET", rawPath: "/bucket/key", rawQuery: "versionId=1", headers: { host: HOST } }, opts)), "AccessDenied");
  t.is(code(() => verifyRequest({ method: "GET", rawPath: "/bucket/key", rawQuery: "AWSAccessKeyId=AK&Signature=x&Expires=1", headers: { host: HOST } }, opts)), "AccessDenied");
});

// --- presigned -----------------------------------------------------------------------

const GET = { method: "GET", rawPath: "/bucket/dir/%E2%9C%93%20file.txt", host: SIGNED_HOST };

test("presigned URLs: round trip, expiry boundary, not-yet-valid, tampering", (t) => {
  const q = presignQuery({ ...GET, rawQuery: "response-content-type=text%2Fplain&versionId=v1" }, CREDS, 600, NOW);
  const req = (rawQuery: string, rawPath = GET.rawPath) => ({ method: "GET", rawPath, rawQuery, headers: { host: GET.host } });
  const at = (rawQuery: string, ms: number, rawPath?: string) => code(() => verifyRequest(req(rawQuery, rawPath), { ...opts, now: new Date(NOW.getTime() + ms) }));
  t.is(at(q, 0), "ok");
  t.is(at(q, 600_000), "ok");
  t.is(at(q, 600_001), "AccessDenied");
  try {
    verifyRequest(req(q), { ...opts, now: new Date(NOW.getTime() + 601_000) });
    t.fail();
  } catch (e) {
    t.is((e as ShoalError).message, "Request has expired");
  }
  t.is(at(q, -15 * 60_000), "ok"); // signed by a clock slightly ahead
  t.is(at(q, -16 * 60_000), "AccessDenied"); // not yet valid
  // parameter order does not matter
  t.is(at(q.split("&").reverse().join("&"), 0), "ok");
  t.is(at(q.replace("text%2Fplain", "text%2Fhtml"), 0), "SignatureDoesNotMatch");
  t.is(at(q.replace("X-Amz-Expires=600", "X-Amz-Expires=6000"), 0), "SignatureDoesNotMatch");
  t.is(at(`${q}&acl`, 0), "SignatureDoesNotMatch");
  t.is(at(q, 0, "/bucket/dir/other.txt"), "SignatureDoesNotMatch");
  t.is(code(() => verifyRequest({ ...req(q), method: "PUT" }, opts)), "SignatureDoesNotMatch");
  t.is(code(() => verifyRequest({ ...req(q), headers: { host: "evil.example" } }, opts)), "SignatureDoesNotMatch");
});

test("presigned URLs: X-Amz-Expires must be 1..604800 and the parameters well formed", (t) => {
  const check = (expires: number | string) =>
    code(() => verifyRequest({ method: "GET", rawPath: GET.rawPath, rawQuery: presignQuery(GET, CREDS, expires as number, NOW), headers: { host: GET.host } }, opts));
  t.is(check(1), "ok");
  t.is(check(604800), "ok");
  // S3 answers 403 AccessDenied for 0, negative and over a week
  t.is(check(0), "AccessDenied");
  t.is(check(604801), "AccessDenied");
  t.is(check(-5), "AccessDenied");
  t.is(check("1e3"), "AuthorizationQueryParametersError");
  const q = presignQuery(GET, CREDS, 60, NOW);
  const bad = (rawQuery: string, o = opts) => code(() => verifyRequest({ method: "GET", rawPath: GET.rawPath, rawQuery, headers: { host: GET.host } }, o));
  t.is(bad(q, { ...opts, region: "eu-west-1" }), "AuthorizationQueryParametersError");
  t.is(bad(q, { ...opts, secretFor: () => undefined }), "InvalidAccessKeyId");
  t.is(bad(q.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1")), "AuthorizationQueryParametersError");
  t.is(bad(q.replace(/&X-Amz-Date=[^&]+/, "")), "AuthorizationQueryParametersError");
  t.is(bad(q.replace(/&X-Amz-Expires=[^&]+/, "")), "AuthorizationQueryParametersError");
  t.is(bad(q.replace(/&X-Amz-Signature=[^&]+/, "")), "AuthorizationQueryParametersError");
  t.is(bad(q.replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=x-amz-date")), "AuthorizationQueryParametersError");
  t.is(bad(q.replace("X-Amz-Date=20130524T000000Z", "X-Amz-Date=20130524")), "AuthorizationQueryParametersError");
  t.is(bad(q.replace("%2F20130524%2F", "%2F20130523%2F")), "AuthorizationQueryParametersError");
});

// --- canonical forms -------------------------------------------------------------------

test("canonical URI: S3 rules (no double encoding, uppercase hex, '/' and empty segments kept)", (t) => {
  t.is(canonicalUri("/test%24file.text"), "/test%24file.text");
  t.is(canonicalUri("/test$file.text"), "/test%24file.text");
  t.is(canonicalUri("/a%2fb"), "/a%2Fb"); // an encoded slash stays encoded
  t.is(canonicalUri("/a%7Eb%2Dc"), "/a~b-c"); // unreserved characters are decoded
  t.is(canonicalUri("/a%2520b"), "/a%2520b"); // a literal '%20' in the key stays one level deep
  t.is(canonicalUri("/b//x/./../y/"), "/b//x/./../y/"); // S3 does not normalise paths
  t.is(canonicalUri("/a b+c*d'e(f)!"), "/a%20b%2Bc%2Ad%27e%28f%29%21");
  t.is(canonicalUri("/%zz%"), "/%25zz%25"); // stray '%' is a literal
  t.is(canonicalUri("/"), "/");
});

test("canonical URI: every way of sending a key canonicalises the same (property)", (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.string({ unit: "binary", minLength: 1, maxLength: 40 }), (key) => {
        const want = awsEncode(`/${key}`, true);
        const forms = [
          want,
          want.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
          `/${key.split("/").map(encodeURIComponent).join("/")}`,
          // raw UTF-8 bytes as Node's HTTP parser hands them over (latin1), '%' escaped
          Buffer.from(`/${key.replaceAll("%", "%25")}`, "utf8").toString("latin1"),
        ];
        for (const f of forms) if (canonicalUri(f) !== want) return false;
        return canonicalUri(want) === want;
      }),
      { numRuns: 300 },
    ),
  );
});

test("canonical query: sorted by encoded name then value, signature omitted, '+' is a space", (t) => {
  t.is(canonicalQuery("prefix=J&max-keys=2"), "max-keys=2&prefix=J");
  t.is(canonicalQuery("b=2&a=2&a=1&A=3"), "A=3&a=1&a=2&b=2");
  t.is(canonicalQuery("uploads"), "uploads=");
  t.is(canonicalQuery("uploads="), "uploads=");
  t.is(canonicalQuery("k=a+b&k2=a%20b"), "k=a%20b&k2=a%20b");
  t.is(canonicalQuery("k=a%2bb"), "k=a%2Bb");
  t.is(canonicalQuery("k=%E2%9C%93&k=~"), "k=%E2%9C%93&k=~");
  t.is(canonicalQuery("X-Amz-Signature=abc&a=1", "X-Amz-Signature"), "a=1");
  t.is(canonicalQuery("&&a=1&"), "a=1");
  t.is(canonicalQuery(""), "");
});

test("signRequest → verifyRequest round-trips arbitrary keys and query parameters; one changed byte fails (property)", (t) => {
  const o = { region: "us-east-1", secretFor: (k: string) => (k === AK ? SK : undefined), now: NOW };
  t.notThrows(() =>
    fc.assert(
      fc.property(
        fc.string({ unit: "binary", minLength: 1, maxLength: 30 }),
        fc.array(fc.tuple(fc.string({ unit: "binary", minLength: 1, maxLength: 10 }), fc.string({ unit: "binary", maxLength: 10 })), { maxLength: 4 }),
        fc.boolean(),
        (key, params, presigned) => {
          const rawPath = `/bucket/${awsEncode(key, true)}`;
          const rawQuery = params.map(([n, v]) => `${awsEncode(`p${n}`, false)}=${awsEncode(v, false)}`).join("&");
          const host = SIGNED_HOST;
          let req: SigningRequest;
          if (presigned) {
            req = { method: "GET", rawPath, rawQuery: presignQuery({ method: "GET", rawPath, rawQuery, host }, CREDS, 60, NOW), headers: { host } };
          } else {
            const base = { method: "PUT", rawPath, rawQuery, headers: { host } };
            req = { ...base, headers: signRequest(base, CREDS, { now: NOW }) };
          }
          if (code(() => verifyRequest(req, o)) !== "ok") return false;
          // the same path sent with other (valid) percent-encoding still verifies
          const alt = `/bucket/${key.split("/").map(encodeURIComponent).join("/")}`;
          if (code(() => verifyRequest({ ...req, rawPath: alt }, o)) !== "ok") return false;
          // a different path does not
          return code(() => verifyRequest({ ...req, rawPath: `${rawPath}x` }, o)) === "SignatureDoesNotMatch";
        },
      ),
      { numRuns: 150 },
    ),
  );
});

// Known gap (see the report that added this file): a value that is neither a hex
// SHA-256 nor one of the streaming/unsigned modes is accepted and the body then goes
// unchecked; S3 answers InvalidArgument. Flip to `test` once verifyRequest refuses it.
test("an x-amz-content-sha256 that is neither a digest nor a known mode is refused", (t) => {
  const headers = signRequest(PUT, CREDS, { now: NOW, payloadHash: "not-a-digest" });
  t.is(code(() => verifyRequest({ ...PUT, headers }, opts)), "InvalidArgument");
});
