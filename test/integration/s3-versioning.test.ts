/**
 * S3 versioning (issue 18) through real clients — boto3 for the scenario
 * (test/helpers/s3_versioning.py reports what it saw; the assertions are
 * here), the AWS SDK v3 for the basics — and the store underneath it: the
 * sweep keeps every retained version's chunks, the stock object-store
 * client reads the current version, lifecycle NoncurrentVersionExpiration
 * with an injected clock, events and replication carry version ids.
 */
import test from "ava";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { S3Client, CreateBucketCommand, DeleteBucketCommand, GetBucketVersioningCommand, PutBucketVersioningCommand, PutObjectCommand, GetObjectCommand, DeleteObjectCommand, ListObjectVersionsCommand } from "@aws-sdk/client-s3";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { startS3, S3_CREDS } from "../helpers/gateway.ts";
import { runActor, startShoal } from "../helpers/actors.ts";
import { connectTo, tempDir } from "../helpers/nats.ts";
import { eventually } from "../helpers/wait.ts";
import { replicator } from "../../actors/replicator/index.ts";
import { BucketSettings } from "../../src/store/bucketsettings.ts";
import { runLifecycle, noncurrentExpired } from "../../src/store/lifecycle.ts";
import { createLogger } from "../../src/log.ts";
import { foldVersions, pageVersions, type Version } from "../../src/store/versions.ts";
import { sweepStore } from "../../src/store/sweep.ts";
import { chunkSubjectAll } from "../../src/subjects/index.ts";
import type { StoredMeta } from "../../src/store/format.ts";
import type { DeliveredEvent, ShoalClient } from "../../src/client/index.ts";

const exec = promisify(execFile);
const HERE = new URL(".", import.meta.url).pathname;
const DAY = 86_400_000;

type Row = [string, string, string, boolean, number];

test("boto3: enable, put twice, list, get by id, delete marker, restore, delete by id, copy/multipart ids, pagination, delimiter, DeleteObjects, suspend", async (t) => {
  const { endpoint } = await startS3(t);
  const out = join(tempDir(t, "shoal-ver-"), "obs.json");
  await exec("python3", [join(HERE, "../helpers/s3_versioning.py"), endpoint, S3_CREDS.accessKey, S3_CREDS.secretKey, "ver-boto", out], { maxBuffer: 1 << 24 }).catch((e: { stderr?: string }) => {
    throw new Error(`s3_versioning.py failed: ${e.stderr}`);
  });
  const o = JSON.parse(readFileSync(out, "utf8")) as Record<string, any>;
  t.is(o["state_new"], null);
  t.is(o["state_enabled"], "Enabled");
  t.deepEqual(o["early"], { head: "null", list: [["V", "early", "null", true, 17]] }, "an object written before versioning is the null version");
  const { v1, v2 } = o as { v1: string; v2: string };
  t.regex(v1, /^[0-9A-Za-z]{22}$/);
  t.not(v1, v2);
  t.deepEqual(o["list_two"], [["V", "k", v2, true, 6], ["V", "k", v1, false, 3]] satisfies Row[]);
  t.is(o["get_current"], "second");
  t.is(o["get_v1"], "one");
  t.deepEqual(o["head_v1"], { VersionId: v1, ContentLength: 3 });
  t.is(o["get_current_version_header"], v2);

  const marker = o["marker"] as { DeleteMarker: boolean; VersionId: string };
  t.true(marker.DeleteMarker);
  t.regex(marker.VersionId, /^[0-9A-Za-z]{22}$/);
  t.like(o["get_after_marker"], { status: 404, code: "NoSuchKey", delete_marker: "true", version_id: marker.VersionId });
  t.like(o["head_after_marker"], { status: 404, delete_marker: "true" });
  t.deepEqual(o["list_marker"], [["V", "k", v2, false, 6], ["V", "k", v1, false, 3], ["M", "k", marker.VersionId, true, 0]] satisfies Row[]);
  t.is(o["get_v1_after_marker"], "one", "an old version is still readable under a delete marker");
  t.like(o["get_marker_by_id"], { status: 405, code: "MethodNotAllowed", delete_marker: "true" });
  t.false((o["list_objects_after_marker"] as string[]).includes("k"), "ListObjects does not show a key whose current version is a marker");

  t.deepEqual(o["delete_marker_by_id"], { DeleteMarker: true, VersionId: marker.VersionId });
  t.is(o["get_restored"], "second", "deleting the marker restores the previous version");
  t.is(o["get_after_v2_deleted"], "one", "deleting the current version by id makes the previous one current");
  t.deepEqual(o["list_after_v2_deleted"], [["V", "k", v1, true, 3]] satisfies Row[]);
  t.like(o["get_v2_gone"], { status: 404, code: "NoSuchVersion" });
  t.like(o["get_bad_id"], { status: 400, code: "InvalidArgument" });

  const nc = o["after_noncurrent_deleted"] as { current: string; list: Row[]; v3: string };
  t.is(nc.current, "third");
  t.deepEqual(nc.list, [["V", "k", nc.v3, true, 5]]);

  t.is(o["copy"].CopySourceVersionId, nc.v3);
  t.regex(o["copy"].VersionId, /^[0-9A-Za-z]{22}$/);
  t.is(o["copy"].body, "third");
  t.regex(o["mpu_version"], /^[0-9A-Za-z]{22}$/);

  const whole = o["page_whole"] as Array<[string, string]>;
  t.deepEqual(whole.map((w) => w[0]), ["pa", "pa", "pa", "pb", "pb", "pc"]);
  t.deepEqual(o["page_paged"], whole, "pages of 2 by key-marker/version-id-marker give the whole listing");
  t.is(o["page_count"], 3);
  t.deepEqual(o["delimited_prefixes"], ["dir/"]);
  t.deepEqual(o["batch"].current, "1");
  t.is(o["batch"].deleted.length, 1);

  t.is(o["state_suspended"], "Suspended");
  const s = o["suspended"] as { e1: string; n1: string; n2: string; list: Row[]; get_null: string; get_e1: string };
  t.is(s.n1, "null");
  t.is(s.n2, "null");
  t.deepEqual(s.list, [["V", "s", "null", true, 8], ["V", "s", s.e1, false, 7]], "a suspended write replaces the null version; the enabled one stays");
  t.is(s.get_null, "null two");
  t.is(s.get_e1, "enabled");
  const sd = o["suspended_delete"] as { DeleteMarker: boolean; VersionId: string; list: Row[] };
  t.true(sd.DeleteMarker);
  t.is(sd.VersionId, "null");
  t.deepEqual(sd.list, [["V", "s", s.e1, false, 7], ["M", "s", "null", true, 0]], "a suspended delete's marker replaces the null version");
});

