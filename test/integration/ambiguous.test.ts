/**
 * Ambiguous commits (issue 14, defect 9): a commit whose publish gets no
 * answer may still land — a proposal queued on a stream leader can be
 * applied after the writer looked and saw nothing. The writer must then never
 * delete the chunks that commit points at; the sweep decides later, from the
 * stream's state.
 *
 * The fault is injected at the client API, not in NATS: the commit's publish
 * is held back and sent a moment later (the server applies it then), while
 * every attempt the writer makes meanwhile gets no answer.
 */
import test from "ava";
import { randomBytes, createHash } from "node:crypto";
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import { TimeoutError } from "@nats-io/nats-core";
import { startServer, connectTo } from "../helpers/nats.ts";
import { firstAnswerLost } from "../helpers/jet.ts";
import { eventually } from "../helpers/wait.ts";
import { commitChunks, deleteObject, deleteVersion, putBytes, putObject, timingOf, writeChunks, type Jet } from "../../src/store/writer.ts";
import { keyMessages, keyVersions } from "../../src/store/versions.ts";
import { readObject, statObject, headObject } from "../../src/store/reader.ts";
import { ensureStore, storeRef } from "../../src/store/bucket.ts";
import { sweepStore } from "../../src/store/sweep.ts";
import { metaSubjectAll } from "../../src/subjects/index.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function* from(b: Uint8Array) {
  yield b;
}

