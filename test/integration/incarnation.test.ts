/**
 * Bucket incarnations (issue 14, defects 4 and 5): a bucket deleted and
 * created again is a new stream whose sequences start again at 1. Nothing
 * keyed by a stream sequence may mistake the new bucket's commits for the
 * old one's: not the list index, not event ids, not replication tags.
 */
import test from "ava";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { runActor, startShoal } from "../helpers/actors.ts";
import { connectTo } from "../helpers/nats.ts";
import { eventually } from "../helpers/wait.ts";
import { replicator } from "../../actors/replicator/index.ts";
import { deleteStore, storeRef } from "../../src/store/bucket.ts";
import { openRegistry, unregisterBucket } from "../../src/store/registry.ts";
import { hasLiveObject } from "../../src/store/index.ts";
import { deleteObject, putObject } from "../../src/store/writer.ts";
import { ensureStore } from "../../src/store/bucket.ts";
import type { ShoalClient } from "../../src/client/index.ts";
import { eventsOf } from "../helpers/events.ts";

async function* bytes(s: string) {
  yield new TextEncoder().encode(s);
}

/** What another storage instance's DeleteBucket (force) does: the stream, then the registry entry. */
async function deleteBucketElsewhere(url: string, t: Parameters<typeof connectTo>[0], bucket: string): Promise<void> {
  const nc = await connectTo(t, url);
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await deleteStore(jsm, storeRef(bucket));
  await unregisterBucket(await openRegistry(js, jsm), bucket);
}

const keysOf = async (c: ShoalClient, bucket: string) => (await c.listPage(bucket)).contents.map((e) => e.key);

test("the list index follows a bucket deleted and created again elsewhere; DeleteBucket without force refuses the new, full bucket", async (t) => {
  const { url, client } = await startShoal(t);
  await client.createBucket("inc");
  // the old incarnation: many commits, every key deleted again (its index is empty, its applied sequence high)
  for (let i = 0; i < 12; i++) await client.put("inc", `old-${i}`, `v${i}`);
  for (let i = 0; i < 12; i++) await client.delete("inc", `old-${i}`);
  t.deepEqual(await keysOf(client, "inc"), []); // this instance has built the index
  await deleteBucketElsewhere(url, t, "inc");
  await client.createBucket("inc");
  for (let i = 0; i < 3; i++) await client.put("inc", `new-${i}`, `n${i}`);
  // every new commit is at a sequence below what the old index applied
  t.deepEqual(await keysOf(client, "inc"), ["new-0", "new-1", "new-2"]);
  const err = await t.throwsAsync(() => client.deleteBucket("inc"));
  t.is((err as { code?: string }).code, "BucketNotEmpty");
  t.is(new TextDecoder().decode(await client.getBytes("inc", "new-2")), "n2");
  const info = await client.bucketInfo("inc");
  t.is((info as unknown as { objects: number }).objects, 3);
});

test("two storage instances (the issue's scenario): whichever answers, lists of a re-created bucket are complete and a DeleteBucket without force refuses it", async (t) => {
  const { url, client } = await startShoal(t, { instances: 2 });
  const nc = await connectTo(t, url);
  await client.createBucket("inc2");
  for (let i = 0; i < 10; i++) await client.put("inc2", `old-${i}`, `v${i}`);
  for (let i = 0; i < 10; i++) await client.delete("inc2", `old-${i}`);
  // the queue group spreads these over both instances: both index the old bucket
  const list = async () => (await nc.request("shoal.v1.obj.list.inc2", "{}", { timeout: 10_000 })).json<{ contents: Array<{ key: string }> }>().contents.map((c) => c.key);
  for (let i = 0; i < 12; i++) t.deepEqual(await list(), []);
  // one of them deletes it; it is created again
  await client.deleteBucket("inc2", { force: true });
  await client.createBucket("inc2");
  for (let i = 0; i < 3; i++) await client.put("inc2", `new-${i}`, `n${i}`);
  for (let i = 0; i < 12; i++) t.deepEqual(await list(), ["new-0", "new-1", "new-2"]);
  for (let i = 0; i < 6; i++) {
    const r = await nc.request("shoal.v1.bucket.delete", JSON.stringify({ bucket: "inc2" }), { timeout: 10_000 });
    t.is(r.headers?.get("Shoal-Error"), "BucketNotEmpty");
  }
  t.is(new TextDecoder().decode(await client.getBytes("inc2", "new-0")), "n0");
});

test("hasLiveObject reads the stream: empty, only delete markers, a live object", async (t) => {
  const { url } = await startShoal(t);
  const nc = await connectTo(t, url);
  const jet = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
  const store = storeRef("live-check");
  await ensureStore(jet.jsm, store, 1);
  t.false(await hasLiveObject(jet.js, jet.jsm, store));
  for (let i = 0; i < 5; i++) await putObject(jet, store, `k${i}`, bytes(`v${i}`));
  for (let i = 0; i < 5; i++) await deleteObject(jet, store, `k${i}`);
  t.false(await hasLiveObject(jet.js, jet.jsm, store));
  await putObject(jet, store, "k2", bytes("back"));
  t.true(await hasLiveObject(jet.js, jet.jsm, store));
});


test("events of a bucket created again are not dropped as duplicates of the deleted one's", async (t) => {
  const { url, client } = await startShoal(t);
  await runActor(t, url, replicator);
  await client.createBucket("inc-ev");
  await client.put("inc-ev", "first", "1");
  await client.put("inc-ev", "second", "2");
  const old = await eventsOf(client, "inc-ev", 10_000, (e) => e.length >= 2);
  t.deepEqual(old.map((e) => e.key), ["first", "second"]);
  await client.deleteBucket("inc-ev", { force: true });
  await client.createBucket("inc-ev");
  // the same sequences as "first" and "second" had
  await client.put("inc-ev", "third", "3");
  await client.put("inc-ev", "fourth", "4");
  const all = await eventsOf(client, "inc-ev", 15_000, (e) => e.length >= 4);
  t.deepEqual(all.map((e) => e.key), ["first", "second", "third", "fourth"]);
  t.is(all[2]!.source.seq, all[0]!.source.seq, "the new incarnation reused the sequence");
  t.not(all[2]!.source.incarnation, all[0]!.source.incarnation);
});

test("replication copies the changes of a source bucket created again (its sequences restart)", async (t) => {
  const { url, client } = await startShoal(t);
  await runActor(t, url, replicator);
  await client.createBucket("inc-src");
  await client.createBucket("inc-dst");
  await client.addReplication("inc-src", { bucket: "inc-dst" });
  await client.put("inc-src", "k", "old version");
  await eventually(() => client.getBytes("inc-dst", "k").then((b) => new TextDecoder().decode(b)), (v) => v === "old version", { what: "first copy" });
  await client.deleteBucket("inc-src", { force: true });
  await client.createBucket("inc-src");
  // the same stream sequence as the old version's commit
  await client.put("inc-src", "k", "new version");
  const got = await eventually(
    () => client.getBytes("inc-dst", "k").then((b) => new TextDecoder().decode(b)),
    (v) => v === "new version",
    { timeoutMs: 30_000, intervalMs: 200, what: "the re-created source's change copied" },
  ).catch((e: unknown) => String(e));
  t.is(got, "new version");
});
