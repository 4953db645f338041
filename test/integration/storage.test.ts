import test from "ava";
import { randomBytes, createHash } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { startShoal } from "../helpers/actors.ts";
import { connectTo } from "../helpers/nats.ts";
import { ShoalError, errorFromWire } from "../../src/errors/index.ts";

test("nats req: put, get and list small objects with plain NATS requests", async (t) => {
  const { url, client } = await startShoal(t);
  await client.createBucket("notes");
  const nc = await connectTo(t, url);
  const h = natsHeaders();
  h.set("Shoal-Key", "hello.txt");
  h.set("Content-Type", "text/plain");
  const put = await nc.request("shoal.v1.obj.put.notes", "hello, shoal", { headers: h, timeout: 5000 });
  t.is(put.json<{ size: number }>().size, 12);
  const get = await nc.request("shoal.v1.obj.get.notes", JSON.stringify({ key: "hello.txt" }), { timeout: 5000 });
  t.is(get.string(), "hello, shoal");
  t.is(get.headers?.get("Content-Type"), "text/plain");
  t.is(get.headers?.get("Shoal-Etag"), createHash("md5").update("hello, shoal").digest("hex"));
  const list = await nc.request("shoal.v1.obj.list.notes", "", { timeout: 5000 });
  t.deepEqual(list.json<{ contents: Array<{ key: string }> }>().contents.map((c) => c.key), ["hello.txt"]);
});

test("SDK: streamed put and get of 5 MiB through another storage instance; ranges; head; delete", async (t) => {
  const { client } = await startShoal(t, { instances: 2 });
  await client.createBucket("big");
  const body = randomBytes(5 * 1024 * 1024 + 17);
  async function* parts() {
    for (let o = 0; o < body.length; o += 300_000) yield body.subarray(o, o + 300_000);
  }
  const info = await client.put("big", "blob.bin", parts(), { contentType: "application/x-test", metadata: { owner: "ada" } });
  t.is(info.size, body.length);
  t.is(info.etag, createHash("md5").update(body).digest("hex"));
  for (let i = 0; i < 4; i++) {
    const got = await client.get("big", "blob.bin");
    t.true(Buffer.from(await got.bytes()).equals(body));
    t.is(got.info.metadata["owner"], "ada");
  }
  const r = await client.get("big", "blob.bin", { range: "bytes=1000000-3999999" });
  t.is(r.contentRange, `bytes 1000000-3999999/${body.length}`);
  t.true(Buffer.from(await r.bytes()).equals(body.subarray(1_000_000, 4_000_000)));
  t.true(Buffer.from(await client.getBytes("big", "blob.bin", { range: "bytes=-10" })).equals(body.subarray(-10)));
  const head = await client.head("big", "blob.bin");
  t.is(head.contentType, "application/x-test");
  t.deepEqual(await client.delete("big", "blob.bin"), { v: 1, deleted: true } as never);
  await t.throwsAsync(() => client.head("big", "blob.bin"), { instanceOf: ShoalError, message: /key does not exist/ });
});

test("read-after-write: a put acknowledged by one instance is listed by every instance at once", async (t) => {
  const { client, url } = await startShoal(t, { instances: 2 });
  await client.createBucket("raw");
  const nc = await connectTo(t, url);
  for (let i = 0; i < 30; i++) {
    await client.put("raw", `k/${String(i).padStart(3, "0")}`, `v${i}`);
    // the list goes to either instance (queue group): it must see the write just acked
    const page = (await nc.request("shoal.v1.obj.list.raw", JSON.stringify({ prefix: "k/" }), { timeout: 5000 })).json<{ keyCount: number }>();
    t.is(page.keyCount, i + 1);
  }
});

test("list: prefix, delimiter, pagination through the SDK iterator", async (t) => {
  const { client } = await startShoal(t);
  await client.createBucket("tree");
  const keys = ["a/1", "a/2", "a/b/1", "b", "c/x", "c/y"];
  for (const k of keys) await client.put("tree", k, k);
  const top = [];
  for await (const e of client.list("tree", { delimiter: "/", maxKeys: 1 })) top.push("key" in e ? e.key : e.prefix);
  t.deepEqual(top, ["a/", "b", "c/"]);
  const under = [];
  for await (const e of client.list("tree", { prefix: "a/", delimiter: "/" })) under.push("key" in e ? e.key : e.prefix);
  t.deepEqual(under, ["a/1", "a/2", "a/b/"]);
});