test("AWS SDK v3: versioned puts, GetObject by VersionId, DeleteObject marker, ListObjectVersions", async (t) => {
  const { endpoint, client } = await startS3(t);
  const s3 = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: S3_CREDS.accessKey, secretAccessKey: S3_CREDS.secretKey } });
  t.teardown(() => s3.destroy());
  await s3.send(new CreateBucketCommand({ Bucket: "ver-sdk" }));
  await s3.send(new PutBucketVersioningCommand({ Bucket: "ver-sdk", VersioningConfiguration: { Status: "Enabled" } }));
  const a = await s3.send(new PutObjectCommand({ Bucket: "ver-sdk", Key: "x", Body: "A" }));
  const b = await s3.send(new PutObjectCommand({ Bucket: "ver-sdk", Key: "x", Body: "BB" }));
  t.truthy(a.VersionId);
  t.not(a.VersionId, b.VersionId);
  const got = await s3.send(new GetObjectCommand({ Bucket: "ver-sdk", Key: "x", VersionId: a.VersionId }));
  t.is(await got.Body!.transformToString(), "A");
  t.is(got.VersionId, a.VersionId);
  const d = await s3.send(new DeleteObjectCommand({ Bucket: "ver-sdk", Key: "x" }));
  t.true(d.DeleteMarker);
  const l = await s3.send(new ListObjectVersionsCommand({ Bucket: "ver-sdk" }));
  t.deepEqual(l.Versions?.map((v) => [v.VersionId, v.IsLatest]), [[b.VersionId, false], [a.VersionId, false]]);
  t.deepEqual(l.DeleteMarkers?.map((m) => [m.VersionId, m.IsLatest]), [[d.VersionId, true]]);
  // versions under a delete marker: the bucket is not empty (as S3)
  await t.throwsAsync(s3.send(new DeleteBucketCommand({ Bucket: "ver-sdk" })), { name: "BucketNotEmpty" });
  // deleted (through the SDK, forced) and created again: a new bucket, unversioned
  await client.deleteBucket("ver-sdk", { force: true });
  await s3.send(new CreateBucketCommand({ Bucket: "ver-sdk" }));
  t.is((await s3.send(new GetBucketVersioningCommand({ Bucket: "ver-sdk" }))).Status, undefined);
  t.is((await s3.send(new PutObjectCommand({ Bucket: "ver-sdk", Key: "x", Body: "new" }))).VersionId, undefined);
});

