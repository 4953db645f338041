/**
 * Per-message TTL (nats-server 2.11, stream `allow_msg_ttl`), measured on
 * 2.15: what expires, when, and what a later commit can and cannot change.
 *
 * Finding (asserted below): a stored message's TTL cannot be removed or
 * extended. A later message on the same subject — with `Nats-TTL: never`,
 * with a rollup, or an atomic batch that commits the object — does not save
 * it. So "the commit clears the TTL" is impossible; the only way for
 * committed bytes to outlive an upload TTL is to be stored again without one
 * (a copy) before it passes. Shoal's design (docs/datapath.md) therefore puts
 * TTLs only on bytes that are copied anyway (multipart parts) or never
 * committed, and gives single PUTs no TTL at all.
 */
import test, { type ExecutionContext } from "ava";
import { randomBytes } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connectTo, startServer } from "../helpers/nats.ts";
import { subjectCounts } from "../helpers/jet.ts";
import { eventually } from "../helpers/wait.ts";
import { publish, publishAtomic, ingest, readSubject, getSeq, ttlValue, JS_CODES } from "../../src/jet/index.ts";
import { ShoalError } from "../../src/errors/index.ts";

async function setup(t: ExecutionContext) {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "T", subjects: ["t.>"], allow_msg_ttl: true, allow_atomic: true, allow_batched: true, allow_direct: true, allow_rollup_hdrs: true });
  return { nc, jsm, js: jetstream(nc) };
}
const P = { attemptMs: 2000, deadlineMs: 5000 };

test("a TTL'd message disappears once its TTL has passed; one without a TTL stays", async (t) => {
  const { js, jsm } = await setup(t);
  const t0 = Date.now();
  const a = await publish(js, "t.c.a", "expires", { msgId: "a", ttlMs: 1000, ...P });
  const b = await publish(js, "t.c.b", "stays", { msgId: "b", ...P });
  t.truthy(await getSeq(jsm, "T", a.seq));
  await eventually(async () => (await getSeq(jsm, "T", a.seq)) === null, (ok) => ok, { timeoutMs: 15_000, what: "the TTL'd message to expire" });
  const gone = Date.now() - t0;
  t.log(`1 s TTL: gone after ${gone} ms`);
  t.true(gone >= 1000, `expired early: ${gone} ms`);
  t.truthy(await getSeq(jsm, "T", b.seq));
  t.throws(() => ttlValue(999), { instanceOf: RangeError });
  t.is(ttlValue(1500), "2s");
});

test("nothing a later commit does clears a stored message's TTL: not Nats-TTL never, not a rollup, not an atomic batch", async (t) => {
  const { nc, js, jsm } = await setup(t);
  const chunk = await publish(js, "t.c.x", "chunk", { msgId: "x1", ttlMs: 2000, ...P });
  // 1. the same subject again with TTL never
  const again = await publish(js, "t.c.x", "chunk", { msgId: "x2", ttlMs: "never", ...P });
  // 2. a rollup of another subject in an atomic batch with the metadata (the "commit")
  const commit = await publishAtomic(nc, [{ subject: "t.m.x", data: "meta", rollup: "sub" }, { subject: "t.c.y", data: "other", ttlMs: "never" }], { timeoutMs: 5000 });
  t.is(commit.count, 2);
  await eventually(async () => (await getSeq(jsm, "T", chunk.seq)) === null, (ok) => ok, { timeoutMs: 15_000, what: "the first chunk to expire" });
  t.truthy(await getSeq(jsm, "T", again.seq), "the later never-expiring message stays");
  t.truthy(await getSeq(jsm, "T", commit.seq));
  // 3. a rollup of the TTL'd subject itself removes it at once (it does not keep it)
  const c2 = await publish(js, "t.c.z", "chunk", { msgId: "z1", ttlMs: 60_000, ...P });
  await publish(js, "t.c.z", "keep", { msgId: "z2", rollup: "sub", ...P });
  t.is(await getSeq(jsm, "T", c2.seq), null);
});

test("an upload whose chunks carry a TTL: committed by storing the bytes again without one it survives; abandoned it disappears", async (t) => {
  const { nc, jsm } = await setup(t);
  const parts = [randomBytes(50_000), randomBytes(50_000), randomBytes(7)];
  // two uploads, chunks TTL'd (the upload deadline), through fast ingest
  for (const u of ["up1", "up2"]) await ingest(nc, `t.c.${u}`, parts, { timeoutMs: 5000, each: { ttlMs: 2000 } });
  t.deepEqual(await subjectCounts(jsm, "T"), { "t.c.up1": 3, "t.c.up2": 3 });
  // up1 commits: its bytes are stored again on the object's subject, no TTL, with the metadata last
  async function* copy() {
    for await (const m of readSubject(jsm, "T", "t.c.up1", { windowBytes: 1 << 20 })) yield m.data;
  }
  const r = await ingest(nc, "t.c.obj1", copy(), { timeoutMs: 5000, last: { subject: "t.m.obj1", data: "meta", rollup: "sub" } });
  t.is(r.count, 3);
  await eventually(
    async () => {
      const c = await subjectCounts(jsm, "T");
      return c["t.c.up1"] === undefined && c["t.c.up2"] === undefined;
    },
    (ok) => ok,
    { timeoutMs: 15_000, what: "both uploads' TTL'd chunks to expire" },
  );
  const got: Buffer[] = [];
  for await (const m of readSubject(jsm, "T", "t.c.obj1", { windowBytes: 1 << 20 })) got.push(Buffer.from(m.data));
  t.deepEqual(got, parts);
});

test("Nats-TTL on a stream without allow_msg_ttl is refused with a typed error", async (t) => {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "N", subjects: ["n.>"] });
  const e = await t.throwsAsync(publish(jetstream(nc), "n.x", "1", { msgId: "n", ttlMs: 5000, ...P }));
  t.true(e instanceof ShoalError);
  t.is((e as ShoalError).detail?.["jsCode"], JS_CODES.MessageTtlDisabled);
});
