import test from "ava";
import { randomBytes, createHash } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { Objm } from "@nats-io/obj";
import { startServer, connectTo } from "../helpers/nats.ts";
import { putObject, deleteObject, type Jet } from "../../src/store/writer.ts";
import { readObject, statObject, headObject, directGet, DIRECT_GET_ATTEMPT_MS } from "../../src/store/reader.ts";
import { ensureStore, storeRef } from "../../src/store/bucket.ts";
import { chunkSubjectAll } from "../../src/subjects/index.ts";
import { allVersions } from "../../src/store/versions.ts";
import { storeState } from "../../src/store/replication.ts";
import { hasLiveObject } from "../../src/store/index.ts";
import { ShoalError } from "../../src/errors/index.ts";
import type { ExecutionContext } from "ava";

async function setup(t: ExecutionContext, bucket = "photos") {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const jet: Jet = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
  const store = storeRef(bucket);
  await ensureStore(jet.jsm, store, 1);
  return { srv, nc, jet, store };
}

async function* from(...parts: Uint8Array[]) {
  for (const p of parts) yield p;
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(Buffer.from(c));
  return Buffer.concat(out);
}

async function chunkMessages(jet: Jet, stream: string): Promise<number> {
  const si = await jet.jsm.streams.info(stream, { subjects_filter: ">" });
  return Object.entries(si.state.subjects ?? {}).filter(([s]) => s.includes(".C.")).reduce((a, [, n]) => a + n, 0);
}

const CHUNK = 64 * 1024;

for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 123]) {
  test(`round trip of ${size} bytes, split oddly on the way in`, async (t) => {
    const { jet, store } = await setup(t);
    const body = randomBytes(size);
    const parts = [body.subarray(0, 7), body.subarray(7, 7 + 100_003), body.subarray(7 + 100_003)];
    const info = await putObject(jet, store, "k", from(...parts), { chunkSize: CHUNK, contentType: "image/png", userMeta: { Color: "red" } });
    t.is(info.size, size);
    t.is(info.etag, createHash("md5").update(body).digest("hex"));
    t.is(info.chunks, Math.ceil(size / CHUNK));
    const stat = await statObject(jet.jsm, store, "k");
    t.is(stat.contentType, "image/png");
    t.deepEqual(stat.userMeta, { color: "red" });
    t.true((await collect(readObject(jet.jsm, store, stat))).equals(body));
  });
}

test("a range reads only the chunks it needs", async (t) => {
  const { jet, store } = await setup(t);
  const body = randomBytes(10 * CHUNK);
  const info = await putObject(jet, store, "big", from(body), { chunkSize: CHUNK });
  const fetched: number[] = [];
  const range = { start: 3 * CHUNK + 10, end: 4 * CHUNK + 5 };
  const got = await collect(readObject(jet.jsm, store, info, { range, onChunkFetched: (i) => fetched.push(i) }));
  t.true(got.equals(body.subarray(range.start, range.end + 1)));
  t.deepEqual(fetched, [3, 4]);
});

test("interop: @nats-io/obj reads what Shoal wrote (digest checked) and Shoal reads what it wrote", async (t) => {
  const { nc, jet, store } = await setup(t);
  const body = randomBytes(3 * CHUNK + 5);
  await putObject(jet, store, "from-shoal.bin", from(body), { chunkSize: CHUNK });
  const os = await new Objm(nc).open(store.name);
  const blob = await os.getBlob("from-shoal.bin");
  t.true(Buffer.from(blob!).equals(body));

  const body2 = randomBytes(300_000);
  await os.putBlob({ name: "from-stock.bin", options: { max_chunk_size: 50_000 } }, body2);
  const info = await statObject(jet.jsm, store, "from-stock.bin");
  t.is(info.chunkSeqs, undefined);
  t.true((await collect(readObject(jet.jsm, store, info))).equals(body2));
  const part = await collect(readObject(jet.jsm, store, info, { range: { start: 120_000, end: 210_000 } }));
  t.true(part.equals(body2.subarray(120_000, 210_001)));
});

