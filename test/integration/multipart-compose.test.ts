/**
 * Copy-free multipart completion (src/store/compose.ts): the completion
 * commits one metadata message listing the parts, whatever the size; Shoal
 * reads the object at once — whole and in ranges across part boundaries,
 * each part checked against its SHA-256 — while stock tools see no object;
 * the restatement copies it into the stock form (same version, same
 * revision for users), after which stock @nats-io/obj reads it; the sweep
 * then removes the parts. A composed version that a newer write replaced
 * before its restatement is left composed, and a part whose bytes were
 * damaged fails the read instead of serving them.
 * Consistency promise: Durability (1) and Atomicity (3) — an acknowledged
 * completion is readable at once and never loses a byte to its copy.
 */
import test from "ava";
import { createHash, randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { Kvm } from "@nats-io/kv";
import type { ExecutionContext } from "ava";
import { startServer, connectTo } from "../helpers/nats.ts";
import { firstAnswerLost } from "../helpers/jet.ts";
import { runActor, startShoal } from "../helpers/actors.ts";
import { eventsOf } from "../helpers/events.ts";
import { replicator } from "../../actors/replicator/index.ts";
import { healthMonitor } from "../../actors/health-monitor/index.ts";
import { eventually } from "../helpers/eventually.ts";
import { deleteVersion, putObject, type Jet } from "../../src/store/writer.ts";
import { keyVersions } from "../../src/store/versions.ts";
import { headObject, readObject, statObject } from "../../src/store/reader.ts";
import { ensureStore, storeRef } from "../../src/store/bucket.ts";
import { completeUpload, createUpload, openMultipart, uploadPart } from "../../src/store/multipart.ts";
import { restateComposed } from "../../src/store/compose.ts";
import { sweepStore } from "../../src/store/sweep.ts";
import { expireIfUnchanged } from "../../src/store/lifecycle.ts";
import { alertSubject, chunkSubject, chunkSubjectAll, metaSubjectAll } from "../../src/subjects/index.ts";
import { ShoalError } from "../../src/errors/index.ts";
import { crc32, crcHex } from "../../src/runtime/crc32.ts";

const MiB = 1024 * 1024;
const CHUNK = 256 * 1024;
const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");

async function setup(t: ExecutionContext, bucket = "mpc") {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const jet: Jet = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
  const store = storeRef(bucket);
  await ensureStore(jet.jsm, store, 1);
  const kv = await openMultipart(jet.js, jet.jsm);
  return { srv, nc, jet, store, kv, bucket };
}

async function* once(b: Uint8Array) {
  yield b;
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(Buffer.from(c));
  return Buffer.concat(out);
}

/** Uploads `parts` (in reverse order, as S3 allows) and completes them. */
async function composed(s: Awaited<ReturnType<typeof setup>>, key: string, parts: Buffer[]) {
  const up = await createUpload(s.kv, s.bucket, key, { contentType: "application/x-test" });
  const recs = [];
  for (let i = parts.length - 1; i >= 0; i--) recs.unshift(await uploadPart(s.jet, s.kv, s.store, s.bucket, up, i + 1, once(parts[i]!)));
  return completeUpload(s.jet, s.kv, s.store, s.bucket, up, recs.map((r) => ({ n: r.n, etag: r.etag })));
}

const chunkCount = async (s: { jet: Jet; store: { stream: string; name: string } }) =>
  Object.values((await s.jet.jsm.streams.info(s.store.stream, { subjects_filter: chunkSubjectAll(s.store.name) })).state.subjects ?? {}).reduce((a, b) => a + b, 0);

test("a completion composes its parts with one metadata message; Shoal reads it whole and in ranges at once; stock tools see it only once restated", async (t) => {
  const s = await setup(t);
  // parts of odd sizes and chunk counts; the last one small
  const parts = [randomBytes(5 * MiB + 7), randomBytes(5 * MiB + CHUNK), randomBytes(1234)];
  const whole = Buffer.concat(parts);
  const before = await chunkCount(s);
  const lastSeq = async () => (await s.jet.jsm.streams.info(s.store.stream)).state.last_seq;
  const upload = await createUpload(s.kv, s.bucket, "big.bin");
  const recs = [];
  for (const [i, p] of parts.entries()) recs.push(await uploadPart(s.jet, s.kv, s.store, s.bucket, upload, i + 1, once(p)));
  const partChunks = await chunkCount(s);
  const seqBefore = await lastSeq();
  const info = await completeUpload(s.jet, s.kv, s.store, s.bucket, upload, recs.map((r) => ({ n: r.n, etag: r.etag })));
  t.is(await lastSeq(), seqBefore + 1, "the completion wrote one message: its metadata");
  t.is(await chunkCount(s), partChunks, "no chunk was copied");
  t.is(before, 0);
  t.is(info.size, whole.length);
  t.regex(info.etag, /^[0-9a-f]{32}-3$/);
  t.is(info.sha256, "", "no digest of the whole before the copy");
  t.is(info.parts?.length, 3);

  // Shoal: whole, and ranges inside a part, across one boundary, across two
  const stat = await statObject(s.jet.jsm, s.store, "big.bin");
  t.is(stat.revision, info.revision);
  t.true((await collect(readObject(s.jet.jsm, s.store, stat))).equals(whole));
  const p0 = parts[0]!.length;
  const p1 = parts[1]!.length;
  for (const [start, end] of [[0, 0], [10, 100], [p0 - 5, p0 + 5], [p0 - 1, p0], [p0 + p1 - 3, whole.length - 1], [1, whole.length - 2], [whole.length - 1, whole.length - 1]] as const) {
    const got = await collect(readObject(s.jet.jsm, s.store, stat, { range: { start, end } }));
    t.true(got.equals(whole.subarray(start, end + 1)), `bytes ${start}-${end}`);
  }

  // stock tools: no object yet (not a broken one)
  const os = await new Objm(await connectTo(t, s.srv.url)).open(s.bucket);
  t.is((await os.info("big.bin"))?.deleted, true);
  t.is(await os.getBlob("big.bin"), null);
  t.deepEqual((await os.list()).map((e) => e.name), []);

  // the restatement: the same version in the stock form
  t.is(await restateComposed(s.jet, s.store, "big.bin", info.revision), "restated");
  t.is(await restateComposed(s.jet, s.store, "big.bin", info.revision), "not-current", "idempotent");
  const after = await statObject(s.jet.jsm, s.store, "big.bin");
  t.is(after.revision, info.revision, "users see the completion's revision");
  t.is(after.etag, info.etag);
  t.is(after.parts, undefined);
  t.is(after.sha256, createHash("sha256").update(whole).digest("base64url") + "=");
  t.true(Buffer.from((await os.getBlob("big.bin"))!).equals(whole), "stock @nats-io/obj reads it, digest checked");
  t.true((await collect(readObject(s.jet.jsm, s.store, after, { range: { start: p0 - 5, end: p0 + 5 } }))).equals(whole.subarray(p0 - 5, p0 + 6)));

  // the sweep: the parts go once the composed message is past the read grace; the copy stays
  const report = await sweepStore(s.jet.js, s.jet.jsm, s.store, { markerTtlMs: 0, orphanGraceMs: 0, readGraceMs: 0 });
  t.is(report.replacedChunksRemoved, 1);
  t.is(await chunkCount(s), Math.ceil(whole.length / (after.chunkSize)), "only the copy's chunks are left");
  t.true(Buffer.from((await os.getBlob("big.bin"))!).equals(whole));
});

test("the sweep keeps a composed version's parts, restates it when its copy never ran, and only then lets the parts go", async (t) => {
  const s = await setup(t);
  const parts = [randomBytes(5 * MiB), randomBytes(3000)];
  const info = await composed(s, "k", parts);
  const held = await sweepStore(s.jet.js, s.jet.jsm, s.store, { markerTtlMs: 0, orphanGraceMs: 0, readGraceMs: 0, restate: (key, rev) => restateComposed(s.jet, s.store, key, rev), restateAfterMs: 60_000 });
  t.is(held.orphansPurged, 0, "the parts are the object's: not orphans");
  t.is(held.composedRestated, 0, "too young to restate");
  t.is(held.composedPending, 1);
  t.true((await collect(readObject(s.jet.jsm, s.store, await statObject(s.jet.jsm, s.store, "k")))).equals(Buffer.concat(parts)));
  const r = await sweepStore(s.jet.js, s.jet.jsm, s.store, { markerTtlMs: 0, orphanGraceMs: 0, readGraceMs: 0, restate: (key, rev) => restateComposed(s.jet, s.store, key, rev), restateAfterMs: 0 });
  t.is(r.composedRestated, 1);
  t.is(r.composedPending, 0);
  const head = await headObject(s.jet.jsm, s.store, "k");
  t.is(head?.info?.revision, info.revision);
  t.not(head?.revision, info.revision, "compare-and-set goes on the restatement's own sequence");
  t.is(head?.info?.crc32, crcHex(crc32(Buffer.concat(parts))), "the restatement records the CRC-32 of the whole object");
  await sweepStore(s.jet.js, s.jet.jsm, s.store, { markerTtlMs: 0, orphanGraceMs: 0, readGraceMs: 0 });
  for (const p of info.parts!) t.deepEqual((await s.jet.jsm.streams.info(s.store.stream, { subjects_filter: chunkSubject(s.store.name, p.id) })).state.subjects ?? {}, {}, "part chunks removed");
  t.true((await collect(readObject(s.jet.jsm, s.store, head!.info!))).equals(Buffer.concat(parts)));
});

test("a composed version replaced before its restatement stays composed; the restatement does not overwrite the newer write", async (t) => {
  const s = await setup(t);
  const parts = [randomBytes(5 * MiB), randomBytes(10)];
  const info = await composed(s, "k", parts);
  const newer = await putObject(s.jet, s.store, "k", once(Buffer.from("newer")));
  const chunks = await chunkCount(s);
  t.is(await restateComposed(s.jet, s.store, "k", info.revision), "not-current");
  t.is(await chunkCount(s), chunks, "nothing copied");
  t.is((await statObject(s.jet.jsm, s.store, "k")).revision, newer.revision);
  t.is(Buffer.from(await collect(readObject(s.jet.jsm, s.store, await statObject(s.jet.jsm, s.store, "k")))).toString(), "newer");
});

test("a part whose bytes do not match its CRC-32 (or, without one, its SHA-256) fails the read of the composed object", async (t) => {
  const s = await setup(t);
  const parts = [randomBytes(5 * MiB), randomBytes(100)];
  const info = await composed(s, "k", parts);
  // replace the last part's one chunk by other bytes (same size), as a damaged disk would
  const p = info.parts![1]!;
  await s.jet.jsm.streams.deleteMessage(s.store.stream, p.seqs[0]!, false);
  const ack = await s.jet.js.publish(chunkSubject(s.store.name, p.id), randomBytes(100));
  const damaged = { ...info, parts: info.parts!.map((q, i) => (i === 1 ? { ...q, seqs: [ack.seq] } : q)) };
  t.regex(info.parts![1]!.crc32 ?? "", /^[0-9a-f]{8}$/, "the part's CRC-32 is recorded");
  const e = await t.throwsAsync(collect(readObject(s.jet.jsm, s.store, damaged)), { instanceOf: ShoalError });
  t.is(e?.code, "InternalError");
  t.regex(e?.message ?? "", /CRC-32 mismatch/);
  // a part recorded without a CRC-32 (an older writer) is checked against its SHA-256
  const older = { ...damaged, parts: damaged.parts.map(({ crc32: _, ...q }) => q) };
  const e2 = await t.throwsAsync(collect(readObject(s.jet.jsm, s.store, older)), { instanceOf: ShoalError });
  t.regex(e2?.message ?? "", /digest mismatch/);
});

test("through the actors: completion is answered at once, stock tools read the object once restated, nothing left behind", async (t) => {
  const { url, client } = await startShoal(t, { instances: 2, storage: { readGraceMs: 1000, orphanGraceMs: 1000, sweepIntervalMs: 0 } });
  await client.createBucket("mpa");
  const parts = [randomBytes(6 * MiB), randomBytes(5 * MiB), randomBytes(77)];
  const whole = Buffer.concat(parts);
  const { uploadId } = await client.createMultipart("mpa", "obj", { metadata: { owner: "ada" } });
  const etags = [];
  for (const [i, p] of parts.entries()) etags.push({ partNumber: i + 1, etag: (await client.uploadPart("mpa", "obj", uploadId, i + 1, p)).etag });
  t.deepEqual(etags.map((e) => e.etag), parts.map(md5));
  const done = await client.completeMultipart("mpa", "obj", uploadId, etags);
  const got = await client.get("mpa", "obj");
  t.true(Buffer.from(await got.bytes()).equals(whole), "readable at once");
  t.is(got.info.metadata["owner"], "ada");
  t.is((await client.get("mpa", "obj", { range: `bytes=${6 * MiB - 2}-${6 * MiB + 1}` }).then((g) => g.bytes())).length, 4);
  const os = await new Objm(await connectTo(t, url)).open("mpa");
  await eventually("stock @nats-io/obj reads the restated object", 30_000, async () => (await os.info("obj"))?.deleted === false);
  t.true(Buffer.from((await os.getBlob("obj"))!).equals(whole));
  const head = await client.head("mpa", "obj");
  t.is(head.revision, done.revision, "the revision users see is the completion's");
  const listed = (await client.listPage("mpa", {})).contents.find((c) => c.key === "obj");
  t.is(listed?.revision, done.revision, "in a listing too");
  t.is(head.etag, done.etag);
  t.is(head.sha256, createHash("sha256").update(whole).digest("base64url") + "=");
  // the sweep removes the parts (past the read grace); only the copy is left, and no part record
  await sleep(1100);
  const nc = await connectTo(t, url);
  await nc.request("shoal.ctl.storage.sweep", JSON.stringify({ bucket: "mpa" }), { timeout: 20_000 });
  const jsm = await jetstreamManager(nc);
  t.is(Object.keys((await jsm.streams.info("OBJ_mpa", { subjects_filter: chunkSubjectAll("mpa") })).state.subjects ?? {}).length, 1);
  const kv = await new Kvm(nc).open("shoal_multipart");
  const keys: string[] = [];
  for await (const k of await kv.keys()) keys.push(k);
  t.deepEqual(keys, [`mpa.${uploadId}`], "only the completion record");
  t.true(Buffer.from(await client.getBytes("mpa", "obj")).equals(whole));
});

test("with a replicator: a composed completion is one event (no SHA-256, its multipart ETag) and one copy on the target; its restatement is neither", async (t) => {
  const { url, client } = await startShoal(t);
  await runActor(t, url, replicator);
  await client.createBucket("mpev");
  await client.createBucket("mpev-dst");
  await client.addReplication("mpev", { bucket: "mpev-dst" });
  const parts = [randomBytes(5 * MiB), randomBytes(999)];
  const whole = Buffer.concat(parts);
  const { uploadId } = await client.createMultipart("mpev", "obj");
  const etags = [];
  for (const [i, p] of parts.entries()) etags.push({ partNumber: i + 1, etag: (await client.uploadPart("mpev", "obj", uploadId, i + 1, p)).etag });
  const done = await client.completeMultipart("mpev", "obj", uploadId, etags);
  const os = await new Objm(await connectTo(t, url)).open("mpev");
  await eventually("the source's stock copy", 30_000, async () => (await os.info("obj"))?.deleted === false);
  // the target gets the object once, and it reads back byte for byte
  await eventually("the target has the object", 30_000, async () => (await client.head("mpev-dst", "obj").catch(() => undefined))?.size === whole.length);
  t.true(Buffer.from(await client.getBytes("mpev-dst", "obj")).equals(whole));
  t.is((await client.head("mpev-dst", "obj")).etag, done.etag);
  const put = await client.put("mpev", "after", "x"); // a later change: once the replicator is past it, it is past the restatement too
  await eventually("the target has the later change", 30_000, async () => (await client.head("mpev-dst", "after").catch(() => undefined)) !== undefined);
  const jsm = await jetstreamManager(await connectTo(t, url));
  const dst = storeRef("mpev-dst");
  const metas = (await jsm.streams.info(dst.stream, { subjects_filter: metaSubjectAll(dst.name) })).state.subjects ?? {};
  t.is(Object.values(metas).reduce((a, n) => a + n, 0), 2, "one metadata message per key on the target: the restatement was not copied again");
  // one event for the completion, none for the restatement
  const evs = await eventsOf(client, "mpev", 10_000, (e) => e.some((x) => x.key === "after"));
  const ofObj = evs.filter((e) => e.key === "obj");
  t.is(ofObj.length, 1);
  t.is(ofObj[0]!.eventName, "s3:ObjectCreated:CompleteMultipartUpload");
  t.is(ofObj[0]!.revision, done.revision);
  t.is(ofObj[0]!.sha256, "");
  t.is(ofObj[0]!.etag, done.etag);
  t.true(evs.some((e) => e.key === "after" && e.revision === put.revision));
});

test("versioned: removing an older version repeats a composed current version still `deleted` to stock readers (not an object they would wait on for ever), and Shoal still reads it", async (t) => {
  const s = await setup(t);
  const v1 = await putObject(s.jet, s.store, "k", once(Buffer.from("first")), { versionId: "v1" });
  const up = await createUpload(s.kv, s.bucket, "k");
  const parts = [randomBytes(5 * MiB), randomBytes(10)];
  const recs = [];
  for (const [i, p] of parts.entries()) recs.push(await uploadPart(s.jet, s.kv, s.store, s.bucket, up, i + 1, once(p)));
  const v2 = await completeUpload(s.jet, s.kv, s.store, s.bucket, up, recs.map((r) => ({ n: r.n, etag: r.etag })), { versionId: "v2" });
  t.truthy(v2.parts);
  t.true((await deleteVersion(s.jet, s.store, "k", v1.versionId!)).deleted);
  const head = await headObject(s.jet.jsm, s.store, "k");
  t.not(head?.revision, v2.revision, "the removal repeated the current version");
  t.is(head?.info?.versionId, "v2");
  t.true((await collect(readObject(s.jet.jsm, s.store, head!.info!))).equals(Buffer.concat(parts)));
  const os = await new Objm(await connectTo(t, s.srv.url)).open(s.bucket);
  t.is((await os.info("k"))?.deleted, true);
  t.is(await os.getBlob("k"), null);
  // and its restatement (on the repeated message) makes it the stock object
  t.is(await restateComposed(s.jet, s.store, "k", head!.revision!), "restated");
  t.true(Buffer.from((await os.getBlob("k"))!).equals(Buffer.concat(parts)));
  t.deepEqual((await keyVersions(s.jet.jsm, s.store, "k")).map((v) => v.versionId), ["v2"]);
});

test("the copying completion (more parts than one metadata message lists): a stock object at once, with its SHA-256, and the parts' chunks gone", async (t) => {
  const s = await setup(t);
  const parts = [randomBytes(5 * MiB + 1), randomBytes(4321)];
  const up = await createUpload(s.kv, s.bucket, "copied");
  const recs = [];
  for (const [i, p] of parts.entries()) recs.push(await uploadPart(s.jet, s.kv, s.store, s.bucket, up, i + 1, once(p)));
  const info = await completeUpload(s.jet, s.kv, s.store, s.bucket, up, recs.map((r) => ({ n: r.n, etag: r.etag })), { copy: true });
  t.is(info.parts, undefined);
  t.is(info.sha256, createHash("sha256").update(Buffer.concat(parts)).digest("base64url") + "=");
  t.regex(info.etag, /-2$/);
  const os = await new Objm(await connectTo(t, s.srv.url)).open(s.bucket);
  t.true(Buffer.from((await os.getBlob("copied"))!).equals(Buffer.concat(parts)), "stock tools read it at once");
  t.is(Object.keys((await s.jet.jsm.streams.info(s.store.stream, { subjects_filter: chunkSubjectAll(s.store.name) })).state.subjects ?? {}).length, 1, "only the object's chunk subject");
});

test("a storage instance that starts finishes a copy nobody ran within storage.firstSweepMs, not a whole sweep interval later", async (t) => {
  // the running instance sweeps neither soon nor often: only the new one can make the copy
  const { url, client } = await startShoal(t, { storage: { firstSweepMs: 600_000, restateAfterMs: 0 } });
  await client.createBucket("mpf");
  const nc = await connectTo(t, url);
  const jet: Jet = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
  const store = storeRef("mpf");
  // completed the way an instance that crashed before its background copy leaves it: composed, no stock form
  const kv = await openMultipart(jet.js, jet.jsm);
  const parts = [randomBytes(5 * MiB), randomBytes(99)];
  const up = await createUpload(kv, "mpf", "k");
  const recs = [];
  for (const [i, p] of parts.entries()) recs.push(await uploadPart(jet, kv, store, "mpf", up, i + 1, once(p)));
  const info = await completeUpload(jet, kv, store, "mpf", up, recs.map((r) => ({ n: r.n, etag: r.etag })));
  t.truthy(info.parts, "composed");
  const os = await new Objm(nc).open("mpf");
  t.is(await os.get("k"), null, "stock tools do not see it yet");
  const { storage } = await import("../../actors/storage/index.ts");
  const started = Date.now();
  // the default sweep interval (10 min): only the first sweep can come in time
  await runActor(t, url, storage, { storage: { firstSweepMs: 300, restateAfterMs: 0 } });
  await eventually("the new instance's first sweep restates it", 15_000, async () => (await headObject(jet.jsm, store, "k"))?.info?.restates === info.revision);
  t.log(`restated ${Date.now() - started} ms after the instance started`);
  t.true(Buffer.from((await os.getBlob("k"))!).equals(Buffer.concat(parts)), "stock tools read it");
});

test("metrics: the storage actor counts its background copies, and its sweep reports composed objects still pending", async (t) => {
  const { url, client } = await startShoal(t, { storage: { sweepIntervalMs: 0 } });
  const { registry } = await import("../../src/metrics/index.ts");
  const restated = async () => (await registry.getSingleMetric("shoal_storage_restated_total")!.get()).values.find((v) => v.labels["outcome"] === "restated")?.value ?? 0;
  const before = await restated();
  await client.createBucket("mpm");
  const parts = [randomBytes(5 * MiB), randomBytes(50)];
  const { uploadId } = await client.createMultipart("mpm", "obj");
  const etags = [];
  for (const [i, p] of parts.entries()) etags.push({ partNumber: i + 1, etag: (await client.uploadPart("mpm", "obj", uploadId, i + 1, p)).etag });
  await client.completeMultipart("mpm", "obj", uploadId, etags);
  await eventually("the copy is counted", 30_000, async () => (await restated()) === before + 1);
  const nc = await connectTo(t, url);
  const report = (await nc.request("shoal.ctl.storage.sweep", JSON.stringify({ bucket: "mpm" }), { timeout: 20_000 })).json<{ reports: Array<{ composedPending: number }> }>().reports[0]!;
  t.is(report.composedPending, 0, "nothing left composed once restated");
  const pending = (await registry.getSingleMetric("shoal_storage_composed_pending")!.get()).values.find((v) => v.labels["bucket"] === "mpm");
  t.is(pending?.value, 0);
});

test("a composed object whose copy keeps failing (a lost chunk) is reported stalled by the sweep, and the health-monitor raises restate-stalled for its bucket until it is gone", async (t) => {
  const { url, client } = await startShoal(t, { storage: { sweepIntervalMs: 0, restateAfterMs: 0 } });
  await runActor(t, url, healthMonitor, { health: { intervalMs: 200, debounceMs: 300 } });
  const nc = await connectTo(t, url);
  const jsm = await jetstreamManager(nc);
  const events: Array<{ id: string; state: string; message: string }> = [];
  nc.subscribe(alertSubject("warning", "restate-stalled"), { callback: (_e, m) => void events.push(m.json()) });
  await client.createBucket("mps");
  const store = storeRef("mps");
  const { uploadId } = await client.createMultipart("mps", "obj");
  const first = await client.uploadPart("mps", "obj", uploadId, 1, randomBytes(5 * MiB));
  // the first part's last chunk is lost (as a disk would lose it): the copy can never read it
  const subject = Object.keys((await jsm.streams.info(store.stream, { subjects_filter: chunkSubjectAll("mps") })).state.subjects ?? {})[0]!;
  const last = await jsm.streams.getMessage(store.stream, { last_by_subj: subject });
  t.true(await jsm.streams.deleteMessage(store.stream, last!.seq, false));
  const second = await client.uploadPart("mps", "obj", uploadId, 2, randomBytes(100));
  await client.completeMultipart("mps", "obj", uploadId, [{ partNumber: 1, etag: first.etag }, { partNumber: 2, etag: second.etag }]);
  const sweep = async () => (await nc.request("shoal.ctl.storage.sweep", JSON.stringify({ bucket: "mps" }), { timeout: 20_000 })).json<{ reports: Array<{ composedPending: number; composedStalled: number }> }>().reports[0]!;
  const r = await sweep();
  t.is(r.composedPending, 1);
  t.is(r.composedStalled, 1, "old enough (restateAfterMs 0) and its copy failed");
  await eventually("the alert is raised", 20_000, async () => (await client.health()).alerts.some((a) => a.id === "restate-stalled.mps"));
  const alert = (await client.health()).alerts.find((a) => a.id === "restate-stalled.mps")!;
  t.is(alert.severity, "warning");
  t.regex(alert.message, /bucket mps: 1 multipart object still not copied/);
  await eventually("the raised event", 10_000, async () => events.some((e) => e.id === "restate-stalled.mps" && e.state === "raised"));
  // a new write replaces the composed version: nothing is left to copy, the alert resolves
  await client.put("mps", "obj", Buffer.from("replaced"));
  const after = await sweep();
  t.is(after.composedStalled, 0);
  await eventually("the alert is resolved", 20_000, async () => !(await client.health()).alerts.some((a) => a.id === "restate-stalled.mps"));
  await eventually("the resolved event", 10_000, async () => events.some((e) => e.id === "restate-stalled.mps" && e.state === "resolved"));
});

test("lifecycle expiry of a restated object: judged by the revision users see, compare-and-set on its last message", async (t) => {
  const s = await setup(t, "mplc");
  const info = await composed(s, "k", [randomBytes(5 * MiB), randomBytes(20)]);
  t.is(await restateComposed(s.jet, s.store, "k", info.revision), "restated");
  const head = await headObject(s.jet.jsm, s.store, "k");
  t.not(head?.revision, info.revision);
  t.false(await expireIfUnchanged(s.jet, s.bucket, "k", head!.revision!), "the restatement's own sequence is not a revision users saw");
  t.true(await expireIfUnchanged(s.jet, s.bucket, "k", info.revision));
  t.is((await headObject(s.jet.jsm, s.store, "k"))?.info, undefined, "expired");
});

test("a restatement whose commit landed but whose answer was lost keeps its chunks (the retry is refused as out of date, not answered as a duplicate) and the object reads whole", async (t) => {
  const s = await setup(t, "mpclost");
  const parts = [randomBytes(5 * 1024 * 1024), randomBytes(200_000)];
  const info = await composed(s, "k", parts);
  // the first publish on a metadata subject lands; its answer is lost
  const { js, dropped } = firstAnswerLost(s.jet.js, metaSubjectAll(s.store.name).slice(0, -1));
  t.is(await restateComposed({ ...s.jet, js }, s.store, "k", info.revision), "restated");
  t.true(dropped());
  const head = await statObject(s.jet.jsm, s.store, "k");
  t.is(head.parts, undefined, "the stock form is the current version");
  t.true((await collect(readObject(s.jet.jsm, s.store, head))).equals(Buffer.concat(parts)), "its chunks are there");
});
