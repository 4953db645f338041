/**
 * The storage actor's shared state and small helpers (actors/storage/index.ts wires the handlers).
 */
import type { KV } from "@nats-io/kv";
import type { ActorContext } from "../../src/runtime/index.ts";
import { bucketFromToken } from "../../src/subjects/index.ts";
import { assertBucketName } from "../../src/store/names.ts";
import type { Jet, StoreRef } from "../../src/store/types.ts";
import { statVersion, versionIdFor, type VersioningState } from "../../src/store/versions.ts";
import { BucketSettings } from "../../src/store/bucketsettings.ts";
import { statObject } from "../../src/store/reader.ts";
import { storeRef } from "../../src/store/bucket.ts";
import { IndexSet } from "../../src/store/index.ts";
import { openMultipart } from "../../src/store/multipart.ts";
import { restateComposed, type RestateOutcome } from "../../src/store/compose.ts";
import { countRestatement } from "../../src/metrics/index.ts";
import { openRegistry } from "../../src/store/registry.ts";
import { DEFAULT_IDLE_MS } from "../../src/transfer/index.ts";

/** Bucket named by the last token of an object subject. */
export function bucketOf(subject: string): string {
  return assertBucketName(bucketFromToken(subject.slice(subject.lastIndexOf(".") + 1)));
}

export async function* once(data: Uint8Array): AsyncGenerator<Uint8Array> {
  if (data.byteLength > 0) yield data;
}

/** Sleeps `ms`, returning early (without throwing) when `signal` aborts. */
export function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

export async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
  return Buffer.concat(parts);
}

/**
 * What every handler of the storage actor shares: the connection's
 * JetStream handles, the registry and multipart KV buckets, the list
 * indexes, the bucket settings (versioning) and the stat that reports S3's
 * "null" version. Opened once per actor instance.
 */
export async function openState(ctx: ActorContext) {
  const jet: Jet = { nc: ctx.nc, js: ctx.js, jsm: ctx.jsm };
  const registry: KV = await openRegistry(ctx.js, ctx.jsm);
  const uploads: KV = await openMultipart(ctx.js, ctx.jsm);
  // list indexes, each for its bucket's current incarnation (rebuilt when
  // the bucket was deleted and created again: src/store/index.ts)
  const indexes = new IndexSet(ctx.js, ctx.jsm, (bucket) => storeRef(bucket));
  const idleMs = DEFAULT_IDLE_MS;
  // S3 versioning state per bucket (KV shoal_bucket_settings), held in
  // memory from a watch of the KV (src/store/bucketsettings.ts live()): no
  // KV read per write. A change is seen once the watch delivers it (the
  // propagation window of docs/api.md, "Bucket settings"); while the watch
  // cannot vouch for the copy, each request reads the KV leader as before.
  const settings = new BucketSettings(ctx.nc);
  await settings.live({ waitMs: 1000 }); // not longer: until the copy is in, requests read the leader
  const versioning = async (bucket: string): Promise<VersioningState> => (await settings.current(bucket, "versioning")) ?? "";
  const versionOpt = async (bucket: string): Promise<{ versionId?: string }> => {
    const id = versionIdFor(await versioning(bucket));
    return id !== undefined ? { versionId: id } : {};
  };
  /**
   * The current version, or the one named. In a bucket that is (or was)
   * versioned an object written before has the version id "null", which
   * S3 reports (from the live copy of the bucket's settings).
   */
  const stat = async (bucket: string, store: StoreRef, key: string, versionId: string | undefined) => {
    const info = versionId !== undefined ? await statVersion(ctx.jsm, store, key, versionId) : await statObject(ctx.jsm, store, key);
    if (info.versionId === undefined && (await settings.current(bucket, "versioning").catch(() => undefined)) !== undefined) return { ...info, versionId: "null" };
    return info;
  };

  /**
   * A composed multipart object's background copy into the stock form
   * (src/store/compose.ts restateComposed), started once its completion is
   * answered. Copies run one after another in this process (each holds a
   * read-ahead and a write window: ten at once would hold ten of each), a
   * version at most once at a time; stopping the actor interrupts them (the
   * sweep restates what is left).
   */
  const restating = new Map<string, Promise<RestateOutcome>>();
  let queue: Promise<unknown> = Promise.resolve();
  const restate = (bucket: string, key: string, revision: number): Promise<RestateOutcome> => {
    const id = `${bucket}\u0000${key}\u0000${revision}`;
    let p = restating.get(id);
    if (!p) {
      const queued = Date.now();
      let started = queued;
      p = queue.then(() => {
        started = Date.now();
        return restateComposed(jet, storeRef(bucket), key, revision, { signal: ctx.signal });
      });
      queue = p.catch(() => undefined);
      restating.set(id, p);
      p.then(
        (outcome) => countRestatement(outcome),
        () => countRestatement("failed"),
      );
      p.then(
        (outcome) => ctx.log.info({ bucket, key: key.slice(0, 128), revision, outcome, ms: Date.now() - started, queuedMs: started - queued }, "composed object restated in the stock form"),
        (err: unknown) =>
          ctx.signal.aborted
            ? ctx.log.info({ bucket, key: key.slice(0, 128), revision }, "restating a composed object stopped with the actor; the sweep finishes it")
            : ctx.log.warn({ err, bucket, key: key.slice(0, 128), revision }, "restating a composed object failed; the sweep retries"),
      ).finally(() => restating.delete(id));
    }
    return p;
  };

  /**
   * A write JetStream refused for want of storage (InsufficientStorage),
   * wherever this instance saw it fail — a handler's error, a streamed body's,
   * a direct upload's outcome as its writer reported it: the sweep
   * (./sweep.ts) listens, and reclaims replaced versions at once.
   */
  const storageFullListeners = new Set<() => void>();
  const noteFailure = (code: string | undefined) => {
    if (code === "InsufficientStorage") for (const f of storageFullListeners) f();
  };

  return { ctx, jet, registry, uploads, indexes, idleMs, settings, versioning, versionOpt, stat, restate, storageFullListeners, noteFailure };
}
export type StorageState = Awaited<ReturnType<typeof openState>>;
