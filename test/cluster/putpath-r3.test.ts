/**
 * The PUT paths on an R3 stream of a 3-server cluster: small objects
 * (putBytes — the first write reads the key while the chunk goes out, later
 * overwrites use the remembered revision, chunk acknowledged before the
 * metadata at R3) and large ones (putObject, several chunks) read back byte
 * for byte through stock @nats-io/obj (getBlob, list) and Shoal's reader.
 * Consistency promise: Durability/Atomicity of a commit, in the stock format.
 */
import test, { type ExecutionContext } from "ava";
import { randomBytes } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { startCluster, connectTo } from "../helpers/nats.ts";
import { putBytes, putObject } from "../../src/store/writer.ts";
import type { Jet } from "../../src/store/types.ts";
import { readObject, statObject } from "../../src/store/reader.ts";
import { ensureStore, storeRef } from "../../src/store/bucket.ts";

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(Buffer.from(c));
  return Buffer.concat(out);
}

/** A 3-server cluster, a connection to it and an R3 store named `name`. */
async function r3Store(t: ExecutionContext, name: string) {
  const cl = await startCluster(t, 3);
  const nc = await connectTo(t, cl.urls);
  const jet: Jet = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc, { timeout: 20_000 }) };
  const store = storeRef(name);
  await ensureStore(jet.jsm, store, 3);
  return { nc, jet, store };
}

test("R3: small and large objects written by Shoal's PUT paths read back through stock @nats-io/obj", async (t) => {
  const { nc, jet, store } = await r3Store(t, "putpath-r3");
  const latest = new Map<string, Buffer>();
  for (let round = 0; round < 3; round++) {
    for (const key of ["s1", "s2"]) {
      const body = randomBytes(100 + round * 1500);
      await putBytes(jet, store, key, body, { timeoutMs: 30_000 });
      latest.set(key, body);
    }
  }
  const big = randomBytes(3 * 1024 * 1024 + 17);
  await putObject(jet, store, "large", (async function* () { for (let o = 0; o < big.length; o += 300_000) yield big.subarray(o, o + 300_000); })(), { timeoutMs: 30_000 });
  latest.set("large", big);
  const os = await new Objm(nc).open(store.name);
  for (const [key, body] of latest) {
    const blob = await os.getBlob(key);
    t.true(blob !== null && Buffer.from(blob).equals(body), `stock getBlob ${key}`);
    t.true((await collect(readObject(jet.jsm, store, await statObject(jet.jsm, store, key)))).equals(body), `Shoal read ${key}`);
  }
  t.deepEqual((await os.list()).map((e) => e.name).sort(), ["large", "s1", "s2"]);
});

test("R3: a late attempt of a put whose call committed and was overwritten since answers with that commit (the leader refuses it as a duplicate) and does not land again", async (t) => {
  const { jet, store } = await r3Store(t, "late-r3");
  const first = await putBytes(jet, store, "k", Buffer.from("the call"), { requestId: "call-1", timeoutMs: 30_000 });
  const later = await putBytes(jet, store, "k", Buffer.from("a later write"), { timeoutMs: 30_000 });
  const before = (await jet.jsm.streams.info(store.stream)).state.messages;
  // the late attempt remembers the later write's revision (the R3 path compares against it; its compare-and-set passes)
  const late = await putBytes(jet, store, "k", Buffer.from("the call"), { requestId: "call-1", timeoutMs: 30_000 });
  t.is(late.revision, first.revision);
  const head = await statObject(jet.jsm, store, "k");
  t.is(head.revision, later.revision);
  t.is((await collect(readObject(jet.jsm, store, head))).toString(), "a later write");
  t.is((await jet.jsm.streams.info(store.stream)).state.messages, before, "the late attempt's chunk is removed and no version is added");
});
