/**
 * Bucket sub-resources as XML (CORS, lifecycle) and the CORS decision.
 */
import test from "ava";
import { codeOf } from "../helpers/errors.ts";
import { parseXml } from "../../src/gateway/xml.ts";
import { corsFromXml, corsHeaders, corsMatch, corsToXml, lifecycleFromXml, lifecycleToXml } from "../../src/gateway/bucketxml.ts";

const code = codeOf;

const CORS = `<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <CORSRule><AllowedOrigin>https://*.example.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedHeader>x-amz-*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>300</MaxAgeSeconds></CORSRule>
  <CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>
</CORSConfiguration>`;

test("CORS: parse, render and parse again gives the same rules", (t) => {
  const rules = corsFromXml(parseXml(CORS));
  t.is(rules.length, 2);
  t.deepEqual(corsFromXml(parseXml(corsToXml(rules))), rules);
});

test("CORS: the first rule allowing origin, method and every requested header wins; wildcards", (t) => {
  const rules = corsFromXml(parseXml(CORS));
  t.is(corsMatch(rules, "https://app.example.com", "PUT", ["x-amz-date"]), rules[0]);
  t.is(corsMatch(rules, "https://app.example.com", "PUT", ["content-type"]), undefined, "content-type is not allowed by x-amz-*");
  t.is(corsMatch(rules, "https://example.org", "GET"), rules[1]);
  t.is(corsMatch(rules, "https://example.org", "DELETE"), undefined);
  t.is(corsMatch(rules, "http://app.example.com", "PUT"), undefined, "the scheme is part of the origin");
  const h = corsHeaders(rules[0]!, "https://app.example.com", { method: "PUT", headers: ["x-amz-date"] });
  t.is(h["Access-Control-Allow-Origin"], "https://app.example.com");
  t.is(h["Access-Control-Max-Age"], "300");
  t.is(h["Access-Control-Allow-Credentials"], "true");
  t.is(corsHeaders(rules[1]!, "https://x", undefined)["Access-Control-Allow-Origin"], "*");
});

test("CORS: bad configurations are refused", (t) => {
  t.is(code(() => corsFromXml(parseXml("<CORSConfiguration/>"))), "MalformedPayload");
  t.is(code(() => corsFromXml(parseXml("<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>"))), "MalformedPayload");
  t.is(code(() => corsFromXml(parseXml("<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>"))), "InvalidRequest");
  t.is(code(() => corsFromXml(parseXml("<CORSConfiguration><CORSRule><AllowedOrigin>*.*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"))), "InvalidRequest");
  t.is(code(() => corsFromXml(parseXml("<Other/>"))), "MalformedPayload");
});

test("lifecycle: Filter/Prefix, Filter/And/Prefix and the legacy Prefix; round trip", (t) => {
  const doc = `<LifecycleConfiguration>
    <Rule><ID>a</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>7</Days></Expiration></Rule>
    <Rule><ID>b</ID><Filter><And><Prefix>tmp/</Prefix></And></Filter><Status>Disabled</Status><Expiration><Date>2030-01-01T00:00:00Z</Date></Expiration></Rule>
    <Rule><ID>c</ID><Prefix>old/</Prefix><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>3</NoncurrentDays></NoncurrentVersionExpiration><AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>
  </LifecycleConfiguration>`;
  const rules = lifecycleFromXml(parseXml(doc));
  t.deepEqual(rules, [
    { id: "a", enabled: true, prefix: "logs/", expirationDays: 7 },
    { id: "b", enabled: false, prefix: "tmp/", expirationDate: "2030-01-01T00:00:00.000Z" },
    { id: "c", enabled: true, prefix: "old/", noncurrentDays: 3, abortIncompleteDays: 2 },
  ]);
  t.deepEqual(lifecycleFromXml(parseXml(lifecycleToXml(rules))), rules);
});

test("lifecycle: bad rules are refused with S3's codes", (t) => {
  const one = (rule: string) => code(() => lifecycleFromXml(parseXml(`<LifecycleConfiguration><Rule>${rule}</Rule></LifecycleConfiguration>`)));
  t.is(one("<Filter/><Expiration><Days>1</Days></Expiration>"), "MalformedPayload", "no Status");
  t.is(one("<Status>Enabled</Status><Filter/><Expiration><Days>0</Days></Expiration>"), "InvalidArgument");
  t.is(one("<Status>Enabled</Status><Filter/><Expiration><Days>1</Days><Date>2030-01-01T00:00:00Z</Date></Expiration>"), "MalformedPayload");
  t.is(one("<Status>Enabled</Status><Filter/><Expiration><Date>2030-01-01T12:00:00Z</Date></Expiration>"), "InvalidArgument", "not midnight");
  t.is(one("<Status>Enabled</Status><Filter/><Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition>"), "NotImplemented");
  t.is(one("<Status>Enabled</Status><Filter><Tag><Key>a</Key><Value>b</Value></Tag></Filter><Expiration><Days>1</Days></Expiration>"), "NotImplemented");
  t.is(one("<Status>Enabled</Status><Filter/>"), "MalformedPayload", "no action");
  t.is(code(() => lifecycleFromXml(parseXml("<LifecycleConfiguration><Rule><ID>x</ID><Status>Enabled</Status><Filter/><Expiration><Days>1</Days></Expiration></Rule><Rule><ID>x</ID><Status>Enabled</Status><Filter/><Expiration><Days>2</Days></Expiration></Rule></LifecycleConfiguration>"))), "InvalidArgument");
});