async function sweep(url: string, t: Parameters<typeof connectTo>[0], bucket: string) {
  const nc = await connectTo(t, url);
  return (await nc.request("shoal.ctl.storage.sweep", JSON.stringify({ v: 1, bucket }), { timeout: 20_000 })).json<{ reports: Array<Record<string, number>> }>().reports[0]!;
}

test("the sweep (read grace 0) keeps every retained version's chunks: old versions read byte for byte; a version deleted by id loses its chunks; the stock client reads the current version", async (t) => {
  const { url, client } = await startShoal(t, { storage: { markerTtlMs: 0, readGraceMs: 0, orphanGraceMs: 1000, sweepIntervalMs: 0 } });
  await client.createBucket("ver-sweep");
  await new BucketSettings(client.nc).put("ver-sweep", "versioning", "Enabled");
  // several chunks each (the default chunk is about 1 MiB)
  const bodies = [randomBytes(2_500_000), randomBytes(1_300_000), randomBytes(700_000)];
  const ids: string[] = [];
  for (const b of bodies) ids.push((await client.put("ver-sweep", "big", b)).versionId!);
  t.is(new Set(ids).size, 3);
  const marker = await client.delete("ver-sweep", "big");
  t.true(marker.deleteMarker);
  const r1 = await sweep(url, t, "ver-sweep");
  t.is(r1["replacedChunksRemoved"], 0, "no version's chunks are removed");
  t.is(r1["markersPurged"], 0, "a versioned delete marker is a version, not garbage");
  for (let i = 0; i < 3; i++) t.true(Buffer.from(await client.getBytes("ver-sweep", "big", { versionId: ids[i]! })).equals(bodies[i]!), `version ${i} byte for byte after the sweep`);

  // the stock client: a delete marker looks like a deleted object; after removing it, the current version
  const nc = await connectTo(t, url);
  const os = await new Objm(nc).open("ver-sweep");
  t.is(await os.get("big"), null);
  await client.delete("ver-sweep", "big", { versionId: marker.versionId! });
  const stock = await os.get("big");
  t.truthy(stock);
  const parts: Uint8Array[] = [];
  for await (const c of stock!.data) parts.push(c);
  t.true(Buffer.concat(parts).equals(bodies[2]!), "nats object get reads the current version");

  // a non-current version deleted by id: its chunks go with the next sweep; the others stay whole
  await client.delete("ver-sweep", "big", { versionId: ids[1]! });
  const r2 = await sweep(url, t, "ver-sweep");
  t.true(r2["replacedChunksRemoved"]! >= 1);
  await t.throwsAsync(client.getBytes("ver-sweep", "big", { versionId: ids[1]! }), { message: /version/i });
  t.true(Buffer.from(await client.getBytes("ver-sweep", "big", { versionId: ids[0]! })).equals(bodies[0]!));
  t.true(Buffer.from(await client.getBytes("ver-sweep", "big")).equals(bodies[2]!));
  const jsm = await jetstreamManager(nc);
  const chunkSubjects = Object.keys((await jsm.streams.info("OBJ_ver-sweep", { subjects_filter: chunkSubjectAll("ver-sweep") })).state.subjects ?? {});
  t.is(chunkSubjects.length, 2, "chunks of exactly the two retained versions remain");
});

test("a version deleted by id keeps its chunks for the read grace period (a GET by version already streaming finishes), then the sweep removes them", async (t) => {
  const { client } = await startShoal(t, { storage: { sweepIntervalMs: 0 } });
  await client.createBucket("ver-grace");
  await new BucketSettings(client.nc).put("ver-grace", "versioning", "Enabled");
  const body = randomBytes(1_500_000);
  const old = await client.put("ver-grace", "k", body);
  await client.put("ver-grace", "k", "current");
  // a read of the old version that has started (its first chunk is in hand) before the version is deleted
  const reading = await client.get("ver-grace", "k", { versionId: old.versionId! });
  await client.delete("ver-grace", "k", { versionId: old.versionId! });
  const jsm = await jetstreamManager(client.nc);
  const store = { name: "ver-grace", stream: "OBJ_ver-grace" };
  const o = { markerTtlMs: 3_600_000, orphanGraceMs: 3_600_000, readGraceMs: 60_000 };
  const within = await sweepStore(jetstream(client.nc), jsm, store, { ...o, now: () => Date.now() });
  t.is(within.replacedChunksRemoved, 0);
  t.true(within.replacedHeld >= 1);
  t.true(Buffer.from(await reading.bytes()).equals(body), "the read in flight finishes with its bytes");
  const after = await sweepStore(jetstream(client.nc), jsm, store, { ...o, now: () => Date.now() + 120_000 });
  t.is(after.replacedChunksRemoved, 1);
  t.is(Buffer.from(await client.getBytes("ver-grace", "k")).toString(), "current");
});

