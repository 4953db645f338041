/**
 * Read barriers (src/runtime/linear.ts): a linearizable read returns the
 * data as of a barrier published after it began; concurrent reads share
 * barriers, but never one that was already in flight when they began.
 * (A stale leader, the reason for all this: test/cluster/stale-leader.test.ts.)
 */
import test from "ava";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { startServer, connectTo } from "../helpers/nats.ts";
import { ensureStore, storeRef } from "../../src/store/bucket.ts";
import { putObject } from "../../src/store/writer.ts";
import { barrierFor, linearLast } from "../../src/runtime/linear.ts";
import { barrierSubject, metaSubject } from "../../src/subjects/index.ts";

async function* bytes(s: string) {
  yield new TextEncoder().encode(s);
}

test("a read that begins while a barrier is in flight waits for a later one; reads that begin together share it", async (t) => {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const jet = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
  const store = storeRef("linear");
  await ensureStore(jet.jsm, store, 1);
  const subj = barrierSubject(store.name);
  const first = barrierFor(jet.js, store.stream, subj);
  // begun while `first` is in flight: they share the next barrier, after it
  const [a, b, c] = await Promise.all([first, barrierFor(jet.js, store.stream, subj), barrierFor(jet.js, store.stream, subj)]);
  t.true(b > a, `a read begun during barrier ${a} got ${b}`);
  t.is(c, b, "reads begun during the same barrier share the next one");
  // one barrier message is kept (rollup)
  t.is((await jet.jsm.streams.info(store.stream, { subjects_filter: subj })).state.subjects?.[subj], 1);
});

test("linearLast returns the last acknowledged write, or null for a key never written; 32 concurrent reads need far fewer barriers", async (t) => {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const jet = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
  const store = storeRef("linear2");
  await ensureStore(jet.jsm, store, 1);
  const bar = barrierSubject(store.name);
  t.is(await linearLast(jet.js, jet.jsm, store.stream, metaSubject(store.name, "k"), bar), null);
  const w = await putObject(jet, store, "k", bytes("one"));
  const m = await linearLast(jet.js, jet.jsm, store.stream, metaSubject(store.name, "k"), bar);
  t.is(m?.seq, w.revision);
  const before = (await jet.jsm.streams.info(store.stream)).state.last_seq;
  const got = await Promise.all(Array.from({ length: 32 }, () => linearLast(jet.js, jet.jsm, store.stream, metaSubject(store.name, "k"), bar)));
  t.true(got.every((x) => x?.seq === w.revision));
  const barriers = (await jet.jsm.streams.info(store.stream)).state.last_seq - before;
  t.log(`32 concurrent reads, ${barriers} barriers`);
  t.true(barriers >= 1 && barriers <= 4, `${barriers} barriers`);
});
