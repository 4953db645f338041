import test from "ava";
import fc from "fast-check";
import { checkProperty } from "../helpers/prop.ts";
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import { runActor, startShoal } from "../helpers/actors.ts";
import { connectTo } from "../helpers/nats.ts";
import { replicator } from "../../actors/replicator/index.ts";
import type { DeliveredEvent, ShoalClient } from "../../src/client/index.ts";

/** Reads events until `n` arrived or `ms` passed. */
async function take(client: ShoalClient, n: number, ms: number, opts: Parameters<ShoalClient["events"]>[0] = {}): Promise<DeliveredEvent[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  const out: DeliveredEvent[] = [];
  try {
    for await (const e of client.events({ from: "all", ...opts, signal: ac.signal })) {
      out.push(e);
      if (out.length >= n) break;
    }
  } finally {
    clearTimeout(timer);
  }
  return out;
}

test("one event per committed change, in commit order, with S3 event names; buckets created later are picked up", async (t) => {
  const { url, client } = await startShoal(t);
  await runActor(t, url, replicator);
  await client.createBucket("ev-one");
  await client.put("ev-one", "a.txt", "v1", { contentType: "text/plain" });
  await client.put("ev-one", "a.txt", "v2");
  await client.delete("ev-one", "a.txt");
  await client.delete("ev-one", "a.txt"); // nothing committed: no event
  await client.createBucket("ev-two"); // after the replicator started
  await client.put("ev-two", "b/c.bin", "x");
  const evs = await take(client, 4, 10_000);
  const one = evs.filter((e) => e.bucket === "ev-one");
  t.deepEqual(one.map((e) => [e.eventName, e.key, e.size]), [
    ["s3:ObjectCreated:Put", "a.txt", 2],
    ["s3:ObjectCreated:Put", "a.txt", 2],
    ["s3:ObjectRemoved:Delete", "a.txt", 0],
  ]);
  t.is(one[0]!.etag, createHash("md5").update("v1").digest("hex"));
  t.is(one[0]!.contentType, "text/plain");
  t.true(one[0]!.sequencer < one[1]!.sequencer && one[1]!.sequencer < one[2]!.sequencer);
  t.deepEqual(evs.filter((e) => e.bucket === "ev-two").map((e) => e.key), ["b/c.bin"]);
  // filters: by bucket (subject) and by prefix (client side); nothing more arrives
  const two = await take(client, 10, 1500, { bucket: "ev-two" });
  t.deepEqual(two.map((e) => e.key), ["b/c.bin"]);
  t.deepEqual((await take(client, 10, 1500, { prefix: "a." })).map((e) => e.key), ["a.txt", "a.txt", "a.txt"]);
  // subjects are shoal.events.<bucket>.<created|deleted>
  const jsm = await jetstreamManager(await connectTo(t, url));
  const subjects = (await jsm.streams.info("SHOAL_EVENTS", { subjects_filter: ">" })).state.subjects ?? {};
  t.deepEqual(subjects, { "shoal.events.ev-one.created": 2, "shoal.events.ev-one.deleted": 1, "shoal.events.ev-two.created": 1 });
  // each of the four readers above deleted its consumer when it stopped (not left for 5 minutes)
  const deadline = Date.now() + 5000;
  while ((await jsm.streams.info("SHOAL_EVENTS")).state.consumer_count > 0 && Date.now() < deadline) await sleep(100);
  t.is((await jsm.streams.info("SHOAL_EVENTS")).state.consumer_count, 0);
});

test("a durable events consumer resumes where it left off", async (t) => {
  const { url, client } = await startShoal(t);
  await runActor(t, url, replicator);
  await client.createBucket("ev-durable");
  for (let i = 0; i < 3; i++) await client.put("ev-durable", `k${i}`, "x");
  t.deepEqual((await take(client, 2, 10_000, { durable: "reader" })).map((e) => e.key), ["k0", "k1"]);
  for (let i = 3; i < 5; i++) await client.put("ev-durable", `k${i}`, "x");
  t.deepEqual((await take(client, 3, 10_000, { durable: "reader" })).map((e) => e.key), ["k2", "k3", "k4"]);
});

type Op = { kind: "put"; key: string } | { kind: "delete"; key: string } | { kind: "kill" };

test("property: with replicator crashes and restarts between changes, two instances running, the event stream holds exactly one event per committed change, in order per key", async (t) => {
  const { url, client } = await startShoal(t);
  let bucketNo = 0;
  const seed = Number(process.env["SHOAL_SEED"] ?? Date.now() % 2 ** 31);
  t.log(`seed ${seed} (replay: SHOAL_SEED=${seed} npx ava test/integration/events.test.ts)`);
  await checkProperty(
    t,
    fc.asyncProperty(
      fc.array(
        fc.oneof(
          { weight: 5, arbitrary: fc.record({ kind: fc.constant("put" as const), key: fc.constantFrom("a", "b", "c") }) },
          { weight: 3, arbitrary: fc.record({ kind: fc.constant("delete" as const), key: fc.constantFrom("a", "b", "c") }) },
          { weight: 2, arbitrary: fc.constant({ kind: "kill" as const }) },
        ),
        { minLength: 1, maxLength: 14 },
      ),
      async (ops: Op[]) => {
        const bucket = `prop-${bucketNo++}`;
        await client.createBucket(bucket);
        const instances = [await runActor(t, url, replicator), await runActor(t, url, replicator)];
        const expected: Array<{ key: string; name: string; revision: number }> = [];
        for (const op of ops) {
          if (op.kind === "kill") {
            // crash one instance (no drain, no acks) and start a fresh one
            const victim = instances.shift()!;
            await victim.kill();
            instances.push(await runActor(t, url, replicator));
          } else if (op.kind === "put") {
            const info = await client.put(bucket, op.key, `${op.key}@${expected.length}`);
            expected.push({ key: op.key, name: "s3:ObjectCreated:Put", revision: info.revision });
          } else {
            const r = await client.delete(bucket, op.key);
            if (r.deleted) expected.push({ key: op.key, name: "s3:ObjectRemoved:Delete", revision: -1 });
          }
        }
        const got = await take(client, expected.length, 15_000, { bucket });
        // nothing extra arrives afterwards either
        const extra = await take(client, expected.length + 1, 1500, { bucket });
        for (const i of instances) await i.stop(1000);
        const perKey = (xs: Array<{ key: string; name: string }>, k: string) => xs.filter((e) => e.key === k).map((e) => e.name);
        const gotNamed = got.map((e) => ({ key: e.key, name: e.eventName }));
        for (const k of ["a", "b", "c"]) {
          if (JSON.stringify(perKey(gotNamed, k)) !== JSON.stringify(perKey(expected, k))) return false;
        }
        const revisions = got.filter((e) => e.eventName === "s3:ObjectCreated:Put").map((e) => e.revision);
        const wanted = expected.filter((e) => e.revision > 0).map((e) => e.revision);
        return got.length === expected.length && extra.length === expected.length && JSON.stringify(revisions.sort()) === JSON.stringify(wanted.sort());
      },
    ),
    // fast-check's own report (seed, path, counterexample) is the failure message
    { numRuns: 8, interruptAfterTimeLimit: 150_000, seed },
  );
  await sleep(10);
});
