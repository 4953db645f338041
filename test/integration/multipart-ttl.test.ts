/**
 * Multipart parts carry a Nats-TTL (src/store/multipart.ts partTtlMs): an
 * upload that nobody completes or aborts, and that no sweep reaches (the
 * sweep is off here), leaves no bytes once the TTL passes — parts sent
 * inline, streamed through the actor, and written by the SDK itself on the
 * direct path alike. A completed upload's object is a copy without a TTL:
 * it outlives its parts' TTL and reads back byte for byte, through Shoal and
 * through stock @nats-io/obj.
 * Consistency promise: Atomicity (3) — an abandoned write's chunks are reclaimed.
 */
import test from "ava";
import { randomBytes } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { startShoal } from "../helpers/actors.ts";
import { connectTo } from "../helpers/nats.ts";
import { eventually } from "../helpers/eventually.ts";
import { chunkSubjectAll } from "../../src/subjects/index.ts";
import { partTtlMs } from "../../src/store/multipart.ts";

const MiB = 1024 * 1024;

test("an abandoned multipart upload leaves no chunks once its parts' TTL passes (sweep off); a completed one's object stays", async (t) => {
  const maxAge = 1000;
  const { url, client } = await startShoal(t, { storage: { multipartMaxAgeMs: maxAge, sweepIntervalMs: 0 } });
  const jsm = await jetstreamManager(await connectTo(t, url));
  await client.createBucket("mpttl");
  const chunks = async () => Object.values((await jsm.streams.info("OBJ_mpttl", { subjects_filter: chunkSubjectAll("mpttl") })).state.subjects ?? {}).reduce((a, b) => a + b, 0);

  // completed: its parts carry the TTL, its object does not
  const whole = [randomBytes(5 * MiB), randomBytes(700 * 1024)];
  const done = await client.createMultipart("mpttl", "kept.bin");
  const etags = [];
  for (const [i, p] of whole.entries()) etags.push((await client.uploadPart("mpttl", "kept.bin", done.uploadId, i + 1, p)).etag);
  await client.completeMultipart("mpttl", "kept.bin", done.uploadId, etags.map((etag, i) => ({ partNumber: i + 1, etag })));
  const objectChunks = await chunks();

  // abandoned: a small part (inline) and a large one (direct path: the SDK publishes it)
  const gone = await client.createMultipart("mpttl", "abandoned.bin");
  await client.uploadPart("mpttl", "abandoned.bin", gone.uploadId, 1, randomBytes(3000));
  await client.uploadPart("mpttl", "abandoned.bin", gone.uploadId, 2, randomBytes(2 * MiB + 5));
  t.true((await chunks()) > objectChunks, "the abandoned upload's parts are stored");

  const ttl = partTtlMs(maxAge);
  const { ms } = await eventually("abandoned parts expire", ttl + 20_000, async () => (await chunks()) === objectChunks);
  t.log(`parts gone ${ms} ms after the last upload (TTL ${ttl} ms)`);
  t.is(await chunks(), objectChunks, "only the completed object's chunks are left");
  const back = Buffer.from(await client.getBytes("mpttl", "kept.bin"));
  t.true(back.equals(Buffer.concat(whole)), "the completed object outlives its parts' TTL");
  const os = await new Objm(await connectTo(t, url)).open("mpttl");
  t.true(Buffer.from((await os.getBlob("kept.bin"))!).equals(back), "stock @nats-io/obj reads it");
});