test("lifecycle NoncurrentVersionExpiration with an injected clock removes non-current versions only; Expiration in a versioned bucket adds a marker", async (t) => {
  const { client } = await startS3(t);
  await client.createBucket("ver-lc");
  const settings = new BucketSettings(client.nc);
  await settings.put("ver-lc", "versioning", "Enabled");
  const old = await client.put("ver-lc", "logs/a", "old");
  const cur = await client.put("ver-lc", "logs/a", "current");
  await client.put("ver-lc", "keep/b", "b1");
  await client.put("ver-lc", "keep/b", "b2");
  await settings.put("ver-lc", "lifecycle", [{ enabled: true, prefix: "logs/", noncurrentDays: 2 }]);
  const nc = client.nc;
  const jet = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
  const log = createLogger({ level: "silent" });
  const pass = (now: Date) => runLifecycle({ client, jet, settings, now, log });
  t.like(await pass(new Date(Date.now() + 1 * DAY)), { noncurrentExpired: 0, errors: 0 }, "not old enough yet");
  t.like(await pass(new Date(Date.now() + 4 * DAY)), { noncurrentExpired: 1, errors: 0 });
  const vs = await client.listVersions("ver-lc");
  t.deepEqual(vs.versions.map((v) => [v.key, v.versionId === cur.versionId, v.isLatest]).filter((v) => v[0] === "logs/a"), [["logs/a", true, true]]);
  t.is(vs.versions.filter((v) => v.key === "keep/b").length, 2, "outside the rule's prefix nothing is removed");
  await t.throwsAsync(client.getBytes("ver-lc", "logs/a", { versionId: old.versionId! }), { message: /version/i });

  // Expiration of a current version in a versioned bucket: a delete marker, the version stays non-current
  await settings.put("ver-lc", "lifecycle", [{ enabled: true, prefix: "keep/", expirationDays: 1 }]);
  t.like(await pass(new Date(Date.now() + 3 * DAY)), { expired: 1, errors: 0 });
  const after = (await client.listVersions("ver-lc", { prefix: "keep/" })).versions;
  t.deepEqual(after.map((v) => [v.deleteMarker, v.isLatest]), [[true, true], [false, false], [false, false]]);
  t.is(Buffer.from(await client.getBytes("ver-lc", "keep/b", { versionId: after[1]!.versionId })).toString(), "b2");

  // the pure rule: a version becomes non-current when the next one is written
  const v = (id: string, mtime: string) => ({ versionId: id, mtime });
  const rules = [{ enabled: true, prefix: "", noncurrentDays: 1 }];
  t.deepEqual(noncurrentExpired(rules, "k", [v("a", "2026-01-01T10:00:00Z"), v("b", "2026-01-05T10:00:00Z"), v("c", "2026-01-09T10:00:00Z")], new Date("2026-01-07T00:00:00Z")), ["a"]);
});

async function take(client: ShoalClient, n: number, ms: number, bucket: string): Promise<DeliveredEvent[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  const out: DeliveredEvent[] = [];
  try {
    for await (const e of client.events({ from: "all", bucket, signal: ac.signal })) {
      out.push(e);
      if (out.length >= n) break;
    }
  } finally {
    clearTimeout(timer);
  }
  return out;
}

test("events carry versionId: puts, the delete marker, and a version deleted by id", async (t) => {
  const { url, client } = await startShoal(t);
  await runActor(t, url, replicator);
  await client.createBucket("ver-ev");
  await new BucketSettings(client.nc).put("ver-ev", "versioning", "Enabled");
  const a = await client.put("ver-ev", "k", "a");
  const b = await client.put("ver-ev", "k", "bb");
  const m = await client.delete("ver-ev", "k");
  await client.delete("ver-ev", "k", { versionId: a.versionId! });
  const evs = await take(client, 4, 15_000, "ver-ev");
  t.deepEqual(evs.map((e) => [e.eventName, e.versionId]), [
    ["s3:ObjectCreated:Put", a.versionId],
    ["s3:ObjectCreated:Put", b.versionId],
    ["s3:ObjectRemoved:DeleteMarkerCreated", m.versionId],
    ["s3:ObjectRemoved:Delete", a.versionId],
  ]);
});

