/**
 * The multipart design of docs/datapath.md at the primitive level, against
 * nats-server 2.15 and stock @nats-io/obj:
 * - parts live on `<chunk subject of the upload>.<part>` with a TTL (an
 *   abandoned upload leaves nothing once it passes), invisible to stock
 *   list/get;
 * - completion is one metadata publish marked deleted for stock readers
 *   (they see "not found", not a corrupt or hanging read) until a
 *   background copy has composed the parts onto the object's chunk subject
 *   with the stock metadata last; one purge then removes every part.
 * Also what stock readers do meanwhile if the metadata pointed at a
 * half-copied subject: a digest error.
 */
import test from "ava";
import { createHash, randomBytes } from "node:crypto";
import { jetstreamManager, jetstream } from "@nats-io/jetstream";
import { nuid } from "@nats-io/nats-core";
import { Objm } from "@nats-io/obj";
import { connectTo, startServer } from "../helpers/nats.ts";
import { subjectCounts } from "../helpers/jet.ts";
import { eventually } from "../helpers/wait.ts";
import { enableFeatures, ingest, publish, purgeSubject, readSubject } from "../../src/jet/index.ts";
import { chunkSubject, metaSubject, objectStoreStream, chunkSubjectAll } from "../../src/subjects/index.ts";

const KiB = 1024;
const stockInfo = (name: string, store: string, id: string, body: Buffer, chunks: number, deleted = false) =>
  JSON.stringify({
    name,
    bucket: store,
    nuid: id,
    size: deleted ? 0 : body.length,
    chunks: deleted ? 0 : chunks,
    mtime: new Date().toISOString(),
    digest: deleted ? "" : `SHA-256=${createHash("sha256").update(body).digest("base64url")}=`,
    deleted,
    options: { max_chunk_size: 128 * KiB },
  });

test("multipart: TTL'd parts, completion visible to stock only after a background compose, one purge for all parts", async (t) => {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const os = await new Objm(nc).create("mpu");
  const stream = objectStoreStream("mpu");
  await enableFeatures(jsm, stream, { batched: true, msgTtl: true, atomic: true });
  await os.putBlob({ name: "other" }, randomBytes(10));

  // two uploads: parts through fast ingest with a TTL (the upload's expiry)
  const parts = [randomBytes(300 * KiB), randomBytes(200 * KiB), randomBytes(5 * KiB)];
  const [up1, up2] = [nuid.next(), nuid.next()];
  const partSubject = (up: string, n: number) => `${chunkSubject("mpu", up)}.${n}`;
  for (const up of [up1, up2]) {
    // out of order, as concurrent S3 part uploads arrive
    for (const n of [2, 0, 1]) {
      const chunks = [];
      for (let o = 0; o < parts[n]!.length; o += 128 * KiB) chunks.push(parts[n]!.subarray(o, o + 128 * KiB));
      await ingest(nc, partSubject(up, n), chunks, { timeoutMs: 5000, each: { ttlMs: 3000 } });
    }
  }
  // stock sees only the plain object
  t.deepEqual((await os.list()).map((o) => o.name), ["other"]);

  // completion of up1: one metadata publish, deleted for stock readers
  const body = Buffer.concat(parts);
  const final = nuid.next();
  await publish(js, metaSubject("mpu", "big"), stockInfo("big", "mpu", final, body, 0, true), { msgId: `complete-${up1}`, rollup: "sub", attemptMs: 2000, deadlineMs: 5000 });
  t.is(await os.getBlob("big"), null, "stock: not found while composing");
  t.deepEqual((await os.list()).map((o) => o.name), ["other"]);

  // background compose: parts in order → the object's chunk subject, stock metadata last
  async function* composed() {
    for (let n = 0; n < parts.length; n++) for await (const m of readSubject(jsm, stream, partSubject(up1, n), { windowBytes: 1024 * KiB })) yield m.data;
  }
  const r = await ingest(nc, chunkSubject("mpu", final), composed(), { timeoutMs: 5000, last: { subject: metaSubject("mpu", "big"), data: stockInfo("big", "mpu", final, body, 6), rollup: "sub" } });
  t.is(r.count, 6);
  const stock = await new Objm(nc).open("mpu");
  t.true(Buffer.from((await stock.getBlob("big"))!).equals(body), "stock reads the composed object byte for byte");
  // one purge removes every part of the upload
  t.is(await purgeSubject(jsm, stream, `${chunkSubject("mpu", up1)}.>`), 6);
  // the abandoned upload's parts expire by themselves; the composed object stays
  await eventually(async () => Object.keys(await subjectCounts(jsm, stream, `${chunkSubject("mpu", up2)}.>`)).length === 0, (ok) => ok, { timeoutMs: 15_000, what: "the abandoned upload's parts to expire" });
  t.true(Buffer.from((await stock.getBlob("big"))!).equals(body));
  t.deepEqual(Object.keys(await subjectCounts(jsm, stream, chunkSubjectAll("mpu"))).length, 2); // "other" and "big"
});

test("stock readers of metadata that points at a half-copied chunk subject get a digest error", async (t) => {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const js = jetstream(nc);
  const os = await new Objm(nc).create("half");
  const body = randomBytes(300 * KiB);
  const id = nuid.next();
  await js.publish(chunkSubject("half", id), body.subarray(0, 128 * KiB));
  await publish(js, metaSubject("half", "k"), stockInfo("k", "half", id, body, 3), { msgId: "m", rollup: "sub", attemptMs: 2000, deadlineMs: 5000 });
  await t.throwsAsync(os.getBlob("k"), { message: /digests do not match/ });
});