test("a put whose source fails, or that is aborted, is invisible and leaves no chunks", async (t) => {
  const { jet, store } = await setup(t);
  async function* failing() {
    yield randomBytes(3 * CHUNK);
    throw new Error("client vanished");
  }
  await t.throwsAsync(() => putObject(jet, store, "broken", failing(), { chunkSize: CHUNK }), { message: /client vanished/ });
  t.is(await headObject(jet.jsm, store, "broken"), undefined);
  t.is(await chunkMessages(jet, store.stream), 0);

  const ac = new AbortController();
  async function* slow() {
    yield randomBytes(2 * CHUNK);
    ac.abort();
    yield randomBytes(CHUNK);
  }
  await t.throwsAsync(() => putObject(jet, store, "aborted", slow(), { chunkSize: CHUNK, signal: ac.signal }));
  t.is(await headObject(jet.jsm, store, "aborted"), undefined);
  t.is(await chunkMessages(jet, store.stream), 0);
});

test("overwrite and delete keep the replaced chunks for the sweep (reads in flight); the sweep removes them after the read grace period, with the replaced metadata", async (t) => {
  const { jet, store } = await setup(t);
  const { sweepStore } = await import("../../src/store/sweep.ts");
  await putObject(jet, store, "k", from(randomBytes(3 * CHUNK)), { chunkSize: CHUNK });
  await putObject(jet, store, "k", from(randomBytes(2 * CHUNK)), { chunkSize: CHUNK });
  t.is(await chunkMessages(jet, store.stream), 5, "the replaced version's 3 chunks stay until the sweep");
  const held = await sweepStore(jet.js, jet.jsm, store, { markerTtlMs: 0, orphanGraceMs: 1000, readGraceMs: 3_600_000 });
  t.is(held.replacedHeld, 1);
  t.is(await chunkMessages(jet, store.stream), 5, "within the read grace period nothing goes (nor as an orphan)");
  t.deepEqual(await deleteObject(jet, store, "k"), { deleted: true });
  t.is(await chunkMessages(jet, store.stream), 5);
  t.deepEqual(await deleteObject(jet, store, "k"), { deleted: false }, "idempotent");
  await t.throwsAsync(() => statObject(jet.jsm, store, "k"), { instanceOf: ShoalError, message: /key does not exist/ });
  for (let i = 0; i < 20; i++) {
    await putObject(jet, store, "churn", from(randomBytes(1000)), { chunkSize: CHUNK });
    await deleteObject(jet, store, "churn");
  }
  t.is(await chunkMessages(jet, store.stream), 25);
  // past the read grace period: replaced chunks, replaced metadata and old markers all go
  // (a clock 1 s ahead: a marker written in the sweep's own millisecond is
  // not yet older than a TTL of 0 — the last delete above can be; it left 1
  // message once in a full run)
  const r = await sweepStore(jet.js, jet.jsm, store, { markerTtlMs: 0, orphanGraceMs: 3_600_000, readGraceMs: 0, now: () => Date.now() + 1000 });
  t.is(r.replacedChunksRemoved, 22, JSON.stringify(r));
  t.true(r.supersededRemoved >= 40, JSON.stringify(r));
  t.is(await chunkMessages(jet, store.stream), 0, "no chunk garbage");
  const si = await jet.jsm.streams.info(store.stream, { subjects_filter: ">" });
  t.is(si.state.messages, 0, `stream holds ${si.state.messages} messages: ${JSON.stringify(si.state.subjects)}`);
});

