/**
 * A direct upload's commit (src/store/claim.ts): the read-back of the
 * writer's chunks only reads, so a transient JetStream failure during it
 * (no leader yet, a stream info or consumer create that times out) is
 * retried and the commit lands; only a claim the stream contradicts removes
 * the chunks. CI saw the first direct PUT into a new R3 bucket refused
 * ServiceUnavailable, its chunks gone, when a read-back failed once.
 */
import test, { type ExecutionContext } from "ava";
import { randomBytes } from "node:crypto";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { NoRespondersError, TimeoutError } from "@nats-io/nats-core";
import { startServer, connectTo } from "../helpers/nats.ts";
import { writeChunks } from "../../src/store/writer.ts";
import { commitClaim } from "../../src/store/claim.ts";
import { readObject, statObject } from "../../src/store/reader.ts";
import { ensureStore, storeRef } from "../../src/store/bucket.ts";
import type { Jet, StoreRef } from "../../src/store/types.ts";

async function* once(b: Uint8Array): AsyncGenerator<Uint8Array> {
  yield b;
}

/**
 * `jsm` whose first `n` stream infos fail the way a stream without a leader
 * answers — or, `stale`, answer as a leader cut off before the chunks
 * landed would: no chunks counted.
 */
function flakyInfo(jsm: JetStreamManager, n: number, stale = false): { jsm: JetStreamManager; failed: () => number } {
  let failed = 0;
  const streams = new Proxy(jsm.streams, {
    get(target, p, r) {
      if (p === "info")
        return async (...a: Parameters<typeof target.info>) => {
          if (failed < n) {
            failed++;
            if (stale) {
              const si = await target.info(...a);
              return { ...si, state: { ...si.state, subjects: {} } };
            }
            throw failed % 2 ? new NoRespondersError("$JS.API.STREAM.INFO") : new TimeoutError();
          }
          return target.info(...a);
        };
      return Reflect.get(target, p, r);
    },
  });
  return { jsm: new Proxy(jsm, { get: (t, p, r) => (p === "streams" ? streams : Reflect.get(t, p, r)) }), failed: () => failed };
}

/** One server, a connection and an R1 store on it. */
async function oneServerStore(t: ExecutionContext, bucket: string): Promise<{ jet: Jet; store: StoreRef }> {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const jet: Jet = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
  const store = storeRef(bucket);
  await ensureStore(jet.jsm, store, 1);
  return { jet, store };
}

test("a direct commit whose read-back of the chunks fails transiently retries it and commits; the chunks are kept", async (t) => {
  const { jet, store } = await oneServerStore(t, "claims");
  const body = randomBytes(3 * 1024 * 1024 + 17);
  const w = await writeChunks(jet, store, once(body), { id: "claimretry1" });
  const flaky = flakyInfo(jet.jsm, 3);
  const info = await commitClaim({ ...jet, jsm: flaky.jsm }, store, w.id, w.chunkSize, "k", { size: w.size, md5hex: w.md5hex, sha256: w.sha256 });
  t.is(flaky.failed(), 3, "the read-back met three transient failures");
  t.is(info.size, body.byteLength);
  const parts: Buffer[] = [];
  for await (const c of readObject(jet.jsm, store, await statObject(jet.jsm, store, "k"))) parts.push(Buffer.from(c));
  t.true(Buffer.concat(parts).equals(body), "the committed object reads back byte for byte");
});

test("a direct commit whose read-back keeps failing gives up at its deadline with ServiceUnavailable naming the read, and removes the chunks", async (t) => {
  const { jet, store } = await oneServerStore(t, "claimsgone");
  const w = await writeChunks(jet, store, once(randomBytes(2 * 1024 * 1024)), { id: "claimretry2" });
  const flaky = flakyInfo(jet.jsm, 1_000_000);
  const started = Date.now();
  const err = await t.throwsAsync(() => commitClaim({ ...jet, jsm: flaky.jsm }, store, w.id, w.chunkSize, "k", { size: w.size, md5hex: w.md5hex, sha256: w.sha256 }, { timeoutMs: 1500 }));
  t.true(Date.now() - started < 10_000, "it gave up near its deadline");
  t.true(flaky.failed() > 1, "it retried before giving up");
  t.regex(`${(err as { code?: string }).code}`, /^(ServiceUnavailable|Timeout)$/);
  t.regex(err!.message, /stream info of OBJ_claimsgone/);
  const left = (await jet.jsm.streams.info(store.stream, { subjects_filter: `$O.${store.name}.C.>` })).state.subjects ?? {};
  t.deepEqual(left, {}, "its chunks are removed");
});

test("a stream info that counts fewer chunks than are stored (a stale leader's answer) is checked against the last chunk and asked again; a claim of more than was written is refused", async (t) => {
  const { jet, store } = await oneServerStore(t, "claimsstale");
  const body = randomBytes(2 * 1024 * 1024 + 5);
  const w = await writeChunks(jet, store, once(body), { id: "claimstale1" });
  const flaky = flakyInfo(jet.jsm, 2, true);
  const info = await commitClaim({ ...jet, jsm: flaky.jsm }, store, w.id, w.chunkSize, "k", { size: w.size, md5hex: w.md5hex, sha256: w.sha256 });
  t.is(flaky.failed(), 2);
  t.is(info.size, body.byteLength);
  // while a claim of more than was written is refused (the last chunk confirms the count)
  const w2 = await writeChunks(jet, store, once(randomBytes(1000)), { id: "claimstale2" });
  const err = await t.throwsAsync(() => commitClaim(jet, store, w2.id, w2.chunkSize, "k2", { size: w2.chunkSize * 3, md5hex: w2.md5hex, sha256: w2.sha256 }));
  t.is((err as { code?: string }).code, "InvalidDirectUpload");
  t.regex(err!.message, /1 chunks stored/);
});

test("a chunk whose first publish is lost and sent again after later chunks landed fails the write retryably and leaves no chunks: the sequences would not ascend and stock readers would read the object out of order (CI's model test saw such an object's metadata unreadable)", async (t) => {
  const { jet, store } = await oneServerStore(t, "outoforder");
  const id = "outoforder1";
  let dropped = 0;
  // the first publish of chunk 1 never reaches the server and its ack never comes (as when a link drops mid-window)
  const js = new Proxy(jet.js, {
    get(target, p, r) {
      if (p === "publish")
        return (subj: string, data: Uint8Array, o?: { msgID?: string }) => {
          if (o?.msgID === `${id}.1` && dropped === 0) {
            dropped++;
            return new Promise((_, reject) => setTimeout(() => reject(new TimeoutError()), 300));
          }
          return target.publish(subj, data, o);
        };
      return Reflect.get(target, p, r);
    },
  });
  const body = randomBytes(4 * 1024 * 1024);
  const err = await t.throwsAsync(() => writeChunks({ ...jet, js }, store, once(body), { id, windowBytes: 8 * 1024 * 1024 }));
  t.is(dropped, 1);
  t.is((err as { code?: string }).code, "ServiceUnavailable");
  t.regex(err!.message, /chunk 2 of upload outoforder1 landed before chunk 1/);
  const left = (await jet.jsm.streams.info(store.stream, { subjects_filter: `$O.${store.name}.C.>` })).state.subjects ?? {};
  t.deepEqual(left, {}, "its chunks are removed");
});
