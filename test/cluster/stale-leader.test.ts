/**
 * A stale stream leader never decides a read-after-write or a
 * compare-and-set read (issue 14, defect 9; known issues 1 and 2 of the
 * model test, test/cluster/known-issues.test.ts).
 *
 * The cause, measured: a server cut off from its peers keeps believing it
 * leads the streams it led, for seconds (until it notices the lost quorum or
 * hears of the newer term), while the others elect a leader and acknowledge
 * writes. The JetStream API's leader-only requests (STREAM.MSG.GET, what
 * Shoal's "leader reads" use) are answered by whoever believes it leads, and
 * a request takes the first answer: through the cut-off server — and, right
 * after a heal, through any server — the stale leader answers from its old
 * state. Each test below first shows that answer (the precondition: a plain
 * leader read through the cut-off server misses the acknowledged write),
 * then checks that Shoal's read on the same path does not act on it: it
 * answers with the write or fails retryably (src/runtime/linear.ts).
 *
 * Without the fix, getUpload answered NoSuchUpload, the list index counted
 * itself caught up without the write, and DeleteBucket's emptiness check
 * found no object in a bucket that had one.
 */
import test, { type ExecutionContext } from "ava";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { startProxiedCluster, connectTo, type ProxiedCluster } from "../helpers/nats.ts";
import { eventually, whileRetryable } from "../helpers/wait.ts";
import { ensureStore, storeRef } from "../../src/store/bucket.ts";
import { putObject } from "../../src/store/writer.ts";
import { leaderGet, statObject } from "../../src/store/reader.ts";
import { KeyIndex, hasLiveObject } from "../../src/store/index.ts";
import { createUpload, getUpload, openMultipart } from "../../src/store/multipart.ts";
import { KV, bucketToken, kvStream, metaSubjectAll } from "../../src/subjects/index.ts";
import { toShoalError } from "../../src/errors/index.ts";

async function* bytes(s: string) {
  yield new TextEncoder().encode(s);
}

/** Cuts tried before the precondition (a stale leader answering) counts as not reached. */
const STALE_ATTEMPTS = 12; // 8 ran out once in CI (the multipart KV test), on a loaded machine

function jetOf(nc: NatsConnection) {
  // checkAPI off: the manager's account-info probe is itself a JetStream API
  // call, and right after a heal the system may answer "temporarily unavailable"
  // (seen in a full run); the test's own calls retry where they must.
  return jetstreamManager(nc, { checkAPI: false }).then((jsm) => ({ nc, js: jetstream(nc, { timeout: 4000 }), jsm }));
}

/**
 * What the server that believes it leads answers to a message get: one
 * request with the client's own 5 s timeout — not Shoal's leaderGet, whose
 * 1.5 s attempts and retries are a policy, not the server's answer.
 */
function plainLeaderRead(jsm: JetStreamManager, stream: string, subject: string) {
  return jsm.streams.getMessage(stream, { last_by_subj: subject });
}

/** How an operation ended: its value, or the ShoalError code it failed with. */
async function outcome<T>(p: Promise<T>): Promise<{ ok: true; v: T } | { ok: false; code: string; retryable: boolean }> {
  try {
    return { ok: true, v: await p };
  } catch (e) {
    const s = toShoalError(e);
    return { ok: false, code: s.code, retryable: s.retryable };
  }
}

/**
 * Cuts the routes of `stream`'s leader (its clients stay connected), and
 * returns connections to it (`far`, made while the cluster was whole) and to
 * the other two (`near`).
 */
async function cutLeader(t: ExecutionContext, pc: ProxiedCluster, any: Awaited<ReturnType<typeof jetOf>>, stream: string) {
  const leaderName = (await eventually(() => any.jsm.streams.info(stream), (si) => !!si.cluster?.leader, { timeoutMs: 60_000, intervalMs: 300, what: `${stream}'s leader` })).cluster!.leader!;
  const leader = pc.cluster.servers.find((s) => s.name === leaderName)!;
  const far = await jetOf(await connectTo(t, leader.url, { maxReconnectAttempts: -1 }));
  const near = await jetOf(await connectTo(t, pc.cluster.servers.filter((s) => s !== leader).map((s) => s.url), { maxReconnectAttempts: -1 }));
  return { leader, far, near };
}

/**
 * Cuts the routes of the leader of the stream `prepare` names, lets the
 * majority acknowledge `write`, and checks the precondition with `stale` (a
 * plain leader read through the cut-off server must miss the write). The
 * stale window depends on election timing (the majority elects after 4–9 s,
 * the cut-off leader steps down after 10–20 s): a cut that misses it is
 * healed and tried again, at most STALE_ATTEMPTS times: on a loaded machine
 * the majority's write can land after the cut-off server has stopped
 * answering (a full run missed the window 4 times in a row; a stress run at
 * concurrency 3 missed it 12 times). Returns with the cluster cut. When no
 * attempt showed the stale answer, the last cut is returned as it is
 * (`stale: false`): the test's checks still hold there (Shoal's read answers
 * with the write or fails retryably), and the file's last hook fails unless
 * at least one test of the file did show it — so the file still fails if
 * nats-server stops producing stale answers, but not because one test's
 * elections ran late on a loaded machine.
 */
