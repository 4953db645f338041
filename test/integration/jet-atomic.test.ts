/**
 * src/jet atomic batches against nats-server 2.15: all or nothing, with a
 * per-message expectation that fails in the middle; what the server refuses
 * and with which code; a small object's chunk and metadata (with a rollup of
 * the metadata subject) in one batch, read back by stock @nats-io/obj from
 * a store stock @nats-io/obj created.
 */
import test, { type ExecutionContext } from "ava";
import { createHash, randomBytes } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers, nuid } from "@nats-io/nats-core";
import { Objm } from "@nats-io/obj";
import { connectTo, startServer } from "../helpers/nats.ts";
import { subjectCounts } from "../helpers/jet.ts";
import { publishAtomic, enableFeatures, getSeq, ATOMIC_CODES, JS_CODES } from "../../src/jet/index.ts";
import { ShoalError } from "../../src/errors/index.ts";
import { chunkSubject, metaSubject, objectStoreStream } from "../../src/subjects/index.ts";

const enc = (s: string) => new TextEncoder().encode(s);

async function setup(t: ExecutionContext) {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const jsm = await jetstreamManager(nc);
  return { srv, nc, jsm, js: jetstream(nc) };
}

function jetCode(e: unknown): number | undefined {
  return e instanceof ShoalError ? (e.detail?.["jsCode"] as number | undefined) : undefined;
}

test("an atomic batch is stored whole, on consecutive sequences ending at the commit's", async (t) => {
  const { nc, jsm, js } = await setup(t);
  await jsm.streams.add({ name: "A", subjects: ["a.>"], allow_atomic: true, allow_direct: true });
  await js.publish("a.other", "before");
  const bodies = Array.from({ length: 5 }, (_, i) => randomBytes(1000 + i));
  const ack = await publishAtomic(nc, [...bodies.map((b) => ({ subject: "a.chunk", data: b })), { subject: "a.meta", data: "m" }], { timeoutMs: 5000 });
  t.is(ack.count, 6);
  t.is(ack.firstSeq, 2);
  t.is(ack.seq, 7);
  for (let i = 0; i < bodies.length; i++) {
    const m = await getSeq(jsm, "A", ack.firstSeq + i);
    t.is(m?.subject, "a.chunk");
    t.deepEqual(Buffer.from(m!.data), bodies[i]);
  }
  t.is((await getSeq(jsm, "A", ack.seq))?.subject, "a.meta");
});

test("a failing per-message expectation in the middle stores nothing of the batch (Conflict, 10071)", async (t) => {
  const { nc, jsm, js } = await setup(t);
  await jsm.streams.add({ name: "A", subjects: ["a.>"], allow_atomic: true });
  const guard = await js.publish("a.guard", "g");
  const before = await subjectCounts(jsm, "A");
  const e = await t.throwsAsync(
    publishAtomic(
      nc,
      [
        { subject: "a.chunk", data: "1" },
        { subject: "a.chunk", data: "2" },
        { subject: "a.guard", data: "stale", expectLastSubjectSeq: guard.seq + 100 },
        { subject: "a.chunk", data: "3" },
        { subject: "a.meta", data: "m" },
      ],
      { timeoutMs: 5000 },
    ),
  );
  t.true(e instanceof ShoalError);
  t.is((e as ShoalError).code, "Conflict");
  t.is(jetCode(e), JS_CODES.StreamWrongLastSequence);
  t.deepEqual(await subjectCounts(jsm, "A"), before);
  t.is((await jsm.streams.info("A")).state.last_seq, guard.seq);
  // the same batch with the expectation that holds is stored whole
  const ok = await publishAtomic(nc, [{ subject: "a.chunk", data: "1" }, { subject: "a.guard", data: "new", expectLastSubjectSeq: guard.seq }, { subject: "a.meta", data: "m" }], { timeoutMs: 5000 });
  t.is(ok.count, 3);
  t.deepEqual(await subjectCounts(jsm, "A"), { "a.chunk": 1, "a.guard": 2, "a.meta": 1 });
});

