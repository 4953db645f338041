import test from "ava";
import { jetstream, jetstreamManager, AckPolicy } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { setTimeout as sleep } from "node:timers/promises";
import { startShoal } from "../helpers/actors.ts";
import { connectTo } from "../helpers/nats.ts";
import { chunkSubjectAll, metaSubjectAll } from "../../src/subjects/index.ts";

type Sweep = { reports: Array<{ bucket: string; markersPurged: number; markersHeld: number; orphansPurged: number; orphanMessagesPurged: number }> };

async function subjects(url: string, t: Parameters<typeof connectTo>[0], stream: string, filter: string): Promise<Record<string, number>> {
  const nc = await connectTo(t, url);
  const jsm = await jetstreamManager(nc);
  return (await jsm.streams.info(stream, { subjects_filter: filter })).state.subjects ?? {};
}

test("delete markers do not pile up: the sweep purges old ones, keeps live objects and later writes of the same key", async (t) => {
  const { url, client } = await startShoal(t, { storage: { markerTtlMs: 0, readGraceMs: 0, sweepIntervalMs: 0 } });
  await client.createBucket("churn");
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 40; i++) await client.put("churn", `k${i}`, `round ${round}`);
    for (let i = 0; i < 40; i++) if (i % 4 !== 0) await client.delete("churn", `k${i}`);
  }
  // k0 deleted, then written again: its marker is below the new version
  await client.delete("churn", "k0");
  await client.put("churn", "k0", "back");
  const before = await subjects(url, t, "OBJ_churn", metaSubjectAll("churn"));
  t.is(Object.keys(before).length, 40, "one metadata message per key ever written (30 of them delete markers)");

  const nc = await connectTo(t, url);
  const r = (await nc.request("shoal.ctl.storage.sweep", JSON.stringify({ v: 1, bucket: "churn" }), { timeout: 10_000 })).json<Sweep>();
  t.is(r.reports[0]?.markersPurged, 30);
  const after = await subjects(url, t, "OBJ_churn", metaSubjectAll("churn"));
  t.is(Object.keys(after).length, 10, "only live objects keep metadata");
  t.is(Buffer.from(await client.getBytes("churn", "k0")).toString(), "back");
  for (let i = 4; i < 40; i += 4) t.is(Buffer.from(await client.getBytes("churn", `k${i}`)).toString(), "round 2");
  t.deepEqual((await client.listPage("churn", {})).contents.map((c) => c.key).length, 10);
  // The stock client agrees: the purged keys are simply absent.
  const os = await new Objm(nc).open("churn");
  t.is(await os.info("k1"), null);
  // A second sweep finds nothing; a deleted key can be written again.
  const again = (await nc.request("shoal.ctl.storage.sweep", JSON.stringify({ v: 1, bucket: "churn" }), { timeout: 10_000 })).json<Sweep>();
  t.is(again.reports[0]?.markersPurged, 0);
  await client.put("churn", "k1", "new");
  t.is(Buffer.from(await client.getBytes("churn", "k1")).toString(), "new");
});

test("sweep keeps delete markers a durable consumer (the commit-log reader) has not acknowledged", async (t) => {
  const { url, client } = await startShoal(t, { storage: { markerTtlMs: 0, readGraceMs: 0, sweepIntervalMs: 0 } });
  await client.createBucket("held");
  const nc = await connectTo(t, url);
  const jsm = await jetstreamManager(nc);
  await client.put("held", "a", "1");
  await client.delete("held", "a");
  await jsm.consumers.add("OBJ_held", { durable_name: "reader", ack_policy: AckPolicy.Explicit, filter_subject: metaSubjectAll("held") });
  let r = (await nc.request("shoal.ctl.storage.sweep", JSON.stringify({ v: 1, bucket: "held" }), { timeout: 10_000 })).json<Sweep>();
  t.is(r.reports[0]?.markersPurged, 0);
  t.is(r.reports[0]?.markersHeld, 1);
  // the reader catches up: now the marker may go
  const c = await jetstream(nc).consumers.get("OBJ_held", "reader");
  for (let i = 0; i < 2; i++) {
    const m = await c.next({ expires: 2000 });
    await m?.ackAck();
  }
  r = (await nc.request("shoal.ctl.storage.sweep", JSON.stringify({ v: 1, bucket: "held" }), { timeout: 10_000 })).json<Sweep>();
  t.is(r.reports[0]?.markersPurged, 1);
});

test("orphan chunks (no metadata refers to them) are purged after the grace period; live and fresh chunks stay", async (t) => {
  const { url, client } = await startShoal(t, { storage: { orphanGraceMs: 1500, sweepIntervalMs: 0 } });
  await client.createBucket("orph");
  await client.put("orph", "live", Buffer.alloc(3000, 1));
  const nc = await connectTo(t, url);
  const js = jetstream(nc);
  // what an unknown-outcome commit leaves behind
  for (let i = 0; i < 3; i++) await js.publish("$O.orph.C.orphanOld", new Uint8Array(100));
  await sleep(1600);
  await js.publish("$O.orph.C.orphanFresh", new Uint8Array(100));
  const r = (await nc.request("shoal.ctl.storage.sweep", JSON.stringify({ v: 1, bucket: "orph" }), { timeout: 10_000 })).json<Sweep>();
  t.is(r.reports[0]?.orphansPurged, 1);
  t.is(r.reports[0]?.orphanMessagesPurged, 3);
  const chunks = await subjects(url, t, "OBJ_orph", chunkSubjectAll("orph"));
  t.false("$O.orph.C.orphanOld" in chunks);
  t.true("$O.orph.C.orphanFresh" in chunks);
  t.is(Object.keys(chunks).length, 2);
  t.true(Buffer.from(await client.getBytes("orph", "live")).equals(Buffer.alloc(3000, 1)));
});

test("the sweep loop runs on its own and bad sweep requests get typed errors", async (t) => {
  const { url, client } = await startShoal(t, { storage: { markerTtlMs: 0, readGraceMs: 0, sweepIntervalMs: 300 } });
  await client.createBucket("auto");
  for (let i = 0; i < 5; i++) {
    await client.put("auto", `x${i}`, "v");
    await client.delete("auto", `x${i}`);
  }
  let left = 5;
  for (let i = 0; i < 50 && left > 0; i++) {
    await sleep(100);
    left = Object.keys(await subjects(url, t, "OBJ_auto", metaSubjectAll("auto"))).length;
  }
  t.is(left, 0);
  const nc = await connectTo(t, url);
  const bad = await nc.request("shoal.ctl.storage.sweep", JSON.stringify({ v: 1, bucket: "Bad_Name" }), { timeout: 5000 });
  t.is(bad.headers?.get("Shoal-Error"), "InvalidBucketName");
  const missing = await nc.request("shoal.ctl.storage.sweep", JSON.stringify({ v: 1, bucket: "nope" }), { timeout: 5000 });
  t.is(missing.headers?.get("Shoal-Error"), "NoSuchBucket");
  const junk = await nc.request("shoal.ctl.storage.sweep", "{not json", { timeout: 5000 });
  t.is(junk.headers?.get("Shoal-Error"), "MalformedPayload");
});
