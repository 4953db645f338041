/**
 * The small-object PUT path (src/store/writer.ts putBytes), on one server:
 * - objects it writes — first write of a key (key read while the chunk goes
 *   out), overwrites with the revision remembered (chunk and metadata
 *   pipelined, no read), deletes and rewrites — read back byte for byte
 *   through stock @nats-io/obj (getBlob, list) and through Shoal's reader;
 * - a remembered revision that another writer made stale costs a retry,
 *   never a lost write: both writes are versions, the later one is live;
 * - a retried call (same request id) commits once;
 * - an overwrite during a read of the old version: the read still gets the
 *   old bytes (the replaced chunk stays for the sweep);
 * - existing streams get allow_batched/allow_atomic on first write.
 * Consistency promises: Atomicity (3), Read-after-write (2), the stock format.
 */
import test from "ava";
import { randomBytes } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { startServer, connectTo } from "../helpers/nats.ts";
import { putBytes, putObject, deleteObject } from "../../src/store/writer.ts";
import type { Jet } from "../../src/store/types.ts";
import { readObject, statObject } from "../../src/store/reader.ts";
import { ensureStore, storeRef } from "../../src/store/bucket.ts";
import { keyMessages } from "../../src/store/versions.ts";
import type { ExecutionContext } from "ava";

async function setup(t: ExecutionContext, bucket: string) {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const jet: Jet = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
  const store = storeRef(bucket);
  return { srv, nc, jet, store };
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(Buffer.from(c));
  return Buffer.concat(out);
}

test("small objects written by putBytes (first write, pipelined overwrites, after a delete) read back through stock @nats-io/obj and Shoal", async (t) => {
  const { nc, jet, store } = await setup(t, "smallstock");
  // a stream created the old way (without the batch features): the writer turns them on
  await jet.jsm.streams.add({ name: store.stream, subjects: [`$O.${store.name}.C.>`, `$O.${store.name}.M.>`], allow_direct: true, allow_rollup_hdrs: true, discard: "new" as never });
  const os = await new Objm(nc).open(store.name);
  const latest = new Map<string, Buffer>();
  for (let round = 0; round < 4; round++) {
    for (const key of ["a", "b/c.txt", "empty"]) {
      const body = key === "empty" ? Buffer.alloc(0) : randomBytes(1 + ((round * 997) % 4096));
      const info = await putBytes(jet, store, key, body, { contentType: "text/plain" });
      t.is(info.size, body.length);
      latest.set(key, body);
    }
    if (round === 1) {
      await deleteObject(jet, store, "a");
      t.is(await os.getBlob("a"), null, "stock sees the delete");
    }
  }
  const si = await jet.jsm.streams.info(store.stream);
  t.true(si.config.allow_batched === true && si.config.allow_atomic === true, "features enabled on the existing stream");
  for (const [key, body] of latest) {
    const blob = await os.getBlob(key);
    t.true(blob !== null && Buffer.from(blob).equals(body), `stock getBlob ${key}`);
    const info = await statObject(jet.jsm, store, key);
    t.true((await collect(readObject(jet.jsm, store, info))).equals(body), `Shoal read ${key}`);
  }
  const listed = (await os.list()).map((e) => e.name).sort();
  t.deepEqual(listed, ["a", "b/c.txt", "empty"]);
});

test("a stale remembered revision (another writer committed meanwhile) costs a retry, not a write: both are versions, the later is live", async (t) => {
  const { nc, jet, store } = await setup(t, "smallstale");
  await ensureStore(jet.jsm, store, 1);
  const other: Jet = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
  await putBytes(jet, store, "k", Buffer.from("one"));
  // another writer (not through this process's memory of the key): a streamed put
  await putObject(other, store, "k", (async function* () { yield Buffer.from("two"); })());
  const third = await putBytes(jet, store, "k", Buffer.from("three"));
  const live = await statObject(jet.jsm, store, "k");
  t.is(live.revision, third.revision);
  t.is((await collect(readObject(jet.jsm, store, live))).toString(), "three");
  const sizes = (await keyMessages(jet.jsm, store, "k")).map((m) => m.meta.size);
  t.deepEqual(sizes, [3, 3, 5], "every commit is its own metadata message (none lost, none rolled up)");
});