test("replication applies each version with its id: the target's versions and current version match the source's", async (t) => {
  const { url, client } = await startShoal(t);
  await runActor(t, url, replicator);
  await client.createBucket("ver-src");
  await client.createBucket("ver-dst");
  await new BucketSettings(client.nc).put("ver-src", "versioning", "Enabled");
  await client.addReplication("ver-src", { bucket: "ver-dst" });
  const a = await client.put("ver-src", "k", "a");
  await client.put("ver-src", "k", "b");
  await client.put("ver-src", "gone", "x");
  const m = await client.delete("ver-src", "gone");
  await client.put("ver-src", "k", "c");
  await client.delete("ver-src", "k", { versionId: a.versionId! });
  const shape = async (bucket: string) => (await client.listVersions(bucket)).versions.map((v) => [v.key, v.versionId, v.isLatest, v.deleteMarker, v.etag].join("|"));
  const want = await shape("ver-src");
  t.is(want.length, 4);
  await eventually(() => shape("ver-dst"), (got) => JSON.stringify(got) === JSON.stringify(want), { timeoutMs: 20_000 });
  t.deepEqual(await shape("ver-dst"), want);
  t.is(Buffer.from(await client.getBytes("ver-dst", "k")).toString(), "c");
  await t.throwsAsync(client.head("ver-dst", "gone"));
  t.true(want.some((w) => w.includes(m.versionId!)));
});

test("foldVersions and pageVersions: the version model (pure)", (t) => {
  const meta = (o: Partial<StoredMeta> & { h?: Record<string, string> }): StoredMeta => ({
    name: "k",
    bucket: "b",
    nuid: "n",
    size: 1,
    chunks: 1,
    mtime: "2026-01-01T00:00:00Z",
    digest: "SHA-256=AA==",
    headers: Object.fromEntries(Object.entries(o.h ?? {}).map(([k, v]) => [k, [v]])),
    ...o,
  });
  const f = (msgs: StoredMeta[]) => foldVersions(msgs.map((m, i) => ({ seq: i + 1, meta: m }))).map((v) => `${v.versionId}${v.marker ? "*" : ""}@${v.seq}`);
  t.deepEqual(f([meta({}), meta({})]), ["null@2"], "unversioned: the later write replaces the null version");
  t.deepEqual(f([meta({}), meta({ deleted: true })]), [], "an unversioned delete leaves nothing");
  t.deepEqual(f([meta({}), meta({ h: { "Shoal-Version-Id": "A" } }), meta({ deleted: true, h: { "Shoal-Version-Id": "M", "Shoal-Delete-Marker": "1" } })]), ["null@1", "A@2", "M*@3"]);
  t.deepEqual(f([meta({ h: { "Shoal-Version-Id": "A" } }), meta({ h: { "Shoal-Version-Id": "B" } }), meta({ h: { "Shoal-Version-Id": "B", "Shoal-Deletes-Version": "A" } })]), ["B@3"]);
  t.deepEqual(f([meta({ h: { "Shoal-Version-Id": "A" } }), meta({ deleted: true, h: { "Shoal-Deletes-Version": "A" } })]), []);
  const all = new Map<string, Version[]>();
  for (const k of ["a", "b/1", "b/2", "c"]) all.set(k, foldVersions([{ seq: 1, meta: meta({ name: k, h: { "Shoal-Version-Id": "X" } }) }, { seq: 2, meta: meta({ name: k, h: { "Shoal-Version-Id": "Y" } }) }]));
  const p1 = pageVersions(all, { delimiter: "/", maxKeys: 3 });
  t.deepEqual([p1.versions.map((v) => `${v.key}:${v.versionId}`), p1.commonPrefixes, p1.isTruncated, p1.nextKeyMarker], [["a:Y", "a:X"], ["b/"], true, "b/"]);
  const p2 = pageVersions(all, { delimiter: "/", maxKeys: 3, keyMarker: p1.nextKeyMarker! });
  t.deepEqual([p2.versions.map((v) => `${v.key}:${v.versionId}`), p2.commonPrefixes, p2.isTruncated], [["c:Y", "c:X"], [], false]);
  t.throws(() => pageVersions(all, { keyMarker: "a", versionIdMarker: "nope" }), { message: /version id/i });
});