test("copy is server-side; conditional get; deleteMany", async (t) => {
  const { client } = await startShoal(t);
  await client.createBucket("src");
  await client.createBucket("dst");
  const put = await client.put("src", "a", "alpha", { contentType: "text/plain", metadata: { x: "1" } });
  const c = await client.copy({ bucket: "src", key: "a" }, { bucket: "dst", key: "b" });
  t.is(c.etag, put.etag);
  t.is((await client.head("dst", "b")).contentType, "text/plain");
  await t.throwsAsync(() => client.get("src", "a", { ifNoneMatch: `"${put.etag}"` }), { instanceOf: ShoalError, message: /Not modified/ });
  await t.throwsAsync(() => client.get("src", "a", { ifMatch: '"nope"' }), { instanceOf: ShoalError, message: /precondition/i });
  // any valid UTF-8 is a key (S3's rule); a lone surrogate is not
  const r = await client.deleteMany("src", ["a", "missing", "bad\ud800key"]);
  t.deepEqual(r.deleted.sort(), ["a", "missing"]);
  t.is(r.errors[0]?.code, "InvalidKey");
});

test("buckets: create, duplicate, list, info, delete refused while non-empty, force", async (t) => {
  const { client } = await startShoal(t);
  await client.createBucket("logs.2026");
  await t.throwsAsync(() => client.createBucket("logs.2026"), { instanceOf: ShoalError, message: /already exists/ });
  t.deepEqual((await client.listBuckets()).map((b) => b.name), ["logs.2026"]);
  await client.put("logs.2026", "x", "1");
  const info = await client.bucketInfo("logs.2026");
  t.is(info.objects, 1);
  t.is(info.replicas, 1);
  await t.throwsAsync(() => client.deleteBucket("logs.2026"), { instanceOf: ShoalError, message: /not empty/ });
  await client.deleteBucket("logs.2026", { force: true });
  t.deepEqual(await client.listBuckets(), []);
  await t.throwsAsync(() => client.bucketInfo("logs.2026"), { instanceOf: ShoalError, message: /bucket does not exist/ });
});

test("bad input gets typed errors and changes nothing", async (t) => {
  const { client, url } = await startShoal(t);
  await client.createBucket("safe");
  await client.put("safe", "keep", "kept");
  const codeOf = async (p: Promise<unknown>) => ((await t.throwsAsync(p, { instanceOf: ShoalError })) as ShoalError).code;
  t.is(await codeOf(client.createBucket("Bad_Name")), "InvalidBucketName");
  t.is(await codeOf(client.createBucket("ab")), "InvalidBucketName");
  t.is(await codeOf(client.createBucket("127.0.0.1")), "InvalidBucketName"); // a name shaped like an IP address (S3 refuses those)
  t.is(await codeOf(client.createBucket("okname", { replicas: 2 as never })), "InvalidReplicas");
  t.is(await codeOf(client.put("nope-bucket", "k", "v")), "NoSuchBucket");
  t.is(await codeOf(client.get("safe", "missing")), "NoSuchKey");
  t.is(await codeOf(client.put("safe", "x".repeat(1025), "v")), "InvalidKey");
  t.is(await codeOf(client.get("safe", "keep", { range: "bytes=100-200" })), "InvalidRange");
  t.is(await codeOf(client.get("safe", "keep", { range: "bytes=zz" })), "InvalidArgument");
  t.is(await codeOf(client.put("safe", "m", "v", { metadata: { big: "x".repeat(3000) } })), "RequestHeaderTooLarge");
  t.is(await codeOf(client.put("safe", "keep", "v", { contentMd5: Buffer.alloc(16).toString("base64") })), "BadDigest");
  const nc = await connectTo(t, url);
  for (const [subject, body] of [
    ["shoal.v1.obj.get.safe", "{not json"],
    ["shoal.v1.obj.get.safe", JSON.stringify({ key: "keep", extra: 1 })],
    ["shoal.v1.obj.get.safe", JSON.stringify({ v: 9, key: "keep" })],
    ["shoal.v1.obj.list.safe", JSON.stringify({ maxKeys: -1 })],
    ["shoal.v1.obj.get.Bad_Bucket", JSON.stringify({ key: "keep" })],
    ["shoal.v1.bucket.create", JSON.stringify({ bucket: 5 })],
  ] as const) {
    const m = await nc.request(subject, body, { timeout: 5000 });
    const e = errorFromWire((h) => m.headers?.get(h) || undefined, m.string());
    t.truthy(e, `${subject} ${body}`);
    t.true(["MalformedPayload", "UnsupportedVersion", "InvalidBucketName"].includes(e!.code), e!.code);
  }
  // nothing changed
  t.is(Buffer.from(await client.getBytes("safe", "keep")).toString(), "kept");
  t.deepEqual((await client.listBuckets()).map((b) => b.name), ["safe"]);
});