test("a key this process has not seen is guessed absent: a first PUT skips reading it; when another writer had written it, the guess costs a retry, not a write; a marker is not overwritten blindly", async (t) => {
  const { nc, jet, store } = await setup(t, "smallguess");
  await ensureStore(jet.jsm, store, 1);
  const other: Jet = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
  // no read of the key for a new key (the publishes are not API calls)
  const api: string[] = [];
  const mon = nc.subscribe("$JS.API.>", { callback: (_e, m) => void api.push(m.subject) });
  await nc.flush();
  const first = await putBytes(jet, store, "new", Buffer.from("fresh"));
  await nc.flush();
  mon.unsubscribe();
  // (the stream's info is read once per connection and cached; no Direct Get or message read of the key)
  t.deepEqual(api.filter((s) => !s.startsWith("$JS.API.STREAM.INFO.")), [], "a new key: chunk and commit only");
  t.is((await collect(readObject(jet.jsm, store, await statObject(jet.jsm, store, "new")))).toString(), "fresh");
  t.is(first.size, 5);
  // written by another writer only: this process guesses "absent", is refused, reads, commits after it
  await putObject(other, store, "theirs", (async function* () { yield Buffer.from("two"); })());
  const mine = await putBytes({ ...jet, jsm: await jetstreamManager(nc) }, store, "theirs", Buffer.from("three"));
  const live = await statObject(jet.jsm, store, "theirs");
  t.is(live.revision, mine.revision);
  t.is((await collect(readObject(jet.jsm, store, live))).toString(), "three");
  t.deepEqual((await keyMessages(jet.jsm, store, "theirs")).map((m) => m.meta.size), [3, 5], "both commits kept, in order");
  // a key whose last message is a delete marker written by another writer: refused, read, then committed over it
  await putObject(other, store, "gone", (async function* () { yield Buffer.from("x"); })());
  await deleteObject(other, store, "gone");
  const back = await putBytes({ ...jet, jsm: await jetstreamManager(nc) }, store, "gone", Buffer.from("back"));
  t.is((await statObject(jet.jsm, store, "gone")).revision, back.revision);
  t.is((await keyMessages(jet.jsm, store, "gone")).length, 3);
});

test("a retried small PUT (same request id) commits once", async (t) => {
  const { jet, store } = await setup(t, "smallretry");
  await ensureStore(jet.jsm, store, 1);
  await putBytes(jet, store, "k", Buffer.from("v0"));
  const a = await putBytes(jet, store, "k", Buffer.from("v1"), { requestId: "req-1" });
  const b = await putBytes(jet, store, "k", Buffer.from("v1"), { requestId: "req-1" });
  t.is(b.revision, a.revision);
  t.is((await keyMessages(jet.jsm, store, "k")).length, 2);
});

test("an overwrite during a read of the old version: the read still gets the old bytes", async (t) => {
  const { jet, store } = await setup(t, "smallgrace");
  await ensureStore(jet.jsm, store, 1);
  const old = randomBytes(3000);
  await putBytes(jet, store, "k", old);
  await putBytes(jet, store, "k", randomBytes(10)); // now remembered: the next overwrite is pipelined
  const mid = randomBytes(2000);
  await putBytes(jet, store, "k", mid);
  const info = await statObject(jet.jsm, store, "k"); // a GET has read the metadata…
  await putBytes(jet, store, "k", randomBytes(100)); // …the key is overwritten…
  await deleteObject(jet, store, "k"); // …and deleted…
  t.true((await collect(readObject(jet.jsm, store, info))).equals(mid), "…and the GET still streams the version it started");
});