test("what the server refuses in a batch, by code: feature off, rollup all, a repeated msg id", async (t) => {
  const { nc, jsm } = await setup(t);
  await jsm.streams.add({ name: "OFF", subjects: ["off.>"] });
  await jsm.streams.add({ name: "A", subjects: ["a.>"], allow_atomic: true, allow_rollup_hdrs: true });
  const off = await t.throwsAsync(publishAtomic(nc, [{ subject: "off.x", data: "1" }, { subject: "off.y", data: "2" }], { timeoutMs: 5000 }));
  t.is(jetCode(off), ATOMIC_CODES.Disabled);
  const rollupAll = headers();
  rollupAll.set("Nats-Rollup", "all");
  const all = await t.throwsAsync(publishAtomic(nc, [{ subject: "a.x", data: "1" }, { subject: "a.y", data: "2", headers: rollupAll }], { timeoutMs: 5000 }));
  t.is(jetCode(all), ATOMIC_CODES.RollupAllInvalid);
  // A retried batch whose first commit landed is refused whole, not stored twice.
  const ids = [nuid.next(), nuid.next()];
  const batch = [
    { subject: "a.c", data: "1", msgId: ids[0] },
    { subject: "a.m", data: "2", msgId: ids[1] },
  ];
  await publishAtomic(nc, batch, { timeoutMs: 5000 });
  const again = await t.throwsAsync(publishAtomic(nc, batch, { timeoutMs: 5000 }));
  t.is(jetCode(again), ATOMIC_CODES.DuplicateMsgId);
  t.deepEqual(await subjectCounts(jsm, "A"), { "a.c": 1, "a.m": 1 });
  await t.throwsAsync(publishAtomic(nc, Array.from({ length: 1001 }, () => ({ subject: "a.c", data: "x" })), { timeoutMs: 5000 }), { instanceOf: RangeError });
});

test("a small object as one atomic batch (chunk + metadata rolled up) in a store stock @nats-io/obj created reads back through stock @nats-io/obj", async (t) => {
  const { nc, jsm } = await setup(t);
  const objm = new Objm(nc);
  const os = await objm.create("small");
  await os.putBlob({ name: "k" }, enc("first version"));
  const stream = objectStoreStream("small");
  const si = await enableFeatures(jsm, stream, { atomic: true, batched: true, msgTtl: true });
  t.true(si.config.allow_atomic && si.config.allow_batched && si.config.allow_msg_ttl);
  // allow_msg_ttl is one-way (measured: 10052)
  const off = await t.throwsAsync(jsm.streams.update(stream, { ...si.config, allow_msg_ttl: false }));
  t.is((off as { code?: number }).code, JS_CODES.MessageTtlCannotDisable);

  const old = await os.info("k");
  const body = randomBytes(4096);
  const id = nuid.next();
  const info = {
    name: "k",
    bucket: "small",
    nuid: id,
    size: body.length,
    chunks: 1,
    mtime: new Date().toISOString(),
    digest: `SHA-256=${createHash("sha256").update(body).digest("base64url")}=`,
    deleted: false,
    options: { max_chunk_size: 128 * 1024 },
  };
  const meta = metaSubject("small", "k");
  const ack = await publishAtomic(
    nc,
    [
      { subject: chunkSubject("small", id), data: body },
      { subject: meta, data: JSON.stringify(info), rollup: "sub", expectLastSubjectSeq: old!.revision },
    ],
    { timeoutMs: 5000 },
  );
  t.is(ack.count, 2);
  // the rollup left one metadata message; the old chunks are the caller's to purge
  t.is((await subjectCounts(jsm, stream, meta))[meta], 1);
  const stock = await new Objm(nc).open("small");
  const got = await stock.getBlob("k");
  t.deepEqual(Buffer.from(got!), body);
  const listed = await stock.list();
  t.deepEqual(listed.map((o) => [o.name, o.size]), [["k", 4096]]);
  // stock put keeps working on the updated stream
  await stock.putBlob({ name: "k2" }, enc("stock after update"));
  t.is(new TextDecoder().decode((await stock.getBlob("k2"))!), "stock after update");
  // and a stale expectation (a concurrent writer won) stores nothing
  const e = await t.throwsAsync(
    publishAtomic(nc, [{ subject: chunkSubject("small", nuid.next()), data: body }, { subject: meta, data: JSON.stringify(info), rollup: "sub", expectLastSubjectSeq: old!.revision }], { timeoutMs: 5000 }),
  );
  t.is((e as ShoalError).code, "Conflict");
  t.deepEqual(Buffer.from((await stock.getBlob("k"))!), body);
});
