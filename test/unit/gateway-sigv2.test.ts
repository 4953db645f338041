/**
 * SigV2 (legacy clients): AWS's published example, the header and query
 * forms, expiry and skew, and the ways a signature can be wrong.
 */
import test from "ava";
import { codeOf } from "../helpers/errors.ts";
import { verifyRequest } from "../../src/gateway/auth.ts";
import { canonicalResourceV2, presignV2, signV2, stringToSignV2 } from "../../src/gateway/sigv2.ts";

const AK = "AKIAIOSFODNN7EXAMPLE";
const SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const code = codeOf;

test("AWS's documented SigV2 example (GET /photos/puppy.jpg on johnsmith)", (t) => {
  const req = { method: "GET", rawPath: "/photos/puppy.jpg", rawQuery: "", headers: { host: "johnsmith.s3.amazonaws.com", date: "Tue, 27 Mar 2007 19:36:42 +0000" }, hostBucket: "johnsmith" };
  t.is(stringToSignV2(req, "Tue, 27 Mar 2007 19:36:42 +0000"), "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg");
  t.is(signV2(SK, stringToSignV2(req, req.headers.date)), "bWq2s1WEIj+Ydj0vQ697zp+IXMU=");
  const opts = { region: "us-east-1", secretFor: (k: string) => (k === AK ? SK : undefined), now: new Date("2007-03-27T19:40:00Z") };
  const signed = { ...req, headers: { ...req.headers, authorization: `AWS ${AK}:bWq2s1WEIj+Ydj0vQ697zp+IXMU=` } };
  t.is(verifyRequest(signed, opts).accessKey, AK);
  t.is(code(() => verifyRequest(signed, { ...opts, now: new Date("2007-03-27T20:00:00Z") })), "RequestTimeTooSkewed");
  t.is(code(() => verifyRequest({ ...signed, rawPath: "/photos/kitten.jpg" }, opts)), "SignatureDoesNotMatch");
  t.is(code(() => verifyRequest(signed, { ...opts, secretFor: () => undefined })), "InvalidAccessKeyId");
  t.is(code(() => verifyRequest({ ...signed, headers: { ...signed.headers, authorization: `AWS ${AK}` } }, opts)), "AccessDenied");
});

test("the canonical resource keeps S3 sub-resources only, sorted, values decoded", (t) => {
  t.is(canonicalResourceV2("/b/k", "uploadId=abc&partNumber=2&foo=bar&X-Amz-Date=1", undefined), "/b/k?partNumber=2&uploadId=abc");
  t.is(canonicalResourceV2("/b", "acl", undefined), "/b?acl");
  t.is(canonicalResourceV2("/k%20x", "response-content-type=text%2Fplain", "b"), "/b/k%20x?response-content-type=text/plain");
});

test("presigned (query) SigV2: valid until Expires, then AccessDenied; tampering is SignatureDoesNotMatch", (t) => {
  const now = new Date("2026-01-01T00:00:00Z");
  const opts = { region: "us-east-1", secretFor: (k: string) => (k === AK ? SK : undefined), now };
  const q = presignV2({ method: "GET", rawPath: "/b/a%20b" }, { accessKey: AK, secretKey: SK }, new Date(now.getTime() + 60_000));
  const req = (rawQuery: string, method = "GET") => ({ method, rawPath: "/b/a%20b", rawQuery, headers: { host: "h" } });
  t.is(verifyRequest(req(q), opts).presigned, true);
  t.is(code(() => verifyRequest(req(q), { ...opts, now: new Date(now.getTime() + 61_000) })), "AccessDenied");
  t.is(code(() => verifyRequest(req(q, "PUT"), opts)), "SignatureDoesNotMatch");
  t.is(code(() => verifyRequest(req(q.replace(/Expires=\d+/, (m) => `${m}9`)), opts)), "SignatureDoesNotMatch");
  t.is(code(() => verifyRequest(req(q.replace(/&Signature=[^&]*/, "")), opts)), "AccessDenied");
});