/** A JetStream client whose first publish on `prefix` is delivered late (after `delayMs`) and whose answers on it never come meanwhile. */
function lateCommits(real: JetStreamClient, prefix: string, delayMs: number): { js: JetStreamClient; landed: Promise<void> } {
  let held: Promise<void> | undefined;
  let resolveLanded!: () => void;
  const landed = new Promise<void>((r) => (resolveLanded = r));
  const js = new Proxy(real, {
    get(target, prop) {
      if (prop === "publish") {
        return async (subject: string, data: Uint8Array | string, opts?: Parameters<JetStreamClient["publish"]>[2]) => {
          if (!subject.startsWith(prefix)) return target.publish(subject, data, opts);
          if (!held) {
            // Infinity: it never lands (no timer left behind)
            held = (delayMs === Infinity ? new Promise<void>(() => undefined) : new Promise<void>((r) => setTimeout(r, delayMs))).then(async () => {
              await target.publish(subject, data, opts);
              resolveLanded();
            });
          }
          throw new TimeoutError();
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { js, landed };
}

test("a commit with no answer that lands later keeps its chunks: the object reads whole; the sweep leaves them", async (t) => {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const real = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const store = storeRef("amb");
  await ensureStore(jsm, store, 1);
  const late = lateCommits(real, metaSubjectAll(store.name).slice(0, -1), 1200);
  const jet: Jet = { nc, js: late.js, jsm };
  const body = randomBytes(3 * 1024 * 1024 + 5);
  // the writer gives up (no answer within its deadline) and cannot see the commit yet
  await t.throwsAsync(() => putObject(jet, store, "k", from(body), { chunkSize: 256 * 1024, timeoutMs: 400, attemptTimeoutMs: 100 }));
  t.is(await headObject(jsm, store, "k"), undefined, "not landed when the writer looked");
  await late.landed;
  const info = await eventually(() => statObject(jsm, store, "k"), () => true, { what: "the late commit" });
  const parts: Buffer[] = [];
  for await (const c of readObject(jsm, store, info)) parts.push(Buffer.from(c));
  t.is(sha(Buffer.concat(parts)), sha(body), "the landed commit's chunks are all there");
  // the sweep sees the commit and keeps its chunks, even past the orphan grace period
  const r = await sweepStore(real, jsm, store, { markerTtlMs: 0, orphanGraceMs: 1000, readGraceMs: 0, now: () => Date.now() + 60_000 });
  t.is(r.orphansPurged, 0);
  const again: Buffer[] = [];
  for await (const c of readObject(jsm, store, await statObject(jsm, store, "k"))) again.push(Buffer.from(c));
  t.is(sha(Buffer.concat(again)), sha(body));
});

test("a commit with no answer that never lands leaves its chunks to the sweep, which removes them after the grace period", async (t) => {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const real = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const store = storeRef("amb2");
  await ensureStore(jsm, store, 1);
  const late = lateCommits(real, metaSubjectAll(store.name).slice(0, -1), Infinity);
  await t.throwsAsync(() => putObject({ nc, js: late.js, jsm }, store, "k", from(randomBytes(600_000)), { chunkSize: 256 * 1024, timeoutMs: 300, attemptTimeoutMs: 100 }));
  const chunks = async () => (await jsm.streams.info(store.stream)).state.messages;
  t.is(await chunks(), 3, "kept: the outcome was unknown");
  const fresh = await sweepStore(real, jsm, store, { markerTtlMs: 0, orphanGraceMs: 60_000 });
  t.is(fresh.orphansPurged, 0, "within the grace period");
  const r = await sweepStore(real, jsm, store, { markerTtlMs: 0, orphanGraceMs: 1000, now: () => Date.now() + 60_000 });
  t.is(r.orphansPurged, 1);
  t.is(await chunks(), 0);
});

test("a slow attempt of a call whose retry already committed (and was overwritten since) does not land on top of the later write (known issue 3)", async (t) => {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const jet: Jet = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
  const store = storeRef("slowattempt");
  await ensureStore(jet.jsm, store, 1);
  const enc = (s: string) => new TextEncoder().encode(s);
  await putObject(jet, store, "k", from(enc("version zero")));
  // attempt 1 of a call read the head, then stalled (a multipart completion copying its parts, a server killed under it)
  const seenByAttempt1 = await headObject(jet.jsm, store, "k");
  // meanwhile the client's retry (attempt 2, the same request id) committed and was acknowledged; then a later put
  const retried = await putObject(jet, store, "k", from(enc("the call, attempt 2")), { requestId: "call-1" });
  const later = await putObject(jet, store, "k", from(enc("a later write")));
  // attempt 1 now commits, compared against the head it read
  const w = await writeChunks(jet, store, from(enc("the call, attempt 1")));
  const result = await commitChunks(jet, store, "k", w, { requestId: "call-1" }, timingOf({}), seenByAttempt1);
  t.is(result.revision, retried.revision, "attempt 1 answers with the commit of attempt 2");
  const head = await statObject(jet.jsm, store, "k");
  t.is(head.revision, later.revision, "the later write is still the current version");
  const parts: Buffer[] = [];
  for await (const c of readObject(jet.jsm, store, head)) parts.push(Buffer.from(c));
  t.is(Buffer.concat(parts).toString(), "a later write");
});

/**
 * A late attempt: one whose request reached an actor only after the call's
 * first commit was acknowledged and overwritten. It reads the later write as
 * the head, so its compare-and-set passes; the call's message id (the same
 * for every attempt: writer.ts callMsgId) is what stops it. The model test
 * found it (seed 1110964612): an acknowledged 567 KB put of a/1 replaced by
 * a retry of an earlier 633 B put of a/1.
 */
async function lateAttemptStore(t: import("ava").ExecutionContext, name: string) {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const jet: Jet = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
  const store = storeRef(name);
  await ensureStore(jet.jsm, store, 1);
  const messages = async () => (await jet.jsm.streams.info(store.stream)).state.messages;
  const text = async (info: Awaited<ReturnType<typeof statObject>>) => {
    const parts: Buffer[] = [];
    for await (const c of readObject(jet.jsm, store, info)) parts.push(Buffer.from(c));
    return Buffer.concat(parts).toString();
  };
  return { jet, store, messages, text };
}
const enc = (s: string) => new TextEncoder().encode(s);

for (const [path, write] of [
  ["an inline put (putBytes)", (jet: Jet, store: ReturnType<typeof storeRef>, body: string, requestId?: string) => putBytes(jet, store, "k", enc(body), requestId ? { requestId } : {})],
  ["a streamed put (putObject)", (jet: Jet, store: ReturnType<typeof storeRef>, body: string, requestId?: string) => putObject(jet, store, "k", from(enc(body)), requestId ? { requestId } : {})],
] as const) {
  test(`a late attempt of ${path} whose call committed and was overwritten since answers with that commit and does not land again`, async (t) => {
    const { jet, store, messages, text } = await lateAttemptStore(t, `late${path.length}`);
    const first = await write(jet, store, "the call", "call-1");
    const later = await write(jet, store, "a later write");
    const before = await messages();
    const late = await write(jet, store, "the call", "call-1");
    t.is(late.revision, first.revision, "the late attempt answers with its call's commit");
    const head = await statObject(jet.jsm, store, "k");
    t.is(head.revision, later.revision, "the later write is still the current version");
    t.is(await text(head), "a later write");
    t.is(await messages(), before, "no version and no chunk left behind by the late attempt");
  });
}

test("a late attempt of a delete whose marker was overwritten since does not delete the later write", async (t) => {
  const { jet, store, text } = await lateAttemptStore(t, "latedel");
  await putBytes(jet, store, "k", enc("version zero"));
  t.deepEqual(await deleteObject(jet, store, "k", undefined, "del-1"), { deleted: true });
  const later = await putBytes(jet, store, "k", enc("a later write"));
  t.deepEqual(await deleteObject(jet, store, "k", undefined, "del-1"), { deleted: true }, "the late attempt reports what its call did");
  const head = await statObject(jet.jsm, store, "k");
  t.is(head.revision, later.revision);
  t.is(await text(head), "a later write");
});

test("one request id deleting several versions of one key removes each (the version is part of the message id)", async (t) => {
  const { jet, store } = await lateAttemptStore(t, "latever");
  const a = await putBytes(jet, store, "k", enc("a"), { versionId: "va" });
  await putBytes(jet, store, "k", enc("b"), { versionId: "vb" });
  await putBytes(jet, store, "k", enc("c"), { versionId: "vc" });
  t.truthy(a);
  t.is((await deleteVersion(jet, store, "k", "va", undefined, "many-1")).deleted, true);
  t.is((await deleteVersion(jet, store, "k", "vb", undefined, "many-1")).deleted, true);
  t.deepEqual((await keyVersions(jet.jsm, store, "k")).map((v) => v.versionId), ["vc"]);
});

test("a write past its commit window (COMMIT_WINDOW_MS after its input was complete) fails with ServiceUnavailable and leaves nothing: no version, no chunk", async (t) => {
  const { jet, store, messages, text } = await lateAttemptStore(t, "window");
  const kept = await putBytes(jet, store, "k", enc("kept"));
  const before = await messages();
  const past = Date.now() - 1;
  const code = (p: Promise<unknown>) => p.then(() => "committed", (e: unknown) => (e as { code?: string }).code);
  t.is(await code(putBytes(jet, store, "k", enc("inline"), { commitBy: past })), "ServiceUnavailable");
  t.is(await code(putObject(jet, store, "k", from(randomBytes(700_000)), { chunkSize: 256 * 1024, commitBy: past })), "ServiceUnavailable");
  t.is(await code(deleteObject(jet, store, "k", undefined, "del-late", { commitBy: past })), "ServiceUnavailable");
  const head = await statObject(jet.jsm, store, "k");
  t.is(head.revision, kept.revision);
  t.is(await text(head), "kept");
  t.is(await messages(), before, "the refused writes' chunks are removed");
  // within the window (the default) the same writes commit
  t.is((await putBytes(jet, store, "k", enc("inline"))).size, 6);
});

test("a commit that landed but whose answer was lost is the result, not committed again, also without a request id (the retry is refused as out of date; the head is this attempt's own)", async (t) => {
  const { jet, store } = await lateAttemptStore(t, "lostack");
  await putObject(jet, store, "k", from(enc("before")));
  const { js, dropped } = firstAnswerLost(jet.js, metaSubjectAll(store.name).slice(0, -1));
  const info = await putObject({ ...jet, js }, store, "k", from(randomBytes(600_000)), { chunkSize: 256 * 1024 });
  t.true(dropped());
  t.is((await statObject(jet.jsm, store, "k")).revision, info.revision);
  t.is((await keyVersions(jet.jsm, store, "k")).length, 1, "one version: the landed commit, not a second one");
  t.is((await keyMessagesOf(jet, store)).length, 2, "the key's messages: the first put and this one");
});

const keyMessagesOf = (jet: Jet, store: ReturnType<typeof storeRef>) => keyMessages(jet.jsm, store, "k");
