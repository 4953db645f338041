/**
 * The v1 codec end to end (issue 14, defects 2 and 3): the SDK and the
 * storage actor refuse the same bad input; nothing bad is stored; bucket
 * names never alias.
 */
import test from "ava";
import { headers as natsHeaders, type Msg } from "@nats-io/nats-core";
import { errorFromWire, ShoalError } from "../../src/errors/index.ts";
import { startShoal } from "../helpers/actors.ts";
import { connectTo } from "../helpers/nats.ts";
import { checkProperty } from "../helpers/prop.ts";

const wireCode = (m: Msg) => errorFromWire((h) => m.headers?.get(h) || undefined, m.string())?.code;

test("CopyObject and CreateMultipartUpload refuse control characters and oversized metadata; nothing is stored and HEAD/GET keep working", async (t) => {
  const { url, client } = await startShoal(t);
  await client.createBucket("meta");
  await client.put("meta", "src", "body");
  const nc = await connectTo(t, url);
  const req = async (subject: string, body: Record<string, unknown>) => nc.request(subject, JSON.stringify(body), { timeout: 5000 });
  const copy = (metadata: Record<string, string>, contentType?: string) =>
    req("shoal.v1.obj.copy.meta", { sourceBucket: "meta", sourceKey: "src", key: "dst", metadataDirective: "REPLACE", metadata, ...(contentType ? { contentType } : {}) });
  t.is(wireCode(await copy({ evil: "a\r\nb" })), "InvalidArgument");
  t.is(wireCode(await copy({ evil: "\u0007" })), "InvalidArgument");
  t.is(wireCode(await copy({ big: "x".repeat(3000) })), "RequestHeaderTooLarge");
  t.is(wireCode(await copy({}, "text/plain\nX: 1")), "InvalidArgument");
  await t.throwsAsync(() => client.head("meta", "dst"), { instanceOf: ShoalError, code: "NoSuchKey" } as never);
  t.is(wireCode(await req("shoal.v1.mpu.create.meta", { key: "mp", metadata: { evil: "a\nb" } })), "InvalidArgument");
  t.is(wireCode(await req("shoal.v1.mpu.create.meta", { key: "mp", contentType: "a\u0000" })), "InvalidArgument");
  t.deepEqual((await client.listMultipartUploads("meta")).uploads, []);
  // the SDK refuses the same input itself, with the same codes
  await t.throwsAsync(() => client.copy({ bucket: "meta", key: "src" }, { bucket: "meta", key: "dst" }, { metadataDirective: "REPLACE", metadata: { evil: "a\r\nb" } }), { code: "InvalidArgument" } as never);
  await t.throwsAsync(() => client.createMultipart("meta", "mp", { metadata: { big: "x".repeat(3000) } }), { code: "RequestHeaderTooLarge" } as never);
  // and good metadata round-trips through copy
  const ok = await client.copy({ bucket: "meta", key: "src" }, { bucket: "meta", key: "dst" }, { metadataDirective: "REPLACE", metadata: { Owner: "ada" } });
  t.deepEqual(ok.metadata, { owner: "ada" });
  t.is((await client.get("meta", "dst")).info.metadata["owner"], "ada");
});

test("keys with CR/LF, tabs and surrounding spaces are stored and read back exactly (Shoal-Key-B64); other control characters are refused", async (t) => {
  const { client } = await startShoal(t);
  await client.createBucket("keys");
  for (const key of ["a\r\nb", " lead", "trail ", "\r\n", "tab\tkey", "日本/ü"]) {
    await client.put("keys", key, `v:${key}`);
    t.is(Buffer.from(await client.getBytes("keys", key)).toString(), `v:${key}`, JSON.stringify(key));
    t.is((await client.head("keys", key)).key, key);
  }
  const listed: string[] = [];
  for await (const e of client.list("keys")) if ("key" in e) listed.push(e.key);
  t.is(listed.length, 6);
  t.true(listed.includes("a\r\nb") && listed.includes(" lead") && listed.includes("trail "));
  await t.throwsAsync(() => client.put("keys", "\ud800", "x"), { code: "InvalidKey" } as never);
  await t.throwsAsync(() => client.put("keys", "a\u0001b", "x"), { code: "InvalidKey" } as never);
});