test("conditional puts: If-None-Match refuses an existing key; If-Match needs the current ETag", async (t) => {
  const { jet, store } = await setup(t);
  const first = await putObject(jet, store, "c", from(Buffer.from("one")), { ifNoneMatch: true });
  await t.throwsAsync(() => putObject(jet, store, "c", from(Buffer.from("two")), { ifNoneMatch: true }), { instanceOf: ShoalError, message: /exists/ });
  await t.throwsAsync(() => putObject(jet, store, "c", from(Buffer.from("two")), { ifMatch: "nope" }), { instanceOf: ShoalError });
  const second = await putObject(jet, store, "c", from(Buffer.from("two")), { ifMatch: `"${first.etag}"` });
  t.is((await collect(readObject(jet.jsm, store, await statObject(jet.jsm, store, "c")))).toString(), "two");
  t.not(second.revision, first.revision);
  t.is(await chunkMessages(jet, store.stream), 2, "the replaced version's chunk stays for the sweep");
  // after a delete, If-None-Match succeeds again
  await deleteObject(jet, store, "c");
  const third = await putObject(jet, store, "c", from(Buffer.from("three")), { ifNoneMatch: true });
  t.is(third.size, 5);
});

test("concurrent If-None-Match puts of one key: exactly one wins", async (t) => {
  const { jet, store } = await setup(t);
  const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => putObject(jet, store, "race", from(randomBytes(CHUNK * 2 + i)), { chunkSize: CHUNK, ifNoneMatch: true })));
  const won = results.filter((r) => r.status === "fulfilled");
  t.is(won.length, 1);
  t.true(results.filter((r) => r.status === "rejected").every((r) => (r.reason as ShoalError).code === "PreconditionFailed"));
  t.is(await chunkMessages(jet, store.stream), won[0]!.value.chunks, "losers' chunks were purged");
});

test("BadDigest when the supplied MD5 does not match; nothing is stored", async (t) => {
  const { jet, store } = await setup(t);
  await t.throwsAsync(() => putObject(jet, store, "d", from(Buffer.from("data")), { expectMd5Hex: "00".repeat(16) }), { instanceOf: ShoalError, message: /MD5/ });
  t.is(await headObject(jet.jsm, store, "d"), undefined);
  t.is(await chunkMessages(jet, store.stream), 0);
});

test("a Direct Get that a replica takes and never answers (as during a leader election) is sent again after DIRECT_GET_ATTEMPT_MS, not after the API's 5 s", async (t) => {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const jsm = await jetstreamManager(nc);
  // a stand-in replica for stream GHOST: silent on the first request, answers the next
  let asked = 0;
  const responder = await connectTo(t, srv.url);
  responder.subscribe("$JS.API.DIRECT.GET.GHOST", {
    callback: (_e, m) => {
      if (++asked === 1) return;
      const h = natsHeaders();
      h.set("Nats-Stream", "GHOST");
      h.set("Nats-Subject", "ghost.1");
      h.set("Nats-Sequence", "7");
      h.set("Nats-Time-Stamp", new Date().toISOString());
      m.respond("boo", { headers: h });
    },
  });
  await responder.flush();
  const t0 = Date.now();
  const m = await directGet(jsm, "GHOST", { seq: 7 });
  const took = Date.now() - t0;
  t.is(m?.seq, 7);
  t.is(asked, 2);
  t.true(took >= DIRECT_GET_ATTEMPT_MS - 50 && took < 4000, `answered after ${took} ms`);
});

test("one-pass reads of a store's metadata (the sweep's scan, replication's state, the bucket-empty check) delete their ordered consumers: none is left behind for its 5-minute inactivity threshold", async (t) => {
  const { jet, store } = await setup(t, "passes");
  for (let i = 0; i < 3; i++) await putObject(jet, store, `k${i}`, from(randomBytes(100)));
  const consumers = async () => (await jet.jsm.streams.info(store.stream)).state.consumer_count;
  t.is(await consumers(), 0);
  for (let round = 0; round < 3; round++) {
    t.is((await allVersions(jet.js, jet.jsm, store)).size, 3);
    t.is((await storeState(jet.js, jet.jsm, store)).size, 3);
    t.true(await hasLiveObject(jet.js, jet.jsm, store));
  }
  const deadline = Date.now() + 5000;
  while ((await consumers()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  t.is(await consumers(), 0, "nine passes, no consumer left");
});