async function staleCut<T>(
  t: ExecutionContext,
  pc: ProxiedCluster,
  any: Awaited<ReturnType<typeof jetOf>>,
  s: {
    prepare: (attempt: number) => Promise<string>;
    setup: (far: Awaited<ReturnType<typeof jetOf>>, near: Awaited<ReturnType<typeof jetOf>>) => Promise<void>;
    write: () => Promise<T>;
    stale: (w: T) => Promise<boolean>;
  },
) {
  const seen: string[] = [];
  for (let attempt = 1; attempt <= STALE_ATTEMPTS; attempt++) {
    const stream = await s.prepare(attempt);
    await eventually(() => any.jsm.streams.info(stream), (si) => !!si.cluster?.leader && (si.cluster.replicas ?? []).length === 2 && (si.cluster.replicas ?? []).every((r) => r.current), { timeoutMs: 60_000, intervalMs: 300, what: `${stream} whole with a leader` });
    const cut = await cutLeader(t, pc, any, stream);
    await eventually(() => s.setup(cut.far, cut.near), () => true, { timeoutMs: 60_000, intervalMs: 300, what: "setup through both sides" });
    pc.isolate(cut.leader.name);
    const w = await eventually(s.write, () => true, { timeoutMs: 60_000, intervalMs: 200, what: "a write acknowledged by the majority" });
    if (await s.stale(w)) {
      t.log(`attempt ${attempt}: cut ${cut.leader.name}, which still answered as leader without the write`);
      staleShown.push(t.title);
      return { ...cut, w, stale: true };
    }
    seen.push(`attempt ${attempt}: ${cut.leader.name} did not answer as a stale leader`);
    if (attempt === STALE_ATTEMPTS) {
      t.log(`${seen.join("; ")}; checked on the last cut without the precondition`);
      return { ...cut, w, stale: false };
    }
    pc.healAll();
  }
  throw new Error("unreachable");
}

/** The tests of this file that showed a stale leader answering (the precondition). */
const staleShown: string[] = [];

test.after("at least one test of this file showed a stale leader answering (else nats-server changed? see src/runtime/linear.ts)", (t) => {
  t.true(staleShown.length > 0, `no test reached the precondition in ${STALE_ATTEMPTS} cuts each`);
});

// One after another: three 3-server clusters at once slow the elections the
// stale window depends on.
test.serial("a stale leader of the multipart KV never turns an acknowledged CreateMultipartUpload into NoSuchUpload", async (t) => {
  t.timeout(600_000);
  const pc = await startProxiedCluster(t, 3);
  const any = await jetOf(await connectTo(t, pc.cluster.urls));
  // opened while a peer is not up yet, the KV is created at R1; opening it again lifts it to R3 once the peers are there
  const placed = async () => {
    await openMultipart(any.js, any.jsm);
    return (await any.jsm.streams.info(kvStream(KV.multipart))).config.num_replicas;
  };
  await eventually(placed, (r) => r === 3, { timeoutMs: 60_000, intervalMs: 500, what: "shoal_multipart placed at R3" });
  t.is((await any.jsm.streams.info(kvStream(KV.multipart))).config.num_replicas, 3);
  let farKv!: Awaited<ReturnType<typeof openMultipart>>;
  let nearKv!: Awaited<ReturnType<typeof openMultipart>>;
  const { leader, w: rec } = await staleCut(t, pc, any, {
    prepare: async () => kvStream(KV.multipart),
    setup: async (far, near) => {
      farKv = await openMultipart(far.js, far.jsm);
      nearKv = await openMultipart(near.js, near.jsm);
    },
    write: () => createUpload(nearKv, "bkt", "k"),
    stale: async (r) => {
      const plain = await outcome(farKv.get(`${bucketToken("bkt")}.${r.uploadId}`));
      return plain.ok && plain.v === null;
    },
  });
  // Shoal's read on the same path: the record, or a retryable failure — never NoSuchUpload
  const got = await outcome(getUpload(farKv, "bkt", rec.uploadId));
  t.log(`getUpload through ${leader.name}: ${JSON.stringify(got.ok ? "found" : got)}`);
  if (got.ok) t.is(got.v.uploadId, rec.uploadId);
  else t.true(got.retryable, `a retryable failure, not ${got.code}`);
  // through the majority it is found (the linear read itself works); the
  // majority may still be settling its KV leader after the cut (CI: one read
  // answered 10008 "temporarily unavailable"), so a transient failure is retried
  const near = await whileRetryable(() => getUpload(nearKv, "bkt", rec.uploadId).catch((e: unknown) => Promise.reject(toShoalError(e))), { timeoutMs: 20_000, intervalMs: 250 });
  t.is(near.uploadId, rec.uploadId);
  pc.healAll();
});

