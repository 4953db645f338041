/**
 * src/jet reads and removals against nats-server 2.15: a batched Direct Get
 * walk returns exactly the bytes of one subject, in order, among other
 * subjects' messages, holding at most two windows (one of read-ahead); the
 * sequences of a subject without its payloads; deletes and purges.
 */
import test, { type ExecutionContext } from "ava";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connectTo, startServer } from "../helpers/nats.ts";
import { subjectCounts } from "../helpers/jet.ts";
import { readSubject, readSeqs, subjectSeqs, deleteSeqs, purgeSubject, getSeq, getLast, publish, type ReadStats } from "../../src/jet/index.ts";

const KiB = 1024;

async function setup(t: ExecutionContext) {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "D", subjects: ["d.>"], allow_direct: true });
  const js = jetstream(nc);
  // 96 chunks of one object interleaved with another subject's messages
  const bodies: Buffer[] = [];
  const seqs: number[] = [];
  for (let i = 0; i < 96; i++) {
    const b = randomBytes(64 * KiB + (i % 7));
    bodies.push(b);
    seqs.push((await js.publish("d.obj", b)).seq);
    if (i % 3 === 0) await js.publish("d.noise", randomBytes(10 * KiB));
  }
  return { nc, jsm, js, bodies, seqs };
}

test("a batched Direct Get walk returns the subject's exact bytes in order, with read-ahead bounded to one window", async (t) => {
  const { jsm, bodies } = await setup(t);
  const stats: ReadStats = { requests: 0, maxHeldBytes: 0 };
  const window = 512 * KiB;
  let i = 0;
  for await (const m of readSubject(jsm, "D", "d.obj", { windowBytes: window, stats })) {
    t.is(m.subject, "d.obj");
    t.true(Buffer.from(m.data).equals(bodies[i]!), `chunk ${i}`);
    i++;
  }
  t.is(i, 96);
  const total = bodies.reduce((a, b) => a + b.length, 0);
  t.log(`requests ${stats.requests}, most held ${stats.maxHeldBytes} bytes, window ${window}`);
  // windows of ≤ 512 KiB: each request brings at least 7 chunks of ~64 KiB
  t.true(stats.requests >= Math.ceil(total / (window + 64 * KiB)) && stats.requests <= Math.ceil(96 / 7) + 1, `requests ${stats.requests}`);
  // never more than the window being consumed plus the one ahead (each may pass the window by one message)
  t.true(stats.maxHeldBytes <= 2 * (window + 65 * KiB), `held ${stats.maxHeldBytes}`);
  t.true(stats.maxHeldBytes > window / 2);

  // A slow reader (a downstream that takes 5 ms per chunk): the next window
  // arrives while this one is consumed — read-ahead happens, and stays one window.
  const slow: ReadStats = { requests: 0, maxHeldBytes: 0 };
  i = 0;
  for await (const m of readSubject(jsm, "D", "d.obj", { windowBytes: window, stats: slow })) {
    t.true(Buffer.from(m.data).equals(bodies[i++]!));
    await sleep(5);
  }
  t.log(`slow reader: requests ${slow.requests}, most held ${slow.maxHeldBytes} bytes`);
  t.true(slow.maxHeldBytes > window, `read-ahead seen: ${slow.maxHeldBytes}`);
  t.true(slow.maxHeldBytes <= 2 * (window + 65 * KiB), `held ${slow.maxHeldBytes}`);
});

test("a walk stopped early fetches no more than one window ahead; `count` and `fromSeq` bound it", async (t) => {
  const { jsm, bodies, seqs } = await setup(t);
  const stats: ReadStats = { requests: 0, maxHeldBytes: 0 };
  let n = 0;
  for await (const _m of readSubject(jsm, "D", "d.obj", { windowBytes: 256 * KiB, stats })) if (++n === 3) break;
  t.true(stats.requests <= 2, `requests ${stats.requests}`);
  const got: Buffer[] = [];
  for await (const m of readSubject(jsm, "D", "d.obj", { windowBytes: 256 * KiB, fromSeq: seqs[10]!, count: 5 })) got.push(Buffer.from(m.data));
  t.deepEqual(got, bodies.slice(10, 15));
  let none = 0;
  for await (const _m of readSubject(jsm, "D", "d.nothing", { windowBytes: 256 * KiB })) none++;
  t.is(none, 0);
});

test("subject sequences without payloads; deletes and purges; single Direct Gets", async (t) => {
  const { nc, js, jsm, seqs } = await setup(t);
  t.deepEqual(await subjectSeqs(js, jsm, "D", "d.obj", { timeoutMs: 10_000 }), seqs);
  t.deepEqual(await subjectSeqs(js, jsm, "D", "d.none", { timeoutMs: 10_000 }), []);
  t.is(await deleteSeqs(jsm, "D", [seqs[0]!, seqs[1]!, 999_999]), 2);
  t.is(await getSeq(jsm, "D", seqs[0]!), null);
  t.is((await getSeq(jsm, "D", seqs[2]!))?.seq, seqs[2]);
  t.is((await getLast(jsm, "D", "d.obj"))?.seq, seqs.at(-1));
  t.is(await getLast(jsm, "D", "d.none"), null);
  t.is(await purgeSubject(jsm, "D", "d.obj"), 94);
  t.is((await subjectCounts(jsm, "D", "d.obj"))["d.obj"], undefined);
  // publish with an id: a retry of the same id lands once
  const a = await publish(js, "d.x", "1", { msgId: "same", attemptMs: 2000, deadlineMs: 5000 });
  const b = await publish(js, "d.x", "1", { msgId: "same", attemptMs: 2000, deadlineMs: 5000 });
  t.false(a.duplicate);
  t.true(b.duplicate);
  t.is(b.seq, a.seq);
  t.truthy(nc);
});

test("reading known sequences: several windows in flight, exact bytes in order, at most `inflight` windows held, a missing chunk fails the read", async (t) => {
  const { jsm, bodies, seqs } = await setup(t);
  const stats: ReadStats = { requests: 0, maxHeldBytes: 0 };
  let i = 0;
  for await (const m of readSeqs(jsm, "D", "d.obj", seqs, { windowMsgs: 8, inflight: 3, stats })) {
    t.true(Buffer.from(m.data).equals(bodies[i++]!), `chunk ${i}`);
    await sleep(2); // a slow reader: the windows ahead arrive meanwhile
  }
  t.is(i, 96);
  t.is(stats.requests, 12);
  t.log(`most held ${stats.maxHeldBytes} bytes (3 windows = ${3 * 8 * (64 * KiB + 6)})`);
  t.true(stats.maxHeldBytes > 8 * 64 * KiB, "read-ahead seen");
  t.true(stats.maxHeldBytes <= 3 * 8 * (64 * KiB + 6), `held ${stats.maxHeldBytes}`);
  await deleteSeqs(jsm, "D", [seqs[50]!]);
  const e = await t.throwsAsync(async () => {
    for await (const _m of readSeqs(jsm, "D", "d.obj", seqs, { windowMsgs: 8, inflight: 3 })) void _m;
  });
  t.regex(String((e as Error & { cause?: unknown }).cause), new RegExp(`expected d\\.obj#${seqs[50]}`));
});
