/**
 * src/jet fast-ingest batches against nats-server 2.15: every message
 * stored once and in order, paced by the server's flow-control acks; a batch
 * that stops half way keeps what it sent (fast ingest is not atomic); a final
 * metadata message whose expectation fails is refused while the chunks stay.
 */
import test, { type ExecutionContext } from "ava";
import { randomBytes } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connectTo, startServer } from "../helpers/nats.ts";
import { subjectCounts } from "../helpers/jet.ts";
import { eventually } from "../helpers/wait.ts";
import { ingest, readSubject, JS_CODES } from "../../src/jet/index.ts";
import { ShoalError } from "../../src/errors/index.ts";

const KiB = 1024;

async function setup(t: ExecutionContext) {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "F", subjects: ["f.>"], allow_batched: true, allow_direct: true, allow_rollup_hdrs: true });
  return { nc, jsm, js: jetstream(nc) };
}

test("a fast-ingest batch stores every message once, in order, paced by flow-control acks", async (t) => {
  const { nc, jsm } = await setup(t);
  const bodies = Array.from({ length: 200 }, (_, i) => randomBytes(128 * KiB - i));
  const r = await ingest(nc, "f.c.1", bodies, { timeoutMs: 10_000, ackInterval: 4, maxOutstandingAcks: 1 });
  t.is(r.count, 200);
  t.is(r.ack.count, 200);
  // the client never ran more than one window ahead of the server's acks, and did run ahead
  t.true(r.maxUnacked > 0 && r.maxUnacked <= 4, `max unacked ${r.maxUnacked}`);
  t.deepEqual(await subjectCounts(jsm, "F"), { "f.c.1": 200 });
  let i = 0;
  for await (const m of readSubject(jsm, "F", "f.c.1", { windowBytes: 1024 * KiB })) t.true(Buffer.from(m.data).equals(bodies[i++]!), `message ${i}`);
  t.is(i, 200);
});

test("a fast-ingest batch may end with a message on another subject (metadata with rollup)", async (t) => {
  const { nc, jsm, js } = await setup(t);
  await js.publish("f.m.k", "old meta");
  const r = await ingest(nc, "f.c.2", [randomBytes(1000), randomBytes(1000)], { timeoutMs: 10_000, last: { subject: "f.m.k", data: "new meta", rollup: "sub", expectLastSubjectSeq: 1 } });
  t.is(r.ack.count, 3);
  t.deepEqual(await subjectCounts(jsm, "F"), { "f.c.2": 2, "f.m.k": 1 });
});

test("fast ingest is not atomic: a failing final expectation is refused but the chunks stay; an abandoned batch keeps what it sent", async (t) => {
  const { nc, jsm, js } = await setup(t);
  await js.publish("f.m.k", "meta");
  const e = await t.throwsAsync(ingest(nc, "f.c.3", [randomBytes(1000), randomBytes(1000)], { timeoutMs: 10_000, last: { subject: "f.m.k", data: "stale", expectLastSubjectSeq: 999 } }));
  t.true(e instanceof ShoalError);
  t.is((e as ShoalError).code, "Conflict");
  t.is((e as ShoalError).detail?.["jsCode"], JS_CODES.StreamWrongLastSequence);
  t.deepEqual(await subjectCounts(jsm, "F"), { "f.c.3": 2, "f.m.k": 1 });

  const ac = new AbortController();
  function* body() {
    for (let i = 0; i < 50; i++) {
      if (i === 20) ac.abort(new Error("client went away"));
      yield randomBytes(4 * KiB);
    }
  }
  await t.throwsAsync(ingest(nc, "f.c.4", body(), { timeoutMs: 10_000, ackInterval: 5, signal: ac.signal }), { message: "client went away" });
  await eventually(async () => (await subjectCounts(jsm, "F", "f.c.4"))["f.c.4"] === 20, (ok) => ok, { timeoutMs: 10_000, what: "the 20 sent messages to be stored" });
});

test("a stream without allow_batched refuses a fast-ingest batch with a typed error", async (t) => {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "P", subjects: ["p.>"] });
  const e = await t.throwsAsync(ingest(nc, "p.c", [randomBytes(10), randomBytes(10)], { timeoutMs: 5000 }));
  t.true(e instanceof ShoalError);
  t.is((e as ShoalError).detail?.["jsCode"], JS_CODES.BatchedDisabled);
  t.deepEqual(await subjectCounts(jsm, "P"), {});
});