test("bucket names never alias: a_b does not reach a.b, at the SDK or at the actor", async (t) => {
  const { url, client } = await startShoal(t);
  await client.createBucket("a.b");
  await client.put("a.b", "k", "secret");
  for (const call of [() => client.get("a_b", "k"), () => client.head("a_b", "k"), () => client.put("a_b", "k", "x"), () => client.delete("a_b", "k"), () => client.listPage("a_b"), () => client.createBucket("a_b"), () => client.bucketInfo("A.B")]) {
    await t.throwsAsync(call, { instanceOf: ShoalError, code: "InvalidBucketName" } as never);
  }
  // the actor, sent a token no valid name maps to, refuses it too
  const nc = await connectTo(t, url);
  for (const subject of ["shoal.v1.obj.get.a__b", "shoal.v1.obj.get.A_B", "shoal.v1.obj.list.-ab"]) {
    t.is(wireCode(await nc.request(subject, JSON.stringify({ key: "k" }), { timeout: 5000 })), "InvalidBucketName", subject);
  }
  const h = natsHeaders();
  h.set("Shoal-Key", "k");
  t.is(wireCode(await nc.request("shoal.v1.obj.put.a__b", "x", { headers: h, timeout: 5000 })), "InvalidBucketName");
  t.is(Buffer.from(await client.getBytes("a.b", "k")).toString(), "secret");
});

test("property: every bucket name is refused or served alike at the SDK, the actor and the S3 gateway; valid names never meet", async (t) => {
  t.timeout(120_000);
  const fc = (await import("fast-check")).default;
  const { startS3, S3_CREDS } = await import("../helpers/gateway.ts");
  const { signRequest } = await import("../../src/gateway/auth.ts");
  const { bucketNameProblem } = await import("../../src/subjects/v1.ts");
  const { request } = await import("node:http");
  const { url, client, endpoint } = await startS3(t);
  const nc = await connectTo(t, url);
  await client.createBucket("a.b");
  await client.put("a.b", "k", "secret");
  const gw = new URL(endpoint);
  const s3Get = (path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const headers = signRequest({ method: "GET", rawPath: path, rawQuery: "", headers: { host: gw.host } }, S3_CREDS, { payloadHash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" });
      const req = request({ host: gw.hostname, port: gw.port, method: "GET", path, headers: headers as Record<string, string> }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.end();
    });
  const name = fc.oneof(fc.constantFrom("a_b", "a.b", "A.B", "a..b", "ab", "a-b", "a.-b", "127.0.0.1", "xn--ab", "a_b_c", "abc_"), fc.string({ unit: fc.constantFrom(..."ab._-9A"), minLength: 1, maxLength: 8 }));
  const outcome = async (p: Promise<unknown>) =>
    p.then(
      () => "ok",
      (e: unknown) => (e instanceof ShoalError ? e.code : String(e)),
    );
  await checkProperty(
    t,
    fc.asyncProperty(name, async (b) => {
      const valid = bucketNameProblem(b) === undefined;
      const sdk = await outcome(client.getBytes(b, "k"));
      // the actor, sent a token: it serves the one name that token is the image of, or refuses it
      const token = b.replaceAll(".", "_");
      const named = token.replaceAll("_", ".");
      const raw = wireCode(await nc.request(`shoal.v1.obj.get.${token}`, JSON.stringify({ key: "k" }), { timeout: 5000 })) ?? "ok";
      const rawExpect = bucketNameProblem(named) !== undefined ? "InvalidBucketName" : named === "a.b" ? "ok" : "NoSuchBucket";
      if (raw !== rawExpect) return false;
      const s3 = await s3Get(`/${encodeURIComponent(b)}/k`);
      const s3code = /<Code>([^<]+)<\/Code>/.exec(s3.body)?.[1] ?? String(s3.status);
      if (!valid) return sdk === "InvalidBucketName" && s3.status === 400 && s3code === "InvalidBucketName";
      // a valid name reaches its own bucket only: a.b holds the secret, every other name has no bucket
      const expect = b === "a.b" ? "ok" : "NoSuchBucket";
      return sdk === expect && (b === "a.b" ? s3.status === 200 && s3.body === "secret" : s3code === "NoSuchBucket");
    }),
    { numRuns: 60, interruptAfterTimeLimit: 40_000 },
    20,
  );
});
