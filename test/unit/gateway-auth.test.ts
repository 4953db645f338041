import test from "ava";
import { createHash } from "node:crypto";
import { ShoalError } from "../../src/errors/index.ts";
import { chunkSignature, presignQuery, signRequest, signingKey, verifyRequest, EMPTY_SHA256, type Headers } from "../../src/gateway/auth.ts";

// AWS's published SigV4 examples for S3 (docs: "Signature Calculations for the Authorization Header" and "Query String Auth").
const AK = "AKIAIOSFODNN7EXAMPLE";
const SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const NOW = new Date(Date.UTC(2013, 4, 24, 0, 0, 0));
const opts = { region: "us-east-1", secretFor: (k: string) => (k === AK ? SK : undefined), now: NOW };
const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return (e as ShoalError).code;
  }
  return "ok";
};

const getObject = (sig = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"): Headers => ({
  host: "examplebucket.s3.amazonaws.com",
  range: "bytes=0-9",
  "x-amz-content-sha256": EMPTY_SHA256,
  "x-amz-date": "20130524T000000Z",
  authorization: `AWS4-HMAC-SHA256 Credential=${AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=${sig}`,
});

test("AWS example: GET object with a Range header verifies", (t) => {
  const v = verifyRequest({ method: "GET", rawPath: "/test.txt", rawQuery: "", headers: getObject() }, opts);
  t.is(v.accessKey, AK);
  t.is(v.contentSha256, EMPTY_SHA256);
});

test("AWS example: PUT object with an escaped key and the Date header verifies", (t) => {
  const headers: Headers = {
    host: "examplebucket.s3.amazonaws.com",
    date: "Fri, 24 May 2013 00:00:00 GMT",
    "x-amz-date": "20130524T000000Z",
    "x-amz-storage-class": "REDUCED_REDUNDANCY",
    "x-amz-content-sha256": createHash("sha256").update("Welcome to Amazon S3.").digest("hex"),
    authorization: `AWS4-HMAC-SHA256 Credential=${AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd`,
  };
  t.notThrows(() => verifyRequest({ method: "PUT", rawPath: "/test%24file.text", rawQuery: "", headers }, opts));
  // the same path sent unescaped canonicalises the same way
  t.notThrows(() => verifyRequest({ method: "PUT", rawPath: "/test$file.text", rawQuery: "", headers }, opts));
});

test("AWS example: presigned GET verifies, and expires", (t) => {
  const q = presignQuery({ method: "GET", rawPath: "/test.txt", host: "examplebucket.s3.amazonaws.com" }, { accessKey: AK, secretKey: SK, region: "us-east-1" }, 86400, NOW);
  t.true(q.endsWith("X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"));
  const req = { method: "GET", rawPath: "/test.txt", rawQuery: q, headers: { host: "examplebucket.s3.amazonaws.com" } };
  t.true(verifyRequest(req, opts).presigned);
  t.is(code(() => verifyRequest(req, { ...opts, now: new Date(NOW.getTime() + 86_401_000) })), "AccessDenied");
  t.is(code(() => verifyRequest({ ...req, rawPath: "/other.txt" }, opts)), "SignatureDoesNotMatch");
});

test("AWS example: streaming upload chunk signatures", (t) => {
  const key = signingKey(SK, "20130524", "us-east-1");
  const scope = "20130524/us-east-1/s3/aws4_request";
  const seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
  const s1 = chunkSignature(key, "20130524T000000Z", scope, seed, Buffer.alloc(65536, "a"));
  t.is(s1, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648");
  const s2 = chunkSignature(key, "20130524T000000Z", scope, s1, Buffer.alloc(1024, "a"));
  t.is(s2, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497");
  t.is(chunkSignature(key, "20130524T000000Z", scope, s2, new Uint8Array(0)), "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9");
});

test("tampering, skew, wrong region, unknown keys and anonymous requests are refused with S3's codes", (t) => {
  const base = { method: "GET", rawPath: "/test.txt", rawQuery: "" };
  t.is(code(() => verifyRequest({ ...base, headers: { ...getObject(), range: "bytes=0-10" } }, opts)), "SignatureDoesNotMatch");
  t.is(code(() => verifyRequest({ ...base, rawPath: "/test.txT", headers: getObject() }, opts)), "SignatureDoesNotMatch");
  t.is(code(() => verifyRequest({ ...base, rawQuery: "x=1", headers: getObject() }, opts)), "SignatureDoesNotMatch");
  t.is(code(() => verifyRequest({ ...base, headers: getObject("0".repeat(64)) }, opts)), "SignatureDoesNotMatch");
  t.is(code(() => verifyRequest({ ...base, headers: getObject() }, { ...opts, now: new Date(NOW.getTime() + 16 * 60_000) })), "RequestTimeTooSkewed");
  t.is(code(() => verifyRequest({ ...base, headers: getObject() }, { ...opts, region: "eu-west-1" })), "AuthorizationHeaderMalformed");
  t.is(code(() => verifyRequest({ ...base, headers: getObject() }, { ...opts, secretFor: () => undefined })), "InvalidAccessKeyId");
  t.is(code(() => verifyRequest({ ...base, headers: { host: "h" } }, opts)), "AccessDenied");
  t.is(code(() => verifyRequest({ ...base, headers: { host: "h", authorization: "AWS AK:sig" } }, opts)), "AccessDenied");
  t.is(code(() => verifyRequest({ ...base, headers: { host: "h", authorization: "AWS4-HMAC-SHA256 garbage" } }, opts)), "AuthorizationHeaderMalformed");
  t.is(code(() => verifyRequest({ ...base, rawQuery: "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=x", headers: { host: "h" } }, opts)), "AuthorizationQueryParametersError");
});

test("signRequest round-trips through verifyRequest, with keys that need escaping", (t) => {
  const c = { accessKey: "shoal", secretKey: "s3cr3t-s3cr3t", region: "us-east-1" };
  const o = { region: "us-east-1", secretFor: (k: string) => (k === "shoal" ? c.secretKey : undefined) };
  for (const rawPath of ["/b/a%20b/c%2Bd", "/b/%E2%9C%93/x~y", "/b/..%2F..%2Fetc", "/b//double"]) {
    const req = { method: "PUT", rawPath, rawQuery: "partNumber=2&uploadId=abc%2Fdef", headers: { host: "gateway.example", "content-type": "text/plain" } as Headers };
    const signed = signRequest(req, c);
    t.notThrows(() => verifyRequest({ ...req, headers: signed }, o), rawPath);
    t.is(code(() => verifyRequest({ ...req, headers: { ...signed, "content-type": "text/html" } }, o)), "SignatureDoesNotMatch");
  }
});