test("interop: stock @nats-io/obj reads an object Shoal stored, and Shoal serves one the stock client stored", async (t) => {
  const { client, url } = await startShoal(t);
  await client.createBucket("mixed");
  const body = randomBytes(3 * 1024 * 1024);
  await client.put("mixed", "shoal.bin", body);
  const nc = await connectTo(t, url);
  const os = await new Objm(nc).open("mixed");
  t.true(Buffer.from((await os.getBlob("shoal.bin"))!).equals(body));
  const body2 = randomBytes(700_000);
  await os.putBlob({ name: "stock.bin" }, body2);
  t.true(Buffer.from(await client.getBytes("mixed", "stock.bin")).equals(body2));
  const jsm = await jetstreamManager(nc);
  t.is((await jsm.streams.info("OBJ_mixed")).config.allow_direct, true);
});

test("an upload whose client vanishes mid-stream leaves nothing visible and no chunks", async (t) => {
  const { client, url } = await startShoal(t);
  await client.createBucket("abandon");
  const ac = new AbortController();
  async function* parts() {
    yield randomBytes(2 * 1024 * 1024);
    yield randomBytes(2 * 1024 * 1024);
    ac.abort();
    yield randomBytes(1024);
  }
  await t.throwsAsync(() => client.put("abandon", "half", parts(), { signal: ac.signal }));
  const nc = await connectTo(t, url);
  const jsm = await jetstreamManager(nc);
  const deadline = Date.now() + 10_000;
  let msgs = -1;
  while (Date.now() < deadline) {
    msgs = (await jsm.streams.info("OBJ_abandon")).state.messages;
    if (msgs === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.is(msgs, 0);
  await t.throwsAsync(() => client.head("abandon", "half"), { message: /key does not exist/ });
});

test("the list index misses no commit under concurrent overwrites and deletes (no rollups: on 2.9.10 they make consumers skip)", async (t) => {
  const { client } = await startShoal(t, { instances: 2 });
  await client.createBucket("churn-idx");
  const model = new Map<string, string>();
  for (let i = 0; i < 40; i++) {
    await client.put("churn-idx", `k${i}`, "v0");
    model.set(`k${i}`, "v0");
  }
  t.is((await client.listPage("churn-idx", {})).keyCount, 40); // both indexes live from here on
  for (let round = 1; round <= 3; round++) {
    const ops: Array<Promise<unknown>> = [];
    for (let i = 0; i < 40; i++) {
      const k = `k${i}`;
      if ((i + round) % 3 === 0) {
        ops.push(client.delete("churn-idx", k));
        model.delete(k);
      } else {
        ops.push(client.put("churn-idx", k, `v${round}`));
        model.set(k, `v${round}`);
      }
    }
    await Promise.all(ops);
    for (let probe = 0; probe < 2; probe++) {
      const page = await client.listPage("churn-idx", {});
      t.deepEqual(page.contents.map((c) => c.key).sort(), [...model.keys()].sort(), `round ${round}`);
    }
  }
});

test("a retried call (same Shoal-Request-Id, another instance) commits once: put answers with the first commit, delete with deleted:true; a new id commits again", async (t) => {
  const { url, client } = await startShoal(t, { instances: 2 });
  await client.createBucket("retry");
  const nc = await connectTo(t, url);
  const jsm = await jetstreamManager(nc);
  const put = async (id: string, body: string) => {
    const h = natsHeaders();
    h.set("Shoal-Key", "k");
    h.set("Shoal-Request-Id", id);
    const m = await nc.request("shoal.v1.obj.put.retry", body, { headers: h, timeout: 5000 });
    t.is(errorFromWire((n) => m.headers?.get(n) || undefined, m.string()), undefined);
    return m.json<{ revision: number; etag: string }>();
  };
  const del = async (id: string) => {
    const h = natsHeaders();
    h.set("Shoal-Request-Id", id);
    return (await nc.request("shoal.v1.obj.delete.retry", JSON.stringify({ key: "k" }), { headers: h, timeout: 5000 })).json<{ deleted: boolean }>();
  };
  const state = async () => (await jsm.streams.info("OBJ_retry")).state;
  // the same call sent four times (queue group: both instances answer some)
  const first = await put("call-1", "one");
  const before = await state();
  for (let i = 0; i < 3; i++) t.deepEqual(await put("call-1", "one"), first);
  const after = await state();
  // a retry answered by the instance that committed finds the commit in its memory (writer.ts putBytes) and writes nothing; one answered by the other instance writes its chunk once
  t.true(after.last_seq <= before.last_seq + 3, "each retry's chunk was written at most once …");
  t.is(after.messages, before.messages, "… and removed: only the first commit's chunk and metadata remain");
  // a new call commits a new version
  const second = await put("call-2", "two");
  t.true(second.revision > first.revision);
  t.is(Buffer.from(await client.getBytes("retry", "k")).toString(), "two");
  // a retried delete reports what its first attempt did, and writes no second marker
  t.deepEqual(await del("del-1"), { v: 1, deleted: true } as never);
  const markers = (await state()).last_seq;
  t.deepEqual(await del("del-1"), { v: 1, deleted: true } as never);
  t.deepEqual(await del("del-2"), { v: 1, deleted: false } as never);
  t.is((await state()).last_seq, markers);
  // an insane id is replaced, not stored
  const h = natsHeaders();
  h.set("Shoal-Key", "odd");
  h.set("Shoal-Request-Id", "x".repeat(200));
  await nc.request("shoal.v1.obj.put.retry", "v", { headers: h, timeout: 5000 });
  const m = await jsm.direct.getMessage("OBJ_retry", { last_by_subj: `$O.retry.M.${Buffer.from("odd").toString("base64url")}` });
  t.notRegex(m!.string(), /x{200}/);
});

test("DeleteBucket retried with the same request id (its answer lost) is answered as the first attempt was; another delete of the name is NoSuchBucket", async (t) => {
  const { url } = await startShoal(t);
  const nc = await connectTo(t, url);
  const call = async (op: "create" | "delete", requestId: string) => {
    const h = natsHeaders();
    h.set("Shoal-Request-Id", requestId);
    const body = op === "create" ? { v: 1, bucket: "gone", replicas: 1 } : { v: 1, bucket: "gone" };
    const m = await nc.request(`shoal.v1.bucket.${op}`, JSON.stringify(body), { headers: h, timeout: 5000 });
    const err = errorFromWire((n) => m.headers?.get(n) || undefined, m.string());
    if (err) throw err;
    return m.json<Record<string, unknown>>();
  };
  await call("create", "gone-c1");
  t.deepEqual(await call("delete", "gone-d1"), { v: 1, bucket: "gone", deleted: true });
  t.deepEqual(await call("delete", "gone-d1"), { v: 1, bucket: "gone", deleted: true }, "the retry gets the first attempt's answer");
  const other = await t.throwsAsync(() => call("delete", "gone-d2"));
  t.is((other as ShoalError).code, "NoSuchBucket");
  // the name can be created again, and its own delete is as any other
  await call("create", "gone-c2");
  t.deepEqual(await call("delete", "gone-d3"), { v: 1, bucket: "gone", deleted: true });
  t.is(((await t.throwsAsync(() => call("delete", "gone-d2"))) as ShoalError).code, "NoSuchBucket", "the history ends with gone-d3's record, not gone-d2's");
  // reading the history leaves no consumer on the registry's stream (one per call used to stay
  // 5 minutes: a client deleting missing buckets in a loop filled nats-server 2.15's 1000)
  for (let i = 0; i < 10; i++) t.is(((await t.throwsAsync(() => call("delete", `gone-x${i}`))) as ShoalError).code, "NoSuchBucket");
  const jsm = await jetstreamManager(nc);
  t.is((await jsm.streams.info("KV_shoal_buckets")).state.consumer_count, 0);
});

test("CreateBucket retried with the same request id (its answer lost) is answered as the first attempt was; another create of the name is BucketAlreadyExists", async (t) => {
  const { url } = await startShoal(t);
  const nc = await connectTo(t, url);
  const create = async (requestId: string) => {
    const h = natsHeaders();
    h.set("Shoal-Request-Id", requestId);
    const m = await nc.request("shoal.v1.bucket.create", JSON.stringify({ v: 1, bucket: "once", replicas: 1 }), { headers: h, timeout: 5000 });
    const err = errorFromWire((n) => m.headers?.get(n) || undefined, m.string());
    if (err) throw err;
    return m.json<{ name: string; created: string }>();
  };
  const first = await create("create-once-1");
  const retried = await create("create-once-1");
  t.deepEqual(retried, first, "the retry gets the first attempt's answer");
  const other = await t.throwsAsync(() => create("create-once-2"));
  t.is((other as ShoalError).code, "BucketAlreadyExists");
});