test.serial("a stale leader of a bucket's stream never lets a LIST miss, or DeleteBucket's emptiness check overlook, an acknowledged write", async (t) => {
  t.timeout(600_000);
  const pc = await startProxiedCluster(t, 3);
  const any = await jetOf(await connectTo(t, pc.cluster.urls));
  let store = storeRef("staleleader");
  let idx: KeyIndex | undefined;
  t.teardown(() => idx?.stop());
  let nearJet!: Awaited<ReturnType<typeof jetOf>>;
  let farJsm!: Awaited<ReturnType<typeof jetOf>>["jsm"];
  const { leader, far, w: b } = await staleCut(t, pc, any, {
    // a fresh, empty bucket each attempt
    prepare: async (attempt) => {
      store = storeRef(`staleleader${attempt}`);
      await eventually(() => ensureStore(any.jsm, store, 3), () => true, { timeoutMs: 60_000, intervalMs: 500, what: "an R3 stream placed" });
      return store.stream;
    },
    // an index served through the server about to be cut off, caught up while the cluster is whole
    setup: async (farJet, near) => {
      nearJet = near;
      farJsm = farJet.jsm;
      await idx?.stop();
      idx = new KeyIndex(farJet.js, farJet.jsm, store);
      await idx.start();
      await idx.catchUp(20_000);
      t.deepEqual(idx.page({}).contents, []);
    },
    write: () => putObject(nearJet, store, "b", bytes("v1"), { timeoutMs: 4000 }),
    // the cut-off server, as leader, answers that the bucket has no metadata
    stale: async () => {
      const plain = await outcome(plainLeaderRead(farJsm, store.stream, metaSubjectAll(store.name)));
      return plain.ok && plain.v === null;
    },
  });
  t.log(`put b at ${b.revision}`);
  // the index's catch-up: the write, or a retryable failure — never a listing without b
  const caught = await outcome(idx!.catchUp(3000));
  const keys = idx!.page({}).contents.map((c) => c.key);
  t.log(`catchUp through ${leader.name}: ${JSON.stringify(caught.ok ? keys : caught)}`);
  if (caught.ok) t.deepEqual(keys, ["b"]);
  else t.true(caught.retryable, `a retryable failure, not ${caught.code}`);
  // DeleteBucket's check: "not empty" or a retryable failure — never "empty"
  const live = await outcome(hasLiveObject(far.js, far.jsm, store, 3000));
  t.log(`hasLiveObject through ${leader.name}: ${JSON.stringify(live)}`);
  if (live.ok) t.true(live.v);
  else t.true(live.retryable, `a retryable failure, not ${live.code}`);
  pc.healAll();
});

// GET/HEAD and the writers' compare-and-set read a key's head (headObject,
// src/store/reader.ts). With a plain leader read, a stale leader served the
// replaced version (the model test's soak once read a/1's first version back
// after three acknowledged overwrites); on R>1 streams the head is now read
// past the read barrier. Without it this test fails: "v1 at 2, v2 at 4,
// HEAD answered 2".
test.serial("a HEAD through a stale leader of a bucket's stream is never answered with the replaced version", async (t) => {
  t.timeout(600_000);
  const pc = await startProxiedCluster(t, 3);
  const any = await jetOf(await connectTo(t, pc.cluster.urls));
  let store = storeRef("stalehead");
  let nearJet!: Awaited<ReturnType<typeof jetOf>>;
  let farJsm!: Awaited<ReturnType<typeof jetOf>>["jsm"];
  let v1 = 0;
  const { leader, w: v2 } = await staleCut(t, pc, any, {
    prepare: async (attempt) => {
      store = storeRef(`stalehead${attempt}`);
      await eventually(() => ensureStore(any.jsm, store, 3), () => true, { timeoutMs: 60_000, intervalMs: 500, what: "an R3 stream placed" });
      v1 = (await putObject(any, store, "k", bytes("version one"))).revision;
      return store.stream;
    },
    setup: async (far, near) => {
      nearJet = near;
      farJsm = far.jsm;
    },
    write: () => putObject(nearJet, store, "k", bytes("version two"), { timeoutMs: 4000 }),
    stale: async () => {
      const plain = await outcome(plainLeaderRead(farJsm, store.stream, metaSubjectAll(store.name)));
      return plain.ok && plain.v?.seq === v1;
    },
  });
  const seen = await outcome(statObject(farJsm, store, "k"));
  t.log(`v1 at ${v1}, v2 at ${v2.revision}; HEAD through ${leader.name}: ${JSON.stringify(seen.ok ? seen.v.revision : seen)}`);
  if (seen.ok) t.is(seen.v.revision, v2.revision, "the replaced version was served as current");
  else t.true(seen.retryable, `a retryable failure, not ${seen.code}`);
  pc.healAll();
});
